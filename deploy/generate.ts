/**
 * Writes deploy/ from one source (DEPLOY below): `npm run deploy:generate`. Ports, the drain window,
 * the replica count and names each appear in several manifests (container ports, probes, Services,
 * the NetworkPolicy, the ServiceMonitor, the wsguard config file, the Dockerfile), so they are
 * spelled here once. `--check` writes nothing and exits 1 naming every file that differs
 * (test/deploy/manifests.test.ts does the same).
 *
 * The PrometheusRule and the Grafana dashboard are copied in from the operations pack
 * (alerts/, grafana/; `npm run ops:generate`) because kustomize's default load restrictor refuses
 * files outside the kustomization's own directory: a copy keeps `kubectl apply -k deploy/k8s` working
 * without --load-restrictor LoadRestrictionsNone.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { runGenerator, staleFiles } from '../ops/generated-files.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export const DEPLOY = {
  name: 'wsguard-demo',
  /** Pods of the app; wsguard runs once per pod, so this is also limits.expectedReplicas. */
  replicas: 2,
  image: 'wsguard:0.1.0',
  appImage: 'registry.example.com/your-app:1.0.0',
  /** The app listens on loopback inside the pod: only the sidecar reaches it. */
  appPort: 8000,
  appPath: '/ws/',
  publicPort: 8080,
  adminPort: 9464,
  configDir: '/etc/wsguard',
  configFile: 'wsguard.yaml',
  drainWindowMs: 10_000,
  /**
   * Kubernetes sends SIGTERM at the same time as it starts removing the pod from the Service's
   * endpoints; kube-proxies and ingress controllers take a few seconds to stop sending new
   * connections. The preStop sleep holds SIGTERM back until then, so the listener does not close
   * under clients still being routed to it.
   */
  preStopSleepSec: 5,
  /** Room after the drain for the process to release its sockets and exit before SIGKILL. */
  exitMarginSec: 5,
  redis: { name: 'wsguard-redis', port: 6379, image: 'redis:7.4-bookworm' },
  /** Namespace Prometheus (the Prometheus Operator) runs in; only it may reach the admin port. */
  monitoringNamespace: 'monitoring',
  authSecret: { name: 'wsguard-auth', key: 'secret' },
  resources: {
    // Memory: `wsguard serve --demo` idles at 155 MB RSS (ps, Node 20; tsx compiles the sources at
    // start-up, and the demo upstream is in that figure), and the in-memory limit store, the
    // fail-open fallback, adds up to about 57 MB at limits.maxTrackedKeys' default
    // (docs/configuration.md); 384 Mi leaves the rest for socket buffers.
    requests: { cpu: '100m', memory: '192Mi' },
    // One core: uWS runs the relay on the one JavaScript thread, so more would go unused.
    limits: { cpu: '1', memory: '384Mi' },
  },
} as const;

/** Seconds Kubernetes waits between the start of preStop and SIGKILL: preStop, then the drain, then exit. */
export function terminationGracePeriodSeconds(d = DEPLOY): number {
  return d.preStopSleepSec + Math.ceil(d.drainWindowMs / 1000) + d.exitMarginSec;
}

