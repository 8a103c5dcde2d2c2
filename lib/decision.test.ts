import { describe, expect, it } from 'vitest';
import { loadPod } from '../test/support/fixtures.js';
import { defaultConfig } from './config.js';
import { DEFAULT_ENTRY } from './entry.js';
import { planPod, type PodDecision } from './plan-pod.js';
import { PatchBuilder } from './patch.js';

// The decision is structured: the webhook's answer (lib/admission.ts) and `explain` render its
// denial code and annotation results; neither reads the text of a message back.

function decide(edit: (pod: Record<string, any>) => unknown, fixture: 'sonarr' | 'decypharr-source' = 'sonarr'): PodDecision {
  const pod = loadPod(fixture);
  edit(pod);
  return planPod(pod as never, '', new PatchBuilder(), defaultConfig, DEFAULT_ENTRY);
}

describe('the decision of one pod', () => {
  it.each([
    ['a malformed pod', (pod: Record<string, any>): unknown => (pod.spec.volumes = 'x'), 'invalid-pod', 400, 'BadRequest'],
    ['a role label that is no role', (pod: Record<string, any>): unknown => (pod.metadata.labels['dfs-injector.io/role'] = 'consumr'), 'invalid-role-label', 400, 'BadRequest'],
    ['an invalid override', (pod: Record<string, any>): unknown => (pod.metadata.annotations['dfs-injector.io/mount-path'] = 'relative'), 'invalid-annotation', 400, 'BadRequest'],
    ['a conflict', (pod: Record<string, any>): unknown => pod.spec.volumes.push({ name: 'dfs-injector-dfs', emptyDir: {} }), 'consumer-conflict', 403, 'Forbidden'],
  ] as const)('%s: denied with its HTTP code, decided once', (_, edit, reason, code, status) => {
    const decision = decide(edit);
    expect(decision).toMatchObject({ outcome: 'denied', reason, denial: { code, reason: status } });
  });

  it('an injected pod carries no denial', () => {
    expect(decide(() => undefined)).toMatchObject({ outcome: 'injected', denial: undefined, annotations: [] });
  });

  it('records what became of each dfs-injector.io annotation, overrides first in their order, then unknown ones', () => {
    const decision = decide((pod) => {
      pod.metadata.annotations['dfs-injector.io/mount-pth'] = '/typo';
      pod.metadata.annotations['dfs-injector.io/share-name'] = 'media';
      pod.metadata.annotations['dfs-injector.io/mount-path'] = ' /mnt/media ';
      pod.metadata.annotations['dfs-injector.io/containers'] = 'sonarr,sonarr';
    });
    expect(decision.denial).toEqual({ code: 400, reason: 'BadRequest' });
    expect(decision.annotations?.map((a) => [a.name, a.status])).toEqual([
      ['dfs-injector.io/mount-pth', 'unknown'],
      ['dfs-injector.io/mount-path', 'valid'],
      ['dfs-injector.io/containers', 'invalid'],
      ['dfs-injector.io/share-name', 'ignored'],
    ]);
    expect(decision.annotations?.[1]).toEqual({ name: 'dfs-injector.io/mount-path', value: ' /mnt/media ', status: 'valid' });
    expect(decision.annotations?.[2]?.message).toBe(decision.errors[0]);
  });
});
