import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import http2 from 'node:http2';
import tls from 'node:tls';

/** Parsed JSON read by tests, which assert on its shape rather than declare it. */
export type Json = any;

export interface ClientResponse {
  status: number;
  contentType: string | undefined;
  text: string;
  /** The negotiated ALPN protocol: 'h2' or 'http/1.1'. */
  alpn: string | false | null | undefined;
  headers: Record<string, string | string[] | number | undefined>;
  json(): Json;
}

export interface PostOptions {
  ca: string;
  /** Default: JSON.stringify of the body, or the body itself when it is a string or Buffer. */
  contentType?: string | null;
  protocol?: 'h2' | 'http/1.1';
  /** Default POST. */
  method?: string;
}

function encode(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  return Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
}

/** POSTs over a fresh TLS connection that trusts only `ca`, over HTTP/1.1 or HTTP/2 as asked. */
export function post(port: number, path: string, body: unknown, options: PostOptions): Promise<ClientResponse> {
  const payload = encode(body);
  const contentType = options.contentType === undefined ? 'application/json' : options.contentType;
  const method = options.method ?? 'POST';
  return options.protocol === 'h2'
    ? postH2(port, path, method, payload, contentType, options.ca)
    : postH1(port, path, method, payload, contentType, options.ca);
}

function response(
  status: number,
  contentType: string | undefined,
  text: string,
  alpn: string | false | null | undefined,
  headers: ClientResponse['headers'],
): ClientResponse {
  return { status, contentType, text, alpn, headers, json: () => JSON.parse(text) };
}

function postH1(port: number, path: string, method: string, payload: Buffer, contentType: string | null, ca: string): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-length': payload.length };
    if (contentType !== null) headers['content-type'] = contentType;
    const request = https.request(
      // ALPNProtocols reaches tls.connect; @types/node leaves it out of RequestOptions.
      { host: '127.0.0.1', port, path, method, ca, headers, agent: false, ALPNProtocols: ['http/1.1'] } as https.RequestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const alpn = (res.socket as tls.TLSSocket).alpnProtocol;
          resolve(response(res.statusCode ?? 0, res.headers['content-type'], Buffer.concat(chunks).toString('utf8'), alpn, res.headers));
        });
        res.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

function postH2(port: number, path: string, method: string, payload: Buffer, contentType: string | null, ca: string): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca });
    session.on('error', reject);
    const headers: http2.OutgoingHttpHeaders = { ':method': method, ':path': path };
    if (contentType !== null) headers['content-type'] = contentType;
    // endStream: false, or Node ends a GET stream at once and the body cannot follow.
    const stream = session.request(headers, { endStream: false });
    let status = 0;
    let type: string | undefined;
    let received: ClientResponse['headers'] = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      type = h['content-type'];
      received = h;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const alpn = session.alpnProtocol;
      session.close();
      resolve(response(status, type, Buffer.concat(chunks).toString('utf8'), alpn, received));
    });
    stream.on('error', reject);
    stream.end(payload);
  });
}

export interface PeerCertificate {
  serialNumber: string;
  fingerprint256: string;
  protocol: string | null;
}

/** Opens a TLS connection and reports the certificate the server presented. */
export function peerCertificate(port: number, ca: string | string[], extra: tls.ConnectionOptions = {}): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['h2'], ...extra }, () => {
      const raw = socket.getPeerX509Certificate();
      const protocol = socket.getProtocol();
      socket.end();
      if (raw === undefined) reject(new Error('the server presented no certificate'));
      else resolve({ serialNumber: raw.serialNumber, fingerprint256: raw.fingerprint256, protocol });
    });
    socket.on('error', reject);
  });
}

export function certificateSerial(pem: string): string {
  return new X509Certificate(pem).serialNumber;
}

/** GET over plain HTTP (the probes port). */
export async function get(port: number, path: string): Promise<{ status: number; text: string; contentType: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') };
}
