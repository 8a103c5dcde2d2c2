import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureIo } from '../test/support/cli-io.js';
import { runCli } from '../test/support/run-cli.js';
import { COMMANDS } from './commands.js';
import { main } from './main.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe('the built dfs-injector binary', () => {
  it('prints the version from package.json', async () => {
    const result = await runCli(['--version']);
    expect(result).toMatchObject({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('starts with a shebang so it runs as an npm bin', () => {
    expect(readFileSync(new URL('../dist/cli.js', import.meta.url), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it('lists its commands in --help', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: dfs-injector <command> \[options\]$/m);
    for (const command of ['serve', 'inject', 'certs generate']) expect(result.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  });

  it('refuses an unknown flag with exit code 2, naming the flag and pointing at --help', async () => {
    const result = await runCli(['inject', '--frobnicate', '-f', 'x.yaml']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('error: unknown option --frobnicate for "dfs-injector inject"; see "dfs-injector inject --help"\n');
  });

  it('names a missing file without a stack trace', async () => {
    const result = await runCli(['inject', '-f', 'no/such/manifest.yaml']);
    expect(result.code).toBe(3);
    expect(result.stderr).toBe('error: -f no/such/manifest.yaml: no such file or directory\n');
  });
});

describe('dfs-injector command line', () => {
  it('shows help for each command, also through "help <command>"', async () => {
    for (const command of [['serve'], ['inject'], ['certs', 'generate']]) {
      const result = await run([...command, '--help']);
      expect(result.code).toBe(0);
      expect(result.out).toMatch(new RegExp(`^Usage: dfs-injector ${command.join(' ')} `));
      expect(result.out).toMatch(/^ {2}-h, --help +Show this help$/m);
      expect((await run(['help', ...command])).out).toBe(result.out);
    }
  });

  it('shows help even when other arguments are wrong', async () => {
    expect((await run(['inject', '--nonsense', '--help'])).code).toBe(0);
  });

  it('lists the members of a command group', async () => {
    const result = await run(['certs', '--help']);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^ {2}certs generate +Write a new CA/m);
  });

  it('suggests the command or option that was probably meant', async () => {
    expect((await run(['injcet'])).err).toBe('error: unknown command "injcet" (did you mean "inject"?); see "dfs-injector --help"\n');
    expect((await run(['certs', 'gen'])).err).toMatch(/did you mean "certs generate"\?/);
    expect((await run(['serve', '--metric-port', '9090'])).err).toMatch(/^error: unknown option --metric-port for "dfs-injector serve" \(did you mean --metrics-port\?\)/);
    expect((await run(['--verison'])).err).toMatch(/did you mean --version\?/);
  });

  it('explains a flag that is missing its value, or a switch given one', async () => {
    expect((await run(['inject', '-f'])).err).toBe('error: --filename needs a value; see "dfs-injector inject --help"\n');
    expect((await run(['serve', '--dev=yes'])).err).toMatch(/^error: --dev is a switch and takes no value;/);
    expect((await run(['serve', '--port', '--dev'])).err).toMatch(/^error: --port needs a value \(for a value that starts with "-", write --port=-VALUE\);/);
  });

  it('checks flag values before doing anything, naming flag and rule', async () => {
    const cases: [string[], string][] = [
      [['serve', '--dev', '--port', '70000'], '--port "70000" must be a port number from 1 to 65535 (0 picks a free port)'],
      [['serve', '--dev', '--grace-period', 'soon'], '--grace-period "soon" must be a number of seconds from 0 to 3600, such as 5 or 0.5'],
      [['serve', '--tls-cert', 'a.crt'], 'serve needs --tls-cert FILE and --tls-key FILE (or --dev for a local development certificate)'],
      [['serve', '--dev', '--tls-key', 'a.key'], '--dev makes its own certificate: drop --tls-cert and --tls-key, or drop --dev'],
      [['inject', '-f', 'x.yaml', '--default-role', 'source'], '--default-role "source" must be "consumer"'],
      [['certs', 'generate'], 'certs generate needs --out DIR'],
      [['certs', 'generate', '--out', 'x', '--days=-3'], '--days "-3" must be a positive whole number'],
      [['check', '--exec', '--no-exec'], '--exec and --no-exec contradict each other: give one'],
    ];
    for (const [argv, message] of cases) {
      const result = await run(argv);
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.err, argv.join(' ')).toBe(`error: ${message}; see "dfs-injector ${argv[0] === 'certs' ? 'certs generate' : argv[0]} --help"\n`);
    }
  });

  it('prints top-level help to stderr and exits 2 when run without a command', async () => {
    const result = await run([]);
    expect(result.code).toBe(2);
    expect(result.out).toBe('');
    expect(result.err).toMatch(/^dfs-injector \d+\.\d+\.\d+: /);
  });
});

describe('README.md', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

  it('opens with the two commands for a fresh machine', () => {
    expect(readme).toMatch(/^# dfs-injector\n\nOn a fresh machine[^\n]*\n\n```sh\nnpm ci && npm start +#[^\n]*\nnpm ci && npm test +#/);
  });

  it('documents every command and every flag the CLI accepts', () => {
    for (const command of COMMANDS) {
      expect(readme, command.name).toContain(`### \`dfs-injector ${command.name}\``);
      for (const flag of new Set(command.help().match(/--[a-z][a-z-]*/g))) {
        if (flag !== '--help') expect(readme, `${command.name} ${flag}`).toMatch(new RegExp(`[\`\\s,(]${flag}(?![\\w-])`));
      }
    }
  });
});

describe('dfs-injector certs generate', () => {
  it('writes a CA, a serving certificate and its key (mode 0600) that belong together', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'dfs-certs-')), 'tls');
    const result = await runCli(['certs', 'generate', '--service', 'webhook', '--namespace', 'dfs', '--out', out, '--dns', 'webhook.example.test', '--ip', '10.0.0.7', '--days', '30']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^wrote .*ca\.crt, .*tls\.crt and .*tls\.key\n/);

    const ca = new X509Certificate(await readFile(join(out, 'ca.crt')));
    const leaf = new X509Certificate(await readFile(join(out, 'tls.crt')));
    const key = createPrivateKey(await readFile(join(out, 'tls.key')));
    expect(ca.ca).toBe(true);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkPrivateKey(key)).toBe(true);
    expect(leaf.checkHost('webhook.dfs.svc')).toBe('webhook.dfs.svc');
    expect(leaf.checkHost('webhook.example.test')).toBe('webhook.example.test');
    expect(leaf.checkIP('10.0.0.7')).toBe('10.0.0.7');
    expect(statSync(join(out, 'tls.key')).mode & 0o777).toBe(0o600);
    expect(new Date(leaf.validTo).getTime() - Date.now()).toBeLessThan(31 * 86_400_000);
  });

  it('defaults to the dfs-injector Service in dfs-system', async () => {
    const out = await mkdtemp(join(tmpdir(), 'dfs-certs-'));
    expect((await run(['certs', 'generate', '--out', out])).code).toBe(0);
    const leaf = new X509Certificate(await readFile(join(out, 'tls.crt')));
    expect(leaf.checkHost('dfs-injector.dfs-system.svc')).toBe('dfs-injector.dfs-system.svc');
    expect(leaf.checkHost('dfs-injector.dfs-system.svc.cluster.local')).toBe('dfs-injector.dfs-system.svc.cluster.local');
  });

  it('refuses to replace existing files unless --force is given, and then keeps the key private', async () => {
    const out = await mkdtemp(join(tmpdir(), 'dfs-certs-'));
    await writeFile(join(out, 'tls.key'), 'old', { mode: 0o644 });
    const refused = await run(['certs', 'generate', '--out', out]);
    expect(refused.code).toBe(1);
    expect(refused.err).toBe(`error: ${join(out, 'tls.key')} already exists; pass --force to replace it\n`);
    expect(await readFile(join(out, 'tls.key'), 'utf8')).toBe('old');

    expect((await run(['certs', 'generate', '--out', out, '--force'])).code).toBe(0);
    expect(await readFile(join(out, 'tls.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(statSync(join(out, 'tls.key')).mode & 0o777).toBe(0o600);
  });

  it('names the flag and the rule for an invalid name or address', async () => {
    const out = await mkdtemp(join(tmpdir(), 'dfs-certs-'));
    expect((await run(['certs', 'generate', '--out', out, '--namespace', 'Media'])).err).toMatch(/^error: --namespace "Media" must be a DNS-1123 label/);
    expect((await run(['certs', 'generate', '--out', out, '--ip', '10.0.0.300'])).err).toMatch(/^error: --ip "10\.0\.0\.300" must be an IPv4 or IPv6 address;/);
  });
});
