import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPod } from '../test/support/fixtures.js';
import { needs } from '../test/support/prereq.js';
import { configSchema } from './config.js';
import { injectDocument } from './inject.js';

const run = promisify(execFile);
const BUSYBOX = '/usr/bin/busybox';

// The script runs in busybox:1.37 in the cluster; run it here with busybox's own sh and awk
// against mountinfo files, so what is tested is what the init container executes.
function waitScript(timeoutSeconds: number, mountinfo: string): string {
  const config = configSchema.parse({ consumer: { waitForMount: { enabled: true, timeoutSeconds } } });
  const result = injectDocument(loadPod('sonarr'), config);
  const init = (result.object as any).spec.initContainers[0];
  expect(init.command.slice(0, 2)).toEqual(['sh', '-c']);
  return (init.command[2] as string).replaceAll('/proc/self/mountinfo', mountinfo).replaceAll('sleep 2', 'sleep 0.2');
}

const dir = mkdtempSync(join(tmpdir(), 'dfs-wait-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BIND = '1207 1180 0:52 /mnt/decypharr-dfs /mnt/dfs ro,relatime master:310 - ext4 /dev/vda rw\n';
const CIFS = '1311 1207 0:77 / /mnt/dfs ro,relatime master:402 - cifs //10.43.12.7/dfs ro,vers=3.1.1,cache=strict,soft\n';
const OTHER = '1208 1180 0:53 / /mnt/streaming-media rw,relatime - nfs4 nas.home.arpa:/volume1 rw\n';

describe.skipIf(!needs('busybox', existsSync(BUSYBOX), 'Install it with: apt-get install busybox'))('the wait-for-mount init container', () => {
  it('succeeds once a CIFS mount has propagated on top of the host-path bind', async () => {
    const file = join(dir, 'live');
    writeFileSync(file, OTHER + BIND + CIFS);
    const { stdout } = await run(BUSYBOX, ['sh', '-c', waitScript(5, file)]);
    expect(stdout).toContain('/mnt/dfs is mounted');
  });

  it('fails after its timeout while only the empty bind mount is there, naming the mounter', async () => {
    const file = join(dir, 'empty');
    writeFileSync(file, OTHER + BIND);
    const error = await run(BUSYBOX, ['sh', '-c', waitScript(1, file)]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error?.code).toBe(1);
    expect(error?.stderr).toContain('no CIFS mount at /mnt/dfs after 1s; is the dfs-mounter pod on this node Ready?');
  });
});
