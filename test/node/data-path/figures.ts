// Pure helpers of data-path.e2e.test.ts: the consumer's read log, and a Prometheus histogram read
// from the API server's /metrics. No I/O here, so figures.test.ts checks them on fixed text.

/**
 * The consumer's read loop (its container's command, run in the background of `sleep`): one read
 * of the share's file every half second, logged with the node's clock (/proc/uptime, 10 ms steps)
 * as "START END ok" or "START END err DETAIL". O_DIRECT sends every read to the SMB server: a
 * read from the page cache would not notice the source going away (docs/mounter.md).
 */
export const READ_LOOP = [
  'while :; do',
  '  s=$(cut -d" " -f1 /proc/uptime)',
  '  if out=$(dd if=/mnt/dfs/hello.txt iflag=direct bs=4096 count=1 2>/tmp/dd.err) && [ "$out" = "hello from nlink0fs" ]; then',
  '    r=ok',
  '  else',
  '    r="err $(grep -v records /tmp/dd.err | head -n 1)${out:+ read: $out}"',
  '  fi',
  '  echo "$s $(cut -d" " -f1 /proc/uptime) $r" >>/tmp/reads.log',
  '  sleep 0.5',
  'done &',
  'exec sleep 1000000',
].join('\n');

export interface Read {
  /** Seconds since the node booted. */
  readonly start: number;
  readonly end: number;
  readonly ok: boolean;
  readonly detail: string;
}

/** Parses the loop's log; a line it cannot read (the last one, half written) is left out. */
export function parseReads(log: string): Read[] {
  const reads: Read[] = [];
  for (const line of log.split('\n')) {
    const m = /^(\d+\.\d+) (\d+\.\d+) (ok|err)(?: (.*))?$/.exec(line);
    if (m === null) continue;
    reads.push({ start: Number(m[1]), end: Number(m[2]), ok: m[3] === 'ok', detail: m[4] ?? '' });
  }
  return reads;
}

export interface Outage {
  /** The reads that started at or after `since`, up to and including the first good one after a failure. */
  readonly reads: readonly Read[];
  readonly failures: number;
  /** The longest read in the window, failed or not, in seconds. */
  readonly longestRead: number;
  /** The first good read after the first failure; undefined while the share has not come back. */
  readonly firstGoodAfterFailure: Read | undefined;
}

/** What the reads since `since` (node clock, seconds) saw of an outage. */
export function outageSince(reads: readonly Read[], since: number): Outage {
  const window: Read[] = [];
  let failures = 0;
  let firstGood: Read | undefined;
  for (const r of reads) {
    if (r.start < since) continue;
    window.push(r);
    if (!r.ok) failures++;
    else if (failures > 0) {
      firstGood = r;
      break;
    }
  }
  return { reads: window, failures, longestRead: Math.max(0, ...window.map((r) => r.end - r.start)), firstGoodAfterFailure: firstGood };
}

export interface HistogramSummary {
  readonly count: number;
  readonly sum: number;
  /** Quantile estimates in seconds, interpolated within buckets as PromQL's histogram_quantile does. */
  readonly p50: number | undefined;
  readonly p99: number | undefined;
}

function labelsOf(text: string): Map<string, string> {
  const labels = new Map<string, string>();
  // Label values here never hold an escaped quote (metric and webhook names, operations, bounds).
  for (const m of text.matchAll(/(\w+)="([^"]*)"/g)) labels.set(m[1]!, m[2]!);
  return labels;
}

/**
 * One histogram from Prometheus text, summed over every series whose labels `select` accepts
 * (for instance every operation of one webhook). Linear in the text's length.
 */
export function histogram(metricsText: string, metric: string, select: (labels: ReadonlyMap<string, string>) => boolean): HistogramSummary {
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (m === null) continue;
    const labels = labelsOf(m[2]!);
    if (!select(labels)) continue;
    const value = Number(m[3]);
    if (m[1] === `${metric}_bucket`) {
      const le = labels.get('le') === '+Inf' ? Infinity : Number(labels.get('le'));
      buckets.set(le, (buckets.get(le) ?? 0) + value);
    } else if (m[1] === `${metric}_count`) count += value;
    else if (m[1] === `${metric}_sum`) sum += value;
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const quantile = (q: number): number | undefined => {
    if (count === 0 || sorted.length === 0) return undefined;
    const rank = q * count;
    let lowerBound = 0;
    let lowerCount = 0;
    for (const [le, cumulative] of sorted) {
      if (cumulative >= rank) {
        // In the +Inf bucket there is nothing to interpolate to: the highest finite bound, as PromQL.
        if (le === Infinity) return lowerBound;
        return lowerBound + ((le - lowerBound) * (rank - lowerCount)) / Math.max(cumulative - lowerCount, 1e-12);
      }
      lowerBound = le;
      lowerCount = cumulative;
    }
    return lowerBound;
  };
  return { count, sum, p50: quantile(0.5), p99: quantile(0.99) };
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
