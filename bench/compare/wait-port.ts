import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

/** Resolves once `port` accepts a TCP connection; rejects if `child` exits first or after 10 s. */
export async function waitForPort(port: number, child: ChildProcess, name: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${name} did not listen on ${port} within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
