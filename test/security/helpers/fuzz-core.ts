/**
 * The fuzzer shared by test/security/fuzz.test.ts (bounded, in CI) and bench/fuzz.ts (long runs):
 * seeded generators of mutated handshakes and frame streams, a raw upstream that answers with
 * mutated frames, and a runner that classifies how every connection ended.
 */
import type net from 'node:net';
import { acceptResponse, serverFrame, startRawServer, type TestServer } from '../../relay/upstream-servers.ts';
import { ALLOWED_STATUSES, isAllowedClose } from './codes.ts';
import { Rng } from './prng.ts';
import { clientFrame, closePayload, exchange, RawWsClient, upgradeHead, VALID_KEY } from './raw.ts';

export const ECHO_PREFIX = '/e/';
export const RAW_PREFIX = '/raw/';
/** Small enough that generated frames cross it, so 1009 is exercised. */
export const FUZZ_MAX_BYTES = 4096;

/** Gateway config for a fuzz run: anonymous routes, limits out of the way, loopback only. */
export function fuzzConfig(echoUrl: string, rawUrl: string): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port: 0, handshakeTimeoutMs: 3000, drainWindowMs: 0, maxPendingPerClient: 1000 },
    telemetry: { admin: { host: '127.0.0.1', port: 0 }, logs: { level: 'warn' } },
    routes: [
      { path: ECHO_PREFIX, upstream: echoUrl, allowAnonymous: true },
      { path: RAW_PREFIX, upstream: rawUrl, allowAnonymous: true },
    ],
    limits: { attempts: { max: 100_000_000 }, concurrent: { max: 100_000 } },
    messages: { maxBytes: FUZZ_MAX_BYTES, rate: { perMinute: 1e9, burst: 1_000_000 } },
    upstream: { dialTimeoutMs: 1000 },
  };
}

// ---------------------------------------------------------------------------------------------- generators

const METHODS = ['GET', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'get', 'GE', 'GETT', 'CONNECT', ''];
const VERSIONS = ['13', '8', '0', '', '13, 8', '130', '-1', '13 ', 'thirteen'];
const KEYS = [
  VALID_KEY,
  '',
  'short',
  'AAAAAAAAAAAAAAAAAAAAAA=',
  'AAAAAAAAAAAAAAAAAAAAAAA==',
  '!!!!!!!!!!!!!!!!!!!!!!==',
  VALID_KEY + VALID_KEY,
];
const INJECT = ['\r', '\n', '\0', '\r\n', '\r\n\r\n', ' ', '\t', ':', '%00', '../', '\u00ff'];

export interface HandshakeCase {
  bytes: Buffer;
  /** True when the mutation kept HTTP framing intact: the gateway must then answer with a status. */
  wellFramed: boolean;
  path: string;
}

export function mutateHandshake(rng: Rng): HandshakeCase {
  const path = rng.pick([
    `${ECHO_PREFIX}x`,
    `${ECHO_PREFIX}`,
    '/',
    '/nope',
    `${ECHO_PREFIX}a/../../b`,
    `${ECHO_PREFIX}%2e%2e/`,
    `${ECHO_PREFIX}?a=${'q'.repeat(rng.int(3000))}`,
  ]);
  const headers: Array<[string, string]> = [];
  const omit: string[] = [];
  let method = 'GET';
  let wellFramed = true;
  const mutations = 1 + rng.int(3);
  for (let m = 0; m < mutations; m++) {
    switch (rng.int(8)) {
      case 0:
        method = rng.pick(METHODS);
        if (method === '') wellFramed = false;
        break;
      case 1:
        omit.push('Sec-WebSocket-Version');
        headers.push(['Sec-WebSocket-Version', rng.pick(VERSIONS)]);
        break;
      case 2:
        omit.push('Sec-WebSocket-Key');
        if (rng.chance(0.8)) headers.push(['Sec-WebSocket-Key', rng.pick(KEYS)]);
        break;
      case 3:
        omit.push(rng.pick(['Upgrade', 'Connection', 'Host']));
        break;
      case 4:
        headers.push([
          rng.pick(['Origin', 'Authorization', 'Sec-WebSocket-Protocol', 'X-Forwarded-For', 'Sec-WebSocket-Extensions']),
          rng.bytes(rng.int(40)).toString('base64'),
        ]);
        break;
      case 5:
        for (let i = rng.int(30); i > 0; i--) headers.push([`X-F${i}`, 'v'.repeat(rng.int(200))]);
        break;
      case 6:
        headers.push(['Sec-WebSocket-Key', rng.pick(KEYS)]);
        break;
      default:
        wellFramed = false;
        break;
    }
  }
  let text = upgradeHead(path, headers, { method, omit });
  let bytes = Buffer.from(text, 'latin1');
  if (!wellFramed) {
    // Structural damage: inject bytes, truncate, or flip bytes anywhere in the head.
    switch (rng.int(3)) {
      case 0: {
        const at = rng.int(text.length);
        text = text.slice(0, at) + rng.pick(INJECT) + text.slice(at);
        bytes = Buffer.from(text, 'latin1');
        break;
      }
      case 1:
        bytes = bytes.subarray(0, rng.int(bytes.length));
        break;
      default:
        bytes = Buffer.from(bytes);
        for (let i = 1 + rng.int(4); i > 0; i--) bytes[rng.int(bytes.length)] = rng.int(256);
    }
  }
  return { bytes, wellFramed, path };
}

