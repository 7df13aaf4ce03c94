import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium package (.ci/run installs it); playwright-core drives it, nothing is downloaded. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Flags for a quiet headless Chromium in a root container: no sandbox (root), no GPU, and none of
 * the background traffic (component updates, sync, QUIC probes) a test must not wait on.
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_FLAGS] });
}
