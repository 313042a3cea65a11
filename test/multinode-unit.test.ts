// Multi-node groups, the pure parts: the LWS_* / NIM_* cluster variables, the
// manifest `nodes` tag, selection that counts the group's GPUs, the vLLM
// command line, the cluster role and reading `ray status` (real Ray output and
// the shim's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfig } from '../src/config/env.js';
import { ConfigError, ManifestError } from '../src/errors.js';
import { buildEngineCommand } from '../src/engine/argv.js';
import type { HardwareInventory } from '../src/hardware/types.js';
import { h100Inventory } from './helpers/inventory.js';
import { deriveProfileName, loadManifestSync, parseManifest } from '../src/manifest/index.js';
import { evaluateProfiles, selectProfile, type SelectionConfig } from '../src/selection/index.js';
import { clusterRole, hostPort } from '../src/cluster/role.js';
import { parseRayStatus } from '../src/cluster/ray-status.js';
import { fixturesDir, repoRoot } from './helpers/process.js';

// --- configuration -------------------------------------------------------------

test('cluster defaults: a single node, Ray port 6379, 300 s to form, `ray` on PATH', () => {
  const c = loadConfig({}).cluster;
  assert.deepEqual(c, {
    groupSize: 1,
    workerIndex: 0,
    leaderAddress: undefined,
    gpusPerNode: undefined,
    rayPort: 6379,
    startTimeoutMs: 300_000,
    rayCommand: 'ray',
  });
  assert.deepEqual(clusterRole(c), { kind: 'single' });
});

test('cluster variables are read and give the role', () => {
  const env = { LWS_GROUP_SIZE: '3', LWS_WORKER_INDEX: '2', LWS_LEADER_ADDRESS: 'nim-0.nim.llm', NIM_GPUS_PER_NODE: '4', NIM_RAY_PORT: '7000', NIM_CLUSTER_START_TIMEOUT: '12.5', NIM_RAY_COMMAND: '/opt/ray' };
  const c = loadConfig(env).cluster;
  assert.deepEqual(c, { groupSize: 3, workerIndex: 2, leaderAddress: 'nim-0.nim.llm', gpusPerNode: 4, rayPort: 7000, startTimeoutMs: 12_500, rayCommand: '/opt/ray' });
  assert.deepEqual(clusterRole(c), { kind: 'worker', groupSize: 3, index: 2, headAddress: 'nim-0.nim.llm:7000' });
  assert.deepEqual(clusterRole({ ...c, workerIndex: 0 }), { kind: 'leader', groupSize: 3, headAddress: 'nim-0.nim.llm:7000' });
  assert.deepEqual(clusterRole({ ...c, workerIndex: 0, leaderAddress: undefined }), { kind: 'leader', groupSize: 3, headAddress: '127.0.0.1:7000' });
  assert.equal(hostPort('fd00::1', 6379), '[fd00::1]:6379');
  assert.equal(loadConfig({ LWS_GROUP_SIZE: '2', LWS_WORKER_INDEX: '1', LWS_LEADER_ADDRESS: '10.0.0.5' }).cluster.leaderAddress, '10.0.0.5');
  assert.equal(loadConfig({ LWS_LEADER_ADDRESS: 'fd00::5' }).cluster.leaderAddress, 'fd00::5');
});