/** A stream of client frames: mostly valid, with mutated headers, lengths, opcodes and close payloads. */
export function mutateFrames(rng: Rng, masked: boolean): Buffer[] {
  const frames: Buffer[] = [];
  const count = 1 + rng.int(8);
  for (let i = 0; i < count; i++) {
    const make = (op: number, payload: Buffer, o: { fin?: boolean; rsv?: number; mask?: boolean } = {}) =>
      masked ? clientFrame(op, payload, { mask: o.mask ?? true, ...o }) : serverFrame(op, payload, { ...o, mask: o.mask ?? false });
    const size = rng.chance(0.1) ? FUZZ_MAX_BYTES + rng.int(FUZZ_MAX_BYTES) : rng.int(200);
    switch (rng.int(10)) {
      case 0:
        frames.push(make(rng.int(16), rng.bytes(size)));
        break;
      case 1:
        frames.push(make(1, rng.bytes(size), { rsv: 1 + rng.int(7) }));
        break;
      case 2:
        frames.push(make(rng.pick([8, 9, 10]), rng.bytes(rng.chance(0.5) ? rng.int(125) : 126 + rng.int(100)), { fin: rng.chance(0.7) }));
        break;
      case 3:
        frames.push(
          make(
            8,
            closePayload(
              rng.pick([0, 999, 1000, 1001, 1002, 1004, 1005, 1006, 1011, 1012, 1015, 2999, 3000, 4000, 4999, 5000, 65535]),
              'r'.repeat(rng.int(130)),
            ),
          ),
        );
        break;
      case 4: {
        // A fragmented message, sometimes broken (missing first frame, interleaved data frame).
        const parts = 1 + rng.int(20);
        if (rng.chance(0.8)) frames.push(make(rng.pick([1, 2]), rng.bytes(rng.int(20)), { fin: false }));
        for (let p = 0; p < parts; p++) frames.push(make(rng.chance(0.95) ? 0 : 1, rng.bytes(rng.int(20)), { fin: false }));
        if (rng.chance(0.8)) frames.push(make(0, rng.bytes(rng.int(20))));
        break;
      }
      case 5: {
        const f = make(2, rng.bytes(size));
        // Corrupt the header bytes: length fields and flags.
        f[rng.int(Math.min(f.length, 10))] = rng.int(256);
        frames.push(f);
        break;
      }
      case 6:
        frames.push(make(1, rng.bytes(size), { mask: !masked ? rng.chance(0.2) : rng.chance(0.9) }));
        break;
      case 7: {
        const f = make(2, rng.bytes(size));
        frames.push(f.subarray(0, rng.int(f.length)));
        break;
      }
      default:
        frames.push(make(rng.pick([1, 2]), Buffer.from('x'.repeat(size))));
    }
  }
  return frames;
}

