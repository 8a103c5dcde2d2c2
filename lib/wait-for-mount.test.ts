import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPod } from '../test/support/fixtures.js';
import { needs } from '../test/support/prereq.js';
import { configSchema, type Config } from './config.js';
import { planConsumer } from './consumer.js';
import type { PodLike } from './k8s.js';
import { PatchBuilder } from './patch.js';
import { emptyInjected, type PlanContext } from './plan.js';
import { injectDocument } from './inject.js';

const run = promisify(execFile);
const BUSYBOX = '/usr/bin/busybox';

// The script runs in busybox:1.37 in the cluster; run it here with busybox's own sh and awk
// against mountinfo files, so what is tested is what the init container executes.
function waitScript(timeoutSeconds: number, mountinfo: string, mountPath?: string): { script: string; env: Record<string, string> } {
  const config = configSchema.parse({ consumer: { waitForMount: { enabled: true, timeoutSeconds } } });
  const init = mountPath === undefined ? injectedInit(config) : plannedInit(config, mountPath);
  expect(init.command.slice(0, 2)).toEqual(['sh', '-c']);
  const env = Object.fromEntries((init.env ?? []).map((e: { name: string; value: string }) => [e.name, e.value]));
  return { script: (init.command[2] as string).replaceAll('/proc/self/mountinfo', mountinfo).replaceAll('sleep 2', 'sleep 0.2'), env };
}

function injectedInit(config: Config): any {
  return (injectDocument(loadPod('sonarr'), config).object as any).spec.initContainers[0];
}

/** The init container planned for a mount path that no annotation or config check has vetted. */
function plannedInit(config: Config, mountPath: string): any {
  const pod = loadPod('sonarr') as PodLike;
  const ctx: PlanContext = { pod, prefix: '', patch: new PatchBuilder(), injected: emptyInjected(), adopted: [], errors: [], warnings: [] };
  planConsumer(ctx, config, { mountPath });
  expect(ctx.errors).toEqual([]);
  const op = ctx.patch.ops.find((o) => o.path === '/spec/initContainers/-' || o.path === '/spec/initContainers');
  const value = op?.value as any;
  return Array.isArray(value) ? value[0] : value;
}

function sh(shell: string[], script: string, env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  const [file, ...args] = shell as [string, ...string[]];
  return run(file, [...args, '-c', script], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
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
    const { script, env } = waitScript(5, file);
    const { stdout } = await sh([BUSYBOX, 'sh'], script, env);
    expect(stdout).toContain('/mnt/dfs is mounted');
  });

  it('fails after its timeout while only the empty bind mount is there, naming the mounter', async () => {
    const file = join(dir, 'empty');
    writeFileSync(file, OTHER + BIND);
    const { script, env } = waitScript(1, file);
    const error = await sh([BUSYBOX, 'sh'], script, env).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error?.code).toBe(1);
    expect(error?.stderr).toContain('no CIFS mount at /mnt/dfs after 1s; is the dfs-mounter pod on this node Ready?');
  });

  // Validation refuses such a path before it gets here; the script must be safe on its own too.
  const HOSTILE = [`/mnt/a'"$(touch\${IFS}MARK)"\`touch\${IFS}MARK\`;touch\${IFS}MARK`, '/mnt/a\n$(touch MARK)\ntouch MARK', '/mnt/\\n\\"x'];
  it.each([
    ['busybox sh', [BUSYBOX, 'sh']],
    ['this machine\'s sh', ['sh']],
  ])('runs no part of a hostile mount path under %s, and matches it literally', async (_, shell) => {
    for (const [i, hostile] of HOSTILE.entries()) {
      const work = mkdtempSync(join(dir, 'hostile-'));
      const marker = join(work, 'MARK');
      const path = hostile.replaceAll('MARK', marker);
      const file = join(work, 'mountinfo');
      // A field of mountinfo holds no blank, so a path with a newline cannot match and must time out.
      writeFileSync(file, OTHER + `1311 1207 0:77 / ${path} ro,relatime master:402 - cifs //10.43.12.7/dfs ro\n`);
      const { script, env } = waitScript(1, file, path);
      const outcome = await sh(shell, `cd ${work} && ${script}`, env).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code: number; stderr: string }) => ({ code: e.code, out: e.stderr }),
      );
      expect(existsSync(marker), `hostile value ${i} ran a command`).toBe(false);
      expect(existsSync(join(work, 'MARK')), `hostile value ${i} ran a command`).toBe(false);
      expect(script).not.toContain(path);
      if (!/\s/.test(path)) {
        expect(outcome).toEqual({ code: 0, out: `dfs-injector: ${path} is mounted\n` });
      } else {
        expect(outcome.code).toBe(1);
        expect(outcome.out).toContain(`no CIFS mount at ${path} after 1s`);
      }
    }
  });
});
