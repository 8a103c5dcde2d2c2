// A test that needs a real tool (smbd, a FUSE mount, a control plane) must never pass silently
// without it: it skips loudly on a developer's machine and fails in CI, where DFS_TEST_STRICT=1.
export function needs(what: string, available: boolean, hint: string): boolean {
  if (available) return true;
  const message = `MISSING PREREQUISITE: ${what} is not available, so its tests are SKIPPED. ${hint}`;
  if (process.env.DFS_TEST_STRICT === '1') {
    throw new Error(`${message} (DFS_TEST_STRICT=1 turns this skip into a failure)`);
  }
  const bar = '!'.repeat(Math.min(100, message.length));
  process.stderr.write(`\n${bar}\n${message}\n${bar}\n\n`);
  return false;
}