/** Environment variables of the wsguard container (WSGUARD_<PATH> per src/config/load.ts envOverrides). */
function wsguardEnv(): unknown[] {
  return [
    // Tells replicas apart in traces and target_info (telemetry.instanceId).
    { name: 'WSGUARD_TELEMETRY__INSTANCE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    // The HS256 secret comes from a Secret you create (docs/deploy.md), never from the ConfigMap.
    { name: 'WSGUARD_AUTH__SECRET', valueFrom: { secretKeyRef: { name: DEPLOY.authSecret.name, key: DEPLOY.authSecret.key } } },
  ];
}

/** The wsguard config file the ConfigMap carries. */
export function wsguardConfig(d = DEPLOY): Record<string, unknown> {
  return {
    server: {
      // Inside the pod: the Service sends client traffic to the pod IP.
      host: '0.0.0.0',
      port: d.publicPort,
      drainWindowMs: d.drainWindowMs,
    },
    routes: [{ path: d.appPath, upstream: `ws://127.0.0.1:${d.appPort}${d.appPath}` }],
    limits: {
      store: 'redis',
      expectedReplicas: d.replicas,
      redis: { url: `redis://${d.redis.name}:${d.redis.port}` },
    },
    telemetry: {
      // 0.0.0.0 so the kubelet's probes and Prometheus reach it; the NetworkPolicy keeps clients
      // away. `wsguard config check` warns about this host, as it should: the warning is expected here.
      admin: { host: '0.0.0.0', port: d.adminPort },
    },
  };
}

const labels = (component: string) => ({ 'app.kubernetes.io/name': DEPLOY.name, 'app.kubernetes.io/component': component });
const podLabels = { 'app.kubernetes.io/name': DEPLOY.name, 'app.kubernetes.io/component': 'app' };

function deployment(d = DEPLOY): unknown {
  const grace = terminationGracePeriodSeconds(d);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: d.name, labels: podLabels },
    spec: {
      replicas: d.replicas,
      selector: { matchLabels: podLabels },
      template: {
        metadata: { labels: podLabels },
        spec: {
          terminationGracePeriodSeconds: grace,
          securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'app',
              image: d.appImage,
              // Your app, bound to 127.0.0.1:appPort. It must outlive wsguard's drain, whose closes
              // (1001) still relay through it: its preStop waits the whole preStop + drain.
              ports: [{ name: 'app', containerPort: d.appPort, protocol: 'TCP' }],
              lifecycle: { preStop: { exec: { command: ['sleep', String(d.preStopSleepSec + Math.ceil(d.drainWindowMs / 1000))] } } },
            },
            {
              name: 'wsguard',
              image: d.image,
              args: ['serve', '--config', `${d.configDir}/${d.configFile}`],
              env: wsguardEnv(),
              ports: [
                { name: 'ws', containerPort: d.publicPort, protocol: 'TCP' },
                { name: 'admin', containerPort: d.adminPort, protocol: 'TCP' },
              ],
              livenessProbe: { httpGet: { path: '/healthz', port: 'admin' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
              // /readyz turns 503 when the drain starts, when file descriptors run short, or when
              // the JWKS has never loaded: the pod then leaves the Service's endpoints.
              readinessProbe: { httpGet: { path: '/readyz', port: 'admin' }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
              lifecycle: { preStop: { exec: { command: ['sleep', String(d.preStopSleepSec)] } } },
              resources: d.resources,
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'wsguard-config', mountPath: d.configDir, readOnly: true },
                // tsx compiles TypeScript at start-up and caches it under the temp directory.
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'wsguard-config', configMap: { name: 'wsguard-config' } },
            { name: 'tmp', emptyDir: {} },
          ],
        },
      },
    },
  };
}

function services(d = DEPLOY): unknown[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: d.name, labels: labels('public') },
      spec: { selector: podLabels, ports: [{ name: 'ws', port: 80, targetPort: 'ws', protocol: 'TCP' }] },
    },
    {
      // A separate Service for the scraper, so the public one never routes to the admin port.
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `${d.name}-admin`, labels: labels('admin') },
      spec: { selector: podLabels, clusterIP: 'None', ports: [{ name: 'admin', port: d.adminPort, targetPort: 'admin', protocol: 'TCP' }] },
    },
  ];
}

function networkPolicies(d = DEPLOY): unknown[] {
  return [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: d.name },
      spec: {
        podSelector: { matchLabels: podLabels },
        policyTypes: ['Ingress'],
        ingress: [
          // Clients: the public WebSocket port only. The app port is not listed: the app binds
          // loopback and the sidecar reaches it inside the pod, which no NetworkPolicy filters.
          { ports: [{ port: d.publicPort, protocol: 'TCP' }] },
          // The admin port (metrics, health, monitoring API): Prometheus' namespace only. The
          // kubelet's probes come from the node, which common CNIs (Calico, Cilium) always allow.
          {
            from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': d.monitoringNamespace } } }],
            ports: [{ port: d.adminPort, protocol: 'TCP' }],
          },
        ],
      },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: d.redis.name },
      spec: {
        podSelector: { matchLabels: labels('redis') },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: { matchLabels: podLabels } }], ports: [{ port: d.redis.port, protocol: 'TCP' }] }],
      },
    },
  ];
}

function redis(d = DEPLOY): unknown[] {
  const l = labels('redis');
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: d.redis.name, labels: l },
      spec: {
        replicas: 1,
        selector: { matchLabels: l },
        template: {
          metadata: { labels: l },
          spec: {
            securityContext: { runAsNonRoot: true, runAsUser: 999, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'redis',
                image: d.redis.image,
                // Limit counts are short-lived and rebuilt by the replicas (leases re-registered on
                // reconnect), so no persistence; maxmemory guards the node against a key flood.
                args: [
                  '--port',
                  String(d.redis.port),
                  '--save',
                  '',
                  '--appendonly',
                  'no',
                  '--maxmemory',
                  '192mb',
                  '--maxmemory-policy',
                  'noeviction',
                ],
                ports: [{ name: 'redis', containerPort: d.redis.port, protocol: 'TCP' }],
                readinessProbe: { exec: { command: ['redis-cli', '-p', String(d.redis.port), 'ping'] }, periodSeconds: 5 },
                livenessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 10 },
                resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } },
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: d.redis.name, labels: l },
      spec: { selector: l, ports: [{ name: 'redis', port: d.redis.port, targetPort: 'redis', protocol: 'TCP' }] },
    },
  ];
}

