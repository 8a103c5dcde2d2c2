import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { parseTarget } from './explain-target.js';

describe('explain targets', () => {
  it.each([
    ['sonarr-0', undefined, { kind: 'Pod', namespace: 'default', name: 'sonarr-0' }],
    ['sonarr-0', 'media', { kind: 'Pod', namespace: 'media', name: 'sonarr-0' }],
    ['media/sonarr-0', undefined, { kind: 'Pod', namespace: 'media', name: 'sonarr-0' }],
    ['media/sonarr-0', 'media', { kind: 'Pod', namespace: 'media', name: 'sonarr-0' }],
    ['deploy/radarr', 'media', { kind: 'Deployment', namespace: 'media', name: 'radarr' }],
    ['Deployments/radarr', undefined, { kind: 'Deployment', namespace: 'default', name: 'radarr' }],
    ['deployments.apps/radarr', 'media', { kind: 'Deployment', namespace: 'media', name: 'radarr' }],
    ['media/sts/plex', undefined, { kind: 'StatefulSet', namespace: 'media', name: 'plex' }],
    ['media/ds/mounter', undefined, { kind: 'DaemonSet', namespace: 'media', name: 'mounter' }],
    ['media/rs/radarr-7d9f8b6c5d', undefined, { kind: 'ReplicaSet', namespace: 'media', name: 'radarr-7d9f8b6c5d' }],
    ['media/rc/old', undefined, { kind: 'ReplicationController', namespace: 'media', name: 'old' }],
    ['media/jobs.batch/scan', undefined, { kind: 'Job', namespace: 'media', name: 'scan' }],
    ['cj/nightly', 'media', { kind: 'CronJob', namespace: 'media', name: 'nightly' }],
    // A namespace named like a kind: the three-part form says which is which.
    ['jobs/pod/runner-0', undefined, { kind: 'Pod', namespace: 'jobs', name: 'runner-0' }],
  ] as const)('reads %s (-n %s)', (target, namespace, expected) => {
    expect(parseTarget(target, namespace)).toEqual(expected);
  });

  it.each([
    ['a/b/c/d', undefined, '"a/b/c/d" is not a pod or workload: write NAMESPACE/NAME or NAME with -n (a pod), KIND/NAME with -n, or NAMESPACE/KIND/NAME'],
    ['media/', undefined, '"media/" is not a pod or workload'],
    ['/sonarr', undefined, '"/sonarr" is not a pod or workload'],
    ['media/service/sonarr', undefined, '"service" in "media/service/sonarr" is not a kind explain reads: use pod, deployment (deploy)'],
    ['media/sonarr-0', 'other', '"media/sonarr-0" is in namespace "media" but -n says "other": give the namespace once'],
    ['media/deploy/radarr', 'other', '"media/deploy/radarr" is in namespace "media" but -n says "other"'],
  ])('refuses %s (-n %s)', (target, namespace, message) => {
    let caught: unknown;
    try {
      parseTarget(target, namespace);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message.startsWith(message)).toBe(true);
  });
});