/** A mutated 101 from the upstream: wrong accept, missing headers, a different status, or garbage. */
export function mutateUpstreamAnswer(rng: Rng, key: string): Buffer {
  const good = acceptResponse(key);
  switch (rng.int(6)) {
    case 0:
      return Buffer.from(good.replace('101', rng.pick(['200', '302', '400', '500', '1O1'])));
    case 1:
      return Buffer.from(good.replace(/Sec-WebSocket-Accept: \S+/, 'Sec-WebSocket-Accept: AAAA'));
    case 2:
      return Buffer.from(good.replace('Upgrade: websocket\r\n', ''));
    case 3:
      return Buffer.from(good.replace('\r\n\r\n', '\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n'));
    case 4:
      return rng.bytes(rng.int(100));
    default:
      return Buffer.from(good);
  }
}

// ---------------------------------------------------------------------------------------------- raw upstream

/**
 * An upstream that answers each handshake according to the seed in its path (/raw/<seed>): usually a
 * valid 101 followed by mutated frames, sometimes a mutated answer, sometimes a TCP drop.
 */
export async function startFuzzUpstream(): Promise<TestServer & { sockets: Set<net.Socket> }> {
  return startRawServer((socket, request) => {
    const seed = Number(request.head.match(/^GET \/\S*?(\d+)/)?.[1] ?? 0);
    const rng = new Rng(seed ^ 0x5eed);
    const mode = rng.int(10);
    if (mode === 0) return void socket.destroy();
    if (mode === 1) return void socket.end(mutateUpstreamAnswer(rng, request.key));
    socket.write(acceptResponse(request.key));
    socket.on('data', () => {
      /* client frames relayed by the gateway are read and dropped */
    });
    for (const f of mutateFrames(rng, false)) socket.write(f);
    if (rng.chance(0.3)) socket.end();
  });
}

// ---------------------------------------------------------------------------------------------- runner

export type Outcome = string;

export interface FuzzReport {
  seed: number;
  iterations: { handshake: number; clientFrames: number; upstreamFrames: number };
  outcomes: Map<Outcome, number>;
  violations: string[];
}

function count(report: FuzzReport, outcome: Outcome): void {
  report.outcomes.set(outcome, (report.outcomes.get(outcome) ?? 0) + 1);
}

function classifyEnding(report: FuzzReport, kind: string, closeCode: number | null, tcpClosed: boolean, detail: string): void {
  if (closeCode === null) return count(report, `${kind}:${tcpClosed ? 'tcp-closed' : 'still-open'}`);
  // 1005 here is an empty close frame (no code on the wire), which RFC 6455 §5.5.1 allows.
  if (closeCode !== 1005 && !isAllowedClose(closeCode))
    report.violations.push(`${kind}: close code ${closeCode} is not documented (${detail})`);
  count(report, `${kind}:close:${closeCode}`);
}

const WELL_FRAMED_ANSWER_MS = 5_000;

async function handshakeCase(report: FuzzReport, port: number, rng: Rng, waitMs: number): Promise<void> {
  const c = mutateHandshake(rng);
  // A well-framed request is answered in milliseconds, so the longer wait costs nothing unless it hangs,
  // and 5 s still tells a hang (uWS's ~10 s) apart; 1 s was overrun on a loaded 2-core machine (8 cases in one run).
  const answerMs = c.wellFramed ? Math.max(waitMs, WELL_FRAMED_ANSWER_MS) : waitMs;
  const r = await exchange(port, c.bytes, { timeoutMs: answerMs, until: (d) => d.includes('\r\n\r\n') });
  if (r.status === null) {
    if (c.wellFramed && r.closedByServer === false && r.data.length === 0) {
      // uWS holds an unparsed head until its own timeout (~10–12 s, measured); a well-framed request must get an answer.
      report.violations.push(
        `handshake: no answer within ${answerMs} ms to a well-framed request ${JSON.stringify(c.bytes.toString('latin1').slice(0, 200))}`,
      );
    }
    count(report, `handshake:${r.data.length ? 'garbage-answer' : r.closedByServer ? 'tcp-closed' : 'no-answer'}`);
    if (r.data.length)
      report.violations.push(`handshake: answer without a status line: ${JSON.stringify(r.data.toString('latin1').slice(0, 80))}`);
    return;
  }
  if (r.status !== 101 && !ALLOWED_STATUSES.has(r.status))
    report.violations.push(`handshake: undocumented status ${r.status} for ${JSON.stringify(c.bytes.toString('latin1').slice(0, 200))}`);
  count(report, `handshake:http:${r.status}`);
}

