import type { CommandModule } from 'yargs';
import WebSocket from 'ws';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { DEMO_SECRET } from '../../src/demo/demo-config.ts';
import { startServer, type Server } from '../../src/main.ts';
import { EXIT_USAGE } from '../exit-codes.ts';

interface ServeArgs {
  config?: string;
  demo: boolean;
  host?: string;
  port?: number;
  route: string[];
  set: string[];
}

/** `--route /ws/=ws://127.0.0.1:8000/ws/` → a route entry. */
function parseRoute(text: string): { path: string; upstream: string } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new ConfigError([`--route ${text}: expected PATH=UPSTREAM_URL, e.g. /ws/=ws://127.0.0.1:8000/ws/`], 'flags');
  return { path: text.slice(0, eq), upstream: text.slice(eq + 1) };
}

function parseSet(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new ConfigError([`--set ${text}: expected OPTION=VALUE, e.g. limits.concurrent.max=8`], 'flags');
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/** Relays one message through the demo route and back, so a first run shows the whole path working. */
async function demoSelfCheck(port: number, secure: boolean): Promise<string> {
  const started = performance.now();
  return new Promise((resolve) => {
    // The self-check proves the relay path on loopback, not the certificate (which names the public host).
    const ws = new WebSocket(`${secure ? 'wss' : 'ws'}://127.0.0.1:${port}/ws/echo/`, { rejectUnauthorized: !secure });
    const timer = setTimeout(() => {
      ws.terminate();
      resolve('self-check: no echo within 3 s ✗');
    }, 3000);
    ws.on('open', () => ws.send('hello through wsguard'));
    ws.on('message', (data) => {
      clearTimeout(timer);
      const ms = (performance.now() - started).toFixed(1);
      ws.close(1000);
      resolve(`self-check: sent "hello through wsguard", got "${data.toString()}" back in ${ms} ms ✓`);
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      resolve(`self-check failed: ${err.message} ✗`);
    });
  });
}

function banner(server: Server): string {
  const { host } = server.config.server;
  const base = `${server.gateway.tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${server.gateway.port}`;
  const lines = [`wsguard listening on ${base}`];
  if (server.demo) {
    lines.push(
      `  demo upstream (built in) on ws://127.0.0.1:${server.demo.port}`,
      `  echo:      ${base}/ws/echo/`,
      `  broadcast: ${base}/ws/room/`,
      `  try:       node -e "const W=require('ws');const w=new W('${base}/ws/echo/');w.on('open',()=>w.send('hi'));w.on('message',m=>{console.log(String(m));w.close()})"`,
      `  JWT required: ${base}/ws/private/echo/  (HS256${server.config.auth.secret === DEMO_SECRET ? `, demo secret: export JWT_SECRET=${DEMO_SECRET}` : ', your auth keys'})`,
      `  demo limits: ${server.config.limits.concurrent.max} connections and ${server.config.limits.attempts.max} attempts an hour per IP, ` +
        `${server.config.messages.rate.perMinute} messages a minute per connection; origins ${server.config.origins.allowed.join(', ')}`,
    );
  } else {
    for (const r of server.config.routes) lines.push(`  ${base}${r.path} → ${r.upstream}`);
  }
  const admin = server.telemetry?.admin;
  if (admin) {
    lines.push(
      `  metrics:   ${admin.url}/metrics   health: ${admin.url}/healthz  ${admin.url}/readyz`,
      `  monitoring API (admin JWT): ${admin.url}/api/monitoring/websocket/metrics/`,
    );
  }
  if (server.gateway.tls) lines.push('  TLS: certificate files are watched; SIGHUP reloads them too.');
  lines.push('  Ctrl-C (SIGINT) or SIGTERM drains; a second signal exits at once.');
  return lines.join('\n');
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Run the sidecar: admit, limit and relay WebSocket connections to the upstream app',
  builder: (y) =>
    y
      .option('config', { alias: 'c', type: 'string', describe: 'YAML or JSON config file' })
      .option('demo', { type: 'boolean', default: false, describe: 'Front the built-in demo upstream (echo + broadcast room)' })
      .option('host', { type: 'string', describe: 'Listen address (server.host)' })
      .option('port', { alias: 'p', type: 'number', describe: 'Listen port (server.port)' })
      .option('route', { type: 'string', array: true, default: [], describe: 'PATH=UPSTREAM_URL, repeatable' })
      .option('set', { type: 'string', array: true, default: [], describe: 'OPTION=VALUE override, repeatable' })
      .example('$0 serve --demo', 'Start with the built-in demo upstream on 127.0.0.1:8080')
      .example('$0 serve -c wsguard.yaml', 'Start from a config file (env WSGUARD_* and flags override it)')
      .example('$0 serve --route /ws/=ws://127.0.0.1:8000/ws/ --set auth.secret=$SECRET', 'Front an app with a shared HS256 secret'),
  handler: async (args) => {
    let server: Server;
    try {
      // Named flags first, then --set, so that `--route … --set routes.0.allowAnonymous=true` works.
      const overrides: Array<[string, unknown]> = [];
      if (args.host !== undefined) overrides.push(['server.host', args.host]);
      if (args.port !== undefined) overrides.push(['server.port', args.port]);
      if (args.route.length) overrides.push(['routes', args.route.map(parseRoute)]);
      overrides.push(...args.set.map(parseSet));
      const config = loadConfig({ file: args.config, env: process.env, overrides });
      server = await startServer(config, { demo: args.demo });
    } catch (err) {
      process.stderr.write(`wsguard serve: ${(err as Error).message}\n`);
      process.exit(EXIT_USAGE);
    }
    process.stdout.write(`${banner(server)}\n`);
    if (server.demo) process.stdout.write(`  ${await demoSelfCheck(server.gateway.port, server.gateway.tls)}\n`);

    let signalled = false;
    const onSignal = (signal: string) => {
      if (signalled) {
        process.stderr.write(`wsguard: second ${signal}, exiting now\n`);
        process.exit(1);
      }
      signalled = true;
      process.stderr.write(`wsguard: ${signal} received, draining over ${server.config.server.drainWindowMs} ms\n`);
      server.drain().then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`wsguard: drain failed: ${(err as Error).message}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
    // Certificate rotation on demand; the outcome is logged and counted (wsguard_tls_reload_total).
    if (server.gateway.tls) process.on('SIGHUP', () => void server.gateway.reloadTls());
  },
};
