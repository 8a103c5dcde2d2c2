// The golden inputs under test/golden/inject/ run two ways: through the built CLI
// (cli/inject.test.ts) and here, in-process, through `reviewAdmission`, the function the webhook
// calls for every AdmissionReview. The webhook sees only Pods, so each pod or pod template of an
// input is sent as the Pod the API server would send (a controller creates it from the template),
// and the patched Pod must equal that template in the `.injected` output. Documents without a pod
// (a ConfigMap) never reach the webhook; only the CLI test covers them. See ARCHITECTURE.md,
// "Tests and what they run for real".
import { readdirSync, readFileSync } from 'node:fs';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { reviewAdmission } from '../../lib/admission.js';
import { defaultConfig } from '../../lib/config.js';
import type { EntryContext } from '../../lib/entry.js';
import { isRecord } from '../../lib/k8s.js';
import { podErrors } from '../../lib/pod-shape.js';
import { findPodSlots, findPods } from '../../lib/workloads.js';
import { parseManifests } from '../../cli/manifests.js';
import { admissionReviewFor } from '../support/fixtures.js';

const INJECT = new URL('inject/', import.meta.url);
const AUDIT = new URL('audit/', import.meta.url);
const EXPLAIN = new URL('explain/', import.meta.url);
const read = (dir: URL, name: string): string => readFileSync(new URL(name, dir), 'utf8');

const INPUTS = readdirSync(INJECT)
  .filter((name) => name.endsWith('.yaml'))
  .sort();

/** The `# args: …` line of an input, as the webhook entry those CLI flags stand for. */
function entryOf(name: string): EntryContext {
  const args = /^# args: (.*)$/m.exec(read(INJECT, name))?.[1]?.trim().split(/\s+/) ?? [];
  const flag = args.indexOf('--default-role');
  if (args.length !== (flag < 0 ? 0 : 2) || (flag >= 0 && args[flag + 1] !== 'consumer')) {
    throw new Error(`${name}: "# args: ${args.join(' ')}" has no webhook entry to stand for; teach this test what it means`);
  }
  // `inject` plans with podSecurityEnforced false, as the entry for namespaces without Pod Security enforcement.
  return { defaultRole: flag >= 0 ? 'consumer' : undefined, podSecurityEnforced: false };
}

/** The stderr lines of one document, without the CLI's "file document N: Kind/name [pointer]: " prefix. */
function linesOf(stderr: string, level: 'warning' | 'error', name: string, doc: number): string[] {
  const head = `${level}: test/golden/inject/${name} document ${doc}: `;
  return stderr
    .split('\n')
    .filter((line) => line.startsWith(head))
    .map((line) => /^\S+(?: \/\S*)?: ([\s\S]*)$/.exec(line.slice(head.length))?.[1] ?? `unparsed: ${line}`);
}

/** The pod template (or Pod) as the Pod object a controller would create from it. */
function asPod(template: Record<string, unknown>, namespace: unknown): Record<string, unknown> {
  const metadata = isRecord(template.metadata) ? structuredClone(template.metadata) : {};
  if (typeof namespace === 'string' && metadata.namespace === undefined) metadata.namespace = namespace;
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: structuredClone(template.spec) };
}

