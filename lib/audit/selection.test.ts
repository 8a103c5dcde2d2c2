import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENTRY_PATHS, entryForPath } from '../entry.js';
import { evaluateSelector, matchEntries, selectEntry, selectNamespace, WEBHOOK_ENTRIES } from './selection.js';

const OPTED_IN = { 'dfs-injector.io/injection': 'enabled' };
const CONSUMERS = { ...OPTED_IN, 'dfs-injector.io/default-role': 'consumer' };
const BASELINE = { ...OPTED_IN, 'pod-security.kubernetes.io/enforce': 'baseline' };
const LABELLED = { 'dfs-injector.io/role': 'consumer' };

describe('the webhook entries', () => {
  it('are the entries manifests/base registers, selector for selector', () => {
    const text = readFileSync(new URL('../../manifests/base/mutatingwebhookconfiguration.yaml', import.meta.url), 'utf8');
    const webhooks = (parse(text) as { webhooks: any[] }).webhooks.map((w) => ({
      name: w.name,
      path: w.clientConfig.service.path,
      namespaceSelector: w.namespaceSelector,
      objectSelector: w.objectSelector,
    }));
    const ours = WEBHOOK_ENTRIES.map((e) => ({ name: e.name, path: e.path, namespaceSelector: e.namespaceSelector, objectSelector: e.objectSelector }));
    expect(JSON.parse(JSON.stringify(ours))).toEqual(webhooks);
  });

  it('post to the paths the webhook serves, with the context each path stands for', () => {
    expect(WEBHOOK_ENTRIES.map((e) => e.path).sort()).toEqual([...ENTRY_PATHS].sort());
    for (const e of WEBHOOK_ENTRIES) expect(entryForPath(e.path)).toEqual(e.context);
  });
});

describe('evaluateSelector', () => {
  it('matches NotIn when the label is absent, as the API server does', () => {
    const result = evaluateSelector({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] }, {});
    expect(result).toEqual({ matches: true, requirements: [{ text: 'a notin (x)', matches: true, actual: undefined }] });
  });

  it('matches an empty selector against anything, and checks matchLabels', () => {
    expect(evaluateSelector({}, { a: 'b' }).matches).toBe(true);
    expect(evaluateSelector({ matchLabels: { a: 'b' } }, { a: 'c' }).requirements).toEqual([{ text: 'a=b', matches: false, actual: 'c' }]);
  });

  it('prints Exists and DoesNotExist as kubectl does', () => {
    const result = evaluateSelector({ matchExpressions: [{ key: 'a', operator: 'Exists' }, { key: 'b', operator: 'DoesNotExist' }] }, { a: '' });
    expect(result.requirements.map((r) => `${r.text}:${r.matches}`)).toEqual(['a:true', '!b:true']);
  });
});

describe('selectEntry', () => {
  it.each([
    ['a labelled pod in an opted-in namespace', 'media', OPTED_IN, LABELLED, '/mutate'],
    ['an unlabelled pod in an opted-in namespace', 'media', OPTED_IN, {}, undefined],
    ['a labelled pod in a namespace of consumers', 'media', CONSUMERS, LABELLED, '/mutate'],
    ['an unlabelled pod in a namespace of consumers', 'media', CONSUMERS, {}, '/mutate/namespace-consumer'],
    ['a labelled pod where baseline is enforced', 'media', BASELINE, LABELLED, '/mutate/pod-security-enforced'],
    ['an unlabelled pod in a baseline namespace of consumers', 'media', { ...CONSUMERS, ...BASELINE }, {}, '/mutate/namespace-consumer/pod-security-enforced'],
    ['a labelled pod where privileged is enforced', 'media', { ...OPTED_IN, 'pod-security.kubernetes.io/enforce': 'privileged' }, LABELLED, '/mutate'],
    ['a labelled pod in an opted-out namespace', 'media', { 'dfs-injector.io/injection': 'disabled' }, LABELLED, undefined],
    ['a labelled pod in kube-system, opted in or not', 'kube-system', OPTED_IN, LABELLED, undefined],
    ['a labelled pod in dfs-system', 'dfs-system', CONSUMERS, {}, undefined],
  ])('sends %s to %s', (_what, ns, nsLabels, podLabels, path) => {
    expect(selectEntry(ns, nsLabels, podLabels)?.path).toBe(path);
    expect(matchEntries(ns, nsLabels, podLabels).filter((m) => m.namespace.matches && m.object.matches).length).toBeLessThanOrEqual(1);
  });

  it('tells an excluded namespace from one that did not opt in', () => {
    expect(selectNamespace('kube-system', OPTED_IN)).toEqual({ kind: 'excluded' });
    expect(selectNamespace('media', { 'dfs-injector.io/injection': 'disabled' })).toEqual({ kind: 'not-opted-in', value: 'disabled' });
    expect(selectNamespace('media', BASELINE)).toEqual({ kind: 'served' });
  });
});
