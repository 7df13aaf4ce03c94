import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';

/**
 * Loads the native uWebSockets.js binary directly. The registry build's own entry point
 * (src/uws.js) silently falls back to a slow pure-JS implementation when the binary fails to load
 * (design.md); wsguard refuses to start on that fallback, so we bypass the entry point and require
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

/** Port a listen socket is bound to (after listening on port 0). */
export function listenPort(listenSocket: UWS.us_listen_socket): number {
  return uws.us_socket_local_port(listenSocket);
}

/** Listens on host:port (0 picks a free port) and resolves with the socket and the bound port. */
export function listen(app: UWS.TemplatedApp, host: string, port: number): Promise<{ socket: UWS.us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (!socket) reject(new Error(`could not listen on ${host}:${port}`));
      else resolve({ socket, port: listenPort(socket) });
    });
  });
}

export type { UWS };
