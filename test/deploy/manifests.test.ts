import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { drift, renderAll, ROOT } from '../../deploy/generate.ts';
import { envOverrides, loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { configWarnings } from '../../src/config/warnings.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { TEST_SECRET } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

/**
 * deploy/ cannot be run here (no Docker, no cluster), so every manifest is parsed and held against
 * what wsguard actually reads: the config schema (through loadConfig, env vars included), the CLI's
 * own --help, and the admin listener's paths on a real gateway.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML of any shape, read by path in assertions
type Obj = Record<string, any>;
const K8S = join(ROOT, 'deploy/k8s');

function docs(file: string): Obj[] {
  const parsed = parseAllDocuments(readFileSync(join(K8S, file), 'utf8'));
  for (const d of parsed) expect(d.errors, `${file}: ${d.errors.join('; ')}`).toEqual([]);
  return parsed.map((d) => d.toJS() as Obj).filter((d) => d != null);
}

const manifests = readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== 'wsguard.yaml');
const all = manifests.flatMap((f) => docs(f).map((doc) => ({ file: f, doc })));
const kinds = (kind: string) => all.filter((m) => m.doc.kind === kind).map((m) => m.doc);
const kustomization = docs('kustomization.yaml')[0]!;

const app = kinds('Deployment').find((d) => d.spec.template.spec.containers.some((c: Obj) => c.name === 'wsguard'))!;
const pod = app.spec.template.spec;
const wsguard = pod.containers.find((c: Obj) => c.name === 'wsguard')!;
const appContainer = pod.containers.find((c: Obj) => c.name !== 'wsguard')!;
const configFile = (wsguard.args as string[])[(wsguard.args as string[]).indexOf('--config') + 1]!;
const configMount = (wsguard.volumeMounts as Obj[]).find((m) => configFile.startsWith(`${m.mountPath}/`))!;

/** The container's env as the pod would see it: the Secret by a test secret, the pod name by a sample. */
function podEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const e of wsguard.env as Obj[]) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.secretKeyRef) env[e.name] = TEST_SECRET;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = 'wsguard-demo-7d9f-abcde';
    else throw new Error(`env ${e.name}: unexpected source ${JSON.stringify(e)}`);
  }
  return env;
}

// The config file wsguard reads in the pod: the ConfigMap's file, named as it is mounted.
const config: Config = loadConfig({ file: join(K8S, configFile.slice(configMount.mountPath.length + 1)), env: podEnv() });

function containerPort(container: Obj, port: string | number): number {
  if (typeof port === 'number') return port;
  const found = (container.ports as Obj[]).find((p) => p.name === port);
  expect(found, `${container.name} has no port named ${port}`).toBeDefined();
  return found!.containerPort;
}

