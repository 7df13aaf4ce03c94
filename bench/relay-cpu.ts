/**
 * Relay CPU per message, wsguard against nginx (one worker), the per-core comparison at a rate high
 * enough that both batch: `npx tsx bench/relay-cpu.ts [--rate 200000] [--rounds 2] [--seconds 7]`.
 * The compare generators (2 processes, 25 connections each, 64 B, open loop) drive the uWS echo through
 * each proxy in turn; the proxy's process tree CPU (/proc, 10 ms ticks) is read over the run after a
 * 2.5 s warm-up, and divided by the messages sent in that window (each is relayed both ways). It fails
 * when a run lost messages: a proxy that dropped them would look cheap.
 */
import { startEchoChild } from './lib/echo-server.ts';
import { startGatewayChild } from './lib/gateway-child.ts';
import { GeneratorPool, medianRound, treeCpuMs } from './compare/base.ts';
import { nginx } from './compare/system-nginx.ts';
import { arg } from './lib/args.ts';

const rate = Number(arg('rate', '200000'));
const rounds = Number(arg('rounds', '2'));
const seconds = Number(arg('seconds', '7'));
const WARMUP_MS = 2500;

const echo = await startEchoChild();
const gens = await GeneratorPool.start(2);
const perMessage: Record<string, number[]> = { wsguard: [], nginx: [] };
let failed = false;
try {
  for (let round = 0; round < rounds; round++) {
    for (const which of round % 2 === 0 ? ['wsguard', 'nginx'] : ['nginx', 'wsguard']) {
      const running =
        which === 'nginx'
          ? await nginx.start(echo.port, {} as never)
          : await startGatewayChild(echo.port).then((gw) => ({
              url: `ws://127.0.0.1:${gw.port}`,
              pid: gw.child.pid,
              stop: () => gw.stop(),
            }));
      let cpu0 = 0;
      let t0 = 0;
      const mark = setTimeout(() => {
        cpu0 = treeCpuMs(running.pid!);
        t0 = performance.now();
      }, WARMUP_MS);
      const r = await gens.run(() => ({
        kind: 'rate',
        url: `${running.url}/bench`,
        headers: {},
        connections: 25,
        bytes: 64,
        rate: rate / 2,
        seconds,
        warmupMs: 1000,
      }));
      clearTimeout(mark);
      const cpuMs = treeCpuMs(running.pid!) - cpu0;
      const windowS = (performance.now() - t0) / 1000;
      await running.stop();
      const sent = r.reduce((a, x) => a + (x.sent as number), 0);
      const received = r.reduce((a, x) => a + (x.received as number), 0);
      if (t0 === 0 || received < sent) {
        failed = true;
        console.log(`${which}: ${received}/${sent} back${t0 === 0 ? ', the run ended before the warm-up' : ''}: no figure`);
        continue;
      }
      const us = (cpuMs * 1000) / (rate * windowS);
      perMessage[which]!.push(us);
      console.log(
        `round ${round + 1} ${which.padEnd(7)} ${us.toFixed(2)} µs CPU per message (${Math.round(cpuMs / 10 / windowS)}% of a core), ${received}/${sent} back`,
      );
    }
  }
} finally {
  await gens.stop();
  echo.child.kill('SIGKILL');
}
if (failed || perMessage.wsguard!.length === 0 || perMessage.nginx!.length === 0) {
  console.log('no comparison: a run lost messages or gave no figure');
  process.exit(1);
}
// µs per message: lower is better, so of two rounds the median is the higher (medianRound).
const w = medianRound(perMessage.wsguard!, true);
const n = medianRound(perMessage.nginx!, true);
console.log(
  `at ${rate} msg/s: wsguard ${w.toFixed(2)} µs, nginx ${n.toFixed(2)} µs per message; wsguard relays ${(n / w).toFixed(2)}× nginx's messages per core`,
);
