export interface MetricSample {
  /** Full sample name, e.g. `apiserver_admission_webhook_admission_duration_seconds_count`. */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

function unescapeLabel(v: string): string {
  return v.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(raw: string): number {
  if (raw === '+Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(raw);
}

/** Parses the Prometheus text exposition format (what `/metrics` serves); comments are skipped. */
export function parsePrometheusText(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    const body = m[3];
    if (body !== undefined) {
      for (const l of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[l[1] ?? ''] = unescapeLabel(l[2] ?? '');
      }
    }
    out.push({ name: m[1] ?? '', labels, value: parseValue(m[4] ?? 'NaN') });
  }
  return out;
}

/**
 * Samples whose name is exactly `name` and whose labels include every pair of `labels`.
 * For a histogram, ask for `<metric>_count`, `<metric>_sum` or `<metric>_bucket`.
 */
export function selectSamples(
  samples: readonly MetricSample[],
  name: string,
  labels: Readonly<Record<string, string>> = {},
): MetricSample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** Sum of the selected samples' values (0 when none match). */
export function sumSamples(
  samples: readonly MetricSample[],
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  return selectSamples(samples, name, labels).reduce((acc, s) => acc + s.value, 0);
}
