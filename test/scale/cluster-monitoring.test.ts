import { CLUSTER_REPORT_INTERVAL_MS, CLUSTER_REPORT_TTL_FACTOR } from '../../src/monitoring/cluster-stats.ts';
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { attempt } from '../helpers/client.ts';
import { signToken, TEST_SECRET } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { pauseClients, startRedis, type TestRedis } from './redis-server.ts';
import { startReplica, until, type Replica } from './replicas.ts';

// Two `wsguard serve` processes sharing one real redis-server; each answers the monitoring API with
// the sums over the live replicas, its own figures beside them.
const METRICS = '/api/monitoring/websocket/metrics/';
const ACTIVE = '/api/monitoring/websocket/active-connections/';
const REPORT_TTL_MS = CLUSTER_REPORT_INTERVAL_MS * CLUSTER_REPORT_TTL_FACTOR;

let redis: TestRedis | null = null;
let upstream: TestUpstream | null = null;
const replicas: Replica[] = [];
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.all(replicas.splice(0).map((r) => r.stop()));
  await upstream?.close();
  await redis?.stop();
  upstream = null;
  redis = null;
});

interface Figures {
  active_connections: number;
  connections_today: number;
}
interface MetricsBody extends Figures {
  messages_sent: number;
  scope?: 'cluster' | 'local';
  local?: Figures;
  cluster?:
    | ({ available: true; replicas: Array<Figures & { instance: string; reported_at: string }> } & Figures)
    | { available: false; error: string };
}

async function startCluster(n: number): Promise<Replica[]> {
  redis = await startRedis();
  upstream = await startEchoUpstream();
  const args = [
    '--route',
    `/ws/=${upstream.url}/ws/`,
    ...[
      'routes.0.allowAnonymous=true',
      `auth.secret=${TEST_SECRET}`,
      'limits.store=redis',
      `limits.redis.url=${redis.url}`,
      'limits.redis.deadlineMs=1000',
      'limits.concurrent.max=100',
      'limits.attempts.max=1000',
      'telemetry.logs.level=warn',
    ].flatMap((s) => ['--set', s]),
  ];
  const started = await Promise.all(Array.from({ length: n }, () => startReplica(args)));
  replicas.push(...started);
  return started;
}

async function open(r: Replica, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const a = await attempt(`${r.ws}/ws/x`);
    expect(a.kind).toBe('open');
    if (a.kind === 'open') sockets.push(a.ws);
  }
}

