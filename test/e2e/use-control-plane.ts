import { afterAll, beforeAll } from 'vitest';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from './harness.js';

/**
 * One control plane for the enclosing describe block: started before its first test, stopped
 * after its last. Returns the accessor the tests use. Call it before the block's own hooks: they
 * run after the start, and (vitest stacks after-hooks) their clean-up runs before the stop.
 */
export function useControlPlane(options: ControlPlaneOptions = {}, startTimeoutMs = 180_000): () => ControlPlane {
  let cp: ControlPlane | undefined;
  beforeAll(async () => {
    cp = await startControlPlane(options);
  }, startTimeoutMs);
  afterAll(async () => {
    await cp?.stop();
  }, 60_000);
  return () => {
    if (cp === undefined) throw new Error('control plane not started');
    return cp;
  };
}
