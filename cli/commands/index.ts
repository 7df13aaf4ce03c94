import type { CommandModule } from 'yargs';
import { configCommand } from './config.ts';
import { floodCommand } from './flood.ts';
import { probeCommand } from './probe.ts';
import { reportCommand } from './report.ts';
import { runScenarioCommand } from './run.ts';
import { serveCommand } from './serve.ts';
import { stormCommand } from './storm.ts';

/**
 * Every `wsguard <command>`, in the order --help lists them. Each command lives in its own file
 * under cli/commands/ and is added here with one line.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  serveCommand,
  floodCommand,
  stormCommand,
  runScenarioCommand,
  probeCommand,
  reportCommand,
  configCommand,
];
