import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { GeneratorPool, medianRound } from '../../bench/compare/base.ts';
import { highestPassing, type Step } from '../../bench/compare/search.ts';

/** A system whose bar holds up to `limit` and that keeps up with offers up to `keepsUpTo`; records what was tried. */
function system(limit: number, keepsUpTo = Infinity) {
  const tried: number[] = [];
  const step = async (rate: number): Promise<Step> => {
    tried.push(rate);
    return { ok: rate <= limit, saturated: rate > keepsUpTo };
  };
  return { tried, step };
}

describe('highestPassing (the benchmark rate search)', () => {
  it('doubles while steps pass, then bisects between the last pass and the first failure', async () => {
    const s = system(37_000);
    const rate = await highestPassing(10_000, s.step, { doublings: 6, halvings: 4, bisections: 3 });
    expect(s.tried).toEqual([10_000, 20_000, 40_000, 30_000, 35_000, 37_500]);
    expect(rate).toBe(35_000);
  });

  it('halves while the start rate fails, then bisects from the first pass', async () => {
    const s = system(30_000);
    const rate = await highestPassing(100_000, s.step, { doublings: 6, halvings: 4, bisections: 2 });
    expect(s.tried).toEqual([100_000, 50_000, 25_000, 37_500, 31_250]);
    expect(rate).toBe(25_000);
  });

  it('stops doubling where the system no longer keeps up, and does not bisect above it', async () => {
    const s = system(Infinity, 5_000);
    const rate = await highestPassing(2_000, s.step, { doublings: 5, halvings: 2, bisections: 2 });
    expect(s.tried).toEqual([2_000, 4_000, 8_000]);
    expect(rate).toBe(8_000);
  });

  it('bisects towards the next doubling when no step failed', async () => {
    const s = system(Infinity);
    const rate = await highestPassing(1_000, s.step, { doublings: 2, halvings: 0, bisections: 1 });
    expect(s.tried).toEqual([1_000, 2_000, 3_000]);
    expect(rate).toBe(3_000);
  });

  it('is 0 when nothing passed, never a rate that was not measured to pass', async () => {
    const s = system(100);
    const rate = await highestPassing(10_000, s.step, { doublings: 3, halvings: 2, bisections: 0 });
    expect(s.tried).toEqual([10_000, 5_000, 2_500]);
    expect(rate).toBe(0);
  });
});

describe('medianRound (a comparison cell)', () => {
  it('is the middle round of an odd number', () => {
    expect(medianRound([5, 1, 9], false)).toBe(5);
    expect(medianRound([5, 1, 9], true)).toBe(5);
  });

  it('is the worse of the two middle rounds of an even number, never their mean', () => {
    expect(medianRound([4_000, 8_000], false)).toBe(4_000);
    expect(medianRound([4.2, 6.3], true)).toBe(6.3);
    expect(medianRound([1, 2, 3, 10], false)).toBe(2);
  });
});

describe('the generator’s paced upgrade churn', () => {
  let server: http.Server | null = null;
  let pool: GeneratorPool | null = null;
  afterEach(async () => {
    await pool?.stop();
    pool = null;
    await new Promise((done) => (server ? server.close(done) : done(undefined)));
    server = null;
  });

  it('starts attempts on the schedule, never more than rate × seconds, and counts each answer by status', async () => {
    let upgradesSeen = 0;
    server = http.createServer();
    server.on('upgrade', (_req, socket: Socket) => {
      upgradesSeen++;
      socket.on('error', () => {}); // the generator closes each attempt with a reset
      socket.end('HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n');
    });
    await new Promise<void>((done) => server!.listen(0, '127.0.0.1', done));
    const port = (server.address() as AddressInfo).port;
    pool = await GeneratorPool.start(1);
    const [r] = await pool.run(() => ({
      kind: 'upgrades',
      url: `ws://127.0.0.1:${port}/`,
      headers: {},
      seconds: 1,
      concurrency: 8,
      rate: 100,
      fixedSource: '127.0.0.1',
    }));
    const statuses = r!.statuses as Record<string, number>;
    expect(Object.keys(statuses)).toEqual(['429']);
    // Unpaced, 8 in flight against a local server make thousands in a second.
    expect(statuses['429']).toBeLessThanOrEqual(100);
    expect(statuses['429']).toBeGreaterThanOrEqual(50);
    expect(upgradesSeen).toBe(statuses['429']);
  });
});
