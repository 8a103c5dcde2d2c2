import { injectDocument, type InjectOptions } from '../lib/inject.js';
import { defineCommand } from './command.js';
import { loadConfig } from './config-file.js';
import { EXIT, UsageError } from './errors.js';
import { readInput } from './io.js';
import { formatManifests, parseManifestInput } from './manifests.js';
import { choiceValue } from './values.js';

export const injectCommand = defineCommand({
  name: 'inject',
  summary: 'Inject into manifests offline, exactly as the webhook would',
  usage: 'inject -f FILE|- [options]',
  description: [
    'Reads YAML (several documents separated by ---) or a JSON object, and writes YAML to stdout.',
    'Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs',
    'and Lists are injected according to their dfs-injector.io/role label; every other document is',
    'written back unchanged. Warnings go to stderr. If any document is refused, its errors go to',
    'stderr, nothing is written to stdout and the exit code is 1. An input or config that cannot be',
    'read, or a pod or pod template of the wrong shape (containers not a list, a volume without a',
    'name: what the webhook answers with 400), gives exit code 3, naming the field and the rule.',
  ].join('\n'),
  options: {
    filename: { type: 'string', short: 'f', multiple: true, value: 'FILE|-', description: 'Manifest file to read; "-" reads stdin' },
    config: { type: 'string', value: 'FILE', description: 'Config file (YAML or JSON)', default: 'embedded defaults' },
    'default-role': {
      type: 'string',
      value: 'consumer',
      description: 'Treat pods without a role label as consumers, as in a namespace labelled dfs-injector.io/default-role=consumer',
    },
  },
  examples: [
    'dfs-injector inject -f sonarr.yaml',
    'dfs-injector inject -f media.yaml --config dfs-injector.yaml --default-role consumer',
    'helm template media ./chart | dfs-injector inject -f - | kubectl apply -f -',
  ],
  async run(args, io) {
    const files = args.strings('filename');
    if (files.length === 0) {
      throw new UsageError('inject needs at least one -f FILE (or -f - for stdin)', 'inject');
    }
    const roleText = args.string('default-role');
    const options: InjectOptions = roleText === undefined ? {} : { defaultRole: choiceValue('--default-role', roleText, ['consumer'] as const, 'inject') };
    const { config } = await loadConfig(args.string('config'), io);

    const output: unknown[] = [];
    const errors: string[] = [];
    let invalid = false;
    for (const file of files) {
      const source = file === '-' ? '<stdin>' : file;
      const docs = parseManifestInput(await readInput(file, io, '-f'), source);
      docs.forEach((doc, index) => {
        if (doc === null || doc === undefined) return;
        const where = `${source} document ${index + 1}`;
        const result = injectDocument(doc, config, options);
        for (const warning of result.warnings) io.stderr.write(`warning: ${where}: ${warning}\n`);
        errors.push(...[...result.invalid, ...result.errors].map((error) => `${where}: ${error}`));
        invalid ||= result.invalid.length > 0;
        output.push(result.object);
      });
    }
    if (errors.length > 0) {
      io.stderr.write(errors.map((error) => `error: ${error}\n`).join(''));
      // A pod of the wrong shape is an input that could not be used, as in `audit -f`.
      return invalid ? EXIT.error : EXIT.failure;
    }
    io.stdout.write(formatManifests(output));
    return EXIT.ok;
  },
});
