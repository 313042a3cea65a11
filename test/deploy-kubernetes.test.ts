// The Kubernetes manifests under deploy/kubernetes/: every YAML document parses,
// every built-in object validates against the Kubernetes schemas
// (kubernetes-models), the CRD objects have the right shape, and the objects fit
// together and fit the supervisor: probe paths and port, a start-up budget for
// long model loads, a termination grace longer than the supervisor's drain and
// stop, the GPU limit, scrape annotations, selectors, names, and an environment
// the supervisor's own configuration loader accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import type { IContainer, IPodSpec, IProbe } from 'kubernetes-models/v1';
import type { IDeployment } from 'kubernetes-models/apps/v1';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import type { IPersistentVolumeClaim, IService } from 'kubernetes-models/v1';
import { loadConfig } from '../src/config/env.js';
import { knownNames } from '../src/config/variables.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = path.join(repoRoot, 'deploy', 'kubernetes');

interface Doc {
  file: string;
  obj: Record<string, unknown> & { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string; labels?: Record<string, string> } };
}

function loadDocs(): Doc[] {
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  const docs: Doc[] = [];
  for (const file of files) {
    const parsed = parseAllDocuments(readFileSync(path.join(dir, file), 'utf8'));
    assert.ok(Array.isArray(parsed), `${file}: parsed as a stream of documents`);
    for (const d of parsed) {
      assert.deepEqual(d.errors.map((e) => e.message), [], `${file}: YAML errors`);
      assert.deepEqual(d.warnings.map((e) => e.message), [], `${file}: YAML warnings`);
      const obj: unknown = d.toJS();
      if (obj === null || obj === undefined) continue; // an empty document (e.g. a trailing ---)
      assert.ok(typeof obj === 'object' && !Array.isArray(obj), `${file}: each document is a mapping`);
      docs.push({ file, obj: obj as Doc['obj'] });
    }
  }
  return docs;
}

const docs = loadDocs();

function only<T>(apiVersion: string, kind: string): { file: string; obj: T } {
  const found = docs.filter((d) => d.obj.apiVersion === apiVersion && d.obj.kind === kind);
  assert.equal(found.length, 1, `exactly one ${apiVersion} ${kind}`);
  return { file: found[0]!.file, obj: found[0]!.obj as T };
}

const deployment = only<IDeployment>('apps/v1', 'Deployment').obj;
const service = only<IService>('v1', 'Service').obj;
const pvc = only<IPersistentVolumeClaim>('v1', 'PersistentVolumeClaim').obj;
const hpa = only<IHorizontalPodAutoscaler>('autoscaling/v2', 'HorizontalPodAutoscaler').obj;
const podSpec: IPodSpec = deployment.spec!.template.spec!;
const podLabels: Record<string, string> = deployment.spec!.template.metadata?.labels ?? {};
const container: IContainer = (() => {
  assert.equal(podSpec.containers.length, 1, 'one container: the supervisor (it starts vLLM itself)');
  return podSpec.containers[0]!;
})();

