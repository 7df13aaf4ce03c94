import type { CommandModule } from 'yargs';
import { renderConfigDocs } from '../../src/config/docs.ts';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { configWarnings } from '../../src/config/warnings.ts';
import { EXIT_USAGE } from '../exit-codes.ts';

export const configCommand: CommandModule = {
  command: 'config <action> [file]',
  describe: 'Configuration tools: check a file (every problem at once, each naming the option), or print the defaults',
  builder: (y) =>
    y
      .positional('action', { choices: ['check', 'defaults', 'docs'] as const, describe: 'check FILE | defaults | docs' })
      .positional('file', { type: 'string', describe: 'YAML or JSON config file' })
      .example('$0 config check wsguard.yaml', 'Validate a file; exit 3 and name each bad option if it is wrong')
      .example('$0 config defaults', 'Print the full configuration with every default')
      .example('$0 config docs', 'Print the Markdown reference of every option (docs/configuration.md)'),
  handler: (args) => {
    const action = args['action'] as string;
    const file = args['file'] as string | undefined;
    try {
      if (action === 'docs') {
        process.stdout.write(renderConfigDocs());
        return;
      }
      if (action === 'defaults') {
        process.stdout.write(`${JSON.stringify(loadConfig({}), null, 2)}\n`);
        return;
      }
      if (!file) throw new ConfigError(['config check needs a FILE'], 'arguments');
      // The same merged configuration `serve` would run: the file, then WSGUARD_* variables.
      const warnings = configWarnings(loadConfig({ file, env: process.env }));
      for (const w of warnings) process.stdout.write(`warning: ${w}\n`);
      process.stdout.write(`${file}: ok${warnings.length ? ` (${warnings.length} warning${warnings.length > 1 ? 's' : ''})` : ''}\n`);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`${err.message}\n`);
      process.exitCode = EXIT_USAGE;
    }
  },
};
