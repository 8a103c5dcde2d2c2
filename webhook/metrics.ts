import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface AdmissionSample {
  readonly role: string;
  readonly outcome: string;
  readonly reason: string;
  readonly seconds: number;
}

export interface WebhookMetrics {
  readonly registry: Registry;
  recordAdmission(sample: AdmissionSample): void;
  recordInternalError(): void;
  recordConfigReloadFailure(): void;
  recordTlsReloadFailure(): void;
  /** A request the client reset or dropped before it was answered. */
  recordAbandoned(): void;
  recordLogLineSuppressed(): void;
  /** notAfter of the certificate now being served. */
  setCertificateExpiry(notAfter: Date): void;
  /** Whether the served certificate is within its validity; read when /metrics is scraped. */
  observeCertificateValidity(valid: () => boolean): void;
  /** Where the in-flight gauges read their values when /metrics is scraped. */
  observeLoad(load: { inFlight(): number; bufferedBytes(): number }): void;
}

export interface MetricsOptions {
  /** Defaults to a fresh Registry: never the global one, so apps and tests do not share state. */
  readonly registry?: Registry;
  /** Process metrics (CPU, memory, event-loop lag). Off by default: each call starts a sampler. */
  readonly collectDefaults?: boolean;
}

// Injection itself takes well under a millisecond; the upper buckets catch GC pauses and an
// overloaded node long before the API server's 10 s webhook timeout.
const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

// Label values come from lib/ decisions; a free-text value would create one series per request.
const LABEL_VALUE = /^[a-z0-9][a-z0-9-]{0,62}$/;

function boundedLabel(value: string): string {
  return LABEL_VALUE.test(value) ? value : 'other';
}

export function createMetrics(options: MetricsOptions = {}): WebhookMetrics {
  const registry = options.registry ?? new Registry();
  if (options.collectDefaults === true) collectDefaultMetrics({ register: registry });

  const admissions = new Counter({
    name: 'dfs_injector_admissions_total',
    help: 'Admission requests answered, by pod role, outcome and reason.',
    labelNames: ['role', 'outcome', 'reason'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'dfs_injector_admission_duration_seconds',
    help: 'Time from receiving an admission request to sending its answer.',
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const internalErrors = new Counter({
    name: 'dfs_injector_internal_errors_total',
    help: 'Admission requests that hit an unexpected error and were denied instead of answered.',
    registers: [registry],
  });
  const configReloadFailures = new Counter({
    name: 'dfs_injector_config_reload_failures_total',
    help: 'Config file reloads rejected; the previous config stays in use.',
    registers: [registry],
  });
  const tlsReloadFailures = new Counter({
    name: 'dfs_injector_tls_reload_failures_total',
    help: 'Certificate reloads rejected; the previous certificate stays in use.',
    registers: [registry],
  });
  const certificateExpiry = new Gauge({
    name: 'dfs_injector_certificate_expiry_timestamp_seconds',
    help: 'notAfter of the serving certificate, in seconds since the Unix epoch.',
    registers: [registry],
  });

  const abandoned = new Counter({
    name: 'dfs_injector_requests_abandoned_total',
    help: 'Admission requests the client reset or dropped before they were answered (HTTP/2 stream resets included); not logged one by one.',
    registers: [registry],
  });
  const suppressedLines = new Counter({
    name: 'dfs_injector_log_lines_suppressed_total',
    help: 'Warning lines about rejected or abandoned requests left out because more than the per-second budget came.',
    registers: [registry],
  });
  let certificateValid: () => boolean = () => true;
  new Gauge({
    name: 'dfs_injector_certificate_valid',
    help: '1 while the served certificate is within its notBefore..notAfter, else 0 (and /readyz fails).',
    registers: [registry],
    collect() {
      this.set(certificateValid() ? 1 : 0);
    },
  });
  let load = { inFlight: () => 0, bufferedBytes: () => 0 };
  new Gauge({
    name: 'dfs_injector_requests_in_flight',
    help: 'Admission requests received and not answered yet.',
    registers: [registry],
    collect() {
      this.set(load.inFlight());
    },
  });
  new Gauge({
    name: 'dfs_injector_request_buffered_bytes',
    help: 'Bytes of admission request bodies held in memory now.',
    registers: [registry],
    collect() {
      this.set(load.bufferedBytes());
    },
  });

  return {
    registry,
    recordAdmission(sample) {
      admissions.inc({
        role: boundedLabel(sample.role),
        outcome: boundedLabel(sample.outcome),
        reason: boundedLabel(sample.reason),
      });
      duration.observe(sample.seconds);
    },
    recordInternalError() {
      internalErrors.inc();
    },
    recordConfigReloadFailure() {
      configReloadFailures.inc();
    },
    recordTlsReloadFailure() {
      tlsReloadFailures.inc();
    },
    recordAbandoned() {
      abandoned.inc();
    },
    recordLogLineSuppressed() {
      suppressedLines.inc();
    },
    observeCertificateValidity(valid) {
      certificateValid = valid;
    },
    observeLoad(next) {
      load = next;
    },
    setCertificateExpiry(notAfter) {
      certificateExpiry.set(notAfter.getTime() / 1000);
    },
  };
}
