import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SPANS } from '../../src/telemetry/names.ts';
import { startTestTelemetry } from './helpers.ts';

describe('OTLP/HTTP trace export', () => {
  it('posts the spans to the configured endpoint when telemetry closes', async () => {
    const bodies: Array<{ url: string | undefined; type: string | undefined; body: string }> = [];
    const collector = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push({ url: req.url, type: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const port = (collector.address() as AddressInfo).port;
    try {
      const t = await startTestTelemetry({
        serviceName: 'wsguard-otlp-test',
        traces: { otlpEndpoint: `http://127.0.0.1:${port}/v1/traces` },
      });
      expect(t.tracing).toBe(true);
      const h = t.observer.handshakeStarted('/ws/', undefined, undefined);
      h.end('conn_limit', 'concurrent-limit');
      await t.close(); // shutdown flushes the batch
      expect(bodies.length).toBeGreaterThan(0);
      expect(bodies[0]!.url).toBe('/v1/traces');
      const all = bodies.map((b) => b.body).join('\n');
      expect(all).toContain(SPANS.handshake);
      expect(all).toContain('wsguard-otlp-test');
      expect(all).toContain('conn_limit');
    } finally {
      await new Promise<void>((resolve) => collector.close(() => resolve()));
    }
  });
});
