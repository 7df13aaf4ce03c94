import { isCliError } from './cli-error.ts';
import { EXIT_INVALID_RUN } from './exit-codes.ts';

/**
 * Wraps a command handler so every typed failure becomes its documented exit code and a one-line
 * explanation, instead of a stack trace and Node's exit code 1 (which means "threshold failed").
 * Uses process.exitCode rather than process.exit so sockets and files finish closing.
 */
export function runCommand<A>(fn: (args: A) => Promise<number>): (args: A) => Promise<void> {
  return async (args) => {
    try {
      process.exitCode = await fn(args);
    } catch (err) {
      if (isCliError(err)) {
        process.stderr.write(`wsguard: ${err.message}\n`);
        process.exitCode = err.exitCode;
        return;
      }
      // An unexpected crash is not a verdict on the target: the run is invalid.
      process.stderr.write(`wsguard: internal error: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = EXIT_INVALID_RUN;
    }
    // ws leaves a handshake-timeout timer armed after a refused connection (up to
    // --handshake-timeout); once the result is out, nothing is left to wait for.
    setTimeout(() => process.exit(), 500).unref();
  };
}
