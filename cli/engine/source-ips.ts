import { CliError } from '../cli-error.ts';
import { readHostLimits } from './preflight.ts';

/**
 * Source addresses for `--source-ip auto`. Every (source ip, destination) pair has one ephemeral
 * port range, so one source address caps a run at about 28k connections (the default range);
 * Linux answers for the whole 127.0.0.0/8, so loopback runs can spread over 127.0.0.x.
 */
export function autoSourceIps(url: string, peakConnections: number): string[] | undefined {
  const host = new URL(url).hostname;
  if (!host.startsWith('127.')) {
    if (host === 'localhost' || host === '[::1]')
      throw new CliError('usage', '--source-ip auto needs a 127.x.x.x target (use 127.0.0.1 instead of localhost/::1)');
    throw new CliError('usage', '--source-ip auto only spreads loopback targets; name addresses you own with --source-ip');
  }
  const perSource = Math.floor((readHostLimits().portRange?.size ?? 28_232) * 0.8);
  const n = Math.max(1, Math.ceil(peakConnections / perSource));
  if (n > 254) throw new CliError('usage', `--source-ip auto: ${peakConnections} connections need more than 254 loopback addresses`);
  return Array.from({ length: n }, (_, i) => `127.0.0.${i + 1}`);
}
