import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffLines, unifiedDiff } from './unified-diff.js';

/** Applies a unified diff to `before`, checking every context and removed line against it. */
function applyUnified(before: string, diff: string): string {
  const old = before === '' ? [] : before.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let cursor = 0;
  const lines = diff.split('\n').slice(2);
  for (let i = 0; i < lines.length; i++) {
    const header = /^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@$/.exec(lines[i] ?? '');
    if (header === null) continue;
    const count = header[2] === undefined ? 1 : Number(header[2]);
    const start = count === 0 ? Number(header[1]) : Number(header[1]) - 1;
    out.push(...old.slice(cursor, start));
    cursor = start;
    for (i++; i < lines.length && !(lines[i] ?? '').startsWith('@@'); i++) {
      const line = lines[i] ?? '';
      if (line === '') continue;
      const body = line.slice(1);
      if (line[0] === '+') out.push(body);
      else {
        expect(old[cursor]).toBe(body);
        if (line[0] === ' ') out.push(body);
        cursor++;
      }
    }
    i--;
  }
  out.push(...old.slice(cursor));
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

describe('unifiedDiff', () => {
  it('writes hunks as diff -u does, an insertion naming the line before it', () => {
    const before = 'a\nb\nc\nd\ne\nf\ng\nh\n';
    const after = 'a\nb\nc\nd\nX\ne\nf\ng\nh\nY\n';
    expect(unifiedDiff(before, after, { from: 'old', to: 'new', context: 1 })).toBe(['--- old', '+++ new', '@@ -4,2 +4,3 @@', ' d', '+X', ' e', '@@ -8 +9,2 @@', ' h', '+Y', ''].join('\n'));
    expect(unifiedDiff('', 'a\n', { from: 'old', to: 'new' })).toBe('--- old\n+++ new\n@@ -0,0 +1 @@\n+a\n');
  });

  it('is empty for equal texts', () => {
    expect(unifiedDiff('a\nb\n', 'a\nb\n', { from: 'x', to: 'y' })).toBe('');
  });

  it('finds the shortest edit between line arrays', () => {
    expect(diffLines(['a', 'b', 'c'], ['a', 'c', 'd']).map((e) => `${e.op}${e.line}`)).toEqual([' a', '-b', ' c', '+d']);
  });

  it('always turns the old text into the new one', () => {
    const text = fc.array(fc.constantFrom('a', 'b', 'c', 'd', '  - name: x', ''), { maxLength: 30 }).map((lines) => (lines.length === 0 ? '' : `${lines.join('\n')}\n`));
    fc.assert(
      fc.property(text, text, fc.integer({ min: 0, max: 4 }), (before, after, context) => {
        const diff = unifiedDiff(before, after, { from: 'a', to: 'b', context });
        expect(diff === '' ? before : applyUnified(before, diff)).toBe(after);
      }),
      { numRuns: 300 },
    );
  });
});
