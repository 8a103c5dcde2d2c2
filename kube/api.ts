import type * as Http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type * as Https from 'node:https';
import { createRequire } from 'node:module';

// Required, not imported: as an ES module node:http's namespace is built eagerly, which runs its
// lazy WebSocket getter and loads undici, about 10 ms of every start (docs/benchmarks.md).
const require = createRequire(import.meta.url);
const { Agent: HttpAgent, request: httpRequest } = require('node:http') as typeof Http;
const { Agent: HttpsAgent, request: httpsRequest } = require('node:https') as typeof Https;

/**
 * Where the API server is and how to authenticate to it (kube/endpoint.ts makes one).
 * The certificate lifecycle makes six kinds of call, all plain JSON over HTTPS: this is the
 * whole client it needs. @kubernetes/client-node would add about 80 MiB of RSS and a quarter of
 * a second of start-up to every replica for the same calls.
 */
export interface KubeEndpoint {
  /** e.g. https://10.0.0.1:443, or with a path prefix (a proxy) https://host/k8s */
  readonly server: string;
  /** PEM; undefined: the system's trust store. */
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** kubeconfig `insecure-skip-tls-verify`. */
  readonly insecureSkipTlsVerify?: boolean;
  /** kubeconfig `tls-server-name`. */
  readonly tlsServerName?: string;
  /** Headers for one request (a bearer token that may have been rotated since the last). */
  headers(): Promise<Record<string, string>>;
}

/** The API server answered with a status other than 2xx, or could not be reached (status undefined). */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly status: number | undefined;
  /** The `message` of the Status object the API server sent, when there is one. */
  readonly detail: string | undefined;
  constructor(message: string, status: number | undefined, detail: string | undefined, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    this.detail = detail;
  }
}

export interface KubeRequest {
  readonly method: 'GET' | 'POST' | 'PATCH';
  /** Path and query, e.g. /api/v1/namespaces/ns/secrets/name?fieldManager=x */
  readonly path: string;
  readonly body?: unknown;
  /** Default application/json; a JSON patch is application/json-patch+json. */
  readonly contentType?: string;
  /** The request is aborted after this long. */
  readonly timeoutMs: number;
}

export interface KubeApi {
  /** The parsed JSON answer of a 2xx; throws KubeApiError otherwise. */
  call<T>(request: KubeRequest): Promise<T>;
  /** Closes the kept-alive connections. */
  close(): void;
}

// Bounded, like everything read from the network: the largest answer the lifecycle expects is a
// list of one Service's EndpointSlices.
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export function kubeApi(endpoint: KubeEndpoint): KubeApi {
  const base = new URL(endpoint.server);
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new KubeApiError(`API server ${endpoint.server}: only https:// and http:// URLs are supported`, undefined, undefined);
  }
  const secure = base.protocol === 'https:';
  const prefix = base.pathname.replace(/\/+$/, '');
  const agent = secure
    ? new HttpsAgent({
        keepAlive: true,
        maxSockets: 4,
        ...(endpoint.ca === undefined ? {} : { ca: endpoint.ca }),
        ...(endpoint.cert === undefined ? {} : { cert: endpoint.cert }),
        ...(endpoint.key === undefined ? {} : { key: endpoint.key }),
        ...(endpoint.tlsServerName === undefined ? {} : { servername: endpoint.tlsServerName }),
        rejectUnauthorized: endpoint.insecureSkipTlsVerify !== true,
      })
    : new HttpAgent({ keepAlive: true, maxSockets: 4 });
  const send = secure ? httpsRequest : httpRequest;

  async function call<T>(req: KubeRequest): Promise<T> {
    const what = `${req.method} ${req.path.split('?')[0]}`;
    const body = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body), 'utf8');
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': 'dfs-injector',
      ...(await endpoint.headers()),
      ...(body === undefined ? {} : { 'content-type': req.contentType ?? 'application/json', 'content-length': String(body.length) }),
    };
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = send(
        {
          protocol: base.protocol,
          hostname: base.hostname.replace(/^\[|\]$/g, ''),
          port: base.port === '' ? (secure ? 443 : 80) : Number(base.port),
          path: prefix + req.path,
          method: req.method,
          headers,
          agent,
          signal: AbortSignal.timeout(req.timeoutMs),
        },
        (response: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) {
              response.destroy(new Error(`answer larger than ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(body);
    }).catch((error: unknown) => {
      const reason = error instanceof Error && error.name === 'AbortError' ? `no answer within ${req.timeoutMs} ms` : errorText(error);
      throw new KubeApiError(`${what}: ${reason}`, undefined, undefined, { cause: error });
    });
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (status < 200 || status > 299) {
      const detail = statusMessage(json) ?? (text.slice(0, 200) || undefined);
      throw new KubeApiError(`${what}: HTTP ${status}${detail === undefined ? '' : `: ${detail}`}`, status, detail);
    }
    if (json === undefined) throw new KubeApiError(`${what}: HTTP ${status} with a body that is not JSON`, status, undefined);
    return json as T;
  }

  return { call, close: () => agent.destroy() };
}

function statusMessage(body: unknown): string | undefined {
  if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') return body.message;
  return undefined;
}

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  return code === undefined || error.message.includes(code) ? error.message : `${error.message} (${code})`;
}
