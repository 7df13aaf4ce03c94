import { EXIT_INVALID_RUN, EXIT_USAGE, type ExitCode } from './exit-codes.ts';

/** Stable codes for every way a toolkit command can refuse or abort; tests assert on `code`. */
export type CliErrorCode = 'usage' | 'config' | 'unknown_metric' | 'cap_exceeded' | 'preflight' | 'invalid_run';

const EXIT_FOR: Readonly<Record<CliErrorCode, ExitCode>> = Object.freeze({
  usage: EXIT_USAGE,
  config: EXIT_USAGE,
  unknown_metric: EXIT_USAGE,
  cap_exceeded: EXIT_USAGE,
  preflight: EXIT_INVALID_RUN,
  invalid_run: EXIT_INVALID_RUN,
});

export class CliError extends Error {
  readonly code: CliErrorCode;

  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.code = code;
  }

  get exitCode(): ExitCode {
    return EXIT_FOR[this.code];
  }
}

export function isCliError(err: unknown): err is CliError {
  return err instanceof CliError;
}
