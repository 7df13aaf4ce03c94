/**
 * Token verifications per second and CPU per verification through createTokenVerifier, in-process, one core: the handshake's
 * auth cost without the network. `npx tsx bench/token-verify.ts [--seconds 3]`
 */
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { createTokenVerifier } from '../src/auth/token-verifier.ts';
import { configSchema } from '../src/config/schema.ts';

const option = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
};
const seconds = option('seconds', 3);
const INFLIGHT = option('inflight', 64);
const secret = 'bench-secret-that-is-at-least-32-characters-long';
const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
const auth = configSchema.parse({
  routes: [{ path: '/', upstream: 'ws://127.0.0.1:1/' }],
  auth: { secret, algorithms: ['HS256', 'ES256'], publicKeys: [await exportSPKI(publicKey)] },
}).auth;
const verifier = await createTokenVerifier(auth);
const exp = Math.floor(Date.now() / 1000) + 3600;
const tokens = {
  HS256: await new SignJWT({ sub: 'b' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode(secret)),
  ES256: await new SignJWT({ sub: 'b' }).setProtectedHeader({ alg: 'ES256' }).setExpirationTime(exp).sign(privateKey),
};
for (const [alg, token] of Object.entries(tokens)) {
  for (let i = 0; i < 2000; i++) await verifier.verify(token); // warm-up
  let n = 0;
  const cpu0 = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    // INFLIGHT (64) at once: verification is async (WebCrypto), as it is under concurrent handshakes.
    await Promise.all(Array.from({ length: INFLIGHT }, () => verifier.verify(token)));
    n += INFLIGHT;
  }
  // CPU time of the whole process (WebCrypto's thread pool included) per verification: steadier than
  // the rate on a machine shared with other work.
  const cpu = process.cpuUsage(cpu0);
  console.log(`${alg}: ${Math.round(n / seconds)} verifications/s, ${((cpu.user + cpu.system) / n).toFixed(1)} µs CPU each`);
}
verifier.close();
