import { createHash } from 'node:crypto';
import type { UpstreamDialOptions } from '../upstream-types.ts';
import { takeRandom } from './random-pool.ts';

/** RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key before hashing into Sec-WebSocket-Accept. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** A response head larger than this is not a WebSocket upgrade we want to keep reading. */
export const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;
/** Request headers the handshake itself sets; a forwarded header of the same name is dropped. */
const RESERVED_HEADERS = new Set([
  'host',
  'upgrade',
  'connection',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

/** A fresh Sec-WebSocket-Key (§4.1: 16 random bytes, base64). */
export function newKey(): string {
  const [pool, at] = takeRandom(16);
  return pool.toString('base64', at, at + 16);
}

/** The upgrade request head (§4.1) for `url`, with the offered subprotocols and forwarded headers. */
export function requestHead(url: URL, key: string, options: Pick<UpstreamDialOptions, 'protocols' | 'headers'>): string {
  const path = `${url.pathname || '/'}${url.search}`;
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: ${url.host}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
  ];
  if (options.protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${options.protocols.join(', ')}`);
  for (const [name, value] of Object.entries(options.headers)) {
    // Header injection guard: a CR/LF in a forwarded value would split the request.
    if (RESERVED_HEADERS.has(name.toLowerCase()) || /[\r\n]/.test(name) || /[\r\n]/.test(value)) continue;
    lines.push(`${name}: ${value}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export interface ParsedHead {
  status: number;
  /** Lower-case names; repeated fields joined with ", ". */
  headers: Map<string, string>;
}

export function parseResponseHead(head: string): ParsedHead | null {
  const lines = head.split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!statusLine) return null;
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    // RFC 9110 §5.3: repeated fields are equivalent to one comma-joined field.
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
  }
  return { status: Number(statusLine[1]), headers };
}

function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  return value.split(',').some((part) => part.trim().toLowerCase() === token);
}

/** Checks the 101 response (RFC 6455 §4.1, client requirements 1–6); returns a failure message or the protocol. */
export function checkUpgrade(head: ParsedHead, key: string, offered: string[]): { error: string } | { protocol: string } {
  if (head.status !== 101) return { error: `upstream answered the handshake with HTTP ${head.status}` };
  if (head.headers.get('upgrade')?.toLowerCase() !== 'websocket') return { error: 'upstream 101 without Upgrade: websocket' };
  if (!hasToken(head.headers.get('connection'), 'upgrade')) return { error: 'upstream 101 without Connection: Upgrade' };
  const expected = createHash('sha1')
    .update(key + ACCEPT_GUID)
    .digest('base64');
  if (head.headers.get('sec-websocket-accept') !== expected) return { error: 'upstream sent a wrong Sec-WebSocket-Accept' };
  if (head.headers.has('sec-websocket-extensions')) return { error: 'upstream selected an extension that was not offered' };
  const protocol = head.headers.get('sec-websocket-protocol') ?? '';
  if (protocol !== '' && !offered.includes(protocol)) return { error: 'upstream selected a subprotocol that was not offered' };
  return { protocol };
}

/** The handshake's end: a failure message, or the selected subprotocol and the bytes after the head. */
export type HandshakeOutcome = { error: string } | { protocol: string; rest: Buffer | null };

/** Accumulates the response to one upgrade request until its head is complete, then checks it. */
export class HandshakeResponse {
  readonly #key: string;
  readonly #offered: string[];
  #bytes: Buffer | null = null;

  constructor(key: string, offered: string[]) {
    this.#key = key;
    this.#offered = offered;
  }

  /** Adds bytes (copied: the caller's buffer may be reused); null while the head is incomplete. */
  push(chunk: Buffer): HandshakeOutcome | null {
    const bytes = this.#bytes === null ? Buffer.from(chunk) : Buffer.concat([this.#bytes, chunk]);
    this.#bytes = bytes;
    const endOfHead = bytes.indexOf('\r\n\r\n');
    if (endOfHead < 0) {
      return bytes.length > MAX_RESPONSE_HEAD_BYTES ? { error: 'upstream handshake response too large' } : null;
    }
    this.#bytes = null;
    const parsed = parseResponseHead(bytes.toString('latin1', 0, endOfHead));
    if (parsed === null) return { error: 'upstream answered the handshake with something other than HTTP/1.1' };
    const verdict = checkUpgrade(parsed, this.#key, this.#offered);
    if ('error' in verdict) return verdict;
    return { protocol: verdict.protocol, rest: bytes.length > endOfHead + 4 ? bytes.subarray(endOfHead + 4) : null };
  }
}
