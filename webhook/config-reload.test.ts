import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfigText, type Config } from '../lib/config.js';
import { createSecretDir, type SecretDir } from '../test/support/secret-dir.js';
import type { Json } from '../test/support/webhook-client.js';
import { watchConfigFile, type ConfigReloader } from './config-reload.js';
import { createMetrics, type WebhookMetrics } from './metrics.js';

const INITIAL = 'consumer:\n  mountPath: /mnt/dfs\n';
const EDITED = 'consumer:\n  mountPath: /media/dfs\n';
const BROKEN = 'consumer:\n  mountPath: media/dfs\n';

async function failures(metrics: WebhookMetrics): Promise<number> {
  const metric = await metrics.registry.getSingleMetric('dfs_injector_config_reload_failures_total')!.get();
  return metric.values[0]?.value ?? 0;
}

describe('config reload', () => {
  let secret: SecretDir;
  let reloader: ConfigReloader;
  let config: Config;
  let metrics: WebhookMetrics;
  let logs: Record<string, Json>[];

  async function start(): Promise<void> {
    secret = await createSecretDir({ 'config.yaml': INITIAL });
    logs = [];
    metrics = createMetrics();
    config = parseConfigText(INITIAL, secret.path('config.yaml'));
    reloader = watchConfigFile({
      path: secret.path('config.yaml'),
      currentText: INITIAL,
      apply: (next) => {
        config = next;
      },
      metrics,
      logger: pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) }),
      debounceMs: 50,
      intervalMs: 600_000,
    });
  }

  afterEach(async () => {
    reloader.close();
    await secret.remove();
  });

  it('applies an edited ConfigMap after the kubelet swaps ..data', async () => {
    await start();
    expect(config.consumer.mountPath).toBe('/mnt/dfs');

    await secret.update({ 'config.yaml': EDITED });

    await vi.waitFor(() => expect(config.consumer.mountPath).toBe('/media/dfs'), { timeout: 10_000, interval: 25 });
    expect(logs.find((line) => line.msg === 'config reloaded')).toMatchObject({ path: secret.path('config.yaml') });
    expect(await failures(metrics)).toBe(0);
  });

  it('keeps the previous config when the new one is invalid, logs file, line and field, and counts it', async () => {
    await start();
    const before = config;

    await secret.update({ 'config.yaml': BROKEN });

    await vi.waitFor(async () => expect(await failures(metrics)).toBe(1), { timeout: 10_000, interval: 25 });
    expect(config).toBe(before);
    const error = logs.find((line) => line.level === 50);
    expect(error?.msg).toContain(`keeping the previous config: ${secret.path('config.yaml')}:2: consumer.mountPath: must be an absolute path`);
  });

  it('recovers when a broken config is fixed', async () => {
    await start();
    await secret.update({ 'config.yaml': BROKEN });
    await vi.waitFor(async () => expect(await failures(metrics)).toBe(1), { timeout: 10_000, interval: 25 });

    await secret.update({ 'config.yaml': EDITED });

    await vi.waitFor(() => expect(config.consumer.mountPath).toBe('/media/dfs'), { timeout: 10_000, interval: 25 });
  });

  it('counts a config file that disappeared and keeps the previous config', async () => {
    await start();
    const before = config;
    await secret.remove();

    await reloader.check();

    expect(await failures(metrics)).toBeGreaterThanOrEqual(1);
    expect(config).toBe(before);
  });
});
