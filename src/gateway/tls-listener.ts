import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import type { ServerTlsConfig } from '../config/schema.ts';
import type { TlsReloadOutcome } from '../telemetry/names.ts';
import type { GatewayObserver } from '../telemetry/observer.ts';
import { currentDigest, loadServerTls, uwsOptions, type LoadedTls } from './tls.ts';
import { uws } from './uws.ts';

export interface TlsListenerDeps {
  config: ServerTlsConfig;
  /** Attaches the gateway's routes to an app or to one SNI domain of it. */
  addRoutes(app: TemplatedApp): void;
  observer: GatewayObserver;
  logger: Logger;
  /** Binds `app` on the public port (undefined: the configured one), sharing it with the listener it replaces. */
  listen(app: TemplatedApp, port: number | undefined): Promise<{ socket: us_listen_socket; port: number }>;
  /** The new listener is up: make it current and close the previous one. */
  swapped(socket: us_listen_socket): void;
  isListening(): boolean;
}

/**
 * The wss:// public listener and its certificate rotation.
 *
 * uWS 20.30 cannot swap the default certificate of a running SSLApp, and re-adding an SNI name
 * that exists is ignored (its domain router would also be freed under live HTTP sockets). So a
 * rotation builds a fresh SSLApp with every pair, binds it on the same port (SO_REUSEPORT) and then
 * closes the old listen socket. Closing a listen socket closes no connection: open WebSockets stay on
 * the old app with their TLS session (test/tls/rotation.test.ts keeps 50 echoing through a rotation).
 * New handshakes land on the new app. A handshake the kernel had queued on the old listen socket in
 * the instant between the two is reset (net.ipv4.tcp_migrate_req=1 makes the kernel move it instead).
 * Old apps are kept referenced: their connections run on them until they close.
 */
export class TlsListener {
  readonly #d: TlsListenerDeps;
  #loaded: LoadedTls | null = null;
  #port: number | undefined;
  readonly #apps: TemplatedApp[] = [];
  readonly #watchers: FSWatcher[] = [];
  #debounce: NodeJS.Timeout | undefined;
  /** Reloads run one at a time; a request during one runs once more after it. */
  #running: Promise<TlsReloadOutcome> | null = null;
  #again = false;
  #stopped = false;

  constructor(deps: TlsListenerDeps) {
    this.#d = deps;
  }

  /** Loads, validates and listens; throws (naming the option) if a pair is bad, as start-up must not serve a broken pair. */
  async start(): Promise<{ socket: us_listen_socket; port: number }> {
    const loaded = loadServerTls(this.#d.config);
    const app = this.#build(loaded);
    const bound = await this.#d.listen(app, undefined);
    this.#port = bound.port;
    this.#loaded = loaded;
    this.#apps.push(app);
    this.#d.observer.tlsCertificatesSource(
      () => this.#loaded?.pairs.map((p) => ({ serverName: p.serverName, notAfterMs: p.notAfterMs })) ?? [],
    );
    if (this.#d.config.watch) this.#watch();
    this.#d.logger.info({ event: 'tls_loaded', certificates: this.#describe(loaded) }, 'serving wss://');
    return bound;
  }

  /** The serial numbers served now, by server name (for logs and tests). */
  get serials(): Record<string, string> {
    return Object.fromEntries((this.#loaded?.pairs ?? []).map((p) => [p.serverName, p.serial]));
  }

  reload(): Promise<TlsReloadOutcome> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#reloadOnce().finally(() => {
      this.#running = null;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        void this.reload();
      }
    });
    return this.#running;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#debounce);
    for (const w of this.#watchers.splice(0)) w.close();
  }

  async #reloadOnce(): Promise<TlsReloadOutcome> {
    const outcome = await this.#attempt().catch((err: unknown) => {
      this.#d.logger.error(
        { event: 'tls_reload_failed', err: (err as Error).message },
        'certificate reload refused; the previous certificates keep serving',
      );
      return 'error' as const;
    });
    this.#d.observer.tlsReloaded(outcome);
    return outcome;
  }

  async #attempt(): Promise<TlsReloadOutcome> {
    if (this.#stopped || !this.#d.isListening()) return 'unchanged';
    const loaded = loadServerTls(this.#d.config);
    if (loaded.digest === this.#loaded?.digest) return 'unchanged';
    const app = this.#build(loaded);
    // uWS reads the files itself: had they changed since they were validated, it may hold a pair nobody checked.
    if (currentDigest(loaded.pairs) !== loaded.digest)
      throw new Error('the certificate files changed while being loaded; the next change reloads them');
    const bound = await this.#d.listen(app, this.#port);
    // Building the app blocked the loop for a while, and connections queued on the old listen socket
    // meanwhile would be reset by closing it now. One turn of the loop lets uWS accept them first
    // (setImmediate runs right after libuv's poll phase): resets during rotation under handshake load
    // fell from 35 of 376 to 5 of 323 handshakes over 20 swaps (bench/tls.ts, BENCHMARKS.md, TLS).
    await new Promise((resolve) => setImmediate(resolve));
    if (this.#stopped) {
      uws.us_listen_socket_close(bound.socket);
      return 'unchanged';
    }
    this.#apps.push(app);
    this.#d.swapped(bound.socket);
    this.#loaded = loaded;
    this.#d.logger.info({ event: 'tls_reloaded', certificates: this.#describe(loaded) }, 'certificates reloaded');
    return 'success';
  }

  #build(loaded: LoadedTls): TemplatedApp {
    const [main, ...sni] = loaded.pairs;
    let app: TemplatedApp;
    try {
      app = uws.SSLApp(uwsOptions(main!));
    } catch (err) {
      throw new Error(`server.tls: uWebSockets.js refused the pair (${(err as Error).message})`, { cause: err });
    }
    // The main router first: domain() moves registration to an SNI router with no way back.
    this.#d.addRoutes(app);
    for (const pair of sni) {
      app.addServerName(pair.serverName, uwsOptions(pair));
      this.#d.addRoutes(app.domain(pair.serverName));
    }
    return app;
  }

  #describe(loaded: LoadedTls): { serverName: string; serial: string; notAfter: string }[] {
    return loaded.pairs.map((p) => ({ serverName: p.serverName, serial: p.serial, notAfter: new Date(p.notAfterMs).toISOString() }));
  }

  /**
   * Watches the directories, not the files: cert-manager and kubelet replace files by renaming
   * (a `..data` symlink swap), which a watch on the old inode never reports.
   */
  #watch(): void {
    const config = this.#d.config;
    const files = [config, ...config.sni].flatMap((p) => [p.certFile, p.keyFile, ...(p.caFile ? [p.caFile] : [])]);
    for (const dir of new Set(files.map((f) => dirname(f)))) {
      try {
        const w = watch(dir, () => this.#scheduleReload());
        w.on('error', (err) =>
          this.#d.logger.error({ event: 'tls_watch_failed', dir, err: err.message }, 'certificate directory watch failed'),
        );
        this.#watchers.push(w);
      } catch (err) {
        this.#d.logger.error(
          { event: 'tls_watch_failed', dir, err: (err as Error).message },
          'cannot watch certificate directory; SIGHUP still reloads',
        );
      }
    }
  }

  #scheduleReload(): void {
    if (this.#stopped) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.reload(), this.#d.config.reloadDebounceMs);
    this.#debounce.unref();
  }
}
