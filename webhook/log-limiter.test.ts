import { describe, expect, it } from 'vitest';
import { createLogLimiter } from './log-limiter.js';

function setup(perSecond: number): { limiter: ReturnType<typeof createLogLimiter>; lines: { fields: Record<string, unknown>; message: string }[]; advance: (ms: number) => number; counted: () => number } {
  let clock = 0;
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  let counted = 0;
  const limiter = createLogLimiter({
    logger: { warn: (fields, message) => lines.push({ fields: fields as Record<string, unknown>, message }) },
    perSecond,
    onSuppressed: () => (counted += 1),
    now: () => clock,
  });
  return { limiter, lines, advance: (ms: number) => (clock += ms), counted: () => counted };
}

describe('log limiter', () => {
  it('lets the first N lines of each second through, counts the rest and sums them up when the second ends', () => {
    const { limiter, lines, advance, counted } = setup(3);
    const allowed = Array.from({ length: 10 }, () => limiter.allow());
    expect(allowed).toEqual([true, true, true, false, false, false, false, false, false, false]);
    expect(counted()).toBe(7);
    expect(lines).toEqual([]);

    advance(1000);
    expect(limiter.allow()).toBe(true);
    expect(lines).toEqual([{ fields: { suppressed: 7, limitPerSecond: 3 }, message: 'suppressed 7 log lines: more than 3 a second' }]);
    limiter.close();
  });

  it('writes the summary on flush even when no later line comes, and nothing when nothing was suppressed', () => {
    const { limiter, lines } = setup(1);
    limiter.allow();
    limiter.flush();
    expect(lines).toEqual([]);
    limiter.allow();
    limiter.allow();
    limiter.flush();
    expect(lines.map((l) => l.message)).toEqual(['suppressed 2 log lines: more than 1 a second']);
    limiter.close();
  });
});
