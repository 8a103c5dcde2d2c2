import { randomUUID } from 'node:crypto';
import type { KubeEndpoint } from '../../kube/api.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import jsonpatch, { type Operation } from 'fast-json-patch';

/**
 * A small Kubernetes API server over plain HTTP, for tests that drive real client-node code.
 *
 * Objects live in a map keyed by their path (`/api/v1/namespaces/ns/secrets/name`,
 * `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/name`); any resource
 * type works the same way, so a new test only seeds objects. It speaks:
 *
 *   GET    object              200 | 404
 *   GET    collection          a List; `limit` and `continue` paginate in name order
 *   POST   collection          201 | 409 AlreadyExists
 *   PUT    object              200 | 404 | 409 Conflict on a stale metadata.resourceVersion
 *   PATCH  object              application/json-patch+json (test ops: 422 on failure) and
 *                              application/merge-patch+json; a resourceVersion left in the
 *                              patched object is a precondition (409), as in kube-apiserver
 *   DELETE object              200 | 404
 *
 * Every write bumps a global resourceVersion. `intercept` and `failNext` inject behaviour
 * before a request is handled (errors, concurrent writers); `requests` records what came in.
 */

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface FakeRequest {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly contentType: string | undefined;
  /** Parsed JSON body, or undefined. */
  readonly body: unknown;
}

export interface FakeResponse {
  readonly status: number;
  readonly body: unknown;
}

export interface RecordedRequest extends FakeRequest {
  readonly status: number;
  /** Date.now() when the request arrived. */
  readonly receivedAt: number;
}

/** Return a response to answer the request yourself, or undefined to let the server handle it. */
export type Interceptor = (request: FakeRequest) => FakeResponse | undefined | Promise<FakeResponse | undefined>;

export interface RequestMatch {
  readonly method?: string;
  /** Exact path, or a pattern tested against it. */
  readonly path?: string | RegExp;
}

export interface FakeApiServer {
  readonly url: string;
  /** A KubeConfig whose current context points at this server. */
  kubeConfig(): KubeConfig;
  /** The same server for the certificate lifecycle's own client (kube/api.ts). */
  endpoint(): KubeEndpoint;
  /** A deep copy of the stored object, or undefined. */
  get<T extends KubeObject = KubeObject>(path: string): T | undefined;
  /** Stores (or overwrites) an object at `path`, as another client would; returns the stored copy. */
  put<T extends KubeObject>(path: string, object: T): T;
  /** Edits a stored object in place, as another client would, bumping its resourceVersion. */
  modify<T extends KubeObject = KubeObject>(path: string, edit: (object: T) => void): T;
  remove(path: string): boolean;
  /** Paths of stored objects, sorted. */
  paths(): string[];
  intercept(interceptor: Interceptor): () => void;
  /** The next `count` requests matching `match` get `status` (default 500) with a Status body. */
  failNext(count: number, match?: RequestMatch & { readonly status?: number }): void;
  readonly requests: readonly RecordedRequest[];
  close(): Promise<void>;
}

