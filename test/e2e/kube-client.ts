import { Agent, request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { parseAllDocuments } from 'yaml';

/** The least every Kubernetes object has; scenario tests narrow it with their own types. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    uid?: string;
    resourceVersion?: string;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface KubeResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /**
   * The `Warning` headers' texts: admission webhooks' `warnings` reach users this way, and
   * client libraries tend to swallow them.
   */
  readonly warnings: string[];
  json<T = unknown>(): T;
}

export interface RequestOptions {
  readonly method?: string;
  /** Path with query string, e.g. `/api/v1/namespaces?labelSelector=a%3Db`. */
  readonly path: string;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
}

export interface Credentials {
  readonly server: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** A non-2xx answer; `message` carries the API server's own text (e.g. a webhook's denial reason). */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string | undefined;
  readonly response: KubeResponse;
  constructor(what: string, response: KubeResponse) {
    let message = response.body;
    let reason: string | undefined;
    try {
      const s = JSON.parse(response.body) as { message?: string; reason?: string };
      message = s.message ?? message;
      reason = s.reason;
    } catch {
      // not a Status object
    }
    super(`${what}: HTTP ${response.status}${reason === undefined ? '' : ` ${reason}`}: ${message}`);
    this.name = 'KubeApiError';
    this.status = response.status;
    this.reason = reason;
    this.response = response;
  }
}

// RFC 7234 warn-code 299, agent "-", quoted text; the API server always uses this form.
function parseWarnings(headers: IncomingHttpHeaders): string[] {
  const raw = headers.warning;
  if (raw === undefined) return [];
  const values = Array.isArray(raw) ? raw : [raw];
  const out: string[] = [];
  for (const value of values) {
    for (const m of value.matchAll(/\d{3} \S+ "((?:[^"\\]|\\.)*)"/g)) {
      out.push((m[1] ?? '').replace(/\\(.)/g, '$1'));
    }
  }
  return out;
}

export interface WriteOptions {
  /** Sends `dryRun=All`. */
  readonly dryRun?: boolean;
  readonly fieldManager?: string;
}

export interface WriteResult<T> {
  readonly object: T;
  readonly warnings: string[];
  readonly status: number;
}

export interface ListOptions {
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

export interface DeleteOptions {
  readonly propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  readonly gracePeriodSeconds?: number;
}

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

const FIELD_MANAGER = 'dfs-injector-e2e';

/**
 * A small REST client for scenario tests, on node:https with the admin client certificate.
 * It returns warnings and exact error texts, which the product's tests assert on.
 */
export class KubeClient {
  readonly server: string;
  private readonly agent: Agent;
  private readonly resources = new Map<string, Map<string, ApiResource>>();

  constructor(credentials: Credentials) {
    this.server = credentials.server;
    this.agent = new Agent({
      ca: credentials.caPem,
      cert: credentials.certPem,
      key: credentials.keyPem,
      keepAlive: true,
    });
  }

