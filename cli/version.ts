import { readFileSync } from 'node:fs';

const PACKAGE_NAME = 'dfs-injector';

/**
 * The version in package.json. Found by walking up from this module, because it runs both from
 * source (cli/version.ts, tests) and compiled (dist/cli/version.js), one directory deeper.
 */
export function packageVersion(): string {
  let dir = new URL('.', import.meta.url);
  for (let depth = 0; depth < 4; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No package.json at this level: keep walking up.
    }
    dir = new URL('..', dir);
  }
  throw new Error(`cannot find the ${PACKAGE_NAME} package.json above ${import.meta.url}`);
}