/** The container's literal environment (valueFrom entries left out). */
const literalEnv: Record<string, string> = Object.fromEntries(
  (container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
);

/**
 * The supervisor's configuration for this environment, through its own loader.
 * A value it rejects (the CLI would exit 2) fails the environment test below;
 * the other tests then fall back to the defaults.
 */
let configError: unknown;
const config = (() => {
  try {
    return loadConfig(literalEnv);
  } catch (err) {
    configError = err;
    return loadConfig({});
  }
})();

function isSubset(sub: Record<string, string> | undefined, sup: Record<string, string> | undefined): boolean {
  return Object.keys(sub ?? {}).length > 0 && Object.entries(sub ?? {}).every(([k, v]) => sup?.[k] === v);
}

/** A probe's (or annotation's) port, named or numeric, as a container port number. */
function resolvePort(port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  if (port !== undefined && /^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function httpProbe(name: 'startupProbe' | 'livenessProbe' | 'readinessProbe'): IProbe & { httpGet: NonNullable<IProbe['httpGet']> } {
  const probe = container[name];
  assert.ok(probe?.httpGet, `${name} is an HTTP GET probe`);
  return probe as IProbe & { httpGet: NonNullable<IProbe['httpGet']> };
}

// Kubernetes' defaults for omitted probe fields.
const periodOf = (p: IProbe) => p.periodSeconds ?? 10;
const failuresOf = (p: IProbe) => p.failureThreshold ?? 3;

// ---------------------------------------------------------------------------
// Schema validation
// ---------------------------------------------------------------------------

const BUILT_IN: Record<string, (obj: Record<string, unknown>) => { validate(): void }> = {
  'apps/v1/Deployment': (o) => new Deployment(o as never),
  'v1/Service': (o) => new Service(o as never),
  'v1/PersistentVolumeClaim': (o) => new PersistentVolumeClaim(o as never),
  'autoscaling/v2/HorizontalPodAutoscaler': (o) => new HorizontalPodAutoscaler(o as never),
};
const CUSTOM = new Set(['monitoring.coreos.com/v1/ServiceMonitor', 'kustomize.config.k8s.io/v1beta1/Kustomization']);

test('every document is a known kind; built-in kinds validate against the Kubernetes schemas', () => {
  assert.ok(docs.length >= 6, `expected the six manifests, found ${docs.length} documents`);
  for (const { file, obj } of docs) {
    const key = `${obj.apiVersion}/${obj.kind}`;
    assert.ok(typeof obj.metadata?.name === 'string' || obj.kind === 'Kustomization', `${file}: ${key} has metadata.name`);
    if (obj.metadata?.name !== undefined) assert.match(obj.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${file}: a DNS-1123 name`);
    assert.equal(obj.metadata?.namespace, undefined, `${file}: no hard-coded namespace (kubectl apply -n / kustomize sets it)`);
    const make = BUILT_IN[key];
    if (make) {
      const model = make(obj);
      assert.doesNotThrow(() => model.validate(), `${file}: ${key} must validate`);
      // The model keeps the document's own type meta.
      assert.equal((model as unknown as { apiVersion: string }).apiVersion, obj.apiVersion);
      assert.equal((model as unknown as { kind: string }).kind, obj.kind);
    } else {
      assert.ok(CUSTOM.has(key), `${file}: unexpected ${key}`);
    }
  }
});

test('the schema validation is not vacuous: a broken Deployment is rejected', () => {
  const broken = structuredClone(deployment) as unknown as { spec: { template: { spec: { containers: Array<{ ports: Array<{ containerPort: unknown }> }> } } } };
  broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'eight thousand';
  assert.throws(() => new Deployment(broken as never).validate(), /containerPort/);
  const noSelector = structuredClone(deployment) as unknown as { spec: Record<string, unknown> };
  delete noSelector.spec.selector;
  assert.throws(() => new Deployment(noSelector as never).validate(), /selector/);
});

test('kustomization.yaml lists exactly the other manifests', () => {
  const k = docs.find((d) => d.obj.kind === 'Kustomization');
  assert.ok(k, 'a Kustomization');
  assert.equal(k.file, 'kustomization.yaml');
  const resources = (k.obj as { resources?: unknown }).resources;
  assert.ok(Array.isArray(resources) && resources.every((r) => typeof r === 'string'), 'resources is a list of paths');
  for (const r of resources as string[]) assert.ok(existsSync(path.join(dir, r)), `${r} exists`);
  const others = [...new Set(docs.filter((d) => d.file !== 'kustomization.yaml').map((d) => d.file))].sort();
  assert.deepEqual([...(resources as string[])].sort(), others);
  // An `images:` override only applies when its name is the container's image name.
  const images = (k.obj as { images?: Array<{ name?: string }> }).images ?? [];
  const imageName = (container.image ?? '').replace(/[:@].*$/, '');
  for (const i of images) assert.equal(i.name, imageName, 'images[].name matches the Deployment\'s image');
});

// `kubectl kustomize` renders it: deploy-kustomize.test.ts.

// ---------------------------------------------------------------------------
// The Deployment and the supervisor
// ---------------------------------------------------------------------------

test('the container port is http-openai 8000, the port the supervisor listens on', () => {
  const port = container.ports?.find((p) => p.name === 'http-openai');
  assert.ok(port, 'a port named http-openai (as in NIM\'s chart)');
  assert.equal(port.containerPort, 8000);
  assert.equal(config.serverPort, port.containerPort, 'NIM_SERVER_PORT agrees with the container port');
});

test('probes: startup and readiness on /v1/health/ready, liveness on /v1/health/live, all on the public port', () => {
  const expected = { startupProbe: '/v1/health/ready', readinessProbe: '/v1/health/ready', livenessProbe: '/v1/health/live' } as const;
  for (const [name, p] of Object.entries(expected) as Array<[keyof typeof expected, string]>) {
    const probe = httpProbe(name);
    assert.equal(probe.httpGet.path, p, `${name} path`);
    assert.equal(resolvePort(probe.httpGet.port), config.serverPort, `${name} targets the supervisor's port`);
    assert.ok((probe.httpGet.scheme ?? 'HTTP') === 'HTTP', `${name} over plain HTTP`);
  }
});

test('the startup probe allows long model loads (>= 20 minutes) and outlasts NIM_STARTUP_TIMEOUT', () => {
  const startup = httpProbe('startupProbe');
  const budget = (startup.initialDelaySeconds ?? 0) + periodOf(startup) * failuresOf(startup);
  assert.ok(budget >= 20 * 60, `startup budget ${budget} s < 20 min`);
  // Otherwise the kubelet restarts the container before the supervisor can report
  // why the engine did not become ready.
  assert.ok(budget * 1000 >= config.startupTimeoutMs, `startup budget ${budget} s < NIM_STARTUP_TIMEOUT ${config.startupTimeoutMs / 1000} s`);
  const liveness = httpProbe('livenessProbe');
  assert.ok(periodOf(liveness) * failuresOf(liveness) >= 20, 'liveness tolerates a brief stall');
});

test('terminationGracePeriodSeconds exceeds preStop + NIM_SHUTDOWN_GRACE_PERIOD + NIM_ENGINE_STOP_TIMEOUT', () => {
  const grace = podSpec.terminationGracePeriodSeconds;
  assert.ok(typeof grace === 'number', 'set explicitly (the Kubernetes default is 30)');
  const cmd = container.lifecycle?.preStop?.exec?.command ?? [];
  const preStopSleep = cmd[0] === 'sleep' ? Number(cmd[1]) : (container.lifecycle?.preStop?.sleep?.seconds ?? 0);
  assert.ok(Number.isFinite(preStopSleep), 'preStop sleeps a whole number of seconds');
  const needed = preStopSleep + config.shutdownGraceMs / 1000 + config.engineStopTimeoutMs / 1000;
  assert.ok(needed >= 45, 'the supervisor\'s defaults (30 + 15) at least');
  assert.ok(grace > needed, `terminationGracePeriodSeconds ${grace} <= ${needed}`);
});

test('the environment is one the supervisor accepts, with profile selection and logging knobs', () => {
  assert.equal(configError, undefined, `the supervisor rejects this environment: ${String((configError as Error | undefined)?.message)}`);
  const names = (container.env ?? []).map((e) => e.name);
  assert.equal(new Set(names).size, names.length, 'no variable set twice');
  for (const n of ['NIM_MODEL_PROFILE', 'NIM_SERVED_MODEL_NAME', 'NIM_MAX_MODEL_LEN', 'NIM_JSONL_LOGGING', 'NIM_LOG_LEVEL', 'NIM_SHUTDOWN_GRACE_PERIOD', 'NIM_ENGINE_STOP_TIMEOUT']) {
    assert.ok(names.includes(n), `${n} is set`);
  }
  // A misspelt NIM_* variable would be silently ignored: each must be one the supervisor reads.
  const known = knownNames();
  for (const n of names.filter((x) => x.startsWith('NIM_'))) {
    assert.ok(known.has(n), `${n} is declared in the table of variables (src/config/variables.ts)`);
  }
  assert.deepEqual(config.warnings, [], 'the supervisor warns about nothing in this environment');
  assert.equal(config.jsonlLogging, true, 'JSON lines for log collectors');
  // Unset, empty or "default" all mean automatic selection (src/selection/select.ts).
  assert.ok(config.modelProfile === undefined || /^default$/i.test(config.modelProfile), 'automatic selection by default');
});

test('HF_TOKEN and NGC_API_KEY come from an optional Secret', () => {
  for (const n of ['HF_TOKEN', 'NGC_API_KEY']) {
    const e = container.env?.find((x) => x.name === n);
    assert.ok(e, `${n} is set`);
    assert.equal(e.value, undefined, `${n} is not a literal`);
    const ref = e.valueFrom?.secretKeyRef;
    assert.ok(ref?.name, `${n} from secretKeyRef`);
    assert.equal(ref.key, n);
    assert.equal(ref.optional, true, `${n}: the pod starts without the Secret (public models)`);
  }
});

test('the GPU request: nvidia.com/gpu limit >= 1, equal to the request', () => {
  const limit = container.resources?.limits?.['nvidia.com/gpu'];
  assert.ok(limit !== undefined, 'limits nvidia.com/gpu');
  assert.ok(Number(limit) >= 1 && Number.isInteger(Number(limit)), `a whole number of GPUs, got ${String(limit)}`);
  const request = container.resources?.requests?.['nvidia.com/gpu'];
  if (request !== undefined) assert.equal(String(request), String(limit), 'extended resources need requests == limits');
});

test('non-root as uid/gid 1000 with fsGroup 1000, no privilege escalation', () => {
  const sc = podSpec.securityContext;
  assert.equal(sc?.runAsNonRoot, true);
  assert.equal(sc?.runAsUser, 1000);
  assert.equal(sc?.runAsGroup, 1000);
  assert.equal(sc?.fsGroup, 1000, 'the cache volume is writable by the user');
  assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
  assert.notEqual(container.securityContext?.privileged, true);
});

test('volumes: /dev/shm in memory, the model cache from the PVC with HF_HOME inside it', () => {
  const volumes = podSpec.volumes ?? [];
  const mounts = container.volumeMounts ?? [];
  const shmMount = mounts.find((m) => m.mountPath === '/dev/shm');
  assert.ok(shmMount, '/dev/shm is mounted');
  assert.equal(volumes.find((v) => v.name === shmMount.name)?.emptyDir?.medium, 'Memory', '/dev/shm is an in-memory emptyDir');

  const cacheVolume = volumes.find((v) => v.persistentVolumeClaim);
  assert.ok(cacheVolume, 'a volume from a PersistentVolumeClaim');
  assert.equal(cacheVolume.persistentVolumeClaim!.claimName, pvc.metadata?.name, 'the claim name matches pvc.yaml');
  const cacheMount = mounts.find((m) => m.name === cacheVolume.name);
  assert.ok(cacheMount, 'the cache volume is mounted');
  assert.equal(cacheMount.mountPath, '/opt/nim/.cache', 'at the image\'s cache directory (HOME=/opt/nim)');
  assert.notEqual(cacheMount.readOnly, true);
  const hfHome = literalEnv.HF_HOME;
  assert.ok(hfHome?.startsWith(`${cacheMount.mountPath}/`), `HF_HOME (${hfHome}) lies on the cache volume`);
  for (const m of mounts) assert.ok(volumes.some((v) => v.name === m.name), `mount ${m.name} has a volume`);
});

test('the pod template carries Prometheus scrape annotations for /v1/metrics on the public port', () => {
  const a = deployment.spec!.template.metadata?.annotations ?? {};
  assert.equal(a['prometheus.io/scrape'], 'true');
  assert.equal(a['prometheus.io/path'], '/v1/metrics');
  assert.equal(resolvePort(a['prometheus.io/port']), config.serverPort);
});

test('the Deployment selects its own pods', () => {
  assert.ok(isSubset(deployment.spec!.selector.matchLabels, podLabels), 'spec.selector.matchLabels are pod template labels');
});

// ---------------------------------------------------------------------------
// Service, PVC, ServiceMonitor, HPA
// ---------------------------------------------------------------------------

test('the Service is a ClusterIP on 8000 (http-openai) that selects the Deployment\'s pods', () => {
  assert.equal(service.spec?.type ?? 'ClusterIP', 'ClusterIP');
  assert.ok(isSubset(service.spec?.selector, podLabels), 'the Service selector matches the pod template labels');
  assert.ok(isSubset(deployment.spec!.selector.matchLabels, service.spec?.selector), 'and is at least as narrow as the Deployment selector');
  const port = service.spec?.ports?.find((p) => p.name === 'http-openai');
  assert.ok(port, 'a port named http-openai');
  assert.equal(port.port, 8000);
  assert.equal(resolvePort(port.targetPort ?? port.port), config.serverPort, 'targetPort reaches the container port');
});

test('the PVC requests storage', () => {
  const storage = pvc.spec?.resources?.requests?.storage;
  assert.ok(storage !== undefined, 'spec.resources.requests.storage');
  assert.match(String(storage), /^\d+(Gi|Ti)$/);
  assert.ok((pvc.spec?.accessModes ?? []).length > 0, 'accessModes');
});

test('the ServiceMonitor (a CRD, checked by hand) scrapes /v1/metrics through the Service port', () => {
  const { obj } = only<{
    metadata: { name: string };
    spec: { selector: { matchLabels?: Record<string, string> }; endpoints: Array<Record<string, unknown>> };
  }>('monitoring.coreos.com/v1', 'ServiceMonitor');
  assert.ok(obj.spec && typeof obj.spec === 'object', 'spec');
  assert.ok(isSubset(obj.spec.selector?.matchLabels, service.metadata?.labels), 'selects the Service by its labels');
  assert.ok(Array.isArray(obj.spec.endpoints) && obj.spec.endpoints.length > 0, 'endpoints');
  const allowed = new Set(['port', 'targetPort', 'path', 'scheme', 'interval', 'scrapeTimeout', 'honorLabels', 'relabelings', 'metricRelabelings']);
  for (const ep of obj.spec.endpoints) {
    for (const k of Object.keys(ep)) assert.ok(allowed.has(k), `unexpected endpoint field ${k}`);
    assert.ok(service.spec?.ports?.some((p) => p.name === ep.port), `endpoint port ${String(ep.port)} is a named Service port`);
    assert.equal(ep.path, '/v1/metrics');
    for (const k of ['interval', 'scrapeTimeout']) if (ep[k] !== undefined) assert.match(String(ep[k]), /^\d+(ms|s|m)$/, `${k} is a duration`);
  }
});

test('the HPA scales the Deployment on queue depth (vllm:num_requests_waiting via the Prometheus adapter)', () => {
  const spec = hpa.spec!;
  assert.equal(spec.scaleTargetRef.apiVersion, 'apps/v1');
  assert.equal(spec.scaleTargetRef.kind, 'Deployment');
  assert.equal(spec.scaleTargetRef.name, deployment.metadata?.name);
  assert.ok((spec.minReplicas ?? 1) >= 1 && (spec.minReplicas ?? 1) <= spec.maxReplicas);
  const pods = spec.metrics?.find((m) => m.type === 'Pods')?.pods;
  assert.ok(pods, 'a Pods metric');
  assert.equal(pods.metric.name, 'vllm_num_requests_waiting');
  assert.equal(pods.target.type, 'AverageValue');
  assert.ok(pods.target.averageValue !== undefined, 'target averageValue');
  // The adapter rule that produces the metric is documented next to it.
  const docs = readFileSync(path.join(repoRoot, 'docs', 'deployment.md'), 'utf8');
  assert.ok(docs.includes('vllm:num_requests_waiting') && docs.includes(pods.metric.name), 'docs/deployment.md has the adapter rule');
});
