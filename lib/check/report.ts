// The report of `check`: one line per step, then what to fix first.
import type { CheckReport, StepResult } from './types.js';

const MARK = { pass: '✓', fail: '✗', skip: '-' } as const;

export function failed(report: CheckReport): StepResult[] {
  return report.results.filter((r) => r.status === 'fail');
}

export function formatText(report: CheckReport): string {
  const lines = report.results.map((r) => {
    const head = `${MARK[r.status]} ${r.step}${r.subject === '' ? '' : ` ${r.subject}`}: ${r.reason}`;
    const tail = [r.fix === undefined || r.status === 'pass' ? undefined : `    fix: ${r.fix}`, r.troubleshooting === undefined ? undefined : `    see: ${r.troubleshooting}`];
    return [head, ...tail.filter((t): t is string => t !== undefined)].join('\n');
  });
  const failures = failed(report);
  const skipped = report.results.filter((r) => r.status === 'skip').length;
  lines.push('');
  if (failures.length === 0) {
    lines.push(`All ${report.results.length - skipped} checks passed${skipped > 0 ? `, ${skipped} skipped` : ''}.`);
  } else {
    // The steps are in data-path order: a later step often fails because of an earlier one.
    const first = failures[0] as StepResult;
    lines.push(`${failures.length} of ${report.results.length} checks failed${skipped > 0 ? `, ${skipped} skipped` : ''}. Fix first: ${first.step}${first.subject === '' ? '' : ` ${first.subject}`}: ${first.fix ?? first.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

export function toJson(report: CheckReport, now: Date): object {
  const failures = failed(report);
  return {
    apiVersion: 'dfs-injector.io/v1alpha1',
    kind: 'CheckReport',
    checkedAt: now.toISOString(),
    summary: {
      passed: report.results.filter((r) => r.status === 'pass').length,
      failed: failures.length,
      skipped: report.results.filter((r) => r.status === 'skip').length,
      fixFirst: failures[0] ?? null,
    },
    results: report.results,
  };
}
