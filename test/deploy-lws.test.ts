// The multi-node example deploy/kubernetes/multi-node/: a LeaderWorkerSet
// (its CRD is not in kubernetes-models, so its shape is checked by hand; the
// embedded leader and worker pod templates validate as Pods) and the leader
// Service. The example must fit the supervisor: LWS_* left to LeaderWorkerSet,
// `size` = the nodes of the named multi-node profile, GPUs per pod = tp × pp /
// nodes, probes on the supervisor's health endpoints (worker readiness =
// Ray membership), and an environment the configuration loader accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Pod, Service } from 'kubernetes-models/v1';
import type { IContainer, IPodSpec, IProbe, IService } from 'kubernetes-models/v1';
import { loadConfig } from '../src/config/env.js';
import { loadManifestSync } from '../src/manifest/index.js';
import { resolveProfile } from '../src/selection/index.js';
import { repoRoot } from './helpers/process.js';

const dir = path.join(repoRoot, 'deploy', 'kubernetes', 'multi-node');

interface Doc {
  file: string;
  obj: Record<string, unknown> & { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string; labels?: Record<string, string> } };
}

const docs: Doc[] = readdirSync(dir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()
  .flatMap((file) =>
    parseAllDocuments(readFileSync(path.join(dir, file), 'utf8')).flatMap((d) => {
      assert.deepEqual(d.errors.map((e) => e.message), [], `${file}: YAML errors`);
      const obj: unknown = d.toJS();
      return obj === null || obj === undefined ? [] : [{ file, obj: obj as Doc['obj'] }];
    }),
  );

function only<T>(apiVersion: string, kind: string): T {
  const found = docs.filter((d) => d.obj.apiVersion === apiVersion && d.obj.kind === kind);
  assert.equal(found.length, 1, `exactly one ${apiVersion} ${kind}`);
  return found[0]!.obj as T;
}

interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: IPodSpec;
}
interface LeaderWorkerSet {
  metadata: { name: string };
  spec: {
    replicas?: number;
    startupPolicy?: string;
    leaderWorkerTemplate: { size: number; restartPolicy?: string; leaderTemplate: PodTemplate; workerTemplate: PodTemplate };
  };
}

const lws = only<LeaderWorkerSet>('leaderworkerset.x-k8s.io/v1', 'LeaderWorkerSet');
const service = only<IService>('v1', 'Service');
const tpl = lws.spec.leaderWorkerTemplate;
const roles = { leader: tpl.leaderTemplate, worker: tpl.workerTemplate } as const;

function container(t: PodTemplate): IContainer {
  assert.equal(t.spec.containers.length, 1, 'one container: the supervisor');
  return t.spec.containers[0]!;
}
const literalEnv = (c: IContainer): Record<string, string> =>
  Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
const portOf = (c: IContainer, p: number | string | undefined): number | undefined =>
  typeof p === 'number' ? p : c.ports?.find((x) => x.name === p)?.containerPort;

test('the documents: one LeaderWorkerSet, one Service, a kustomization that lists exactly the other files', () => {
  const kinds = docs.map((d) => `${d.obj.apiVersion}/${d.obj.kind}`).sort();
  assert.deepEqual(kinds, ['kustomize.config.k8s.io/v1beta1/Kustomization', 'leaderworkerset.x-k8s.io/v1/LeaderWorkerSet', 'v1/Service']);
  for (const d of docs) assert.equal(d.obj.metadata?.namespace, undefined, `${d.file}: no hard-coded namespace`);
  const k = docs.find((d) => d.obj.kind === 'Kustomization')!;
  const others = [...new Set(docs.filter((d) => d !== k).map((d) => d.file))].sort();
  assert.deepEqual([...((k.obj as { resources?: string[] }).resources ?? [])].sort(), others);
});

test('the pod templates validate as Pods and the Service as a Service (kubernetes-models)', () => {
  for (const [role, t] of Object.entries(roles)) {
    const pod = new Pod({ metadata: { name: `x-${role}`, labels: t.metadata?.labels ?? {} }, spec: t.spec });
    assert.doesNotThrow(() => pod.validate(), `${role} template`);
  }
  assert.doesNotThrow(() => new Service(service as never).validate());
  // Not vacuous.
  const broken = structuredClone(tpl.workerTemplate.spec) as unknown as { containers: Array<{ ports: Array<{ containerPort: unknown }> }> };
  broken.containers[0]!.ports[0]!.containerPort = 'eight thousand';
  assert.throws(() => new Pod({ metadata: { name: 'x' }, spec: broken as never }).validate(), /containerPort/);
});