describe('deploy/ manifests', () => {
  it('are in step with deploy/generate.ts and with the operations pack they copy', () => {
    expect(drift()).toEqual([]);
    expect(readFileSync(join(K8S, 'wsguard.prometheusrule.yaml'), 'utf8')).toBe(
      readFileSync(join(ROOT, 'alerts/wsguard.prometheusrule.yaml'), 'utf8'),
    );
    expect(readFileSync(join(K8S, 'wsguard.json'), 'utf8')).toBe(readFileSync(join(ROOT, 'grafana/wsguard.json'), 'utf8'));
    // Every file under deploy/ is generated: nothing there escapes the check above.
    const listed = new Set(renderAll().keys());
    const onDisk = [
      ...readdirSync(join(ROOT, 'deploy')).map((f) => `deploy/${f}`),
      ...readdirSync(K8S).map((f) => `deploy/k8s/${f}`),
      ...readdirSync(join(ROOT, 'deploy/loadgen')).map((f) => `deploy/loadgen/${f}`),
    ].filter((p) => p !== 'deploy/k8s' && p !== 'deploy/loadgen' && p !== 'deploy/generate.ts');
    expect(onDisk.filter((p) => !listed.has(p))).toEqual([]);
  });

  it('parse, and each object has an apiVersion, a kind and a name', () => {
    expect(all.length).toBeGreaterThanOrEqual(8);
    for (const { file, doc } of all) {
      expect(doc.apiVersion, file).toMatch(/^[a-z0-9./]+$/);
      expect(doc.kind, file).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(doc.metadata?.name, `${file} ${doc.kind}`).toMatch(/^[a-z0-9-]+$/);
    }
  });

  it('kustomization lists every manifest and generates the config and dashboard ConfigMaps from files that exist', () => {
    expect([...kustomization.resources].sort()).toEqual([...manifests].sort());
    expect(kustomization.resources).toContain('wsguard.prometheusrule.yaml');
    expect(kinds('PrometheusRule')).toHaveLength(1);
    const generators = kustomization.configMapGenerator as Obj[];
    for (const g of generators) for (const f of g.files as string[]) expect(existsSync(join(K8S, f)), f).toBe(true);
    const dashboard = generators.find((g) => g.files.includes('wsguard.json'))!;
    expect(dashboard.options.labels.grafana_dashboard).toBe('1');
    // The pod mounts the ConfigMap generated from the very file loaded above.
    const volume = (pod.volumes as Obj[]).find((v) => v.name === configMount.name)!;
    const generated = generators.find((g) => g.name === volume.configMap.name)!;
    expect(generated.files).toEqual([configFile.slice(configMount.mountPath.length + 1)]);
  });

  it('env var names are WSGUARD_ options the schema knows, each one on its own', () => {
    const env = podEnv();
    expect(Object.keys(env).length).toBeGreaterThan(0);
    for (const [name, value] of Object.entries(env)) {
      const path = envOverrides({ [name]: value })[0]![0];
      // loadConfig rejects an unknown option (strict schema) and names it; the route needs a secret.
      expect(() => loadConfig({ env: { WSGUARD_AUTH__SECRET: TEST_SECRET, [name]: value } }), `${name} → ${path}`).not.toThrow();
    }
    expect(config.auth.secret).toBe(TEST_SECRET);
    expect(config.telemetry.instanceId).toBe('wsguard-demo-7d9f-abcde');
  });

  it('container args and the image command are options `wsguard serve --help` lists', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'bin/wsguard.js'), 'serve', '--help'], { cwd: ROOT });
    const [command, ...rest] = wsguard.args as string[];
    expect(command).toBe('serve');
    for (const arg of rest.filter((a) => a.startsWith('--'))) expect(stdout, arg).toContain(`${arg} `);
    const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "bin\/wsguard\.js"\]$/m);
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(cmd).toEqual(wsguard.args);
  });

  it('ports: container, Services, Dockerfile EXPOSE and NetworkPolicy agree with server.port and telemetry.admin.port', () => {
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.telemetry.admin.host).toBe('0.0.0.0');
    const published = (wsguard.ports as Obj[]).map((p) => p.containerPort).sort();
    expect(published).toEqual([config.server.port, config.telemetry.admin.port].sort());
    const expose = /^EXPOSE (.*)$/m
      .exec(readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8'))![1]!
      .split(' ')
      .map(Number)
      .sort();
    expect(expose).toEqual(published);

    const podServices = kinds('Service').filter((s) =>
      Object.entries(s.spec.selector).every(([k, v]) => app.spec.template.metadata.labels[k] === v),
    );
    const [publicSvc, adminSvc] = ['ws', 'admin'].map((name) =>
      podServices.find((s) => (s.spec.ports as Obj[]).some((p) => containerPort(wsguard, p.targetPort) === containerPort(wsguard, name))),
    );
    expect(publicSvc, 'a Service for the public port').toBeDefined();
    expect(adminSvc, 'a Service for the admin port').toBeDefined();
    expect(publicSvc).not.toBe(adminSvc);
    // The public Service never routes to the admin port.
    for (const p of publicSvc!.spec.ports as Obj[]) expect(containerPort(wsguard, p.targetPort)).toBe(config.server.port);

    const policy = kinds('NetworkPolicy').find(
      (p) =>
        p.spec.podSelector.matchLabels['app.kubernetes.io/name'] === app.metadata.labels['app.kubernetes.io/name'] &&
        p.spec.podSelector.matchLabels['app.kubernetes.io/component'] === app.metadata.labels['app.kubernetes.io/component'],
    )!;
    expect(policy.spec.policyTypes).toContain('Ingress');
    const rules = policy.spec.ingress as Obj[];
    const open = rules.filter((r) => !r.from);
    const restricted = rules.filter((r) => r.from);
    // Rules without `from` admit anyone: they must name ports, and never the admin port.
    for (const r of open) {
      expect(r.ports, 'an open rule without ports would admit every port').toBeDefined();
      expect((r.ports as Obj[]).map((p) => p.port)).toEqual([config.server.port]);
    }
    const adminRules = restricted.filter((r) =>
      (r.ports as Obj[]).some((p) => p.port === config.telemetry.admin.port || p.port === 'admin'),
    );
    expect(adminRules).toHaveLength(1);
    expect(adminRules[0]!.from.every((f: Obj) => f.namespaceSelector || f.podSelector)).toBe(true);
  });

  it('probes hit /healthz (liveness) and /readyz (readiness) on telemetry.admin.port, and a real gateway serves both there', async () => {
    expect(wsguard.livenessProbe.httpGet.path).toBe('/healthz');
    expect(wsguard.readinessProbe.httpGet.path).toBe('/readyz');
    for (const probe of [wsguard.livenessProbe, wsguard.readinessProbe])
      expect(containerPort(wsguard, probe.httpGet.port)).toBe(config.telemetry.admin.port);

    const admin = gateway.server.telemetry!.admin!.url;
    for (const path of [wsguard.livenessProbe.httpGet.path, wsguard.readinessProbe.httpGet.path]) {
      const res = await fetch(`${admin}${path}`);
      expect(res.status, path).toBe(200);
    }
  });

  it('the grace period covers preStop plus server.drainWindowMs, and the app outlives the drain', () => {
    const sleep = (c: Obj) => Number(c.lifecycle.preStop.exec.command[1]);
    expect(wsguard.lifecycle.preStop.exec.command[0]).toBe('sleep');
    const drainSec = Math.ceil(config.server.drainWindowMs / 1000);
    // SIGTERM comes after preStop; both count against the grace period, then SIGKILL.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(sleep(wsguard) + drainSec);
    // Not wildly more either: a pod that hangs should not hold a rollout for minutes.
    expect(pod.terminationGracePeriodSeconds).toBeLessThanOrEqual(sleep(wsguard) + drainSec + 30);
    // The 1001 closes of the drain still travel through the app's leg until the window ends.
    expect(sleep(appContainer)).toBeGreaterThanOrEqual(sleep(wsguard) + drainSec);
    expect(sleep(appContainer)).toBeLessThan(pod.terminationGracePeriodSeconds);
  });

  it('resources: requests and limits on every container wsguard ships', () => {
    for (const d of kinds('Deployment')) {
      for (const c of d.spec.template.spec.containers as Obj[]) {
        if (c === appContainer || (d === app && c.name === appContainer.name)) continue;
        expect(c.resources?.requests?.cpu, c.name).toBeDefined();
        expect(c.resources?.requests?.memory, c.name).toBeDefined();
        expect(c.resources?.limits?.memory, c.name).toBeDefined();
      }
    }
  });

  it('limits.store=redis points at the Redis example, with one expected replica per app pod', () => {
    expect(config.limits.store).toBe('redis');
    expect(config.limits.expectedReplicas).toBe(app.spec.replicas);
    const url = new URL(config.limits.redis.url);
    const svc = kinds('Service').find((s) => s.metadata.name === url.hostname)!;
    expect(svc, `a Service named ${url.hostname}`).toBeDefined();
    expect((svc.spec.ports as Obj[]).map((p) => p.port)).toContain(Number(url.port));
    const redis = kinds('Deployment').find((d) =>
      Object.entries(svc.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v),
    )!;
    expect(containerPort(redis.spec.template.spec.containers[0], svc.spec.ports[0].targetPort)).toBe(Number(url.port));
  });

  it('ServiceMonitor scrapes /metrics on the admin Service port', () => {
    const [sm] = kinds('ServiceMonitor');
    const svc = kinds('Service').find((s) =>
      Object.entries(sm!.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels?.[k] === v),
    )!;
    const endpoint = sm!.spec.endpoints[0];
    expect(endpoint.path).toBe('/metrics');
    const port = (svc.spec.ports as Obj[]).find((p) => p.name === endpoint.port)!;
    expect(containerPort(wsguard, port.targetPort)).toBe(config.telemetry.admin.port);
  });

  it('config check warns about the admin host only, as docs/deploy.md says', () => {
    const warnings = configWarnings(config);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^telemetry\.admin\.host: 0\.0\.0\.0 is not a loopback address/);
    expect(readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8')).toContain('telemetry.admin.host: 0.0.0.0 is not a loopback address');
  });

  it('Dockerfile: multi-stage, compiled dist/ on production dependencies only, numeric non-root user, exec form, no init', () => {
    const text = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
    expect(text.split('\n')[0]).toBe('# syntax=docker/dockerfile:1');
    expect(text.match(/^FROM /gm)).toHaveLength(3);
    expect(text).toMatch(/^RUN npm ci --omit=dev\b/m);
    const user = /^USER (\d+)(?::\d+)?$/m.exec(text);
    expect(user, 'USER by number (runAsNonRoot cannot check a name)').not.toBeNull();
    expect(Number(user![1])).toBeGreaterThan(0);
    const instructions = text
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
    expect(instructions).not.toMatch(/tini|--init|^ENTRYPOINT [^[]|^CMD [^[]/m);
    // What the image copies is what the runtime needs, and the ignore file lets exactly that in.
    const copied = [...text.matchAll(/^COPY (?!--from)(.*) \S+$/gm)].flatMap((m) => m[1]!.split(' '));
    const ignore = readFileSync(join(ROOT, 'deploy/Dockerfile.dockerignore'), 'utf8');
    for (const c of copied) expect(ignore, c).toMatch(new RegExp(`^!${c.replace('.', '\\.')}/?$`, 'm'));
    for (const c of copied) expect(existsSync(join(ROOT, c)), c).toBe(true);
  });
});

let upstream: TestUpstream;
let gateway: TestGateway;
beforeAll(async () => {
  upstream = await startEchoUpstream();
  gateway = await startTestGateway(upstream.url);
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
});
