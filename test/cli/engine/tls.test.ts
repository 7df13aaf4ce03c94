import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { runFlood } from '../../../cli/engine/flood.ts';
import { floodOptions } from '../helpers/flood-options.ts';

describe('TLS failures', () => {
  it('counts an untrusted certificate under tls.*, not as a socket error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wsguard-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const https = createServer({ key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) });
    const wss = new WebSocketServer({ server: https });
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
    try {
      const port = (https.address() as AddressInfo).port;
      const r = await runFlood(floodOptions(`wss://127.0.0.1:${port}/`, { connections: 2, durationSec: 0.3 }));
      const keys = Object.keys(r.outcomes);
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatch(/^tls\.(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_CERT_ALTNAME_INVALID)$/);
      expect(r.outcomes[keys[0]!]).toBe(2);
      const insecure = await runFlood(floodOptions(`wss://127.0.0.1:${port}/`, { connections: 2, durationSec: 0.3, insecure: true }));
      expect(insecure.outcomes).toEqual({ completed: 2 });
    } finally {
      wss.close();
      https.closeAllConnections();
      await new Promise<void>((resolve) => https.close(() => resolve()));
    }
  });
});
