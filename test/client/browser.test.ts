import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

/**
 * The bundle wsguard serves at /client.js, in Debian's Chromium (playwright-core): a page imports
 * it from the gateway, connects with its token as a subprotocol entry, is refused by the concurrent
 * limit (1) while a Node client holds the slot, backs off, and gets in once the slot frees.
 */

interface PageEvent {
  type: string;
  at: number;
  e: Record<string, unknown>;
}

describe('wsguard/client bundle in headless Chromium', () => {
  let browser: Browser;
  let upstream: TestUpstream;
  const stops: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    browser = await launchChromium();
    upstream = await startEchoUpstream({ select: () => false });
  }, 30_000);

  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
  });

  afterAll(async () => {
    await browser?.close();
    await upstream?.close();
  });

  /** Loads the bundle from the gateway into a blank page and starts a client there; events land in window.__events. */
  async function browserClient(gw: TestGateway, token: string): Promise<Page> {
    const page = await browser.newPage();
    stops.push(() => page.close());
    // A page on the gateway's own origin: Chromium refuses a loopback module to an opaque-origin page
    // (Private Network Access), as it would to any public page importing from a private address.
    await page.goto(`http://127.0.0.1:${gw.port}/client.js`);
    // A module script as an app page would have it (evaluate's functions are rewritten by vitest's transform).
    await page.addScriptTag({
      type: 'module',
      content: `
        import { connect } from '/client.js';
        window.__events = [];
        const client = connect({ url: ${JSON.stringify(`${gw.base}/ws/echo`)}, token: () => ${JSON.stringify(token)},
          backoff: { baseMs: 200, capMs: 2000, hintJitter: 0.2 } });
        for (const t of ['open', 'message', 'reconnecting', 'close', 'giveup', 'dropped'])
          client.on(t, (e) => window.__events.push({ type: t, at: Date.now(), e: t === 'message' ? { data: String(e.data) } : e }));
        window.__client = client;
      `,
    });
    await page.waitForFunction(() => '__client' in globalThis, null, { timeout: 10_000 });
    return page;
  }

  const eventsOf = (page: Page) => page.evaluate(() => (globalThis as unknown as { __events: PageEvent[] }).__events);

  async function holdSlot(gw: TestGateway, token: string): Promise<WebSocket> {
    const ws = new WebSocket(`${gw.base}/ws/echo`, ['wsguard.auth', `bearer.${token}`]);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return ws;
  }

  for (const rejectWith of ['http', 'close'] as const) {
    it(`rejectWith ${rejectWith}: refused by the concurrent limit, backs off, reconnects after the slot frees`, async () => {
      const gw = await startTestGateway(upstream.url, {
        client: { serve: true },
        server: { rejectWith },
        limits: { attempts: { max: 1000 }, concurrent: { max: 1, retryAfterSec: 1 } },
      });
      stops.push(() => gw.close());
      const token = await signToken({ sub: 'browser-user' });
      const holder = await holdSlot(gw, token);
      const handshakesBefore = upstream.handshakes.length;
      const page = await browserClient(gw, token);
      // Two refusals, each followed by a backoff.
      await page.waitForFunction(
        () => (globalThis as unknown as { __events: PageEvent[] }).__events.filter((x) => x.type === 'reconnecting').length >= 2,
        null,
        {
          timeout: 15_000,
        },
      );
      holder.close();
      await page.waitForFunction(
        () => (globalThis as unknown as { __events: PageEvent[] }).__events.some((x) => x.type === 'open' && Number(x.e['attempt']) > 0),
        null,
        {
          timeout: 15_000,
        },
      );
      const echoed = await page.evaluate(
        () =>
          new Promise<string>((resolve) => {
            const w = globalThis as unknown as { __events: PageEvent[]; __client: { send(d: string): boolean } };
            const n = w.__events.length;
            w.__client.send('from the page');
            const poll = () => {
              const m = w.__events.slice(n).find((x) => x.type === 'message');
              if (m) resolve(String(m.e['data']));
              else setTimeout(poll, 20);
            };
            poll();
          }),
      );
      expect(echoed).toBe('from the page');
      const events = await eventsOf(page);
      const retries = events.filter((x) => x.type === 'reconnecting').map((x) => x.e);
      if (rejectWith === 'http') {
        // A browser sees a refused handshake as 1006: it backs off by the policy, never in a tight loop.
        for (const r of retries.filter((x) => x['code'] === 1006)) expect(Number(r['delayMs'])).toBeGreaterThanOrEqual(200);
        expect(retries[0]).toMatchObject({ code: 1006, action: 'backoff' });
      } else {
        // The rejection socket opens (the marker is selected) and closes with 4100 and retry_ms.
        expect(retries[0]).toMatchObject({ code: 4100, action: 'backoff', hintMs: 1000, reason: 'close 4100 conn_limit' });
        expect(Number(retries[0]!['delayMs'])).toBeGreaterThanOrEqual(1000);
      }
      // The token went as a subprotocol; the app saw neither it nor the marker.
      const seen = upstream.handshakes.slice(handshakesBefore);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.headers['sec-websocket-protocol']).toBeUndefined();
      expect(JSON.stringify(seen[0]!.headers)).not.toContain(token);
    }, 40_000);
  }
});
