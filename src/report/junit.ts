// JUnit XML: one testsuite per check, one testcase per flow (DESIGN §5), for CI dashboards.
import type { FlowResult, Report } from '../types.js';
import { checksOf } from './common.js';

/** Characters XML 1.0 cannot carry at all (control characters, lone surrogates, U+FFFE/FFFF). */
// eslint-disable-next-line no-control-regex
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function xmlEscape(s: string): string {
  return s
    .replace(INVALID_XML, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\r/g, '&#13;')
    .replace(/\n/g, '&#10;')
    .replace(/\t/g, '&#9;');
}

const seconds = (ms: number | null): string => (typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? (ms / 1000).toFixed(6) : '0');

export function renderJunit(report: Report): string {
  const byCheck = new Map<string, FlowResult[]>();
  for (const r of report.results) {
    const list = byCheck.get(r.check);
    if (list) list.push(r);
    else byCheck.set(r.check, [r]);
  }
  const suites: string[] = [];
  let tests = 0;
  let failures = 0;
  let errors = 0;
  let skipped = 0;
  let time = 0;
  for (const check of checksOf(report)) {
    const list = byCheck.get(check);
    if (!list) continue;
    let f = 0;
    let e = 0;
    let s = 0;
    let t = 0;
    const cases: string[] = [];
    for (const r of list) {
      t += typeof r.rttMs === 'number' && Number.isFinite(r.rttMs) && r.rttMs > 0 ? r.rttMs / 1000 : 0;
      const open = `    <testcase classname="${xmlEscape(r.check)}" name="${xmlEscape(`${r.from} -> ${r.to}`)}" time="${seconds(r.rttMs)}"`;
      const cause = r.cause ?? (r.verdict === 'fail' ? 'fail' : 'unknown');
      const message = xmlEscape(r.detail ? `${cause}: ${r.detail}` : cause);
      const body = [
        r.rejectedBy ? `rejected by ${r.rejectedBy}` : '',
        r.observedSource ? `observed source ${r.observedSource}` : '',
        `attempts ${r.attempts}`,
        r.change ? `change ${r.change}` : '',
      ].filter(Boolean).join('\n');
      if (r.verdict === 'pass') {
        cases.push(`${open}/>`);
      } else if (r.verdict === 'fail') {
        f++;
        cases.push(`${open}>\n      <failure message="${message}" type="${xmlEscape(cause)}">${xmlEscape(body)}</failure>\n    </testcase>`);
      } else if (r.cause === 'not-probed') {
        s++;
        cases.push(`${open}>\n      <skipped message="${message}"/>\n    </testcase>`);
      } else {
        e++;
        cases.push(`${open}>\n      <error message="${message}" type="${xmlEscape(cause)}">${xmlEscape(body)}</error>\n    </testcase>`);
      }
    }
    tests += list.length;
    failures += f;
    errors += e;
    skipped += s;
    time += t;
    suites.push(
      `  <testsuite name="${xmlEscape(`calico-nettest ${check}`)}" tests="${list.length}" failures="${f}" errors="${e}" skipped="${s}" time="${t.toFixed(6)}" timestamp="${xmlEscape(report.startedAt)}">\n` +
        `${cases.join('\n')}${cases.length ? '\n' : ''}  </testsuite>`,
    );
  }
  const started = Date.parse(report.startedAt);
  const finished = Date.parse(report.finishedAt);
  const wall = Number.isFinite(started) && Number.isFinite(finished) && finished >= started ? (finished - started) / 1000 : time;
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites name="calico-nettest" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${wall.toFixed(3)}">\n` +
    `${suites.join('\n')}${suites.length ? '\n' : ''}</testsuites>\n`
  );
}
