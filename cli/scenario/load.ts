import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CliError } from '../cli-error.ts';
import { parseThreshold, type Threshold } from '../engine/thresholds.ts';
import { readDataFile, type DataRow } from './data.ts';
import { formatProblems, locate, parseYamlFile, schemaProblems, type Problem, type Scenario, type StepSpec } from './schema.ts';
import { BUILTIN_VARS, jsonStrings, templateVars } from './template.ts';

export interface LoadedScenario {
  file: string;
  scenario: Scenario;
  data: DataRow[];
  thresholds: Threshold[];
  /** Named checks, in the order they appear. */
  checkNames: string[];
}

type Path = (string | number)[];

/**
 * Reads and validates a scenario file: YAML syntax, the schema, then what a schema cannot see
 * (the data file, thresholds, variables used before they exist, thresholds on checks no step
 * names). Every problem found is reported in one usage error (exit 3), each with its line.
 */
export function loadScenario(file: string): LoadedScenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError('config', `scenario ${file}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = parseYamlFile(text, file);
  const { scenario, problems } = schemaProblems(parsed, parsed.doc.toJS());
  if (!scenario) throw new CliError('config', formatProblems(file, problems));
  const more: Problem[] = [];
  const problem = (path: Path, message: string): void => {
    more.push({ path, message, ...locate(parsed, path) });
  };
  let data: DataRow[] = [];
  if (scenario.data !== undefined) {
    try {
      data = readDataFile(resolve(dirname(file), scenario.data));
    } catch (err) {
      problem(['data'], `${scenario.data}: ${(err as Error).message}`);
    }
  }
  const thresholds: Threshold[] = [];
  (scenario.thresholds ?? []).forEach((expr, i) => {
    try {
      thresholds.push(parseThreshold(expr));
    } catch (err) {
      problem(['thresholds', i], (err as Error).message.replace(/^--threshold /, ''));
    }
  });
  const checkNames: string[] = [];
  const known = new Set([...Object.keys(BUILTIN_VARS), ...Object.keys(data[0] ?? {})]);
  checkSteps(scenario.steps, ['steps'], known, checkNames, problem);
  thresholds.forEach((t, i) => {
    const m = /^checks\.(.+)$/.exec(t.metric);
    if (m && !checkNames.includes(m[1]!))
      problem(['thresholds', i], `no step names the check '${m[1]}' (named: ${checkNames.join(', ') || 'none'})`);
  });
  if (more.length > 0) throw new CliError('config', formatProblems(file, more));
  return { file, scenario, data, thresholds, checkNames };
}

/** Walks the steps in order, as a user runs them: a variable exists once a capture above it made it. */
function checkSteps(steps: StepSpec[], at: Path, vars: Set<string>, checks: string[], problem: (p: Path, m: string) => void): void {
  steps.forEach((s, i) => {
    const here: Path = [...at, i];
    const use = (path: Path, texts: (string | undefined)[]): void => {
      for (const t of texts) {
        if (t === undefined) continue;
        for (const v of templateVars(t))
          if (!vars.has(v)) problem([...here, ...path], `unknown variable \${${v}} (known here: ${[...vars].join(', ')})`);
      }
    };
    if (s.connect) {
      const c = s.connect;
      use(['connect'], [c.url, c.path, c.token, ...Object.values(c.headers ?? {}), ...jsonStrings(c.jwt?.claims)]);
    }
    if (s.send) use(['send'], [s.send.text, ...jsonStrings(s.send.json)]);
    if (s.expect) {
      use(['expect'], [s.expect.regex, ...jsonStrings(s.expect.json)]);
      for (const k of Object.keys(s.expect.capture ?? {})) vars.add(k);
    }
    const check = s.expect?.check ?? s.ping?.check;
    if (check !== undefined && !checks.includes(check)) checks.push(check);
    if (s.loop) checkSteps(s.loop.steps, [...here, 'loop', 'steps'], vars, checks, problem);
  });
}
