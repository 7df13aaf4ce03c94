import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseConfig, type ConfigError } from '../../src/config/load.ts';
import { useGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { certDir, makePair, peerSerial } from './certs.ts';

async function echoOnce(url: string, tls: { ca: Buffer; servername?: string }, text: string): Promise<string> {
  const headers = { authorization: `Bearer ${await signToken()}` };
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ...tls, headers });
    ws.once('open', () => ws.send(text));
    ws.once('message', (m) => {
      ws.close();
      resolve(m.toString());
    });
    ws.once('error', reject);
  });
}

describe('wss:// at the sidecar', () => {
  it('completes a wss handshake, verified against the certificate, and relays both ways', async () => {
    const dir = certDir();
    const pair = makePair(dir, 'server', 'localhost');
    const g = await useGateway({ config: { server: { tls: { certFile: pair.certFile, keyFile: pair.keyFile } } } });
    expect(g.server.gateway.tls).toBe(true);
    const echoed = await echoOnce(`wss://127.0.0.1:${g.port}/ws/echo`, { ca: readFileSync(pair.certFile) }, 'over tls');
    expect(echoed).toBe('over tls');
    expect(await peerSerial(g.port)).toBe(pair.serial);
  });

  it('picks the certificate by SNI name, and the default pair for any other name or none', async () => {
    const dir = certDir();
    const main = makePair(dir, 'main', 'main.test');
    const a = makePair(dir, 'a', 'a.example.test');
    const w = makePair(dir, 'w', 'wild.example.test');
    const g = await useGateway({
      config: {
        server: {
          tls: {
            certFile: main.certFile,
            keyFile: main.keyFile,
            sni: [
              { serverName: 'a.example.test', certFile: a.certFile, keyFile: a.keyFile },
              { serverName: '*.w.example.test', certFile: w.certFile, keyFile: w.keyFile },
            ],
          },
        },
      },
    });
    expect(await peerSerial(g.port, 'a.example.test')).toBe(a.serial);
    expect(await peerSerial(g.port, 'x.w.example.test')).toBe(w.serial);
    expect(await peerSerial(g.port, 'other.test')).toBe(main.serial);
    expect(await peerSerial(g.port)).toBe(main.serial);
    // The routes answer under an SNI name too (uWS gives each name its own router).
    const echoed = await echoOnce(
      `wss://127.0.0.1:${g.port}/ws/echo`,
      { servername: 'a.example.test', ca: readFileSync(a.certFile) },
      'sni',
    );
    expect(echoed).toBe('sni');
  });

  it("exports each served certificate's not-after as the expiry gauge", async () => {
    const dir = certDir();
    const main = makePair(dir, 'main', 'main.test', { days: 3 });
    const a = makePair(dir, 'a', 'a.test', { days: 9 });
    const g = await useGateway({
      config: {
        server: {
          tls: {
            certFile: main.certFile,
            keyFile: main.keyFile,
            sni: [{ serverName: 'a.test', certFile: a.certFile, keyFile: a.keyFile }],
          },
        },
      },
    });
    const s = await g.metrics();
    const notAfter = (file: string) => Math.floor(Date.parse(new X509Certificate(readFileSync(file)).validTo) / 1000);
    expect(s.value('wsguard_tls_certificate_expiry_timestamp_seconds', { server_name: 'default' })).toBe(notAfter(main.certFile));
    expect(s.value('wsguard_tls_certificate_expiry_timestamp_seconds', { server_name: 'a.test' })).toBe(notAfter(a.certFile));
  });

  it('refuses a config whose TLS files are missing or do not match, naming the option', () => {
    const dir = certDir();
    const one = makePair(dir, 'one', 'one.test');
    const two = makePair(dir, 'two', 'two.test');
    const problems = (raw: unknown): string[] => {
      try {
        parseConfig(raw);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    expect(problems({ server: { tls: { certFile: `${dir}/missing.crt`, keyFile: one.keyFile } } }).join('\n')).toMatch(
      /server\.tls\.certFile: cannot read .*missing\.crt: ENOENT/,
    );
    expect(problems({ server: { tls: { certFile: one.certFile, keyFile: two.keyFile } } }).join('\n')).toMatch(
      /server\.tls\.keyFile: .* does not match the certificate/,
    );
    expect(problems({ upstream: { tls: { caFile: one.keyFile } } }).join('\n')).toMatch(/upstream\.tls\.caFile/);
    expect(problems({ upstream: { tls: { certFile: one.certFile } } }).join('\n')).toMatch(
      /upstream\.tls\.keyFile: certFile and keyFile go together/,
    );
  });
});