function serviceMonitor(d = DEPLOY): unknown {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name: d.name, labels: labels('admin') },
    spec: {
      selector: { matchLabels: labels('admin') },
      endpoints: [{ port: 'admin', path: '/metrics', interval: '15s', scrapeTimeout: '10s' }],
    },
  };
}

function kustomization(): unknown {
  return {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: [
      'deployment.yaml',
      'service.yaml',
      'networkpolicy.yaml',
      'redis.yaml',
      'servicemonitor.yaml',
      'wsguard.prometheusrule.yaml',
    ],
    configMapGenerator: [
      // Hash-suffixed: a config change rolls the pods.
      { name: 'wsguard-config', files: [DEPLOY.configFile] },
      // Grafana's dashboard sidecar loads ConfigMaps labelled grafana_dashboard; a fixed name.
      {
        name: 'wsguard-grafana-dashboard',
        files: ['wsguard.json'],
        options: { disableNameSuffixHash: true, labels: { grafana_dashboard: '1' } },
      },
    ],
  };
}

function dockerfile(d = DEPLOY): string {
  // The syntax directive must be the file's first line or BuildKit takes it for a comment.
  return `# syntax=docker/dockerfile:1
# Generated by \`npm run deploy:generate\` from deploy/generate.ts: edit that, not this file.
# Build from the repository root: docker build -f deploy/Dockerfile -t ${d.image} .
# Three stages: production dependencies; a build stage that compiles src/ and cli/ to dist/ with the
# dev dependencies (npm run build, tsc); the runtime stage copies the production dependencies and
# dist/ only. WSG_RUNTIME=dist makes bin/wsguard.js refuse to start rather than fall back to tsx
# (under tsx, serve took 2–3 s longer to listen and held ~35 MB more RSS, BENCHMARKS.md).
# Debian slim, not Alpine: uWebSockets.js ships glibc binaries only.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci && npm cache clean --force
COPY bin ./bin
COPY scripts ./scripts
COPY cli ./cli
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production WSG_RUNTIME=dist
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
# The image's unprivileged node user, by number: Kubernetes' runAsNonRoot cannot check a user name.
USER 1000:1000
EXPOSE ${d.publicPort} ${d.adminPort}
# Exec form, no shell and no npm in between: node is PID 1 and receives SIGTERM itself. PID 1 gets
# no default signal handlers from the kernel, but wsguard installs its own for SIGTERM and SIGINT
# (drain over server.drainWindowMs, then exit 0), and it starts no child processes, so there are
# no zombies to reap and no init (tini, --init) is needed.
ENTRYPOINT ["node", "bin/wsguard.js"]
CMD ["serve", "--config", "${d.configDir}/${d.configFile}"]
`;
}

const DOCKERIGNORE = `# Generated by \`npm run deploy:generate\` from deploy/generate.ts: edit that, not this file.
# BuildKit reads <Dockerfile>.dockerignore beside the Dockerfile in preference to the context's
# .dockerignore. Everything is excluded except what the image copies.
*
!package.json
!package-lock.json
!tsconfig.json
!tsconfig.build.json
!bin/
!scripts/
!cli/
!src/
`;

