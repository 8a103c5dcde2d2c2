import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';

/**
 * Compares `actual` with the golden file at `url`. UPDATE_GOLDEN=1 rewrites the file instead, so
 * expected output changes only on purpose and the change shows up in review as a diff.
 */
export function expectGolden(actual: string, url: URL): void {
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSync(url, actual);
    return;
  }
  if (!existsSync(url)) throw new Error(`golden file ${url.pathname} is missing; run with UPDATE_GOLDEN=1 to create it`);
  expect(actual).toBe(readFileSync(url, 'utf8'));
}
