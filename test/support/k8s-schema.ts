import { Pod } from 'kubernetes-models/v1';

/** Throws with the schema path when `object` is not a valid core/v1 Pod. */
export function assertValidPod(object: unknown): void {
  new Pod(object as ConstructorParameters<typeof Pod>[0]).validate();
}

/**
 * The object as the API server decodes it: a null field is an absent one. The schema's enums do
 * not list null, so validate this when the input may carry nulls.
 */
export function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null).map(([k, v]) => [k, withoutNulls(v)]));
}
