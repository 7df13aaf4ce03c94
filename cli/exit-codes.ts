/**
 * Process exit codes shared by every toolkit command, so that CI can tell a failed threshold from a
 * run whose numbers cannot be trusted and from a mistyped flag. Kept apart from cli/main.ts so that
 * commands and the engine can import it without pulling in the yargs entry point.
 */
export const EXIT_PASSED = 0;
/** A threshold or a probe check failed: the target misbehaved. */
export const EXIT_THRESHOLD_FAILED = 1;
/** The run itself is not trustworthy (load generator saturated, pre-flight failed, kill switch). */
export const EXIT_INVALID_RUN = 2;
/** Bad flags, bad config file, unknown metric name. */
export const EXIT_USAGE = 3;

export type ExitCode = typeof EXIT_PASSED | typeof EXIT_THRESHOLD_FAILED | typeof EXIT_INVALID_RUN | typeof EXIT_USAGE;
