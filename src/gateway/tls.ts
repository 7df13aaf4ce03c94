import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { AppOptions } from 'uWebSockets.js';
import type { ServerTlsConfig, UpstreamTlsConfig } from '../config/schema.ts';

/** The `server_name` label of the default pair (the one served when SNI names no entry). */
export const DEFAULT_SERVER_NAME = 'default';

export interface PairFiles {
  certFile: string;
  keyFile: string;
  caFile?: string | undefined;
  passphrase?: string | undefined;
}

/** One validated pair: what uWS is told to load, and what the metrics and logs say about it. */
export interface LoadedPair {
  /** DEFAULT_SERVER_NAME or the SNI name. */
  serverName: string;
  /** Option path for errors (server.tls, server.tls.sni[1]). */
  option: string;
  files: PairFiles;
  /** sha256 over the bytes validated, to tell a real change from a touch and to catch a file rewritten mid-load. */
  digest: string;
  serial: string;
  notAfterMs: number;
}

export interface LoadedTls {
  pairs: LoadedPair[];
  digest: string;
}

function readOption(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${option}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * Reads and checks one pair with Node's crypto before uWS sees it: uWS only says "App construction
 * failed" for a missing file, a bad PEM or a key that does not match, naming neither option nor file.
 */
export function loadPair(files: PairFiles, serverName: string, option: string, nowMs = Date.now()): LoadedPair {
  const certPem = readOption(files.certFile, `${option}.certFile`);
  const keyPem = readOption(files.keyFile, `${option}.keyFile`);
  const caPem = files.caFile ? readOption(files.caFile, `${option}.caFile`) : undefined;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new Error(`${option}.certFile: ${files.certFile} is not a PEM certificate (${(err as Error).message})`, { cause: err });
  }
  let key;
  try {
    key = createPrivateKey({ key: keyPem, ...(files.passphrase !== undefined ? { passphrase: files.passphrase } : {}) });
  } catch (err) {
    throw new Error(`${option}.keyFile: ${files.keyFile} is not a usable PEM private key (${(err as Error).message}; wrong passphrase?)`, {
      cause: err,
    });
  }
  if (!cert.checkPrivateKey(key))
    throw new Error(`${option}.keyFile: ${files.keyFile} does not match the certificate in ${files.certFile}`);
  const notAfterMs = Date.parse(cert.validTo);
  if (notAfterMs <= nowMs) throw new Error(`${option}.certFile: ${files.certFile} expired at ${cert.validTo}`);
  try {
    tls.createSecureContext({
      cert: caPem ? Buffer.concat([certPem, Buffer.from('\n'), caPem]) : certPem,
      key: keyPem,
      ...(files.passphrase !== undefined ? { passphrase: files.passphrase } : {}),
    });
  } catch (err) {
    throw new Error(`${option}: the pair does not make a TLS context (${(err as Error).message})`, { cause: err });
  }
  const digest = createHash('sha256')
    .update(certPem)
    .update(keyPem)
    .update(caPem ?? '')
    .digest('hex');
  return { serverName, option, files, digest, serial: cert.serialNumber, notAfterMs };
}

/** Loads the default pair and every SNI pair; throws on the first bad one, naming its option. */
export function loadServerTls(config: ServerTlsConfig, nowMs = Date.now()): LoadedTls {
  const pairs = [
    loadPair(config, DEFAULT_SERVER_NAME, 'server.tls', nowMs),
    ...config.sni.map((e, i) => loadPair(e, e.serverName, `server.tls.sni[${i}]`, nowMs)),
  ];
  return { pairs, digest: pairs.map((p) => p.digest).join(':') };
}

/** The digest of the files as they are now, or null if one cannot be read. */
export function currentDigest(pairs: readonly LoadedPair[]): string | null {
  try {
    return pairs
      .map((p) =>
        createHash('sha256')
          .update(readFileSync(p.files.certFile))
          .update(readFileSync(p.files.keyFile))
          .update(p.files.caFile ? readFileSync(p.files.caFile) : '')
          .digest('hex'),
      )
      .join(':');
  } catch {
    return null;
  }
}

/** uWS options for one pair. uSockets already refuses TLS below 1.2. */
export function uwsOptions(pair: LoadedPair): AppOptions {
  return {
    cert_file_name: pair.files.certFile,
    key_file_name: pair.files.keyFile,
    ...(pair.files.caFile ? { ca_file_name: pair.files.caFile } : {}),
    ...(pair.files.passphrase !== undefined ? { passphrase: pair.files.passphrase } : {}),
  };
}

/** node:tls options for the upstream leg (files read once at start-up; the upstream's CA and client pair). */
export function upstreamTlsOptions(config: UpstreamTlsConfig): tls.ConnectionOptions {
  const o: tls.ConnectionOptions = {};
  const ca = config.caFile ? readOption(config.caFile, 'upstream.tls.caFile') : undefined;
  if (config.certFile && config.keyFile) {
    const pair = loadPair(
      { certFile: config.certFile, keyFile: config.keyFile, passphrase: config.passphrase },
      'upstream',
      'upstream.tls',
    );
    o.cert = readOption(pair.files.certFile, 'upstream.tls.certFile');
    o.key = readOption(pair.files.keyFile, 'upstream.tls.keyFile');
    if (config.passphrase !== undefined) o.passphrase = config.passphrase;
  }
  if (ca) {
    o.ca = ca;
    try {
      // createSecureContext accepts a bundle with no certificate in it (a key file by mistake): parse the first one too.
      new X509Certificate(ca);
      tls.createSecureContext({ ca });
    } catch (err) {
      throw new Error(`upstream.tls.caFile: ${config.caFile} is not a PEM CA bundle (${(err as Error).message})`, { cause: err });
    }
  }
  if (config.serverName) o.servername = config.serverName;
  return o;
}

/** Every TLS file problem of a config, each naming its option (`wsguard config check`). */
export function tlsFileProblems(config: { server: { tls?: ServerTlsConfig | undefined }; upstream: { tls: UpstreamTlsConfig } }): string[] {
  const problems: string[] = [];
  const server = config.server.tls;
  if (server) {
    const entries: [PairFiles, string, string][] = [
      [server, DEFAULT_SERVER_NAME, 'server.tls'],
      ...server.sni.map((e, i): [PairFiles, string, string] => [e, e.serverName, `server.tls.sni[${i}]`]),
    ];
    for (const [files, name, option] of entries) {
      try {
        loadPair(files, name, option);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
  }
  try {
    upstreamTlsOptions(config.upstream.tls);
  } catch (err) {
    problems.push((err as Error).message);
  }
  return problems;
}