  request(o: RequestOptions): Promise<KubeResponse> {
    const url = new URL(o.path, this.server);
    const payload =
      o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
    if (payload !== undefined) {
      headers['content-type'] = o.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    return new Promise<KubeResponse>((resolve, reject) => {
      const req = httpsRequest(
        url,
        { method: o.method ?? 'GET', headers, agent: this.agent, timeout: o.timeoutMs ?? 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body,
              warnings: parseWarnings(res.headers),
              json: <T>() => JSON.parse(body) as T,
            });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${o.method ?? 'GET'} ${o.path} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Like request(), but throws KubeApiError unless the status is 2xx. */
  async call(o: RequestOptions): Promise<KubeResponse> {
    const res = await this.request(o);
    if (res.status < 200 || res.status > 299) {
      throw new KubeApiError(`${o.method ?? 'GET'} ${o.path}`, res);
    }
    return res;
  }

  /** Finds a kind's REST resource through discovery (cached per group/version). */
  async resource(apiVersion: string, kind: string): Promise<{ base: string; name: string; namespaced: boolean }> {
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    let byKind = this.resources.get(apiVersion);
    if (byKind === undefined) {
      const list = (await this.call({ path: base })).json<{ resources: ApiResource[] }>();
      byKind = new Map();
      for (const r of list.resources) {
        // Subresources (pods/status, ...) share the kind of their parent.
        if (!r.name.includes('/')) byKind.set(r.kind, r);
      }
      this.resources.set(apiVersion, byKind);
    }
    const r = byKind.get(kind);
    if (r === undefined) throw new Error(`the API server does not serve kind ${kind} in ${apiVersion}`);
    return { base, name: r.name, namespaced: r.namespaced };
  }

  /** The REST path of a kind, or of one object when `name` is given. */
  async resourcePath(apiVersion: string, kind: string, namespace?: string, name?: string): Promise<string> {
    const r = await this.resource(apiVersion, kind);
    let path = r.base;
    if (r.namespaced) {
      if (namespace === undefined) throw new Error(`${kind} is namespaced: give a namespace`);
      path += `/namespaces/${encodeURIComponent(namespace)}`;
    }
    path += `/${r.name}`;
    if (name !== undefined) path += `/${encodeURIComponent(name)}`;
    return path;
  }

  private static query(params: Record<string, string | undefined>): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
    const s = q.toString();
    return s === '' ? '' : `?${s}`;
  }

  async createWithResult<T extends KubeObject>(obj: T, o: WriteOptions = {}): Promise<WriteResult<T>> {
    const path = await this.resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace);
    const res = await this.call({
      method: 'POST',
      path: path + KubeClient.query({ dryRun: o.dryRun === true ? 'All' : undefined, fieldManager: o.fieldManager }),
      body: obj,
    });
    return { object: res.json<T>(), warnings: res.warnings, status: res.status };
  }

  async create<T extends KubeObject>(obj: T, o: WriteOptions = {}): Promise<T> {
    return (await this.createWithResult(obj, o)).object;
  }

  /** Server-side apply with force, so re-applying a manifest in a test always wins. */
  async applyWithResult<T extends KubeObject>(obj: T, o: WriteOptions = {}): Promise<WriteResult<T>> {
    const name = obj.metadata.name;
    if (name === undefined) throw new Error(`apply needs metadata.name (${obj.kind})`);
    const path = await this.resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace, name);
    const res = await this.call({
      method: 'PATCH',
      path:
        path +
        KubeClient.query({
          fieldManager: o.fieldManager ?? FIELD_MANAGER,
          force: 'true',
          dryRun: o.dryRun === true ? 'All' : undefined,
        }),
      body: obj,
      contentType: 'application/apply-patch+yaml',
    });
    return { object: res.json<T>(), warnings: res.warnings, status: res.status };
  }

  async apply<T extends KubeObject>(obj: T, o: WriteOptions = {}): Promise<T> {
    return (await this.applyWithResult(obj, o)).object;
  }

  /**
   * Applies every document of a YAML (or JSON) manifest in order. `namespace` fills in a
   * missing metadata.namespace on namespaced kinds only.
   */
  async applyManifest(manifest: string, o: WriteOptions & { namespace?: string } = {}): Promise<KubeObject[]> {
    const out: KubeObject[] = [];
    for (const doc of parseAllDocuments(manifest)) {
      if (doc.errors.length > 0) throw new Error(`manifest does not parse: ${doc.errors[0]?.message ?? ''}`);
      const obj = doc.toJS() as KubeObject | null;
      if (obj === null || obj === undefined) continue;
      if (obj.kind === 'List' && Array.isArray(obj.items)) {
        for (const item of obj.items as KubeObject[]) out.push(await this.applyOne(item, o));
      } else {
        out.push(await this.applyOne(obj, o));
      }
    }
    return out;
  }

  private async applyOne(obj: KubeObject, o: WriteOptions & { namespace?: string }): Promise<KubeObject> {
    if (obj.metadata.namespace === undefined && o.namespace !== undefined) {
      if ((await this.resource(obj.apiVersion, obj.kind)).namespaced) obj = { ...obj, metadata: { ...obj.metadata, namespace: o.namespace } };
    }
    return this.apply(obj, o);
  }

  /** The object, or undefined when it does not exist. */
  async get<T extends KubeObject>(apiVersion: string, kind: string, name: string, namespace?: string): Promise<T | undefined> {
    const res = await this.request({ path: await this.resourcePath(apiVersion, kind, namespace, name) });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new KubeApiError(`get ${kind} ${name}`, res);
    return res.json<T>();
  }

  /** Items of a list; without a namespace, a namespaced kind is listed across all namespaces. */
  async list<T extends KubeObject>(apiVersion: string, kind: string, o: ListOptions = {}): Promise<T[]> {
    const r = await this.resource(apiVersion, kind);
    const path =
      r.namespaced && o.namespace !== undefined
        ? `${r.base}/namespaces/${encodeURIComponent(o.namespace)}/${r.name}`
        : `${r.base}/${r.name}`;
    const res = await this.call({
      path: path + KubeClient.query({ labelSelector: o.labelSelector, fieldSelector: o.fieldSelector }),
    });
    return res.json<{ items: T[] }>().items;
  }

  /** True when something was deleted, false when it did not exist. */
  async delete(apiVersion: string, kind: string, name: string, namespace?: string, o: DeleteOptions = {}): Promise<boolean> {
    const res = await this.request({
      method: 'DELETE',
      path: await this.resourcePath(apiVersion, kind, namespace, name),
      body: { kind: 'DeleteOptions', apiVersion: 'v1', ...o },
    });
    if (res.status === 404) return false;
    if (res.status < 200 || res.status > 299) throw new KubeApiError(`delete ${kind} ${name}`, res);
    return true;
  }

  /** Drops the discovery cache, e.g. after installing a CRD. */
  forgetDiscovery(): void {
    this.resources.clear();
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** Checked before every try: a returned text ends the wait at once with that text. */
  readonly abort?: () => string | undefined;
}

/**
 * Polls `probe` until it returns something other than undefined/false/null; throws with
 * `what` and the last error once the time is up.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  o: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  const interval = o.intervalMs ?? 250;
  let lastError: unknown;
  for (;;) {
    const fatal = o.abort?.();
    if (fatal !== undefined) throw new Error(`gave up waiting for ${what}: ${fatal}`);
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}`;
      throw new Error(`timed out after ${o.timeoutMs ?? 60_000} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}
