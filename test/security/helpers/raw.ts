/**
 * Byte-level clients for the attack suite: raw HTTP handshakes on a net.Socket, and a raw WebSocket
 * client that completes a valid handshake and then writes whatever frames a test crafts.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { parseClientFrame, serverFrame } from '../../relay/upstream-servers.ts';

export const VALID_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A valid upgrade request head for `path`; `headers` are appended ; `omit` drops defaults. */
export function upgradeHead(path: string, extra: Array<[string, string]> = [], options: { method?: string; omit?: string[] } = {}): string {
  const omit = new Set((options.omit ?? []).map((h) => h.toLowerCase()));
  const base: Array<[string, string]> = [
    ['Host', '127.0.0.1'],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', VALID_KEY],
    ['Sec-WebSocket-Version', '13'],
  ];
  const lines = [...base.filter(([k]) => !omit.has(k.toLowerCase())), ...extra].map(([k, v]) => `${k}: ${v}`);
  return `${options.method ?? 'GET'} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

export interface Exchange {
  /** Everything the server wrote. */
  data: Buffer;
  /** The server ended or reset the TCP connection (false: our bounded wait ran out first). */
  closedByServer: boolean;
  /** HTTP status of the response, or null when none came. */
  status: number | null;
  head: string;
  elapsedMs: number;
}

export function statusOf(data: Buffer): number | null {
  const m = data.toString('latin1', 0, Math.min(data.length, 64)).match(/^HTTP\/1\.[01] (\d{3}) /);
  return m ? Number(m[1]) : null;
}

/**
 * Writes `request` (all at once, or via `write` for trickles) and collects the answer until the server
 * closes, `until` says enough, or `timeoutMs` passes. Always resolves; never leaves the socket open.
 */
export function exchange(
  port: number,
  request: string | Buffer | ((socket: net.Socket) => void),
  options: { timeoutMs?: number; until?: (data: Buffer) => boolean } = {},
): Promise<Exchange> {
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const socket = net.connect(port, '127.0.0.1', () => {
      if (typeof request === 'function') request(socket);
      else socket.write(request);
    });
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const data = Buffer.concat(chunks);
      const headEnd = data.indexOf('\r\n\r\n');
      resolve({
        data,
        closedByServer,
        status: statusOf(data),
        head: data.toString('latin1', 0, headEnd < 0 ? data.length : headEnd),
        elapsedMs: Date.now() - started,
      });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 3000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (options.until?.(Buffer.concat(chunks))) finish(false);
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
  });
}

/** A masked client frame (RFC 6455 §5.3 requires clients to mask); `mask: false` for the frame a client must never send. */
export function clientFrame(
  opcode: number,
  payload: Uint8Array | string = '',
  options: { fin?: boolean; rsv?: number; mask?: boolean } = {},
): Buffer {
  return serverFrame(opcode, payload, { ...options, mask: options.mask ?? true });
}

export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** How a WebSocket connection ended, seen from the raw client. */
export interface Ending {
  /** Close code from the server's close frame; 1005 for an empty close frame; null when TCP ended without one. */
  closeCode: number | null;
  reason: string;
  /** TCP ended (false: our bounded wait ran out with the socket still open). */
  tcpClosed: boolean;
  frames: Frame[];
}

export class RawWsClient {
  readonly frames: Frame[] = [];
  #buffered = Buffer.alloc(0);
  #tcpClosed = false;
  readonly #waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.#buffered = Buffer.concat([this.#buffered, c]);
      for (;;) {
        const f = parseClientFrame(this.#buffered);
        if (!f) break;
        this.#buffered = this.#buffered.subarray(f.size);
        this.frames.push({ fin: f.fin, opcode: f.opcode, payload: f.payload });
      }
      this.#notify();
    });
    const onEnd = () => {
      this.#tcpClosed = true;
      this.#notify();
    };
    socket.on('close', onEnd);
    socket.on('end', onEnd);
    socket.on('error', onEnd);
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Opens with a valid handshake to `path`; rejects (with the status line) when no 101 comes within `timeoutMs`. */
  static async connect(port: number, path: string, extra: Array<[string, string]> = [], timeoutMs = 5000): Promise<RawWsClient> {
    const key = randomBytes(16).toString('base64');
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const head = await new Promise<{ head: string; rest: Buffer }>((resolve, reject) => {
      let data = Buffer.alloc(0);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no handshake answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const onData = (c: Buffer) => {
        data = Buffer.concat([data, c]);
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        socket.removeListener('data', onData);
        resolve({ head: data.toString('latin1', 0, end), rest: data.subarray(end + 4) });
      };
      socket.on('data', onData);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () =>
        socket.write(upgradeHead(path, extra).replace(`Sec-WebSocket-Key: ${VALID_KEY}`, `Sec-WebSocket-Key: ${key}`)),
      );
    });
    if (!/^HTTP\/1\.1 101 /.test(head.head)) {
      socket.destroy();
      throw new Error(`expected 101, got ${head.head.split('\r\n')[0]}`);
    }
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    if (
      !head.head.includes(`Sec-WebSocket-Accept: ${accept}`) &&
      !head.head.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)
    ) {
      socket.destroy();
      throw new Error('bad Sec-WebSocket-Accept');
    }
    const client = new RawWsClient(socket);
    if (head.rest.length) socket.emit('data', head.rest);
    return client;
  }

  write(bytes: Buffer | Buffer[]): void {
    if (this.#tcpClosed) return;
    this.socket.write(Array.isArray(bytes) ? Buffer.concat(bytes) : bytes);
  }

  /** Waits (bounded) for `predicate` over the frames so far; false when the time ran out or TCP closed first. */
  async waitFor(predicate: (frames: Frame[]) => boolean, timeoutMs = 5000): Promise<boolean> {
    if (predicate(this.frames)) return true;
    return new Promise((resolve) => {
      const check = () => {
        if (predicate(this.frames)) return done(true);
        if (this.#tcpClosed) return done(predicate(this.frames));
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (v: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(v);
      };
      this.#waiters.add(check);
    });
  }

  /** Waits (bounded) for the server to close: its close frame and/or the end of TCP. */
  async ending(timeoutMs = 5000): Promise<Ending> {
    await new Promise<void>((resolve) => {
      if (this.#tcpClosed) return resolve();
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        resolve();
      }, timeoutMs);
      const check = () => {
        if (!this.#tcpClosed) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
    const close = this.frames.find((f) => f.opcode === 0x8);
    const result: Ending = {
      closeCode: close ? (close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005) : null,
      reason: close && close.payload.length > 2 ? close.payload.subarray(2).toString() : '',
      tcpClosed: this.#tcpClosed,
      frames: this.frames,
    };
    this.socket.destroy();
    return result;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
