/**
 * Reproducer for a rare race at upgrade (not a speed benchmark): a freshly started `wsguard serve`
 * (child process) in front of the uWS echo upstream, 50 connections opened one after another, then
 * each keeps 100 messages in flight for a second. Now and then one connection is dropped by uWS right
 * after its 101 (the gateway records close 1006 within 0.1 s of open, nothing relayed), which
 * bench/relay.ts reports as "connections closed early: 1006".
 *
 *   npx tsx bench/upgrade-race.ts [--runs 100]
 *
 * Prints how many runs lost a connection. Exit 0 when none did, 1 when some did, 2 when no run
 * completed (nothing was tested). Loopback only; bounded by --runs and the load's own deadlines.
 */
import { startEchoChild } from './lib/echo-server.ts';
import { startGatewayChild } from './lib/gateway-child.ts';
import { runLoad } from './lib/load.ts';

const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 100;
if (!Number.isInteger(runs) || runs < 1 || runs > 10_000) {
  process.stderr.write('--runs must be a whole number from 1 to 10000\n');
  process.exit(2);
}

const echo = await startEchoChild();
let completed = 0;
let lost = 0;
for (let i = 0; i < runs; i++) {
  const gw = await startGatewayChild(echo.port);
  try {
    await runLoad(`ws://127.0.0.1:${gw.port}/`, {
      connections: 50,
      bytes: 64,
      window: 100,
      seconds: 1,
      warmupSeconds: 0.2,
      ratePerSecond: 20_000,
      latencySeconds: 0.2,
    });
    completed++;
  } catch (err) {
    const message = (err as Error).message;
    if (/closed early/.test(message)) {
      completed++;
      lost++;
      process.stdout.write(`run ${i}: ${message}\n`);
    } else {
      process.stdout.write(`run ${i} did not complete: ${message}\n`);
    }
  } finally {
    await gw.stop();
  }
}
echo.child.disconnect();
process.stdout.write(`runs completed ${completed} of ${runs} (${completed * 50} connections); runs that lost a connection: ${lost}\n`);
process.exit(completed === 0 ? 2 : lost > 0 ? 1 : 0);
