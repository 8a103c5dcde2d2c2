import type { FakeApiServer, FakeRequest, FakeResponse, KubeObject } from './fake-apiserver.js';

/**
 * Adds to the fake API server the list requests `audit` makes that it does not serve itself:
 * pods of all namespaces (`GET /api/v1/pods`) and `labelSelector` on namespaced pod lists. Pages
 * follow the fake's own scheme (name order, `continue` = the last path, base64url), so one test
 * sees the same pagination on every list. Returns the function that removes the interceptor.
 */
export function serveClusterLists(fake: FakeApiServer): () => void {
  return fake.intercept((request) => {
    if (request.method !== 'GET') return undefined;
    if (request.path === '/api/v1/pods') return page(fake, request, /^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+$/);
    const namespaced = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(request.path);
    if (namespaced !== null && (request.query.get('labelSelector') ?? '') !== '') {
      return page(fake, request, new RegExp(`^/api/v1/namespaces/${namespaced[1] ?? ''}/pods/[^/]+$`));
    }
    return undefined;
  });
}

function page(fake: FakeApiServer, request: FakeRequest, pattern: RegExp): FakeResponse {
  const selector = parseSelector(request.query.get('labelSelector') ?? '');
  const all = fake
    .paths()
    .filter((path) => pattern.test(path))
    .filter((path) => selector(fake.get(path)?.metadata.labels ?? {}));
  const after = request.query.get('continue');
  const from = after === null || after === '' ? 0 : all.findIndex((path) => path > Buffer.from(after, 'base64url').toString());
  const start = from < 0 ? all.length : from;
  const limit = Number(request.query.get('limit') ?? '0');
  const paths = limit > 0 ? all.slice(start, start + limit) : all.slice(start);
  const last = paths.at(-1);
  const more = last !== undefined && start + paths.length < all.length;
  return {
    status: 200,
    body: {
      kind: 'PodList',
      apiVersion: 'v1',
      metadata: { resourceVersion: '1', ...(more ? { continue: Buffer.from(last).toString('base64url') } : {}) },
      items: paths.map((path) => fake.get<KubeObject>(path)),
    },
  };
}

/** Equality-based selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated. */
function parseSelector(text: string): (labels: Record<string, string>) => boolean {
  const tests = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((term): ((labels: Record<string, string>) => boolean) => {
      const notEqual = /^([^!=]+)!=(.*)$/.exec(term);
      if (notEqual !== null) return (l) => l[notEqual[1] ?? ''] !== notEqual[2];
      const equal = /^([^!=]+)==?(.*)$/.exec(term);
      if (equal !== null) return (l) => l[equal[1] ?? ''] === equal[2];
      if (term.startsWith('!')) return (l) => l[term.slice(1)] === undefined;
      return (l) => l[term] !== undefined;
    });
  return (labels) => tests.every((t) => t(labels));
}
