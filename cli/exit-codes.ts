/** Exit codes shared by every command (issue 4): CI scripts branch on them. */
export const EXIT_OK = 0;
export const EXIT_THRESHOLD_FAILED = 1;
export const EXIT_INVALID_RUN = 2;
export const EXIT_USAGE = 3;
