import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { LOADGEN, ROOT } from '../../deploy/generate.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML of any shape, read by path in assertions
type Obj = Record<string, any>;
const run = promisify(execFile);
const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy/loadgen/loadgen-job.yaml'), 'utf8')).map((d) => {
  expect(d.errors).toEqual([]);
  return d.toJS() as Obj;
});
const job = docs.find((d) => d.kind === 'Job' && d.spec.completionMode === 'Indexed')!;
const report = docs.find((d) => d.kind === 'Job' && d !== job)!;
const shardContainer = job.spec.template.spec.containers[0] as Obj;
const reportContainer = report.spec.template.spec.containers[0] as Obj;

/** What the pod's shell hands the CLI: the container's command run with the CLI replaced by printf. */
async function argvOfShard(index: number): Promise<string[]> {
  const script = (shardContainer.args as string[])[0]!.replace('exec node bin/wsguard.js', "printf '%s\\n'");
  const { stdout } = await run(shardContainer.command[0], [shardContainer.command[1], script], {
    env: { PATH: process.env.PATH, JOB_COMPLETION_INDEX: String(index), TARGET: 'ws://target/', RUN_ID: 'uid-1234' },
  });
  return stdout.trimEnd().split('\n');
}

describe('deploy/loadgen: a distributed run as a Kubernetes Indexed Job', () => {
  it('runs N pods at once, each shard once, never retried', () => {
    expect(job.spec).toMatchObject({ completions: LOADGEN.shards, parallelism: LOADGEN.shards, backoffLimit: 0 });
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
  });

  it('gives pod i the shard i+1/N (1-based), the Job uid as the shared run id and its own result file', async () => {
    const env = Object.fromEntries((shardContainer.env as Obj[]).map((e) => [e.name, e]));
    expect(env.RUN_ID.valueFrom.fieldRef.fieldPath).toBe("metadata.labels['batch.kubernetes.io/controller-uid']");
    const files = new Set<string>();
    for (let i = 0; i < LOADGEN.shards; i++) {
      const argv = await argvOfShard(i);
      const flag = (name: string): string => argv[argv.indexOf(name) + 1]!;
      expect(argv[0]).toBe('flood');
      expect(flag('--shard')).toBe(`${i + 1}/${LOADGEN.shards}`);
      expect(flag('--run-id')).toBe('uid-1234');
      expect(flag('--json').startsWith(`${LOADGEN.resultsDir}/`)).toBe(true);
      files.add(flag('--json'));
    }
    expect(files.size).toBe(LOADGEN.shards);
  });

  it('uses only flags `wsguard flood --help` lists, and serves metrics on the port the pod declares', async () => {
    const { stdout } = await run(process.execPath, [join(ROOT, 'bin/wsguard.js'), 'flood', '--help'], { cwd: ROOT });
    const argv = await argvOfShard(0);
    for (const a of argv.filter((x) => x.startsWith('-'))) expect(stdout, a).toMatch(new RegExp(`(^|\\s)${a}[ ,]`, 'm'));
    expect(Number(argv[argv.indexOf('--metrics-port') + 1])).toBe(shardContainer.ports[0].containerPort);
    expect(argv[argv.indexOf('--metrics-host') + 1]).toBe('0.0.0.0');
  });

  it('the report Job merges the files the shards write, from the same claim', () => {
    const script = (reportContainer.args as string[])[0]!;
    expect(script).toContain(`report ${LOADGEN.resultsDir}/shard-*.json`);
    const claim = (spec: Obj) => spec.volumes[0].persistentVolumeClaim.claimName;
    expect(claim(report.spec.template.spec)).toBe(claim(job.spec.template.spec));
    expect(docs.find((d) => d.kind === 'PersistentVolumeClaim')!.spec.accessModes).toEqual(['ReadWriteMany']);
  });
});
