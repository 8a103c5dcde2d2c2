import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';

/** One ready endpoint of the webhook Service: where the API server may send an admission. */
export interface ServingEndpoint {
  readonly address: string;
  readonly port: number;
  /** The pod behind it, when the EndpointSlice names it (for the log and /readyz). */
  readonly pod?: string;
}

/** The one cluster read the confirmation needs; KubeCertStore implements it from EndpointSlices. */
export interface EndpointSource {
  readyEndpoints(): Promise<readonly ServingEndpoint[]>;
}

/** The leaf certificate (PEM) an endpoint presents in a TLS handshake, within `timeoutMs`. */
export type CertificateFetcher = (endpoint: ServingEndpoint, timeoutMs: number) => Promise<string>;

export interface Confirmation {
  readonly confirmed: boolean;
  readonly endpoints: number;
  /** Endpoints not (yet) presenting a certificate of the new CA. */
  readonly unconfirmed: number;
  /** The first few of them (at most ten), each with why. */
  readonly pending: readonly { readonly endpoint: string; readonly reason: string }[];
}

const MAX_REPORTED = 10;

/**
 * Whether every ready endpoint of the webhook Service presents a certificate issued by `caPem`:
 * the condition for removing the previous CA from the caBundle. Time alone is not enough: a
 * replica that has not re-read the Secret (stuck, partitioned from the API server, started from
 * an old copy) still serves the old leaf, and with the old CA gone the API server refuses it,
 * and with failurePolicy Fail every pod it is asked about.
 *
 * Every handshake is bounded by `timeoutMs`, and endpoints are checked in parallel. An endpoint
 * that cannot be reached counts as not confirmed: keeping a CA a little longer is harmless.
 */
export async function confirmServedBy(
  caPem: string,
  source: EndpointSource,
  fetch: CertificateFetcher,
  timeoutMs: number,
): Promise<Confirmation> {
  const ca = new X509Certificate(caPem);
  const endpoints = await source.readyEndpoints();
  const results = await Promise.all(
    endpoints.map(async (endpoint) => {
      const name = describeEndpoint(endpoint);
      try {
        const leaf = new X509Certificate(await fetch(endpoint, timeoutMs));
        if (leaf.checkIssued(ca) && leaf.verify(ca.publicKey)) return undefined;
        return { endpoint: name, reason: `presents a certificate issued by ${leaf.issuer.replace(/\n/g, ', ')}` };
      } catch (error) {
        return { endpoint: name, reason: `TLS handshake failed: ${error instanceof Error ? error.message : String(error)}` };
      }
    }),
  );
  const pending = results.filter((r): r is { endpoint: string; reason: string } => r !== undefined);
  return { confirmed: pending.length === 0, endpoints: endpoints.length, unconfirmed: pending.length, pending: pending.slice(0, MAX_REPORTED) };
}

export interface TlsFetcherOptions {
  /** SNI sent in the handshake: the Service name the API server dials. */
  readonly servername?: string;
  /** Where to connect for an endpoint. Default: its address and port. */
  readonly dial?: (endpoint: ServingEndpoint) => { readonly host: string; readonly port: number };
}

/**
 * A real TLS handshake that reads the presented leaf. It verifies nothing itself (the caller
 * checks the issuer against the CA it cares about), so it also sees a certificate it would reject.
 */
export function tlsCertificateFetcher(options: TlsFetcherOptions = {}): CertificateFetcher {
  return (endpoint, timeoutMs) =>
    new Promise<string>((resolve, reject) => {
      const target = options.dial?.(endpoint) ?? { host: endpoint.address, port: endpoint.port };
      const socket = connect({
        host: target.host,
        port: target.port,
        rejectUnauthorized: false,
        ALPNProtocols: ['h2', 'http/1.1'],
        ...(options.servername === undefined ? {} : { servername: options.servername }),
      });
      const timer = setTimeout(() => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        const leaf = socket.getPeerX509Certificate();
        socket.destroy();
        if (leaf === undefined) reject(new Error('no certificate presented'));
        else resolve(leaf.toString());
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      });
    });
}

export function describeEndpoint(endpoint: ServingEndpoint): string {
  const host = endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address;
  return `${host}:${endpoint.port}${endpoint.pod === undefined ? '' : ` (${endpoint.pod})`}`;
}
