import { randomBytes } from 'node:crypto';
import { CliError } from '../cli-error.ts';

/**
 * Message payloads. Each message carries a marker `wsg:<seq>;` so an echo can be matched to the
 * message that caused it, and its round trip measured from the message's intended send time.
 *
 * Template placeholders: {{marker}} (where the marker goes; prepended when absent), {{counter}}
 * (per-connection sequence number), {{ts}} (epoch ms at send), {{i}} (virtual user index),
 * {{random:N}} (N random bytes, base64url), {{pad:N}} (N filler characters).
 */
export interface PayloadSpec {
  /** Total message size in bytes (marker included); ignored when a template is given. */
  sizeBytes?: number;
  template?: string;
  /** Send binary frames instead of text frames. */
  binary?: boolean;
}

export type PayloadFactory = (seq: number) => string | Buffer;

const MARKER_PREFIX = 'wsg:';
const PREFIX_BYTES = Buffer.from(MARKER_PREFIX);

export function marker(seq: number): string {
  return `${MARKER_PREFIX}${seq};`;
}

/** Random material is drawn once and sliced, because crypto calls per message cost more than the send. */
const RANDOM_POOL = randomBytes(64 * 1024).toString('base64url');

function randomText(n: number): string {
  const start = Math.floor(Math.random() * Math.max(1, RANDOM_POOL.length - n));
  let out = RANDOM_POOL.slice(start, start + n);
  while (out.length < n) out += RANDOM_POOL.slice(0, n - out.length);
  return out;
}

type Part = string | ((seq: number) => string);

function compileTemplate(template: string, userIndex: number): Part[] {
  const parts: Part[] = [];
  const re = /\{\{(\w+)(?::(\d+))?\}\}/g;
  let last = 0;
  let hasMarker = false;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    if (m.index > last) parts.push(template.slice(last, m.index));
    last = m.index + m[0].length;
    const n = m[2] === undefined ? 0 : Number(m[2]);
    switch (m[1]) {
      case 'marker':
        hasMarker = true;
        parts.push(marker);
        break;
      case 'counter':
        parts.push((seq) => String(seq));
        break;
      case 'ts':
        parts.push(() => String(Date.now()));
        break;
      case 'i':
        parts.push(String(userIndex));
        break;
      case 'random':
        parts.push(() => randomText(n));
        break;
      case 'pad':
        parts.push('x'.repeat(n));
        break;
      default:
        throw new CliError('config', `--template: unknown placeholder {{${m[1]}}} (known: marker, counter, ts, i, random:N, pad:N)`);
    }
  }
  if (last < template.length) parts.push(template.slice(last));
  if (!hasMarker) parts.unshift(marker);
  return parts;
}

export function createPayloadFactory(spec: PayloadSpec, userIndex: number): PayloadFactory {
  if (spec.template !== undefined) {
    const parts = compileTemplate(spec.template, userIndex);
    const text = (seq: number): string => {
      let s = '';
      for (const p of parts) s += typeof p === 'string' ? p : p(seq);
      return s;
    };
    return spec.binary ? (seq) => Buffer.from(text(seq)) : text;
  }
  const size = spec.sizeBytes ?? 64;
  const pad = 'x'.repeat(size);
  return (seq) => {
    const m = marker(seq);
    const s = m.length >= size ? m : m + pad.slice(m.length);
    return spec.binary ? Buffer.from(s) : s;
  };
}

/** Finds the marker's sequence number in an echoed message; -1 when there is none. */
export function parseMarker(data: Buffer): number {
  // The marker leads every fixed-size payload: checked in place first, because a native indexOf per
  // echo was 8% of the lean generator's CPU (node --cpu-prof, bench/cli-ceiling.ts).
  const at = data[0] === 0x77 && data[1] === 0x73 && data[2] === 0x67 && data[3] === 0x3a ? 0 : data.indexOf(PREFIX_BYTES);
  if (at < 0) return -1;
  let seq = 0;
  let i = at + PREFIX_BYTES.length;
  const end = Math.min(data.length, i + 16);
  for (; i < end; i++) {
    const c = data[i]!;
    if (c === 0x3b) return seq; // ';' ends the marker
    if (c < 0x30 || c > 0x39) return -1;
    seq = seq * 10 + (c - 0x30);
  }
  return -1;
}
