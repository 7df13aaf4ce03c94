import { createRequire } from 'node:module';
import net from 'node:net';
import type * as UWS from 'uWebSockets.js';

/**
 * Loads the native uWebSockets.js binary directly. The registry build's own entry point
 * (src/uws.js) silently falls back to a slow pure-JS implementation when the binary fails to load
 * (docs/architecture.md); wsguard refuses to start on that fallback, so we bypass the entry point and require
 * the binary for this platform and ABI ourselves, failing loudly if it is missing.
 */
const require = createRequire(import.meta.url);

function loadNative(): typeof UWS {
  const pkgDir = require.resolve('uWebSockets.js/package.json').replace(/package\.json$/, '');
  const binary = `${pkgDir}binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    return require(binary) as typeof UWS;
  } catch (err) {
    throw new Error(
      `uWebSockets.js native binary did not load (${binary}): ${(err as Error).message}. ` +
        'wsguard does not run on the pure-JS fallback; use Node 20 (ABI 115) on linux/darwin x64/arm64 with glibc >= 2.36.',
      { cause: err },
    );
  }
}

export const uws: typeof UWS = loadNative();

// No `uWebSockets: 20` header on any answer: it names the server software to every scanner, and
// each header is four separate writes when a 101 leaves uncorked (src/gateway/cork-anchor.ts).
(uws as unknown as { _cfg(key: string): void })._cfg('silent');

/** Port a listen socket is bound to (after listening on port 0). */
export function listenPort(listenSocket: UWS.us_listen_socket): number {
  return uws.us_socket_local_port(listenSocket);
}

/**
 * Why a bind failed: uWS only says "false", so the same bind is tried with Node to get the errno
 * (EADDRINUSE, EADDRNOTAVAIL, EACCES). Resolves with null if Node could bind it after all.
 */
export function bindError(host: string, port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(null)));
  });
}

/**
 * Listens on host:port (0 picks a free port) and resolves with the socket and the bound port.
 * Exclusively: uWS binds with SO_REUSEPORT by default, so a second wsguard on a taken port would
 * start, print "listening", and have the kernel split connections between the two processes.
 * `option` names the setting in the error (server.port, say).
 */
export function listen(
  app: UWS.TemplatedApp,
  host: string,
  port: number,
  option = 'port',
  shared = false,
): Promise<{ socket: UWS.us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    // The typings lack the (host, port, options, cb) overload that the native binding has.
    const listenWith = app.listen as unknown as (h: string, p: number, o: number, cb: (s: UWS.us_listen_socket | false) => void) => void;
    const flags = shared ? 0 : (uws as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT;
    listenWith.call(app, host, port, flags, (socket) => {
      if (socket) return resolve({ socket, port: listenPort(socket) });
      void bindError(host, port).then((err) => {
        const why =
          err?.code === 'EADDRINUSE'
            ? `port ${port} is already in use (another wsguard or another program); choose another ${option}`
            : err?.code === 'EADDRNOTAVAIL'
              ? `${host} is not an address of this machine; check the host setting beside ${option}`
              : `${err?.message ?? 'the bind failed'} (${option})`;
        reject(new Error(`could not listen on ${host}:${port}: ${why}`, { cause: err ?? undefined }));
      });
    });
  });
}

/**
 * Listens with SO_REUSEPORT so that a later listener (a certificate rotation) can bind the same
 * port before this one closes. The exclusive probe first keeps the guarantee of `listen`: a port
 * another program holds is refused. Port 0 is resolved to a free port first: the kernel does not
 * share a port it picked itself (measured: a second SO_REUSEPORT bind of an autobound port fails).
 */
export async function listenShared(
  app: UWS.TemplatedApp,
  host: string,
  port: number,
  option = 'port',
  replacing = false,
): Promise<{ socket: UWS.us_listen_socket; port: number }> {
  const chosen = port === 0 ? await freePort(host) : port;
  // A listener that replaces our own would fail the probe on the port we hold: only the first one probes.
  const err = replacing ? null : await bindError(host, chosen);
  if (err) return listen(app, host, chosen, option);
  return listen(app, host, chosen, option, true);
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export type { UWS };
