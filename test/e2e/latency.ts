/** Quantiles for the figures the e2e suite prints: from raw timings and from Prometheus histograms. */
import { selectSamples, type MetricSample } from './metrics.js';

/** Nearest-rank quantile of raw values (q in [0, 1]); NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export interface HistogramSummary {
  readonly count: number;
  readonly sum: number;
  readonly p50: number;
  readonly p99: number;
}

/**
 * Quantile of a Prometheus histogram the way `histogram_quantile()` computes it: the `_bucket`
 * series matching `labels` are summed per `le`, and the value is interpolated linearly inside the
 * bucket that holds the rank. A rank in the +Inf bucket returns the highest finite bound.
 */
export function histogramQuantile(samples: readonly MetricSample[], metric: string, q: number, labels: Readonly<Record<string, string>> = {}): number {
  const byBound = new Map<number, number>();
  for (const s of selectSamples(samples, `${metric}_bucket`, labels)) {
    const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
    byBound.set(le, (byBound.get(le) ?? 0) + s.value);
  }
  const buckets = [...byBound.entries()].sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, cumulative] of buckets) {
    if (cumulative >= rank) {
      if (bound === Number.POSITIVE_INFINITY) return lowerBound;
      const inBucket = cumulative - lowerCount;
      return inBucket === 0 ? bound : lowerBound + (bound - lowerBound) * ((rank - lowerCount) / inBucket);
    }
    lowerBound = bound;
    lowerCount = cumulative;
  }
  return lowerBound;
}

export function summarizeHistogram(samples: readonly MetricSample[], metric: string, labels: Readonly<Record<string, string>> = {}): HistogramSummary {
  const total = (suffix: string): number => selectSamples(samples, `${metric}_${suffix}`, labels).reduce((a, s) => a + s.value, 0);
  return {
    count: total('count'),
    sum: total('sum'),
    p50: histogramQuantile(samples, metric, 0.5, labels),
    p99: histogramQuantile(samples, metric, 0.99, labels),
  };
}

/** Subtracts `before` from `after` series by series, so a histogram covers one phase of a test. */
export function sampleDelta(after: readonly MetricSample[], before: readonly MetricSample[]): MetricSample[] {
  const key = (s: MetricSample): string => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
  const previous = new Map(before.map((s) => [key(s), s.value]));
  return after.map((s) => ({ ...s, value: s.value - (previous.get(key(s)) ?? 0) }));
}

export function ms(seconds: number): string {
  return Number.isNaN(seconds) ? 'n/a' : `${(seconds * 1000).toFixed(1)} ms`;
}