test('a bad cluster variable names the variable, the value and what is accepted (exit 2)', () => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ LWS_GROUP_SIZE: '0' }, /^LWS_GROUP_SIZE="0" is invalid: expected an integer from 1 to 1024$/],
    [{ LWS_GROUP_SIZE: 'two' }, /^LWS_GROUP_SIZE="two" is invalid: expected an integer/],
    [{ LWS_WORKER_INDEX: '-1' }, /^LWS_WORKER_INDEX="-1" is invalid: expected an integer from 0 to 1023$/],
    [{ LWS_GROUP_SIZE: '2', LWS_WORKER_INDEX: '2', LWS_LEADER_ADDRESS: 'x' }, /^LWS_WORKER_INDEX="2" is invalid: expected an integer from 0 to 1 \(LWS_GROUP_SIZE=2; 0 is the leader\)$/],
    [{ LWS_GROUP_SIZE: '2', LWS_WORKER_INDEX: '1' }, /^LWS_LEADER_ADDRESS is not set: a worker \(LWS_WORKER_INDEX=1\)/],
    [{ LWS_LEADER_ADDRESS: 'leader:6379' }, /^LWS_LEADER_ADDRESS="leader:6379" is invalid: expected a host name or IP address without a port/],
    [{ LWS_LEADER_ADDRESS: 'http://leader' }, /^LWS_LEADER_ADDRESS="http:\/\/leader" is invalid/],
    [{ NIM_GPUS_PER_NODE: '0' }, /^NIM_GPUS_PER_NODE="0" is invalid: expected an integer from 1 to 1024$/],
    [{ NIM_RAY_PORT: '70000' }, /^NIM_RAY_PORT="70000" is invalid: expected an integer from 1 to 65535$/],
    [{ NIM_CLUSTER_START_TIMEOUT: '0' }, /^NIM_CLUSTER_START_TIMEOUT="0" is invalid: expected a number of seconds >= 1$/],
    [{ NIM_CLUSTER_START_TIMEOUT: '5m' }, /^NIM_CLUSTER_START_TIMEOUT="5m" is invalid/],
    [{ NIM_RAY_COMMAND: '  ' }, /^NIM_RAY_COMMAND="  " is invalid: expected a non-empty string$/],
  ];
  for (const [env, re] of bad) {
    assert.throws(
      () => loadConfig(env),
      (err: unknown) => err instanceof ConfigError && err.exitCode === 2 && re.test(err.message),
      `${JSON.stringify(env)} → ${re}`,
    );
  }
});

// --- manifest --------------------------------------------------------------------

const HEADER = `schema_version: "1.0"
model: {name: t/m, source: hf://t/m, modality: vlm, release: "1", license: {name: MIT, text: MIT}}
profiles:
`;
const manifest = (...profiles: string[]) => parseManifest(HEADER + profiles.map((p) => `  - ${p}\n`).join(''), '/tmp/mn.yaml');

test('manifest: the nodes tag, its name suffix -n<N>, and ids of single-node profiles unchanged', () => {
  const m = manifest(
    '{tags: {llm_engine: vllm, precision: bf16, tp: 8, pp: 2, nodes: 2, gpu: H100, profile: throughput}}',
    '{tags: {llm_engine: vllm, precision: bf16, tp: 2}}',
  );
  const [multi, single] = m.profiles;
  assert.equal(multi!.name, 'vllm-bf16-tp8-pp2-n2-h100-throughput');
  assert.equal(multi!.tags.nodes, 2);
  assert.equal(multi!.displayTags.nodes, '2');
  assert.equal(single!.tags.nodes, undefined);
  assert.equal(single!.displayTags.nodes, undefined);
  // `nodes: 1` is the default: the same profile, the same id.
  const explicit = manifest('{tags: {llm_engine: vllm, precision: bf16, tp: 2, nodes: 1}}').profiles[0]!;
  assert.equal(explicit.id, single!.id);
  assert.equal(explicit.name, 'vllm-bf16-tp2-pp1');
  assert.equal(deriveProfileName({ engine: 'vllm', precision: 'fp8', tp: 4, pp: 1, nodes: 2, device: 'gpu', gpu: 'A100', goal: undefined, lora: false }), 'vllm-fp8-tp4-pp1-n2-a100');
});