test('size = the nodes of the multi-node profile the leader names; each pod gets tp × pp / nodes GPUs', () => {
  const env = literalEnv(container(roles.leader));
  const manifestPath = env.NIM_MANIFEST_PATH!.replace(/^\/opt\/nim-supervisor\//, `${repoRoot}/`);
  const manifest = loadManifestSync(manifestPath);
  const profile = resolveProfile(manifest, env.NIM_MODEL_PROFILE)!;
  assert.ok(profile, `NIM_MODEL_PROFILE=${env.NIM_MODEL_PROFILE} names a profile of ${manifestPath}`);
  const nodes = profile.tags.nodes ?? 1;
  assert.ok(nodes > 1, 'a multi-node profile');
  assert.equal(tpl.size, nodes, 'leaderWorkerTemplate.size = the profile\'s nodes');
  const perNode = (profile.tags.tp * profile.tags.pp) / nodes;
  for (const [role, t] of Object.entries(roles)) {
    const r = container(t).resources!;
    assert.equal(String(r.limits?.['nvidia.com/gpu']), String(perNode), `${role}: GPU limit`);
    assert.equal(String(r.requests?.['nvidia.com/gpu']), String(perNode), `${role}: GPU request = limit`);
  }
});

test('LWS_* are left to LeaderWorkerSet, and each role\'s environment (plus what LWS injects) passes the configuration loader', () => {
  for (const [role, t] of Object.entries(roles)) {
    const names = (container(t).env ?? []).map((e) => e.name);
    assert.deepEqual(names.filter((n) => n.startsWith('LWS_')), [], `${role}: no LWS_* in the template`);
    const injected = { LWS_GROUP_SIZE: String(tpl.size), LWS_LEADER_ADDRESS: 'nim-supervisor-multinode-0.nim-supervisor-multinode.llm', LWS_WORKER_INDEX: role === 'leader' ? '0' : '1' };
    const config = loadConfig({ ...literalEnv(container(t)), ...injected });
    assert.equal(config.cluster.groupSize, tpl.size);
    assert.equal(config.serverPort, 8000);
    assert.equal(config.cluster.rayPort, 6379);
  }
  // Workers must be created with the leader: it only turns ready once they joined.
  assert.notEqual(lws.spec.startupPolicy, 'LeaderReady');
  assert.equal(tpl.restartPolicy, 'RecreateGroupOnPodRestart', 'a lost pod restarts the whole group');
  const leaderPorts = container(roles.leader).ports!.map((p) => p.containerPort);
  assert.ok(leaderPorts.includes(6379), 'the leader exposes the Ray head port');
});

test('probes: both roles have startup, liveness and readiness on the supervisor\'s health endpoints', () => {
  for (const [role, t] of Object.entries(roles)) {
    const c = container(t);
    const env = literalEnv(c);
    const get = (name: 'startupProbe' | 'livenessProbe' | 'readinessProbe'): IProbe => {
      const probe = c[name];
      assert.ok(probe?.httpGet, `${role}: ${name} is an HTTP GET probe`);
      assert.equal(portOf(c, probe.httpGet.port), Number(env.NIM_SERVER_PORT ?? 8000), `${role}: ${name} targets NIM_SERVER_PORT`);
      return probe;
    };
    assert.equal(get('startupProbe').httpGet!.path, '/v1/health/ready');
    assert.equal(get('livenessProbe').httpGet!.path, '/v1/health/live');
    assert.equal(get('readinessProbe').httpGet!.path, '/v1/health/ready', `${role}: readiness (the worker's reflects Ray membership)`);
    const s = c.startupProbe!;
    const budget = (s.initialDelaySeconds ?? 0) + (s.periodSeconds ?? 10) * (s.failureThreshold ?? 3);
    const cluster = Number(env.NIM_CLUSTER_START_TIMEOUT ?? 300);
    const startup = role === 'leader' ? cluster + Number(env.NIM_STARTUP_TIMEOUT ?? 3600) : cluster;
    assert.ok(budget > startup, `${role}: start-up budget ${budget} s covers ${startup} s`);
  }
  // Termination: the leader drains, stops vLLM, then the Ray head.
  const leaderEnv = literalEnv(container(roles.leader));
  const grace = tpl.leaderTemplate.spec.terminationGracePeriodSeconds!;
  assert.ok(grace > 5 + Number(leaderEnv.NIM_SHUTDOWN_GRACE_PERIOD) + 2 * Number(leaderEnv.NIM_ENGINE_STOP_TIMEOUT));
  const workerEnv = literalEnv(container(roles.worker));
  assert.ok(tpl.workerTemplate.spec.terminationGracePeriodSeconds! > Number(workerEnv.NIM_ENGINE_STOP_TIMEOUT));
});

test('the Service sends traffic to leaders only', () => {
  const sel = service.spec!.selector!;
  assert.equal(sel['leaderworkerset.sigs.k8s.io/name'], lws.metadata.name, 'LeaderWorkerSet labels its pods with its name');
  const matches = (labels: Record<string, string>) =>
    Object.entries(sel).every(([k, v]) => (k === 'leaderworkerset.sigs.k8s.io/name' ? v === lws.metadata.name : labels[k] === v));
  assert.equal(matches(roles.leader.metadata!.labels!), true);
  assert.equal(matches(roles.worker.metadata!.labels!), false);
  const target = service.spec!.ports![0]!.targetPort;
  assert.equal(portOf(container(roles.leader), target), 8000);
});
