/**
 * CPU profile of `wsguard serve` (compiled build when dist/ is current) under HS256 upgrade churn,
 * or with `--relay RATE` under paced relay load (64 B, 50 connections, RATE msg/s in all):
 * `npx tsx bench/handshake-profile.ts [--seconds 8] [--relay 50000] [--out /tmp/wsguard-prof]`, then
 * open the .cpuprofile in Chrome DevTools. wsguard is stopped with SIGTERM so that Node writes the profile.
 */
import { SignJWT } from 'jose';
import { startEchoChild } from './lib/echo-server.ts';
import { startGatewayChild } from './lib/gateway-child.ts';
import { GeneratorPool, ORIGIN } from './compare/base.ts';
import { statusSummary, upgradeRate } from './compare/drive.ts';
import { arg } from './lib/args.ts';
const seconds = Number(arg('seconds', '8'));
const out = arg('out', '/tmp/wsguard-prof');
const secret = 'bench-secret-that-is-at-least-32-characters-long';
const token = await new SignJWT({ sub: 'b' })
  .setProtectedHeader({ alg: 'HS256' })
  .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
  .sign(new TextEncoder().encode(secret));
const echo = await startEchoChild();
const gens = await GeneratorPool.start(2);
const gw = await startGatewayChild(
  echo.port,
  ['routes.0.allowAnonymous=false', `origins.allowed.0=${ORIGIN}`, `auth.secret=${secret}`],
  [],
  ['--cpu-prof', `--cpu-prof-dir=${out}`],
);
const relayRate = Number(arg('relay', '0'));
const headers = { origin: ORIGIN, authorization: `Bearer ${token}` };
const url = `ws://127.0.0.1:${gw.port}/bench`;
if (relayRate > 0) {
  const r = await gens.run(() => ({
    kind: 'rate',
    url,
    headers,
    connections: 25,
    bytes: 64,
    rate: relayRate / 2,
    seconds,
    warmupMs: 1000,
  }));
  const sent = r.reduce((a, x) => a + (x.sent as number), 0);
  const received = r.reduce((a, x) => a + (x.received as number), 0);
  console.log(
    `${received}/${sent} echoed, worst generator p99 ${Math.max(...r.map((x) => x.p99 as number)).toFixed(2)} ms; profile in ${out}`,
  );
} else {
  const r = await gens.run(() => ({ kind: 'upgrades', url, headers, seconds, concurrency: 16 }));
  console.log(`${Math.round(upgradeRate(r))} upgrades/s (${statusSummary(r)}); profile in ${out}`);
}
await new Promise((res) => {
  gw.child.once('exit', res);
  gw.child.kill('SIGTERM');
});
await gens.stop();
echo.child.kill('SIGKILL');
