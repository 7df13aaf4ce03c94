import type { CommandModule } from 'yargs';
import { floodCommand } from './flood.ts';
import { probeCommand } from './probe.ts';
import { stormCommand } from './storm.ts';
import { reportCommand } from './report.ts';

/**
 * Every `wsguard <command>`, in the order --help lists them. Each command lives in its own file
 * under cli/commands/ and is added here with one line.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  floodCommand,
  stormCommand,
  probeCommand,
  reportCommand,
];
