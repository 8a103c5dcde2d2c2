import { Pod } from 'kubernetes-models/v1';

/** Throws with the schema path when `object` is not a valid core/v1 Pod. */
export function assertValidPod(object: unknown): void {
  new Pod(object as ConstructorParameters<typeof Pod>[0]).validate();
}
