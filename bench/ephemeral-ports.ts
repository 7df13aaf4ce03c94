/**
 * Ephemeral ports on the upstream leg: drives upgrade churn (fresh connection each, dropped at once)
 * through `wsguard serve` for a while and counts the sockets left in TIME_WAIT towards the upstream
 * port, on wsguard's side (source = the dialling address) and the upstream's. With the local port
 * range (/proc/sys/net/ipv4/ip_local_port_range) and the 60 s TIME_WAIT, this says at which dial
 * rate one source address runs out of ports.
 *
 *   npx tsx bench/ephemeral-ports.ts [--seconds 10] [--local-addresses 127.0.0.2,127.0.0.3]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { GeneratorPool } from './compare/base.ts';
import { upgradeRate, statusSummary } from './compare/drive.ts';
import { startEchoChild } from './lib/echo-server.ts';
import { startGatewayChild } from './lib/gateway-child.ts';
import { arg } from './lib/args.ts';

const seconds = Number(arg('seconds') ?? 10);
const locals = arg('local-addresses')?.split(',') ?? [];

const timeWait = (filter: string) =>
  execFileSync('ss', ['-Htan', 'state', 'time-wait', filter], { encoding: 'utf8' }).split('\n').filter(Boolean).length;

const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
const echo = await startEchoChild();
const gw = await startGatewayChild(
  echo.port,
  locals.map((a, i) => `upstream.localAddresses.${i}=${a}`),
);
const gens = await GeneratorPool.start(2);
try {
  const before = { dialler: timeWait(`( dport = :${echo.port} )`), upstream: timeWait(`( sport = :${echo.port} )`) };
  const results = await gens.run(() => ({
    kind: 'upgrades',
    url: `ws://127.0.0.1:${gw.port}/bench`,
    headers: {},
    seconds,
    concurrency: 32,
  }));
  const dialler = timeWait(`( dport = :${echo.port} )`) - before.dialler;
  const upstream = timeWait(`( sport = :${echo.port} )`) - before.upstream;
  const rate = upgradeRate(results);
  const perSource = dialler / Math.max(1, locals.length);
  console.log(`${Math.round(rate)} upgrades/s for ${seconds} s (${statusSummary(results)})`);
  console.log(`TIME_WAIT towards the upstream: ${dialler} on the dialling side, ${upstream} on the upstream's side`);
  console.log(
    `local port range ${lo}-${hi}: ${hi! - lo! + 1} ports per source address; at this rate one source address ` +
      `${dialler > 0 ? `fills it in ${((hi! - lo! + 1) / (perSource / seconds)).toFixed(0)} s (TIME_WAIT lasts 60 s)` : 'keeps no TIME_WAIT (the upstream closes first)'}`,
  );
} finally {
  await gens.stop();
  await gw.stop();
  echo.child.kill('SIGKILL');
}
