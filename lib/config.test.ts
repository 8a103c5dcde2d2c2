import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, configHash, defaultConfig, parseConfigText } from './config.js';
import { VERSION } from './version.js';

function errorOf(text: string): string {
  try {
    parseConfigText(text, 'config.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('has embedded defaults that match ARCHITECTURE.md ("Names users see")', () => {
    expect(defaultConfig.hostPath).toBe('/mnt/decypharr-dfs');
    expect(defaultConfig.consumer.mountPath).toBe('/mnt/dfs');
    expect(defaultConfig.source.shareName).toBe('dfs');
    expect(defaultConfig.source.shim.mode).toBe('image');
    expect(parseConfigText('', 'empty.yaml')).toEqual(defaultConfig);
  });

  it('merges a partial file over the defaults', () => {
    const config = parseConfigText('consumer:\n  mountPath: /data/dfs\nsource:\n  shim:\n    mode: init\n', 'c.yaml');
    expect(config.consumer.mountPath).toBe('/data/dfs');
    expect(config.consumer.volumeName).toBe('dfs-injector-dfs');
    expect(config.source.shim.mode).toBe('init');
  });

  it.each([
    ['a misspelt key, with the known ones', 'consumer:\n  mountPth: /x\n', 'config.yaml:2: consumer.mountPth: unknown field (known fields: mountPath, volumeName, containers, waitForMount)'],
    ['a relative path', 'hostPath: mnt/dfs\n', 'config.yaml:1: hostPath: must be an absolute path without "..", ":" or a trailing "/"'],
    ['a port out of range', 'source:\n  sidecar:\n    port: 70000\n', 'config.yaml:3: source.sidecar.port: Too big: expected number to be <=65535'],
    ['an unknown shim mode', 'source:\n  shim:\n    mode: preload\n', 'config.yaml:3: source.shim.mode: Invalid option: expected one of "image"|"init"|"off"'],
    ['broken YAML', 'consumer: [\n', 'config.yaml:1: invalid YAML'],
    ['a misspelt securityContext field', 'source:\n  sidecar:\n    securityContext:\n      runAsUsr: 0\n', 'config.yaml:4: source.sidecar.securityContext.runAsUsr: unknown field'],
  ])('reports %s with file, line and field', (_what, text, message) => {
    expect(errorOf(text)).toContain(message);
  });

  it('hashes equal configs equally and different configs differently', () => {
    expect(configHash(parseConfigText('{}', 'a'))).toBe(configHash(defaultConfig));
    expect(configHash(parseConfigText('hostPath: /mnt/other\n', 'b'))).not.toBe(configHash(defaultConfig));
    expect(configHash(defaultConfig)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('keeps VERSION in step with package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(VERSION).toBe(pkg.version);
  });
});
