import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HttpResponse, us_listen_socket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { uws } from './uws.ts';

/** The held request arrives within a millisecond or two; this only bounds a broken start. */
const START_TIMEOUT_MS = 5_000;

/**
 * Where an async `res.upgrade` runs: inside the cork of an HTTP request the gateway holds open to
 * itself for this purpose, never inside `res.cork` of the response being upgraded.
 *
 * Why (BENCHMARKS.md, "A connection dropped right after its 101"): uWS 20.30's
 * `HttpResponse::cork` runs its HTTP connection-close check after the callback unless the socket's
 * address changed. The upgrade reallocates the socket to the smaller WebSocket size, which glibc does
 * in place, so the check runs on the new WebSocket and reads the HTTP `state` from the freed tail of
 * the old allocation. When whatever reused that memory during the open handler had the right bits
 * (HTTP_CONNECTION_CLOSE set, HTTP_RESPONSE_PENDING clear) uWS shut the socket down and closed it
 * right after `open`: no close frame, 1006 on both sides. Measured with freed memory filled with 0x10
 * (GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.perturb=16, bench/upgrade-race.ts): 100
 * of 100 connections dropped with `res.cork`, 0 of 100 without. Fixed upstream in uWebSockets PR
 * #1929, not in a build that loads here.
 *
 * Upgrading outside any cork avoids the check but makes uWS.js print "writes must be made from within
 * a corked callback" to stderr on every upgrade. Inside another socket's cork uWS skips the response's
 * own cork (and its check) and the warning, so the held request is that socket: its check finds the
 * request still pending and does nothing. The cost either way is that the 101 leaves in separate small
 * writes (24 `sendto` per upgrade instead of 1, counted with strace), as uWS only batches for the
 * corked socket: roughly a quarter fewer plain handshakes per second on a 2-core machine (BENCHMARKS.md).
 */
export class CorkAnchor {
  #res: HttpResponse | null = null;
  #client: net.Socket | null = null;
  #lostLogged = false;
  readonly #logger: Logger;

  private constructor(logger: Logger) {
    this.#logger = logger;
  }

  /**
   * Listens on a Unix socket in a fresh private directory, sends one request to it and keeps that
   * request unanswered; the directory is removed as soon as the request has arrived, so nothing else
   * can connect. Never fails the start: without the anchor upgrades still work (and uWS warns).
   */
  static async start(logger: Logger): Promise<CorkAnchor> {
    const anchor = new CorkAnchor(logger);
    let dir: string | null = null;
    let listenSocket: us_listen_socket | null = null;
    let timer: NodeJS.Timeout | undefined;
    try {
      dir = mkdtempSync(join(tmpdir(), 'wsguard-anchor-'));
      const path = join(dir, 'a.sock');
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no request arrived on ${path} within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
        const app = uws.App();
        app.any('/*', (res) => {
          if (anchor.#res) {
            res.writeStatus('404 Not Found').end();
            return;
          }
          res.onAborted(() => anchor.#lost());
          anchor.#res = res;
          resolve();
        });
        app.listen_unix((socket) => {
          if (!socket) return reject(new Error(`could not listen on ${path}`));
          listenSocket = socket;
          const client = net.connect(path);
          anchor.#client = client;
          // Nothing is read from it; it only has to stay open. It must not keep the process alive.
          client.unref();
          client.on('error', (err) => reject(err));
          client.write('GET / HTTP/1.1\r\nHost: anchor\r\n\r\n');
        }, path);
      });
    } catch (err) {
      anchor.close();
      logger.warn({ event: 'cork_anchor_unavailable', err }, 'upgrades run uncorked; uWS prints a warning for each');
    } finally {
      clearTimeout(timer);
      if (listenSocket) uws.us_listen_socket_close(listenSocket);
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
    return anchor;
  }

  /** Runs `fn` (an upgrade) inside the held request's cork; without it (it was lost) just runs `fn`. */
  run(fn: () => void): void {
    if (this.#res) this.#res.cork(fn);
    else fn();
  }

  close(): void {
    const res = this.#res;
    this.#res = null;
    this.#lostLogged = true;
    if (res) res.close();
    this.#client?.destroy();
    this.#client = null;
  }

  #lost(): void {
    this.#res = null;
    if (this.#lostLogged) return;
    this.#lostLogged = true;
    // Upgrades still work without it; uWS then warns on stderr for each one.
    this.#logger.warn({ event: 'cork_anchor_lost' }, 'the held request that upgrades run corked in was closed');
  }
}
