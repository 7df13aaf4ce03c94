import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ROOT } from '../../ops/generate.ts';
import { ruleTests } from '../../ops/rule-tests.ts';
import { PRODUCTION, ruleGroups } from '../../ops/rules.ts';

// promtool comes from Debian's prometheus package; .ci/run installs it.

const tmp = mkdtempSync(join(tmpdir(), 'wsguard-promtool-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function promtool(args: string[], cwd = ROOT): { status: number | null; out: string } {
  // A bound for a hang: `promtool test rules` was cut off at 60 s in a run on a heavily loaded 2-core machine.
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 150_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('alert rules under promtool (Debian package prometheus; .ci/run installs it)', () => {
  it('promtool check rules passes for the rule file and for the PrometheusRule spec', () => {
    const file = promtool(['check', 'rules', 'alerts/wsguard.rules.yml']);
    expect(file.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(file.status, file.out).toBe(0);
    const spec = (parse(readFileSync(join(ROOT, 'alerts/wsguard.prometheusrule.yaml'), 'utf8')) as { spec: unknown }).spec;
    writeFileSync(join(tmp, 'operator.yml'), stringify(spec));
    const op = promtool(['check', 'rules', join(tmp, 'operator.yml')]);
    expect(op.status, op.out).toBe(0);
  });

  it('promtool test rules: every alert fires in its firing cases and stays quiet under threshold and for a blip', () => {
    const r = promtool(['test', 'rules', 'alerts/tests/wsguard.test.yml']);
    expect(r.out).toContain('SUCCESS');
    expect(r.status, r.out).toBe(0);
  }, 180_000);

  it('the blip cases are real: with for: 0s each of them would fire', () => {
    // Without this, a blip evaluated after it has passed would "not fire" for the wrong reason.
    writeFileSync(join(tmp, 'rules-for0.yml'), stringify(ruleGroups({ ...PRODUCTION, for: () => '0s' })));
    const tests = ruleTests({ blipsOnly: true, rulesFile: 'rules-for0.yml' }) as { tests: Array<{ name: string }> };
    writeFileSync(join(tmp, 'blips.test.yml'), stringify(tests));
    const r = promtool(['test', 'rules', 'blips.test.yml'], tmp);
    expect(r.status).not.toBe(0);
    const failed = [...r.out.matchAll(/^\s+name: (.+),$/gm)].map((m) => m[1]);
    expect(failed.sort()).toEqual(tests.tests.map((t) => t.name).sort());
  }, 180_000);
});
