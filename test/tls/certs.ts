import { execFileSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { onTestFinished } from 'vitest';

/** Certificates made with Debian's openssl in a per-test tmp dir, removed after the test. */
export interface Pair {
  certFile: string;
  keyFile: string;
  /** Uppercase hex, as X509Certificate and getPeerCertificate() spell it. */
  serial: string;
}

// Two bytes with the top bit clear: DER adds no leading 00, so the hex matches what TLS reports.
let nextSerial = 0x1000 + Math.floor(Math.random() * 0x4000);

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function certDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsguard-tls-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A P-256 pair for `name` (SAN: the name and 127.0.0.1), self-signed, or signed by `ca`. */
export function makePair(
  dir: string,
  file: string,
  name: string,
  options: { ca?: Pair; days?: number; clientAuth?: boolean; isCa?: boolean } = {},
): Pair {
  const serial = (nextSerial++).toString(16).toUpperCase().padStart(4, '0');
  const certFile = join(dir, `${file}.crt`);
  const keyFile = join(dir, `${file}.key`);
  const days = String(options.days ?? 2);
  const ext = join(dir, `${file}.ext`);
  writeFileSync(
    ext,
    `subjectAltName=DNS:${name},IP:127.0.0.1\nextendedKeyUsage=${options.clientAuth ? 'clientAuth' : 'serverAuth'}\nbasicConstraints=CA:${options.ca ? 'FALSE' : 'TRUE'}\n`,
  );
  // A fresh P-256 key and the subject, for a request (signed by the CA below) or a self-signed certificate.
  const newKeyAndSubject = [
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-subj',
    `/CN=${name}`,
  ];
  if (options.ca) {
    const csr = join(dir, `${file}.csr`);
    openssl(['req', '-new', ...newKeyAndSubject, '-out', csr]);
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      options.ca.certFile,
      '-CAkey',
      options.ca.keyFile,
      '-set_serial',
      `0x${serial}`,
      '-days',
      days,
      '-out',
      certFile,
      '-extfile',
      ext,
    ]);
  } else {
    openssl([
      'req',
      '-x509',
      ...newKeyAndSubject,
      '-out',
      certFile,
      '-days',
      days,
      '-set_serial',
      `0x${serial}`,
      '-addext',
      `subjectAltName=DNS:${name},IP:127.0.0.1`,
      // A CA carries no extendedKeyUsage: OpenSSL checks the purpose along the chain, and a CA limited
      // to serverAuth makes every client certificate it signed "unsuitable" for mTLS.
      ...(options.isCa
        ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']
        : ['-addext', `extendedKeyUsage=${options.clientAuth ? 'clientAuth' : 'serverAuth'}`]),
    ]);
  }
  return { certFile, keyFile, serial };
}

/** Puts `from`'s files in place of `to`'s by rename (as cert-manager does), cert and key back to back. */
export function replacePair(from: Pair, to: { certFile: string; keyFile: string }): void {
  const c = readFileSync(from.certFile);
  const k = readFileSync(from.keyFile);
  writeFileSync(`${to.certFile}.new`, c);
  writeFileSync(`${to.keyFile}.new`, k);
  renameSync(`${to.keyFile}.new`, to.keyFile);
  renameSync(`${to.certFile}.new`, to.certFile);
}

/** The serial number of the certificate the server at port presents (for `servername`, if given). */
export function peerSerial(port: number, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername ? { servername } : {}) }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.once('error', reject);
  });
}
