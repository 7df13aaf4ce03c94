import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.ts';
import { isCliError } from './cli-error.ts';
import { EXIT_USAGE } from './exit-codes.ts';
import { checkNumericOptions } from './numeric-options.ts';

const cli = yargs(hideBin(process.argv))
  .scriptName('wsguard')
  .command(commands)
  // Every numeric flag of every command, checked in one place before any handler runs.
  // yargs does not hand middleware errors to .fail(), so the usage exit happens here.
  .middleware((argv) => {
    try {
      checkNumericOptions(argv as Record<string, unknown>);
    } catch (err) {
      if (!isCliError(err)) throw err;
      process.stderr.write(`wsguard: ${err.message}\n`);
      process.exit(err.exitCode);
    }
  })
  .demandCommand(1, 'Name a command: wsguard <command> --help')
  .strict()
  .recommendCommands()
  .help()
  .alias('h', 'help')
  .version(false)
  .wrap(Math.min(110, process.stdout.columns || 110))
  .fail((msg, err) => {
    if (err) throw err;
    process.stderr.write(`wsguard: ${msg}\nRun 'wsguard --help' for usage.\n`);
    process.exit(EXIT_USAGE);
  });

await cli.parseAsync();
