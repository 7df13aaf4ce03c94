import { type Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

/**
 * A browser can send a token only as a subprotocol, and fails any handshake whose answer selects
 * none of the subprotocols it offered. The contract (docs/contracts.md "Tokens from a browser"):
 * offer `wsguard.auth` beside `bearer.<token>`; wsguard selects the marker when the app selects
 * nothing, and never echoes the token. Checked in Debian's Chromium, driven by playwright-core.
 */

describe('tokens from a browser, in headless Chromium (Debian package chromium; .ci/run installs it)', () => {
  let browser: Browser;
  let upstream: TestUpstream;
  const gateways: TestGateway[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
    upstream = await startEchoUpstream({ select: () => false });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    for (const gw of gateways) await gw.close();
    await upstream?.close();
  });

  /** Runs a WebSocket in the page: resolves with what the browser saw (open + protocol + echo, or the close). */
  async function inBrowser(url: string, protocols: string[]) {
    const page = await browser.newPage();
    try {
      return await page.evaluate(
        ([u, p]) =>
          new Promise<{ opened: boolean; protocol: string; echo: string | null; code: number; reason: string }>((resolve) => {
            const ws = new WebSocket(u as string, p as string[]);
            let opened = false;
            let echo: string | null = null;
            ws.onopen = () => {
              opened = true;
              ws.send('from the browser');
            };
            ws.onmessage = (e) => {
              echo = String(e.data);
              ws.close(1000);
            };
            ws.onclose = (e) => resolve({ opened, protocol: ws.protocol, echo, code: e.code, reason: e.reason });
          }),
        [url, protocols] as const,
      );
    } finally {
      await page.close();
    }
  }

  it('opens with the marker selected, relays both ways, and the app sees neither marker nor token', async () => {
    const gw = await startTestGateway(upstream.url);
    gateways.push(gw);
    const token = await signToken({ sub: 'browser-user' });
    const seen = await inBrowser(`${gw.base}/ws/chat`, ['wsguard.auth', `bearer.${token}`]);
    expect(seen).toMatchObject({ opened: true, protocol: 'wsguard.auth', echo: 'from the browser', code: 1000 });
    const h = upstream.handshakes.at(-1)!.headers;
    expect(h['sec-websocket-protocol']).toBeUndefined();
    expect(JSON.stringify(h)).not.toContain(token);
  });

  it('lets the browser read the rejection code in rejectWith: close mode', async () => {
    const gw = await startTestGateway(upstream.url, { server: { rejectWith: 'close' } });
    gateways.push(gw);
    const seen = await inBrowser(`${gw.base}/ws/chat`, ['wsguard.auth', 'bearer.not-a-valid-token']);
    expect(seen.opened).toBe(true);
    expect(seen.code).toBe(4001);
    expect(JSON.parse(seen.reason)).toEqual({ r: 'auth' });
  });
});
