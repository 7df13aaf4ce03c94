import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.ts';
import { EXIT_USAGE } from './exit-codes.ts';


const cli = yargs(hideBin(process.argv))
  .scriptName('wsguard')
  .command(commands)
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
