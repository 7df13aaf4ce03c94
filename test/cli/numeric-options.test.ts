import yargs, { type Argv } from 'yargs';
import { describe, expect, it } from 'vitest';
import { commands } from '../../cli/commands/index.ts';
import { checkNumericOptions, NUMBER_RULES } from '../../cli/numeric-options.ts';
import { runCli } from './helpers/spawn-cli.ts';

describe('numeric options', () => {
  it('every numeric option of every command has a rule, and every default obeys it', () => {
    const missing: string[] = [];
    for (const c of commands) {
      const y = yargs([]);
      (c.builder as (y: Argv) => Argv)(y);
      const opts = (y as unknown as { getOptions(): unknown }).getOptions() as {
        number: string[];
        default: Record<string, unknown>;
        alias: Record<string, string[]>;
      };
      // argv carries an alias's value under the full name too, so the full name's rule covers it.
      const aliases = new Set(Object.values(opts.alias).flat());
      for (const name of opts.number.filter((n) => !aliases.has(n))) {
        if (!(name in NUMBER_RULES)) missing.push(`${String(c.command)}: --${name}`);
        const d = opts.default[name];
        if (d !== undefined) expect(() => checkNumericOptions({ [name]: d }), `default of --${name}`).not.toThrow();
      }
    }
    expect(missing).toEqual([]);
  });

  it.each([
    [['flood', 'ws://127.0.0.1:1/', '-c', 'five'], '--connections not a number'],
    [['flood', 'ws://127.0.0.1:1/', '-c', '-5'], '--connections -5'],
    [['flood', 'ws://127.0.0.1:1/', '-c', '0'], '--connections 0'],
    [['flood', 'ws://127.0.0.1:1/', '-c', '2', '-r', '-1'], '--rate -1'],
    [['storm', 'ws://127.0.0.1:1/', '-c', '0'], '--connections 0'],
    [['storm', 'ws://127.0.0.1:1/', '--drop-percent', '150'], '--drop-percent 150'],
    [['probe', 'ws://127.0.0.1:1/', '--conn-limit', 'x'], '--conn-limit not a number'],
  ])('%j is a usage error (exit 3) naming the option', async (args, message) => {
    const r = await runCli(args);
    expect(r.stderr).toContain(message);
    expect(r.code).toBe(3);
  });
});