test('manifest: nodes must divide tp × pp, be a positive integer, and not be set on CPU profiles', () => {
  const cases: Array<[string, RegExp]> = [
    ['{tags: {llm_engine: vllm, precision: bf16, tp: 3, pp: 1, nodes: 2}}', /profiles\[0\]\.tags\.nodes: tp × pp = 3 GPUs do not split evenly over 2 nodes/],
    ['{tags: {llm_engine: vllm, precision: bf16, tp: 8, nodes: 0}}', /profiles\[0\]\.tags\.nodes: expected a positive integer \(nodes/],
    ['{tags: {llm_engine: vllm, precision: bf16, tp: 8, nodes: two}}', /profiles\[0\]\.tags\.nodes: expected a positive integer/],
    ['{tags: {llm_engine: vllm, precision: bf16, device: cpu, tp: 2, nodes: 2}}', /profiles\[0\]\.tags\.nodes: a device: cpu profile runs on one node/],
    ['{tags: {llm_engine: vllm, precision: bf16, node: 2}}', /unknown key "node" \(did you mean "nodes"\?/],
  ];
  for (const [p, re] of cases) {
    assert.throws(() => manifest(p), (err: unknown) => err instanceof ManifestError && err.exitCode === 2 && re.test(err.message), re.source);
  }
});

test('the shipped multi-node manifest (qwen3-vl-235b-a22b-instruct) and the test fixture load', () => {
  const m = loadManifestSync(path.join(repoRoot, 'manifests', 'qwen3-vl-235b-a22b-instruct.yaml'));
  assert.ok(m.model.license.text.length > 100);
  assert.equal(new Set(m.profiles.map((p) => p.id)).size, m.profiles.length);
  const multi = m.profiles.filter((p) => (p.tags.nodes ?? 1) > 1);
  assert.ok(multi.length >= 2);
  assert.ok(multi.some((p) => p.name === 'vllm-bf16-tp8-pp2-n2-h100-throughput'));
  for (const p of multi) assert.equal((p.tags.tp * p.tags.pp) % p.tags.nodes!, 0, p.name);
  const f = loadManifestSync(path.join(fixturesDir, 'manifests', 'multinode.yaml'));
  assert.deepEqual(
    f.profiles.map((p) => p.name),
    ['vllm-bf16-tp1-pp1', 'vllm-bf16-tp8-pp2-n2-h100-throughput', 'vllm-bf16-tp8-pp3-n3-h100-throughput'],
  );
});

// --- selection --------------------------------------------------------------------

const inv = (n: number): HardwareInventory => h100Inventory(n, 'GPU-h100-');
const cfg = (cluster?: SelectionConfig['cluster'], over: Partial<SelectionConfig> = {}): SelectionConfig => ({
  modelProfile: undefined,
  tensorParallelSize: undefined,
  pipelineParallelSize: undefined,
  passthroughArgs: [],
  cluster,
  ...over,
});
const fixture = () => loadManifestSync(path.join(fixturesDir, 'manifests', 'multinode.yaml'));
const byName = (evals: ReturnType<typeof evaluateProfiles>, name: string) => evals.find((e) => e.profile.name === name)!;

test('selection: a multi-node profile is incompatible on a single node or in too small a group, with reasons', () => {
  const single = evaluateProfiles(fixture(), inv(8), cfg());
  assert.deepEqual(byName(single, 'vllm-bf16-tp8-pp2-n2-h100-throughput').reasons, [
    'needs 2 nodes × 8 GPUs (tp8 × pp2), this is a single node (LWS_GROUP_SIZE unset or 1)',
  ]);
  const pair = evaluateProfiles(fixture(), inv(8), cfg({ groupSize: 2, gpusPerNode: undefined }));
  assert.equal(byName(pair, 'vllm-bf16-tp8-pp2-n2-h100-throughput').compatible, true);
  assert.deepEqual(byName(pair, 'vllm-bf16-tp8-pp3-n3-h100-throughput').reasons, [
    'needs 3 nodes × 8 GPUs (tp8 × pp3), the group has 2 nodes (LWS_GROUP_SIZE=2)',
  ]);
  // Single-node profiles stay as they are, in a group too.
  assert.equal(byName(single, 'vllm-bf16-tp1-pp1').compatible, true);
  assert.equal(byName(pair, 'vllm-bf16-tp1-pp1').compatible, true);
});

test('selection: GPUs per node come from this node (the leader) and NIM_GPUS_PER_NODE for the workers', () => {
  // The leader sees 4 GPUs: 8 per node do not fit here.
  const small = evaluateProfiles(fixture(), inv(4), cfg({ groupSize: 3, gpusPerNode: undefined }));
  assert.deepEqual(byName(small, 'vllm-bf16-tp8-pp3-n3-h100-throughput').reasons, ['needs 3 nodes × 8 GPUs (tp8 × pp3), 4 visible on this node']);
  // The workers have only 4 each (NIM_GPUS_PER_NODE).
  const workers = evaluateProfiles(fixture(), inv(8), cfg({ groupSize: 3, gpusPerNode: 4 }));
  assert.deepEqual(byName(workers, 'vllm-bf16-tp8-pp3-n3-h100-throughput').reasons, [
    'needs 3 nodes × 8 GPUs (tp8 × pp3), the workers have 4 GPUs each (NIM_GPUS_PER_NODE=4)',
  ]);
  // No GPU here at all.
  assert.deepEqual(byName(evaluateProfiles(fixture(), inv(0), cfg({ groupSize: 3, gpusPerNode: 8 })), 'vllm-bf16-tp8-pp3-n3-h100-throughput').reasons, [
    'needs 3 nodes × 8 GPUs (tp8 × pp3), none visible on this node (nvidia-smi not found)',
  ]);
  // An override of tp that no longer splits over the nodes.
  assert.deepEqual(byName(evaluateProfiles(fixture(), inv(8), cfg({ groupSize: 3, gpusPerNode: undefined }, { pipelineParallelSize: 2 })), 'vllm-bf16-tp8-pp3-n3-h100-throughput').reasons, [
    'tp8 × pp2 = 16 GPUs do not split evenly over 3 nodes',
  ]);
});

test('selection: in a group the profile that uses the group wins, and the group GPU count is noted', () => {
  const sel3 = selectProfile(fixture(), inv(8), cfg({ groupSize: 3, gpusPerNode: undefined }));
  assert.equal(sel3.profile.name, 'vllm-bf16-tp8-pp3-n3-h100-throughput');
  assert.equal(sel3.evaluation.nodes, 3);
  assert.equal(sel3.evaluation.gpusNeeded, 24);
  assert.equal(sel3.evaluation.gpusPerNode, 8);
  assert.equal(sel3.gpus.length, 8, 'the leader runs on its own 8 GPUs');
  assert.ok(sel3.evaluation.notes.some((n) => n.includes('the group has 3 nodes and 24 GPUs (8 here + 2 workers × 8)')), sel3.evaluation.notes.join(' | '));
  const withPerNode = selectProfile(fixture(), inv(8), cfg({ groupSize: 3, gpusPerNode: 16 }));
  assert.ok(withPerNode.evaluation.notes.some((n) => n.includes('40 GPUs (8 here + 2 workers × 16, NIM_GPUS_PER_NODE)')));
  const sel2 = selectProfile(fixture(), inv(8), cfg({ groupSize: 2, gpusPerNode: undefined }));
  assert.equal(sel2.profile.name, 'vllm-bf16-tp8-pp2-n2-h100-throughput');
  // A group bigger than the profile needs: still compatible; the largest fitting profile first.
  const sel4 = selectProfile(fixture(), inv(8), cfg({ groupSize: 4, gpusPerNode: undefined }));
  assert.equal(sel4.profile.name, 'vllm-bf16-tp8-pp3-n3-h100-throughput');
  // On one node nothing changes.
  assert.equal(selectProfile(fixture(), inv(8), cfg()).profile.name, 'vllm-bf16-tp1-pp1');
  // Naming a multi-node profile on a single node is refused with the reason.
  assert.throws(
    () => selectProfile(fixture(), inv(8), cfg(undefined, { modelProfile: 'vllm-bf16-tp8-pp2-n2-h100-throughput' })),
    /cannot run on this system: needs 2 nodes × 8 GPUs \(tp8 × pp2\), this is a single node/,
  );
});

// --- the vLLM command line -------------------------------------------------------

test('argv: multi-node profiles run on the Ray backend with the profile tp/pp; single-node ones do not', () => {
  const m = fixture();
  const base = { engineCommand: 'vllm', servedModelName: undefined, maxModelLen: undefined, maxImagesPerPrompt: undefined, passthroughArgs: [] };
  const sel = selectProfile(m, inv(8), cfg({ groupSize: 2, gpusPerNode: undefined }));
  const cmd = buildEngineCommand({ manifest: m, selection: sel, config: base, host: '127.0.0.1', port: 9000 });
  assert.deepEqual(cmd.args.slice(0, 14), [
    'serve', 'test/Big-VLM', '--host', '127.0.0.1', '--port', '9000', '--served-model-name', 'test/big-vlm',
    '--tensor-parallel-size', '8', '--pipeline-parallel-size', '2', '--distributed-executor-backend', 'ray',
  ]);
  assert.equal(cmd.env.CUDA_VISIBLE_DEVICES, Array.from({ length: 8 }, (_, i) => `GPU-h100-${i}`).join(','));
  const single = buildEngineCommand({ manifest: m, selection: selectProfile(m, inv(8), cfg()), config: base, host: '127.0.0.1', port: 9000 });
  assert.ok(!single.args.includes('--distributed-executor-backend'));
  // NIM_PASSTHROUGH_ARGS still win (one occurrence, the passthrough value).
  const mp = buildEngineCommand({ manifest: m, selection: sel, config: { ...base, passthroughArgs: ['--distributed-executor-backend', 'mp'] }, host: '127.0.0.1', port: 9000 });
  assert.equal(mp.args.filter((a) => a === '--distributed-executor-backend').length, 1);
  assert.equal(mp.args[mp.args.indexOf('--distributed-executor-backend') + 1], 'mp');
});

// --- ray status --------------------------------------------------------------------

test('parseRayStatus: real Ray output (Active/Idle, verbose node sections), older Healthy:, and garbage', () => {
  const ray2 = `======== Autoscaler status: 2025-03-04 10:11:12.123456 ========
GCS request time: 0.000781s

Node status
---------------------------------------------------------------
Active:
 1 node_328da3b1e9273cf946f6ac3dfee9404dacf429566cd0809a7f04f01c
 1 node_77aa3b1e9273cf946f6ac3dfee9404dacf429566cd0809a7f04f01c
Idle:
 1 node_99bb3b1e9273cf946f6ac3dfee9404dacf429566cd0809a7f04f01c
Pending:
 (no pending nodes)
Recent failures:
 (no failures)

Resources
---------------------------------------------------------------
Total Usage:
 1.0/36.0 CPU
 16.0/24.0 GPU
 0B/36.04GiB memory

Total Demands:
 (no resource demands)

Node: 328da3b1e9273cf946f6ac3dfee9404dacf429566cd0809a7f04f01c
 Usage:
  1.0/36.0 CPU
 Activity:
  Resource: CPU currently in use.
`;
  const r = parseRayStatus(ray2)!;
  assert.equal(r.nodes, 3);
  assert.equal(r.names[0], 'node_328da3b1e9273cf946f6ac3dfee9404dacf429566cd0809a7f04f01c');
  const noIdle = ray2.replace(' 1 node_99bb3b1e9273cf946f6ac3dfee9404dacf429566cd0809a7f04f01c', ' (no idle nodes)');
  assert.equal(parseRayStatus(noIdle)!.nodes, 2);
  const v1 = `======== Autoscaler status: 2021-03-11 00:08:15.019832 ========
Node status
---------------------------------------------------------------
Healthy:
 2 cpu_4_ondemand
Pending:
 10.0.0.226: cpu_4_ondemand, setting-up
Recent failures:
 10.0.0.157: custom1
`;
  assert.deepEqual(parseRayStatus(v1), { nodes: 2, names: ['cpu_4_ondemand'] });
  assert.equal(parseRayStatus('ConnectionError: Could not find any running Ray instance.'), undefined);
  assert.deepEqual(parseRayStatus('Node status\n----\nActive:\n (no active nodes)\nPending:\n'), { nodes: 0, names: [] });
});
