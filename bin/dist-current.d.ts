/** Absolute path of the repository root, with a trailing slash. */
export const root: string;
/** Why dist/ cannot be used, or null when it is current. */
export function staleReason(): string | null;
