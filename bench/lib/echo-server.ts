/**
 * A uWS echo server in its own process, so that the upstream's work is not charged to what is
 * measured. Run as a child: `fork(echoServerEntry)`; it reports `{ port }` over IPC and exits when
 * the parent disconnects.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const echoServerEntry = fileURLToPath(import.meta.url);

async function serve(): Promise<void> {
  const { listen, uws } = await import('../../src/gateway/uws.ts');
  const app = uws.App().ws('/*', {
    compression: uws.DISABLED,
    maxPayloadLength: 16 * 1024 * 1024,
    maxBackpressure: 64 * 1024 * 1024,
    idleTimeout: 0,
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary);
    },
  });
  const { port } = await listen(app, '127.0.0.1', 0);
  process.send?.({ port });
  process.on('disconnect', () => process.exit(0));
}

export function startEchoChild(): Promise<{ child: ChildProcess; port: number }> {
  // tsx's loader is named explicitly: a parent under vitest (or plain node) does not pass it on.
  const child = fork(echoServerEntry, ['--serve'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve({ child, port: (message as { port: number }).port }));
    child.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
  });
}

if (process.argv[1] === echoServerEntry && process.argv.includes('--serve')) await serve();