async function clientFrameCase(report: FuzzReport, port: number, rng: Rng, waitMs: number): Promise<void> {
  let client: RawWsClient;
  try {
    client = await RawWsClient.connect(port, `${ECHO_PREFIX}f`, [], waitMs * 2);
  } catch (err) {
    report.violations.push(`client frames: valid handshake failed: ${(err as Error).message}`);
    return;
  }
  const frames = mutateFrames(rng, true);
  client.write(frames);
  const e = await client.ending(waitMs);
  classifyEnding(report, 'client', e.closeCode, e.tcpClosed, `${frames.length} frames`);
}

async function upstreamFrameCase(report: FuzzReport, port: number, seed: number, waitMs: number): Promise<void> {
  let client: RawWsClient;
  try {
    client = await RawWsClient.connect(port, `${RAW_PREFIX}${seed}`, [], waitMs * 2);
  } catch (err) {
    const status = (err as Error).message.match(/got HTTP\/1\.1 (\d{3})/)?.[1];
    if (status && ALLOWED_STATUSES.has(Number(status))) return count(report, `upstream:http:${status}`);
    report.violations.push(`upstream frames: ${(err as Error).message}`);
    return;
  }
  const e = await client.ending(waitMs);
  classifyEnding(report, 'upstream', e.closeCode, e.tcpClosed, `seed ${seed}`);
}

export interface FuzzOptions {
  port: number;
  seed: number;
  /** Wall-clock budget per phase (three phases). */
  phaseBudgetMs: number;
  /** Hard cap of iterations per phase. */
  maxIterationsPerPhase: number;
  concurrency?: number;
  /** How long one case waits for the gateway's answer. */
  caseWaitMs?: number;
  /** Called between batches (e.g. to check the child is alive); returning a string records a violation and stops. */
  check?: () => string | null;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const report: FuzzReport = {
    seed: options.seed,
    iterations: { handshake: 0, clientFrames: 0, upstreamFrames: 0 },
    outcomes: new Map(),
    violations: [],
  };
  const concurrency = options.concurrency ?? 16;
  const wait = options.caseWaitMs ?? 1000;
  const rng = new Rng(options.seed);
  const phases: Array<[keyof FuzzReport['iterations'], (i: number) => Promise<void>]> = [
    ['handshake', () => handshakeCase(report, options.port, new Rng(rng.int(2 ** 32)), wait)],
    ['clientFrames', () => clientFrameCase(report, options.port, new Rng(rng.int(2 ** 32)), wait)],
    ['upstreamFrames', () => upstreamFrameCase(report, options.port, rng.int(2 ** 31), wait)],
  ];
  for (const [name, run] of phases) {
    const until = Date.now() + options.phaseBudgetMs;
    let stop = false;
    // A pool of workers, each taking the next case while the budget and the cap allow.
    const worker = async () => {
      while (!stop && report.iterations[name] < options.maxIterationsPerPhase && Date.now() < until) {
        const i = report.iterations[name]++;
        await run(i);
        const problem = options.check?.();
        if (problem && !stop) {
          stop = true;
          report.violations.push(problem);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    if (stop) return report;
  }
  return report;
}

export function formatReport(report: FuzzReport): string {
  const lines = [
    `fuzz seed ${report.seed}: ${report.iterations.handshake} handshakes, ${report.iterations.clientFrames} client frame streams, ${report.iterations.upstreamFrames} upstream frame streams`,
  ];
  for (const [k, v] of [...report.outcomes].sort((a, b) => a[0].localeCompare(b[0]))) lines.push(`  ${k.padEnd(28)} ${v}`);
  lines.push(`  violations: ${report.violations.length}`);
  for (const v of report.violations.slice(0, 20)) lines.push(`    ${v}`);
  return lines.join('\n');
}