async function get<T>(r: Replica, path: string): Promise<T> {
  const token = await signToken({ aud: 'wsguard-monitoring', role: 'admin' });
  const res = await fetch(`${r.admin}${path}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

const metrics = (r: Replica) => get<MetricsBody>(r, METRICS);
const liveCount = (b: MetricsBody) => (b.cluster?.available ? b.cluster.replicas.length : -1);

describe('cluster-wide monitoring API (limits.store=redis)', () => {
  it('reports the sums over the replicas and each replica its own figures beside them', async () => {
    const [a, b] = await startCluster(2);
    await open(a!, 2);
    await open(b!, 1);
    for (const r of [a!, b!]) {
      // The other replica's figures arrive with its next report (every 2 s).
      const body = await until(
        () => metrics(r),
        (m) => m.active_connections === 3 && liveCount(m) === 2,
        10_000,
        'cluster sums',
      );
      expect(body.scope).toBe('cluster');
      expect(body.connections_today).toBe(3);
      expect(body.local).toEqual(
        r === a ? { active_connections: 2, connections_today: 2 } : { active_connections: 1, connections_today: 1 },
      );
      // The reference guide's fields are all still there.
      expect(typeof body.messages_sent).toBe('number');
      const c = body.cluster!;
      if (!c.available) throw new Error('cluster view unavailable');
      expect(c.active_connections).toBe(3);
      expect(c.replicas.reduce((s, x) => s + x.active_connections, 0)).toBe(c.active_connections);
      expect(c.replicas.reduce((s, x) => s + x.connections_today, 0)).toBe(c.connections_today);
      expect(c.replicas.map((x) => x.active_connections).sort()).toEqual([1, 2]);
      expect(new Set(c.replicas.map((x) => x.instance)).size).toBe(2);
      for (const x of c.replicas) {
        expect(x.reported_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        expect(Math.abs(Date.parse(x.reported_at) - Date.now())).toBeLessThan(REPORT_TTL_MS + 2_000);
      }
    }
    expect(await get(a!, ACTIVE)).toEqual({ active_connections: 3, scope: 'cluster', local: { active_connections: 2 } });

    // Closing a connection lowers the sum on both replicas; connections_today keeps counting it.
    sockets.shift()!.close();
    for (const r of [a!, b!]) {
      const body = await until(
        () => metrics(r),
        (m) => m.active_connections === 2,
        10_000,
        'sum after a close',
      );
      expect(body.connections_today).toBe(3);
    }
  }, 90_000);

  it('a replica killed with SIGKILL drops out of the sums once its report expires', async () => {
    const [a, b] = await startCluster(2);
    await open(a!, 1);
    await open(b!, 2);
    await until(
      () => metrics(a!),
      (m) => m.active_connections === 3 && liveCount(m) === 2,
      10_000,
      'both replicas counted',
    );
    b!.child.kill('SIGKILL');
    await b!.exited;
    const killedAt = Date.now();
    // Its last report is at most one interval old, so it is still counted right after the kill.
    expect(liveCount(await metrics(a!))).toBe(2);
    const after = await until(
      () => metrics(a!),
      (m) => liveCount(m) === 1,
      REPORT_TTL_MS + 4_000,
      'killed replica dropped',
    );
    expect(Date.now() - killedAt).toBeLessThan(REPORT_TTL_MS + 4_000);
    expect(after).toMatchObject({
      scope: 'cluster',
      active_connections: 1,
      connections_today: 1,
      local: { active_connections: 1, connections_today: 1 },
    });
  }, 90_000);

  it('a replica stopped cleanly (SIGTERM) leaves the sums at once, without waiting for the TTL', async () => {
    const [a, b] = await startCluster(2);
    await open(b!, 1);
    await until(
      () => metrics(a!),
      (m) => m.active_connections === 1 && liveCount(m) === 2,
      10_000,
      'both replicas counted',
    );
    for (const ws of sockets.splice(0)) ws.terminate();
    b!.child.kill('SIGTERM');
    await b!.exited;
    expect(liveCount(await metrics(a!))).toBe(1);
  }, 90_000);

  it('Redis down: the API still answers, with this replica\'s figures and scope "local"; back to the sums when Redis returns', async () => {
    const [a, b] = await startCluster(2);
    await open(a!, 1);
    await open(b!, 1);
    await until(
      () => metrics(a!),
      (m) => m.active_connections === 2 && liveCount(m) === 2,
      10_000,
      'both replicas counted',
    );
    await redis!.kill();
    const down = await metrics(a!);
    expect(down).toMatchObject({
      scope: 'local',
      active_connections: 1,
      connections_today: 1,
      local: { active_connections: 1, connections_today: 1 },
    });
    expect(down.cluster).toMatchObject({ available: false });
    expect((down.cluster as { error: string }).error).toMatch(/unavailable/);
    expect(await get(a!, ACTIVE)).toEqual({ active_connections: 1, scope: 'local', local: { active_connections: 1 } });
    // Restarted empty: each replica's next report repopulates it.
    await redis!.restart();
    await until(
      () => metrics(a!),
      (m) => m.scope === 'cluster' && m.active_connections === 2 && liveCount(m) === 2,
      10_000,
      'sums after Redis returned',
    );
  }, 90_000);

  it('Redis hanging (CLIENT PAUSE): the API answers with the local figures within the read deadline plus a margin', async () => {
    const [a] = await startCluster(1);
    await open(a!, 1);
    await until(
      () => metrics(a!),
      (m) => m.scope === 'cluster' && liveCount(m) === 1,
      10_000,
      'cluster view',
    );
    const stallMs = 5_000;
    const stall = await pauseClients(redis!.admin, stallMs);
    const t0 = performance.now();
    const body = await metrics(a!);
    const took = performance.now() - t0;
    await stall.ended;
    expect(body).toMatchObject({ scope: 'local', active_connections: 1, local: { active_connections: 1 }, cluster: { available: false } });
    // The 500 ms read deadline, not the stall: half of it leaves a busy 2-core machine 2 s of slack.
    expect(took).toBeLessThan(stallMs / 2);
  }, 90_000);

  it('a malformed report in Redis is skipped, not summed and not fatal', async () => {
    const [a] = await startCluster(1);
    await open(a!, 1);
    await until(
      () => metrics(a!),
      (m) => m.scope === 'cluster' && liveCount(m) === 1,
      10_000,
      'cluster view',
    );
    await redis!.admin.sadd('wsguard:{monitor}:replicas', 'bogus-1', 'bogus-2');
    await redis!.admin.set('wsguard:{monitor}:r:bogus-1', 'not json', 'PX', 60_000);
    await redis!.admin.set(
      'wsguard:{monitor}:r:bogus-2',
      JSON.stringify({ active_connections: -5, connections_today: 'x', t: 0 }),
      'PX',
      60_000,
    );
    const body = await metrics(a!);
    expect(body).toMatchObject({ scope: 'cluster', active_connections: 1, connections_today: 1 });
    expect(liveCount(body)).toBe(1);
  }, 90_000);
});