export async function startFakeApiServer(): Promise<FakeApiServer> {
  const objects = new Map<string, KubeObject>();
  const interceptors: Interceptor[] = [];
  const requests: RecordedRequest[] = [];
  let revision = 1000;

  const nextVersion = (): string => String(++revision);
  const copy = <T>(value: T): T => structuredClone(value);

  function store<T extends KubeObject>(path: string, object: T): T {
    const stored = copy(object);
    stored.metadata.resourceVersion = nextVersion();
    stored.metadata.uid ??= randomUUID();
    stored.metadata.creationTimestamp ??= new Date().toISOString();
    objects.set(path, stored);
    return copy(stored);
  }

  async function handle(request: FakeRequest): Promise<FakeResponse> {
    for (const interceptor of [...interceptors]) {
      const answer = await interceptor(request);
      if (answer !== undefined) return answer;
    }
    const route = parsePath(request.path);
    if (route === undefined) return status(404, 'NotFound', `the server could not find the requested resource (${request.path})`);
    if (route.kind === 'collection') {
      if (request.method === 'GET') return list(route.path, route.resource, request.query);
      if (request.method === 'POST') return create(route.path, route.resource, request.body);
      return status(405, 'MethodNotAllowed', `${request.method} is not supported on a collection`);
    }
    const current = objects.get(route.path);
    switch (request.method) {
      case 'GET':
        return current === undefined ? notFound(route) : { status: 200, body: current };
      case 'PUT':
        return current === undefined ? notFound(route) : replace(route, current, request.body);
      case 'PATCH':
        return current === undefined ? notFound(route) : patch(route, current, request);
      case 'DELETE':
        if (current === undefined) return notFound(route);
        objects.delete(route.path);
        return { status: 200, body: current };
      default:
        return status(405, 'MethodNotAllowed', `${request.method} is not supported`);
    }
  }

  function list(collection: string, resource: string, query: URLSearchParams): FakeResponse {
    const prefix = `${collection}/`;
    const all = [...objects.keys()].filter((path) => path.startsWith(prefix) && !path.slice(prefix.length).includes('/')).sort();
    const after = query.get('continue');
    const start = after === null || after === '' ? 0 : all.findIndex((path) => path > Buffer.from(after, 'base64url').toString());
    const limit = Number(query.get('limit') ?? '0');
    const from = start < 0 ? all.length : start;
    const page = limit > 0 ? all.slice(from, from + limit) : all.slice(from);
    const last = page.at(-1);
    const more = last !== undefined && from + page.length < all.length;
    const items = page.map((path) => objects.get(path));
    const kind = `${items[0]?.kind ?? capitalise(resource)}List`;
    return {
      status: 200,
      body: {
        kind,
        apiVersion: items[0]?.apiVersion ?? 'v1',
        metadata: { resourceVersion: String(revision), ...(more ? { continue: Buffer.from(last).toString('base64url') } : {}) },
        items,
      },
    };
  }

  function create(collection: string, resource: string, body: unknown): FakeResponse {
    if (!isObject(body)) return status(400, 'BadRequest', 'the body must be an object');
    const name = body.metadata.name;
    if (typeof name !== 'string' || name === '') return status(422, 'Invalid', 'metadata.name: Required value');
    const path = `${collection}/${name}`;
    if (objects.has(path)) return status(409, 'AlreadyExists', `${resource} "${name}" already exists`, { name, kind: resource });
    const { resourceVersion: _ignored, ...metadata } = body.metadata;
    return { status: 201, body: store(path, { ...body, metadata: { ...metadata, name } }) };
  }

  function replace(route: ObjectRoute, current: KubeObject, body: unknown): FakeResponse {
    if (!isObject(body)) return status(400, 'BadRequest', 'the body must be an object');
    const conflict = precondition(route, current, body);
    if (conflict !== undefined) return conflict;
    return { status: 200, body: store(route.path, { ...body, metadata: { ...body.metadata, uid: current.metadata.uid } }) };
  }

  function patch(route: ObjectRoute, current: KubeObject, request: FakeRequest): FakeResponse {
    let patched: unknown;
    const type = (request.contentType ?? '').split(';')[0]?.trim();
    if (type === 'application/json-patch+json') {
      if (!Array.isArray(request.body)) return status(400, 'BadRequest', 'a JSON patch must be an array of operations');
      try {
        patched = jsonpatch.applyPatch(copy(current), request.body as Operation[], true, false).newDocument;
      } catch (error) {
        // kube-apiserver answers every failed JSON patch (a failed `test` included) with 422.
        return status(422, 'Invalid', error instanceof Error ? error.message : String(error));
      }
    } else if (type === 'application/merge-patch+json') {
      patched = mergePatch(copy(current), request.body);
    } else {
      return status(415, 'UnsupportedMediaType', `the fake API server does not support patch type ${String(type)}`);
    }
    if (!isObject(patched)) return status(422, 'Invalid', 'the patched object is not an object');
    if (patched.metadata.name !== current.metadata.name) return status(422, 'Invalid', 'metadata.name: may not be changed');
    const conflict = precondition(route, current, patched);
    if (conflict !== undefined) return conflict;
    return { status: 200, body: store(route.path, patched) };
  }

  function precondition(route: ObjectRoute, current: KubeObject, next: KubeObject): FakeResponse | undefined {
    const wanted = next.metadata.resourceVersion;
    if (wanted === undefined || wanted === '' || wanted === current.metadata.resourceVersion) return undefined;
    return status(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${route.resource} "${current.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name: current.metadata.name, kind: route.resource },
    );
  }

  const server = createServer((req, res) => {
    void respond(req, res);
  });

  async function respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://fake');
    let body: unknown;
    try {
      body = text === '' ? undefined : (JSON.parse(text) as unknown);
    } catch {
      body = text;
    }
    const request: FakeRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      contentType: req.headers['content-type'],
      body,
    };
    let answer: FakeResponse;
    try {
      answer = await handle(request);
    } catch (error) {
      answer = status(500, 'InternalError', error instanceof Error ? error.message : String(error));
    }
    requests.push({ ...request, status: answer.status, receivedAt });
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  }

  function intercept(interceptor: Interceptor): () => void {
    interceptors.push(interceptor);
    return () => {
      const i = interceptors.indexOf(interceptor);
      if (i >= 0) interceptors.splice(i, 1);
    };
  }

  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
        users: [{ name: 'fake' }],
        contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
        currentContext: 'fake',
      });
      return kc;
    },
    endpoint: () => ({ server: url, headers: () => Promise.resolve({}) }),
    get<T extends KubeObject = KubeObject>(path: string): T | undefined {
      const object = objects.get(path);
      return object === undefined ? undefined : (copy(object) as T);
    },
    put: (path, object) => store(path, object),
    modify<T extends KubeObject = KubeObject>(path: string, edit: (object: T) => void): T {
      const object = objects.get(path);
      if (object === undefined) throw new Error(`fake API server: nothing stored at ${path}`);
      const edited = copy(object) as T;
      edit(edited);
      return store(path, edited);
    },
    remove: (path) => objects.delete(path),
    paths: () => [...objects.keys()].sort(),
    intercept,
    failNext(count, match = {}) {
      let left = count;
      const code = match.status ?? 500;
      const remove = intercept((request) => {
        if (left <= 0 || !matches(request, match)) return undefined;
        left -= 1;
        if (left === 0) remove();
        return status(code, code === 503 ? 'ServiceUnavailable' : 'InternalError', `injected failure (${left} more to come)`);
      });
    },
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error === undefined ? resolve() : reject(error)));
      }),
  };
}

