import { describe, expect, it } from 'vitest';
import { histogram, median, outageSince, parseReads } from './figures.js';

describe('the consumer read log', () => {
  const log = [
    '100.00 100.05 ok',
    '100.60 100.64 ok',
    '101.20 111.30 err dd: can\'t open \'/mnt/dfs/hello.txt\': Host is down',
    '111.80 112.10 err dd: can\'t open \'/mnt/dfs/hello.txt\': Resource temporarily unavailable',
    '112.60 112.70 ok',
    '113.20 113.25 ok',
    '113.8', // half written
  ].join('\n');

  it('parses whole lines and leaves a half-written one out', () => {
    const reads = parseReads(log);
    expect(reads).toHaveLength(6);
    expect(reads[2]).toEqual({ start: 101.2, end: 111.3, ok: false, detail: "dd: can't open '/mnt/dfs/hello.txt': Host is down" });
  });

  it('finds the failures after a point and the first good read after them', () => {
    const o = outageSince(parseReads(log), 100.5);
    expect(o.failures).toBe(2);
    expect(o.firstGoodAfterFailure?.start).toBe(112.6);
    expect(o.reads).toHaveLength(4);
    expect(o.longestRead).toBeCloseTo(10.1, 5);
  });

  it('reports no recovery while the reads still fail, and none when nothing failed', () => {
    const reads = parseReads(log);
    expect(outageSince(reads.slice(0, 4), 100).firstGoodAfterFailure).toBeUndefined();
    const calm = outageSince(reads, 112.5);
    expect(calm.failures).toBe(0);
    expect(calm.firstGoodAfterFailure).toBeUndefined();
  });
});

describe('histogram from Prometheus text', () => {
  const metric = 'apiserver_admission_webhook_admission_duration_seconds';
  const series = (op: string, counts: number[], sum: number): string[] => {
    const les = ['0.005', '0.025', '0.1', '0.5', '1', '2.5', '10', '25', '+Inf'];
    const labels = `name="pods.dfs-injector.io",operation="${op}",rejected="false",type="admit"`;
    return [
      ...les.map((le, i) => `${metric}_bucket{${labels},le="${le}"} ${counts[i]}`),
      `${metric}_sum{${labels}} ${sum}`,
      `${metric}_count{${labels}} ${counts[counts.length - 1]}`,
    ];
  };
  const text = [
    `# HELP ${metric} Admission webhook latency`,
    `# TYPE ${metric} histogram`,
    ...series('CREATE', [0, 2, 8, 10, 10, 10, 10, 10, 10], 0.6),
    ...series('UPDATE', [0, 0, 0, 0, 0, 0, 0, 0, 0], 0),
    `${metric}_bucket{name="other.example.com",operation="CREATE",rejected="false",type="admit",le="+Inf"} 99`,
    `${metric}_count{name="other.example.com",operation="CREATE",rejected="false",type="admit"} 99`,
  ].join('\n');

  it('sums the selected series and interpolates quantiles within buckets', () => {
    const h = histogram(text, metric, (l) => l.get('name') === 'pods.dfs-injector.io');
    expect(h.count).toBe(10);
    expect(h.sum).toBeCloseTo(0.6, 9);
    // Rank 5 lies in (0.025, 0.1]: 2 below it, 6 inside, so 0.025 + 0.075 * 3/6.
    expect(h.p50).toBeCloseTo(0.0625, 9);
    // Rank 9.9 lies in (0.1, 0.5]: 8 below it, 2 inside, so 0.1 + 0.4 * 1.9/2.
    expect(h.p99).toBeCloseTo(0.48, 9);
  });

  it('has no quantile without observations', () => {
    const h = histogram(text, metric, (l) => l.get('name') === 'absent');
    expect(h).toEqual({ count: 0, sum: 0, p50: undefined, p99: undefined });
  });

  it('takes the median of odd and even lists', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
