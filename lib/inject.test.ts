import { describe, expect, it } from 'vitest';
import { loadPod } from '../test/support/fixtures.js';
import { assertValidPod } from '../test/support/k8s-schema.js';
import { defaultConfig } from './config.js';
import { injectDocument } from './inject.js';

function template(pod: Record<string, any>): Record<string, any> {
  return { metadata: { labels: pod.metadata.labels, annotations: pod.metadata.annotations }, spec: pod.spec };
}

const sonarr = loadPod('sonarr');
const workloads: [string, string, Record<string, any>, (o: any) => any][] = [
  ['Deployment', 'apps/v1', { replicas: 1, selector: { matchLabels: {} }, template: template(sonarr) }, (o) => o.spec.template],
  ['StatefulSet', 'apps/v1', { serviceName: 's', selector: { matchLabels: {} }, template: template(sonarr) }, (o) => o.spec.template],
  ['DaemonSet', 'apps/v1', { selector: { matchLabels: {} }, template: template(sonarr) }, (o) => o.spec.template],
  ['ReplicaSet', 'apps/v1', { selector: { matchLabels: {} }, template: template(sonarr) }, (o) => o.spec.template],
  ['ReplicationController', 'v1', { template: template(sonarr) }, (o) => o.spec.template],
  ['Job', 'batch/v1', { template: template(sonarr) }, (o) => o.spec.template],
  ['CronJob', 'batch/v1', { schedule: '@daily', jobTemplate: { spec: { template: template(sonarr) } } }, (o) => o.spec.jobTemplate.spec.template],
];

describe('injectDocument', () => {
  it.each(workloads)('injects the pod template of a %s', (kind, apiVersion, spec, templateOf) => {
    const doc = { apiVersion, kind, metadata: { name: 'sonarr', namespace: 'media' }, spec };
    const result = injectDocument(doc, defaultConfig);
    expect(result.errors).toEqual([]);
    expect(result.changed).toBe(true);
    const out = templateOf(result.object);
    expect(out.spec.volumes.at(-1).name).toBe('dfs-injector-dfs');
    expect(out.metadata.annotations['dfs-injector.io/status']).toContain('"role":"consumer"');
    assertValidPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: out.spec });
    expect(doc.spec).toEqual(spec);
  });

  it('injects every pod of a List and names the item of an error', () => {
    const broken = loadPod('decypharr-source');
    broken.spec.containers[0].securityContext = {};
    const list = { apiVersion: 'v1', kind: 'List', items: [loadPod('sonarr'), broken] };
    const result = injectDocument(list, defaultConfig);
    expect(result.changed).toBe(false);
    expect(result.errors).toEqual([expect.stringMatching(/^List\/\(unnamed\) \/items\/1: source container "decypharr" must set securityContext.privileged: true/)]);

    const fine = injectDocument({ apiVersion: 'v1', kind: 'List', items: [loadPod('sonarr'), loadPod('decypharr-source')] }, defaultConfig);
    expect(fine.changed).toBe(true);
    expect((fine.object as any).items[1].spec.containers.at(-1).name).toBe('dfs-smbd');
  });

  it('plans nothing in a document with a pod of the wrong shape, and names its field and rule', () => {
    const good = loadPod('sonarr');
    const bad = loadPod('sonarr');
    bad.spec.containers = 'sonarr';
    const list = { apiVersion: 'v1', kind: 'List', items: [good, bad] };
    const result = injectDocument(list, defaultConfig);
    expect(result.object).toBe(list);
    expect(result.changed).toBe(false);
    expect(result.decisions).toEqual([]);
    expect(result.errors).toEqual([]);
    expect(result.invalid).toEqual(['List/(unnamed) /items/1: spec.containers must be an array, not a string']);
  });

  it('passes every other kind through as the same object', () => {
    const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', labels: { 'dfs-injector.io/role': 'consumer' } }, data: { a: '1' } };
    const result = injectDocument(configMap, defaultConfig);
    expect(result.object).toBe(configMap);
    expect(result.changed).toBe(false);
    const foreign = { apiVersion: 'example.com/v1', kind: 'Deployment', spec: { template: template(sonarr) } };
    expect(injectDocument(foreign, defaultConfig).object).toBe(foreign);
  });

  it('treats unlabelled pods as consumers when asked for the namespace default', () => {
    const pod = loadPod('sonarr');
    delete pod.metadata.labels['dfs-injector.io/role'];
    expect(injectDocument(pod, defaultConfig).changed).toBe(false);
    expect(injectDocument(pod, defaultConfig, { defaultRole: 'consumer' }).changed).toBe(true);
  });

  it('creates template metadata when a hand-written template has none', () => {
    const doc = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { template: { spec: { containers: [{ name: 'a', image: 'a' }] } } } };
    const result = injectDocument(doc, defaultConfig, { defaultRole: 'consumer' });
    expect((result.object as any).spec.template.metadata.annotations['dfs-injector.io/status']).toBeDefined();
  });
});
