import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { admissionReviewFor, loadPod } from '../test/support/fixtures.js';
import { needs } from '../test/support/prereq.js';
import { reviewAdmission } from './admission.js';
import { configSchema, defaultConfig } from './config.js';
import { isShareName, isSmbPath, pathProblem } from './config-schema.js';
import { DEFAULT_ENTRY } from './entry.js';

// One table of values, two judges: lib's validators and the smbd sidecar's real entrypoint. A share
// name or path the webhook admits and the sidecar refuses is a pod that crash-loops (exit 64).

const ENTRYPOINT = fileURLToPath(new URL('../shim/image/entrypoint.sh', import.meta.url));
const BUSYBOX = '/usr/bin/busybox';
const dir = mkdtempSync(join(tmpdir(), 'dfs-sidecar-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fakeSmbd = join(dir, 'smbd');
writeFileSync(fakeSmbd, '#!/bin/sh\nexit 0\n');
chmodSync(fakeSmbd, 0o755);

const SHARE_NAMES = [
  'dfs', 'media_1.x-y', 'A', 'x'.repeat(80), 'x'.repeat(81), '', 'global', 'GLOBAL', 'Global', 'homes', 'HoMeS', 'printers', 'printers2',
  'my share', 'dfs]', '[dfs', 'dfs\n[global]', 'dfs;x', '%U', 'dfs$', 'dfs/x', 'dfsé', 'a\tb', '-dfs', '.dfs',
];
const PATHS = [
  '/mnt/dfs', '/', '/a/b/c', '/mnt/dfs-1_2.3', '/mnt/@+,=~', '/mnt/a:b', '/mnt/with space', '/mnt/dfs ', 'mnt/dfs', '', '/mnt/%U',
  '/mnt/dfs\n[x]', '/mnt/a"b', "/mnt/a'b", '/mnt/$(id)', '/mnt/a`id`', '/mnt/a\\b', '/mnt/a;b', '/mnt/é', `/${'a'.repeat(4094)}`, `/${'a'.repeat(4095)}`,
  '/mnt/a\tb', '/mnt/*', '/mnt/a?', '/mnt/[a]',
];

type Shell = [string, ...string[]];

function entrypointAccepts(shell: Shell, env: Record<string, string>): Promise<boolean> {
  const [file, ...args] = shell;
  return new Promise((resolve, reject) => {
    execFile(
      file,
      [...args, ENTRYPOINT],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DFS_STATE_DIR: mkdtempSync(join(dir, 'state-')), DFS_SMBD: fakeSmbd, DFS_SHARE_PATH: '/mnt/dfs', ...env } },
      (error, _stdout, stderr) => {
        if (error === null) return resolve(true);
        if (error.code === 64) return resolve(false);
        reject(new Error(`entrypoint failed with ${String(error.code)}: ${stderr}`));
      },
    );
  });
}

const shells: [string, Shell][] = [['this machine\'s sh', ['sh']]];
// The sidecar image runs the entrypoint with busybox (Alpine), so that is the judge that counts.
if (needs('busybox', existsSync(BUSYBOX), 'apt-get install -y busybox')) shells.push(['busybox sh', [BUSYBOX, 'sh']]);

describe.each(shells)('lib and the sidecar entrypoint under %s', (_, shell) => {
  it('agree on every share name of the table', async () => {
    const verdicts = await Promise.all(SHARE_NAMES.map(async (name) => [name, isShareName(name), await entrypointAccepts(shell, { DFS_SHARE_NAME: name })] as const));
    expect(verdicts.filter(([, lib, sidecar]) => lib !== sidecar)).toEqual([]);
    expect(verdicts.filter(([, lib]) => lib).length).toBeGreaterThan(3);
  });

  it('agree on every share path of the table, and every path lib admits is one the sidecar takes', async () => {
    const verdicts = await Promise.all(PATHS.map(async (path) => [path, isSmbPath(path), pathProblem(path) === undefined, await entrypointAccepts(shell, { DFS_SHARE_PATH: path })] as const));
    expect(verdicts.filter(([, smb, , sidecar]) => smb !== sidecar)).toEqual([]);
    expect(verdicts.filter(([, , admitted, sidecar]) => admitted && !sidecar)).toEqual([]);
    expect(verdicts.filter(([, , admitted]) => admitted).length).toBeGreaterThan(3);
  });
});

describe('the webhook refuses what the sidecar would refuse', () => {
  const deny = (annotations: Record<string, string>): string => {
    const pod = loadPod('decypharr-source');
    pod.metadata.annotations = { ...pod.metadata.annotations, ...annotations };
    const result = reviewAdmission(admissionReviewFor(pod), DEFAULT_ENTRY, defaultConfig);
    if (result.kind !== 'response') throw new Error(result.message);
    expect(result.review.response.allowed).toBe(false);
    return result.review.response.status?.message ?? '';
  };

  it.each(['global', 'Homes', 'PRINTERS'])('denies share-name %s, a Samba special section', (name) => {
    expect(deny({ 'dfs-injector.io/share-name': name })).toBe(
      `annotation dfs-injector.io/share-name="${name}" is invalid: a share name must be 1 to 80 characters of letters, digits, "_", "." or "-", and not a Samba special section (global, homes, printers, in any case)`,
    );
  });

  it('denies a source-path smb.conf cannot carry', () => {
    expect(deny({ 'dfs-injector.io/source-path': '/mnt/%U' })).toContain('annotation dfs-injector.io/source-path="/mnt/%U" is invalid: the path must be at most 4095 characters of letters, digits and');
  });

  it('refuses share name global in the config file too', () => {
    expect(configSchema.safeParse({ source: { shareName: 'global' } }).success).toBe(false);
  });
});