const HEADER = '# Generated by `npm run deploy:generate` from deploy/generate.ts: edit that, not this file.\n';
const yamlDocs = (...docs: unknown[]) =>
  HEADER + docs.map((doc) => stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');

function copied(path: string, header: (text: string) => string = (t) => t): string {
  return header(readFileSync(join(ROOT, path), 'utf8'));
}

/**
 * A distributed run (docs/cli.md "Distributed runs"): an Indexed Job whose pods each run one shard
 * of the same flood, and a report Job that merges their results. Kept out of kustomization.yaml, so
 * `kubectl apply -k deploy/k8s` never starts a load test.
 */
export const LOADGEN = {
  name: 'wsguard-loadgen',
  shards: 4,
  target: 'ws://wsguard-demo.default.svc:8080/ws/echo/',
  /** Per shard: the whole run holds shards × this many connections. */
  connections: 250,
  rate: 10,
  duration: '2m',
  metricsPort: 9465,
  resultsDir: '/results',
  claim: 'wsguard-loadgen-results',
} as const;

function loadgenJobs(d = DEPLOY, l = LOADGEN): unknown[] {
  const results = { name: 'results', persistentVolumeClaim: { claimName: l.claim } };
  const mount = { name: 'results', mountPath: l.resultsDir };
  const shardPod = {
    restartPolicy: 'Never',
    containers: [
      {
        name: 'loadgen',
        image: d.image,
        // A shell for $((…)): --shard is 1-based, JOB_COMPLETION_INDEX 0-based.
        command: ['/bin/sh', '-c'],
        args: [
          [
            'exec node bin/wsguard.js flood "$TARGET"',
            `-c ${l.connections} -r ${l.rate} -d ${l.duration}`,
            `--shard "$((JOB_COMPLETION_INDEX + 1))/${l.shards}" --run-id "$RUN_ID"`,
            `--json "${l.resultsDir}/shard-$((JOB_COMPLETION_INDEX + 1)).json"`,
            `--metrics-port ${l.metricsPort} --metrics-host 0.0.0.0`,
          ].join(' '),
        ],
        env: [
          { name: 'TARGET', value: l.target },
          // The Job's uid: one per Job object, the same in every pod of it, so the shards share a run id
          // and `report` refuses a file left over from another run.
          { name: 'RUN_ID', valueFrom: { fieldRef: { fieldPath: "metadata.labels['batch.kubernetes.io/controller-uid']" } } },
          // Set to an OTLP/HTTP collector (e.g. http://otel-collector.monitoring:4318) to push the run's metrics.
          { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: '' },
        ],
        ports: [{ name: 'loadgen-metrics', containerPort: l.metricsPort }],
        volumeMounts: [mount],
        resources: { requests: { cpu: '1', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } },
      },
    ],
    volumes: [results],
  };
  return [
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: l.claim },
      // Every shard pod writes here at once, possibly on different nodes.
      spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '1Gi' } } },
    },
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: l.name, labels: { 'app.kubernetes.io/name': l.name } },
      spec: {
        completionMode: 'Indexed',
        completions: l.shards,
        parallelism: l.shards,
        // A retried shard would add load the result does not show: a failed shard fails the run.
        backoffLimit: 0,
        template: { metadata: { labels: { 'app.kubernetes.io/name': l.name } }, spec: shardPod },
      },
    },
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: `${l.name}-report`, labels: { 'app.kubernetes.io/name': l.name } },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: 3_600,
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'report',
                image: d.image,
                command: ['/bin/sh', '-c'],
                // Waits for every shard's file (the Job starts with the shards), bounded by activeDeadlineSeconds.
                args: [
                  [
                    `until [ "$(ls ${l.resultsDir}/shard-*.json 2>/dev/null | wc -l)" -ge ${l.shards} ]; do sleep 5; done;`,
                    `node bin/wsguard.js report ${l.resultsDir}/shard-*.json -f md -o ${l.resultsDir}/report.md && cat ${l.resultsDir}/report.md`,
                  ].join(' '),
                ],
                volumeMounts: [mount],
              },
            ],
            volumes: [results],
          },
        },
      },
    },
  ];
}

export function renderAll(d = DEPLOY): Map<string, string> {
  return new Map<string, string>([
    ['deploy/Dockerfile', dockerfile(d)],
    ['deploy/Dockerfile.dockerignore', DOCKERIGNORE],
    ['deploy/k8s/deployment.yaml', yamlDocs(deployment(d))],
    ['deploy/k8s/service.yaml', yamlDocs(...services(d))],
    ['deploy/k8s/networkpolicy.yaml', yamlDocs(...networkPolicies(d))],
    ['deploy/k8s/redis.yaml', yamlDocs(...redis(d))],
    ['deploy/k8s/servicemonitor.yaml', yamlDocs(serviceMonitor(d))],
    ['deploy/k8s/kustomization.yaml', yamlDocs(kustomization())],
    [`deploy/k8s/${d.configFile}`, yamlDocs(wsguardConfig(d))],
    ['deploy/k8s/wsguard.prometheusrule.yaml', copied('alerts/wsguard.prometheusrule.yaml')],
    ['deploy/k8s/wsguard.json', copied('grafana/wsguard.json')],
    ['deploy/loadgen/loadgen-job.yaml', yamlDocs(...loadgenJobs(d))],
  ]);
}

/** Files whose committed content differs from what the source renders. */
export function drift(): string[] {
  return staleFiles(ROOT, renderAll());
}

runGenerator(import.meta.url, 'deploy:generate', ROOT, () => renderAll());