describe('golden inject inputs through reviewAdmission in-process (the webhook path)', () => {
  for (const name of INPUTS) {
    it(`admits the pods of ${name} as ${name}.injected shows them`, () => {
      const entry = entryOf(name);
      const inputs = parseManifests(read(INJECT, name), name);
      const injected = read(INJECT, `${name}.injected`);
      const outputs = injected === '' ? undefined : parseManifests(injected, `${name}.injected`);
      const stderr = readdirSync(INJECT).includes(`${name}.stderr`) ? read(INJECT, `${name}.stderr`) : '';
      let denied = 0;
      inputs.forEach((doc, index) => {
        if (doc === null || doc === undefined) return;
        const warnings: string[] = [];
        const errors: string[] = [];
        const outPods = outputs === undefined ? undefined : findPods(outputs[index]);
        const namespace = isRecord(doc) && isRecord(doc.metadata) ? doc.metadata.namespace : undefined;
        // A pod of the wrong shape: the webhook answers 400 (the CLI exits 3 and writes nothing).
        const invalid = findPodSlots(doc).filter(({ value }) => podErrors(value).length > 0);
        for (const { value, prefix } of invalid) {
          const result = reviewAdmission(admissionReviewFor(asPod(isRecord(value) ? value : {}, namespace)), entry, defaultConfig);
          denied += 1;
          if (result.kind === 'bad-request') {
            // Not even a Pod with containers: the webhook's answer is generic, the CLI names the field.
            expect(result.message, `${name} ${prefix}`).toMatch(/must be a Pod with spec.containers/);
            errors.push(podErrors(value).join('; '));
          } else {
            expect(result.review.response.allowed, `${name} ${prefix}`).toBe(false);
            expect(result.review.response.status?.code, `${name} ${prefix}`).toBe(400);
            errors.push(result.review.response.status?.message ?? '');
          }
        }
        if (invalid.length > 0) {
          expect(errors.join('; '), `${name} document ${index + 1}: errors`).toBe(linesOf(stderr, 'error', name, index + 1).join('; '));
          return; // the CLI plans no pod of a document it cannot read
        }
        findPods(doc).forEach(({ pod, prefix }, i) => {
          const sent = asPod(pod, namespace);
          const result = reviewAdmission(admissionReviewFor(sent), entry, defaultConfig);
          if (result.kind !== 'response') throw new Error(`${name} ${prefix}: ${result.message}`);
          const response = result.review.response;
          warnings.push(...(response.warnings ?? []));
          if (!response.allowed) {
            denied += 1;
            errors.push(response.status?.message ?? '');
            return;
          }
          if (outPods === undefined) return; // another pod of this input is denied, so the CLI wrote nothing
          const ops = response.patch === undefined ? [] : JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'));
          const admitted = jsonpatch.applyPatch(sent, ops, true, false).newDocument;
          const expected = outPods[i];
          expect(expected?.prefix, `${name} document ${index + 1}`).toBe(prefix);
          expect(admitted, `${name} document ${index + 1} ${prefix}`).toEqual(asPod(expected?.pod ?? {}, namespace));
          // Reinvocation (reinvocationPolicy: IfNeeded) sends the injected pod again: it gets nothing twice.
          const again = reviewAdmission(admissionReviewFor(admitted), entry, defaultConfig);
          expect(again.kind === 'response' && again.review.response.patch, `${name} document ${index + 1} ${prefix}: second pass`).toBeUndefined();
        });
        expect(warnings, `${name} document ${index + 1}: warnings`).toEqual(linesOf(stderr, 'warning', name, index + 1));
        // The webhook answers one pod with all its errors joined; the CLI prints one line each.
        expect(errors.join('; '), `${name} document ${index + 1}: errors`).toBe(linesOf(stderr, 'error', name, index + 1).join('; '));
      });
      expect(denied > 0, `${name}: the CLI wrote ${injected === '' ? 'nothing' : 'output'}`).toBe(injected === '');
    });
  }
});

describe('golden files have no orphans', () => {
  it('pairs every inject input with its .injected output, and every output or .stderr with its input', () => {
    const files = readdirSync(INJECT).filter((name) => !name.startsWith('.'));
    const orphans = files.filter((name) => {
      if (name.endsWith('.yaml')) return !files.includes(`${name}.injected`);
      const input = /^(.+\.yaml)\.(?:injected|stderr)$/.exec(name)?.[1];
      return input === undefined || !files.includes(input);
    });
    expect(orphans).toEqual([]);
  });

  it('pairs every audit input with its four renderings, and every rendering with its input', () => {
    const files = readdirSync(AUDIT).filter((name) => !name.startsWith('.'));
    const RENDERINGS = ['table', 'json', 'policyreport.yaml', 'openreports.yaml'];
    const inputs = files.filter((name) => name !== 'config.yaml' && /^[^.]+\.yaml$/.test(name)).map((name) => name.slice(0, -'.yaml'.length));
    const expected = new Set(['config.yaml', ...inputs.flatMap((set) => [`${set}.yaml`, ...RENDERINGS.map((ext) => `${set}.${ext}`)])]);
    expect(files.filter((name) => !expected.has(name)), 'renderings without an input').toEqual([]);
    expect([...expected].filter((name) => !files.includes(name)), 'inputs without a rendering').toEqual([]);
  });

  it('has a test case in cli/explain.test.ts for every explain golden file', () => {
    const cases = readFileSync(new URL('../../cli/explain.test.ts', import.meta.url), 'utf8');
    expect(readdirSync(EXPLAIN).filter((name) => !cases.includes(`'${name}'`))).toEqual([]);
  });
});