export function matches(request: FakeRequest, match: RequestMatch): boolean {
  if (match.method !== undefined && match.method !== request.method) return false;
  if (match.path === undefined) return true;
  return typeof match.path === 'string' ? match.path === request.path : match.path.test(request.path);
}

interface ObjectRoute {
  readonly kind: 'object';
  readonly path: string;
  readonly resource: string;
}

type Route = ObjectRoute | { readonly kind: 'collection'; readonly path: string; readonly resource: string };

/**
 * /api/v1/{resource}[/{name}], /api/v1/namespaces/{ns}/{resource}[/{name}] and the same under
 * /apis/{group}/{version}. Subresources are not served.
 */
function parsePath(path: string): Route | undefined {
  const segments = path.split('/').filter((s) => s !== '');
  let rest: string[];
  if (segments[0] === 'api' && segments.length >= 3) rest = segments.slice(2);
  else if (segments[0] === 'apis' && segments.length >= 4) rest = segments.slice(3);
  else return undefined;
  const namespaced = rest[0] === 'namespaces' && rest.length >= 3;
  const resourceIndex = namespaced ? 2 : 0;
  const resource = rest[resourceIndex] ?? '';
  const tail = rest.length - resourceIndex;
  const clean = `/${segments.join('/')}`;
  if (tail === 1) return { kind: 'collection', path: clean, resource };
  if (tail === 2) return { kind: 'object', path: clean, resource };
  return undefined;
}

function notFound(route: ObjectRoute): FakeResponse {
  const name = route.path.split('/').at(-1) ?? '';
  return status(404, 'NotFound', `${route.resource} "${name}" not found`, { name, kind: route.resource });
}

function status(code: number, reason: string, message: string, details?: Record<string, unknown>): FakeResponse {
  return {
    status: code,
    body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code, ...(details ? { details } : {}) },
  };
}

/** RFC 7386. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function isObject(value: unknown): value is KubeObject {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as { metadata?: unknown }).metadata === 'object' &&
    (value as { metadata?: unknown }).metadata !== null
  );
}

function capitalise(resource: string): string {
  const singular = resource.endsWith('s') ? resource.slice(0, -1) : resource;
  return singular.charAt(0).toUpperCase() + singular.slice(1);
}

/** The MutatingWebhookConfiguration the certificate lifecycle patches, named as manifests/base names it. */
export const WEBHOOK_CONFIGURATION_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/dfs-injector';

export function putWebhookConfiguration(api: FakeApiServer, namespace: string): void {
  api.put<KubeObject>(WEBHOOK_CONFIGURATION_PATH, {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'dfs-injector' },
    webhooks: [{ name: 'consumer.dfs-injector.io', clientConfig: { service: { namespace, name: 'dfs-injector', port: 443 } } }],
  });
}

/** A kubeconfig (JSON text) of one context on `api` with the given user. */
export function fakeApiKubeconfig(api: FakeApiServer, user: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    // client-node refuses plain http unless TLS verification is off.
    clusters: [{ name: 'fake', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'fake', user }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
    'current-context': 'fake',
  });
}
