// The pure admission function alone, in this process, against the "straightforward
// implementation" the design notes name: mutate a deep copy of the pod, then diff it against the
// original with fast-json-patch's compare(). Both run in the same process and the same rounds,
// alternately, so the ratio shows what building the patch operations directly buys.
import { deepStrictEqual } from 'node:assert/strict';
import jsonpatch from 'fast-json-patch';
import { admissionReviewFor, loadPod } from './fixtures.js';
import { median } from './stats.js';

/**
 * @param {{ distDir: URL, warmupMs: number, roundMs: number, rounds: number }} options
 */
export async function mutationBench({ distDir, warmupMs, roundMs, rounds }) {
  const { reviewAdmission } = await import(new URL('lib/admission.js', distDir).href);
  const { defaultConfig } = await import(new URL('lib/config.js', distDir).href);
  const { DEFAULT_ENTRY } = await import(new URL('lib/entry.js', distDir).href);

  const review = admissionReviewFor(loadPod('sonarr'));
  const pod = review.request.object;
  const shipped = reviewAdmission(review, DEFAULT_ENTRY, defaultConfig);
  const patchB64 = shipped.review?.response?.patch;
  if (shipped.kind !== 'response' || typeof patchB64 !== 'string') {
    throw new Error(`reviewAdmission did not inject the Sonarr fixture: ${JSON.stringify(shipped).slice(0, 300)}`);
  }
  // The mutation the planner decided on. The baseline applies it to its copy in place, which is
  // what a hand-written "push the volume, push the mounts, set the annotation" mutator does.
  const planned = JSON.parse(Buffer.from(patchB64, 'base64').toString('utf8'));
  const plannedText = JSON.stringify(planned);

  const jsonClone = (value) => JSON.parse(JSON.stringify(value));
  /** reviewAdmission's answer, but with the patch produced by clone + mutate + compare(). */
  const cloneAndDiff = (clone) => () => {
    const result = reviewAdmission(review, DEFAULT_ENTRY, defaultConfig);
    const copy = clone(pod);
    jsonpatch.applyPatch(copy, planned, false, true);
    const diff = jsonpatch.compare(pod, copy);
    result.review.response.patch = Buffer.from(JSON.stringify(diff)).toString('base64');
    return result;
  };

  const variants = [
    { name: 'reviewAdmission (direct ops, as shipped)', fn: () => reviewAdmission(review, DEFAULT_ENTRY, defaultConfig) },
    { name: 'clone-and-diff: structuredClone + compare()', fn: cloneAndDiff(structuredClone) },
    { name: 'clone-and-diff: JSON.parse(JSON.stringify()) + compare()', fn: cloneAndDiff(jsonClone) },
  ];

  // Every variant must produce a patch that turns the pod into the same injected pod.
  const expected = jsonpatch.applyPatch(structuredClone(pod), planned, true, false).newDocument;
  for (const { name, fn } of variants) {
    const ops = JSON.parse(Buffer.from(fn().review.response.patch, 'base64').toString('utf8'));
    const got = jsonpatch.applyPatch(structuredClone(pod), ops, true, false).newDocument;
    try {
      deepStrictEqual(got, expected);
    } catch {
      throw new Error(`${name}: its patch does not produce the same pod as reviewAdmission's`);
    }
  }

  let sink = 0;
  /** Calls fn in batches until `ms` have passed (and at most 10 million times); returns ops/s. */
  const measure = (fn, ms) => {
    const batch = 200;
    const t0 = performance.now();
    let n = 0;
    let elapsed = 0;
    while (elapsed < ms && n < 10_000_000) {
      for (let i = 0; i < batch; i++) sink += fn().kind.length;
      n += batch;
      elapsed = performance.now() - t0;
    }
    return (n / elapsed) * 1000;
  };

  for (const v of variants) measure(v.fn, warmupMs);
  const samples = variants.map(() => []);
  for (let r = 0; r < rounds; r++) {
    // Alternate the order so that neither variant always runs right after the other's garbage.
    const order = r % 2 === 0 ? variants.map((_, i) => i) : variants.map((_, i) => variants.length - 1 - i);
    for (const i of order) samples[i].push(measure(variants[i].fn, roundMs));
  }
  if (sink === 0 || JSON.stringify(planned) !== plannedText) throw new Error('the baseline changed its planned operations while running');

  const direct = median(samples[0]);
  return {
    fixture: 'test/fixtures/pods/sonarr.json',
    rounds,
    roundMs,
    warmupMs,
    patchOps: planned.length,
    variants: variants.map((v, i) => {
      const opsPerSec = median(samples[i]);
      return { name: v.name, opsPerSec, usPerOp: 1e6 / opsPerSec, rounds: samples[i], directSpeedup: direct / opsPerSec };
    }),
  };
}
