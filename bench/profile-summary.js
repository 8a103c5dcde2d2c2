// Where the time goes in a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most
// self time, and the most inclusive time, as plain text, so a profile can be read in a terminal
// and quoted in a review without opening DevTools.
//
// usage: node bench/profile-summary.js FILE.cpuprofile [--top N] [--json]
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * @param {{ nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number },
 *   children?: number[] }>, samples: number[], timeDeltas: number[] }} profile
 */
export function summarize(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (n) => {
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url === '' ? '' : shorten(url);
    return `${functionName || '(anonymous)'} ${file}${file === '' ? '' : `:${lineNumber + 1}`}`.trim();
  };

  const self = new Map();
  const inclusive = new Map();
  const byFile = new Map();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attributing it to sample i is how DevTools does it.
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(profile.samples[i]);
    if (node === undefined) continue;
    total += dt;
    const name = node.callFrame.functionName;
    if (name === '(idle)' || name === '(program)') idle += name === '(idle)' ? dt : 0;
    const k = keyOf(node);
    self.set(k, (self.get(k) ?? 0) + dt);
    const area = areaOf(node.callFrame.url, name);
    byFile.set(area, (byFile.get(area) ?? 0) + dt);
    const seen = new Set();
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const key = keyOf(byId.get(id));
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    }
  }
  const rank = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms, pct: (100 * ms) / total }));
  return {
    totalMs: total,
    idleMs: idle,
    self: rank(self),
    inclusive: rank(new Map([...inclusive].filter(([k]) => !k.startsWith('(root)')))),
    byArea: rank(byFile),
  };
}

function shorten(url) {
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  return path.startsWith(ROOT) ? relative(ROOT, path) : path;
}

/** node_modules package, a folder of this repository, node internals, or V8's own buckets. */
function areaOf(url, name) {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const path = shorten(url);
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return pkg[1];
  if (path.startsWith('node:')) return path.split('/')[0] === 'node:internal' ? 'node:internal' : path;
  return path.split('/').slice(0, 2).join('/');
}

export function format(s, file) {
  const line = (r) => `${r.ms.toFixed(1).padStart(9)} ms ${r.pct.toFixed(1).padStart(5)} %  ${r.name}`;
  const out = [
    `${file}: ${s.totalMs.toFixed(0)} ms sampled, ${s.idleMs.toFixed(0)} ms idle`,
    '',
    'self time by package / folder:',
    ...s.byArea.map(line),
    '',
    'top self time:',
    ...s.self.map(line),
    '',
    'top inclusive time:',
    ...s.inclusive.map(line),
    '',
  ];
  return out.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, json: { type: 'boolean', default: false } } });
  if (positionals.length === 0) {
    process.stderr.write('usage: node bench/profile-summary.js FILE.cpuprofile [--top N] [--json]\n');
    process.exit(2);
  }
  for (const file of positionals) {
    const s = summarize(JSON.parse(readFileSync(file, 'utf8')), Number(values.top));
    if (values.json) process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    else process.stdout.write(format(s, file));
  }
}
