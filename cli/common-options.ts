import type { Argv } from 'yargs';
import { CliError } from './cli-error.ts';
import { isIP } from 'node:net';
import { DEFAULT_TOKEN_QUERY_PARAM, readKeyFile, type AuthOptions } from './engine/auth.ts';
import { autoSourceIps } from './engine/source-ips.ts';

/** Options shared by flood, storm and probe: auth and handshake. */
export function withAuthOptions<T>(y: Argv<T>) {
  return y
    .option('header', { type: 'string', array: true, description: "Extra upgrade header 'Name: value' (repeatable)", group: 'Auth:' })
    .option('origin', { type: 'string', description: 'Origin header', group: 'Auth:' })
    .option('token', { type: 'string', description: 'Static token (see --token-in)', group: 'Auth:' })
    .option('token-in', {
      choices: ['header', 'query', 'subprotocol'] as const,
      default: 'header' as const,
      description: 'Where the token goes',
      group: 'Auth:',
    })
    .option('token-param', {
      type: 'string',
      default: DEFAULT_TOKEN_QUERY_PARAM,
      description: "Query parameter for --token-in query (wsguard serve reads auth.queryParam, default 'access_token')",
      group: 'Auth:',
    })
    .option('token-subprotocol-prefix', {
      type: 'string',
      default: 'bearer.',
      description: 'Subprotocol entry prefix for --token-in subprotocol',
      group: 'Auth:',
    })
    .option('subprotocol', { type: 'string', array: true, description: 'Application subprotocol to offer (repeatable)', group: 'Auth:' })
    .option('jwt-alg', {
      choices: ['HS256', 'RS256', 'ES256'] as const,
      description: 'Mint a JWT per virtual user with this algorithm',
      group: 'Auth:',
    })
    .option('jwt-secret', { type: 'string', description: 'HS256 secret', group: 'Auth:' })
    .option('jwt-key-file', { type: 'string', description: 'RS256/ES256 private key (PKCS#8 PEM)', group: 'Auth:' })
    .option('jwt-claims', { type: 'string', description: 'Claims JSON template; {{i}} is the user index', group: 'Auth:' })
    .option('jwt-exp', { type: 'number', default: 300, description: 'Token lifetime in seconds', group: 'Auth:' })
    .option('jwt-kid', { type: 'string', description: 'kid header', group: 'Auth:' })
    .option('insecure', {
      type: 'boolean',
      default: false,
      description: 'Accept any TLS certificate (self-signed test setups)',
      group: 'Auth:',
    });
}

export interface AuthArgs {
  header?: string[];
  token?: string;
  tokenIn: 'header' | 'query' | 'subprotocol';
  tokenParam: string;
  tokenSubprotocolPrefix: string;
  subprotocol?: string[];
  jwtAlg?: 'HS256' | 'RS256' | 'ES256';
  jwtSecret?: string;
  jwtKeyFile?: string;
  jwtClaims?: string;
  jwtExp: number;
  jwtKid?: string;
  origin?: string;
  insecure: boolean;
}

export function parseHeaders(list: string[] | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of list ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) throw new CliError('usage', `--header '${h}': expected 'Name: value'`);
    headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  return headers;
}

export function authFromArgs(a: AuthArgs): AuthOptions {
  return {
    headers: parseHeaders(a.header),
    token: a.token,
    tokenIn: a.tokenIn,
    queryParam: a.tokenParam,
    subprotocolPrefix: a.tokenSubprotocolPrefix,
    subprotocols: a.subprotocol,
    jwt: a.jwtAlg
      ? {
          alg: a.jwtAlg,
          secret: a.jwtSecret,
          privateKeyPem: a.jwtKeyFile ? readKeyFile(a.jwtKeyFile) : undefined,
          claimsTemplate: a.jwtClaims,
          expSec: a.jwtExp,
          kid: a.jwtKid,
        }
      : undefined,
  };
}

/**
 * `--source-ip`, the same for every command: `auto` (loopback targets: enough 127.0.0.x addresses
 * for the peak), `127.0.0.2-127.0.0.9` ranges, or single addresses; repeatable. Anything that is
 * not an address is a usage error here, not a run in which every attempt fails to bind.
 */
export function sourceIpsFromArgs(list: string[] | undefined, url: string, peakConnections: number): string[] | undefined {
  if (!list || list.length === 0) return undefined;
  if (list.includes('auto')) {
    if (list.length > 1) throw new CliError('usage', '--source-ip auto cannot be combined with addresses');
    return autoSourceIps(url, peakConnections);
  }
  const out: string[] = [];
  for (const item of list) {
    const m = /^(\d+\.\d+\.\d+\.)(\d+)-(?:\d+\.\d+\.\d+\.)?(\d+)$/.exec(item);
    if (!m) {
      if (isIP(item) === 0)
        throw new CliError('usage', `--source-ip ${item}: expected an IP address, a range like 127.0.0.2-127.0.0.20, or auto`);
      out.push(item);
      continue;
    }
    const from = Number(m[2]);
    const to = Number(m[3]);
    if (to < from || to > 255 || isIP(`${m[1]}${from}`) === 0) throw new CliError('usage', `--source-ip ${item}: bad range`);
    for (let i = from; i <= to; i++) out.push(`${m[1]}${i}`);
  }
  return out;
}

/** Durations accept `30`, `30s`, `2m`, `500ms`; returns seconds. */
export function parseDurationSec(v: string | number, option: string): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new CliError('usage', `--${option} ${v}: expected a duration like 30s, 2m, 500ms`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n;
}

/** `--shard i/n` (1-based). */
export function parseShard(v: string | undefined): { index: number; count: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count) throw new CliError('usage', `--shard ${v}: expected i/n with 1 <= i <= n`);
  return { index, count };
}
