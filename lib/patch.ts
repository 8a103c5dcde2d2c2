import { escapePointerToken } from './json-pointer.js';

// Only the operations injection emits. Building them directly, instead of diffing a mutated
// copy, keeps the admission path free of deep clones and guarantees arrays are only appended to.
export type PatchOperation =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'test'; path: string; value: unknown };

/**
 * Collects JSON Patch operations against one object exactly as it was received. It remembers
 * which arrays and maps it created, so a second append to an array that did not exist becomes
 * `/-` instead of a second `add` that would overwrite the first.
 */
export class PatchBuilder {
  readonly ops: PatchOperation[] = [];
  private readonly created = new Set<string>();

  // `current` null is absent, as the API server reads it: `add` of the whole array replaces the null.
  appendTo<T>(path: string, current: readonly T[] | null | undefined, value: T): void {
    if (current == null && !this.created.has(path)) {
      this.created.add(path);
      this.ops.push({ op: 'add', path, value: [value] });
      return;
    }
    this.ops.push({ op: 'add', path: `${path}/-`, value });
  }

  /** Sets `key` in the string map at `path` (labels, annotations), creating the map if absent. */
  setMapEntry(path: string, current: Record<string, string> | null | undefined, key: string, value: string): void {
    if (current == null && !this.created.has(path)) {
      this.created.add(path);
      this.ops.push({ op: 'add', path, value: { [key]: value } });
      return;
    }
    const entryPath = `${path}/${escapePointerToken(key)}`;
    const op = current != null && Object.hasOwn(current, key) ? 'replace' : 'add';
    this.ops.push({ op, path: entryPath, value });
  }

  /** Adds a field to an existing object (`add` on an existing member replaces it, per RFC 6902). */
  setField(path: string, value: unknown): void {
    this.ops.push({ op: 'add', path, value });
  }

  get isEmpty(): boolean {
    return this.ops.length === 0;
  }
}
