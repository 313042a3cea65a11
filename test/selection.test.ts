// Profile selection on hand-built inventories: compatibility reasons, NIM's
// ranking, NIM_MODEL_PROFILE resolution and the choice of GPUs.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { SelectionError } from '../src/errors.js';
import type { GpuInfo, HardwareInventory } from '../src/hardware/types.js';
import { loadManifestSync, parseManifest } from '../src/manifest/index.js';
import type { Manifest } from '../src/manifest/types.js';
import { evaluateProfiles, selectProfile, type SelectionConfig } from '../src/selection/index.js';
import { repoRoot } from './helpers/process.js';

const KINDS = {
  H100: { name: 'NVIDIA H100 80GB HBM3', pci: '2330:10de', family: 'H100', product: 'H100 SXM5 80GB', mib: 81559, cc: '9.0' },
  H100PCIE: { name: 'NVIDIA H100 PCIe', pci: '2331:10de', family: 'H100', product: 'H100 PCIe 80GB', mib: 81559, cc: '9.0' },
  L4: { name: 'NVIDIA L4', pci: '27b8:10de', family: 'L4', product: 'L4 24GB', mib: 23034, cc: '8.9' },
  A100_40: { name: 'NVIDIA A100-SXM4-40GB', pci: '20b0:10de', family: 'A100', product: 'A100 SXM4 40GB', mib: 40960, cc: '8.0' },
  T4: { name: 'Tesla T4', pci: '1eb8:10de', family: 'T4', product: 'T4 16GB', mib: 15360, cc: '7.5' },
} as const;

let uuidN = 0;
function gpu(kind: keyof typeof KINDS, index: number, over: Partial<GpuInfo> = {}): GpuInfo {
  const k = KINDS[kind];
  return {
    index,
    uuid: `GPU-${kind.toLowerCase()}-${index}-${uuidN++}`,
    name: k.name,
    pciDeviceId: k.pci,
    memoryTotalMiB: k.mib,
    memoryUsedMiB: 1,
    utilizationPct: 0,
    computeCapability: k.cc,
    family: k.family,
    product: k.product,
    mig: false,
    ...over,
  };
}

function inv(gpus: GpuInfo[], nvidiaSmi: HardwareInventory['nvidiaSmi'] = 'ok'): HardwareInventory {
  return { gpus, host: { cpuModel: 'test', cpuCores: 8, memoryTotalBytes: 2 ** 34, os: 'linux', arch: 'x64' }, nvidiaSmi, warnings: [] };
}

const cfg = (over: Partial<SelectionConfig> = {}): SelectionConfig => ({
  modelProfile: undefined,
  tensorParallelSize: undefined,
  pipelineParallelSize: undefined,
  passthroughArgs: [],
  ...over,
});

const HEADER = `schema_version: "1.0"
model: {name: t/m, source: hf://t/m, modality: vlm, release: "1", license: {name: MIT, text: MIT}}
profiles:
`;
function manifest(...profiles: string[]): Manifest {
  return parseManifest(HEADER + profiles.map((p) => `  - ${p}\n`).join(''), '/tmp/sel.yaml');
}
const P = (tags: string, extra = '') => `{name: ${nameOf(tags)}, tags: {llm_engine: vllm, ${tags}}${extra}}`;
function nameOf(tags: string): string {
  return tags.replace(/[^a-z0-9]+/gi, '_');
}
const names = (m: Manifest, i: HardwareInventory, c = cfg()) => selectProfile(m, i, c).compatible.map((e) => e.profile.name);

test('optimized beats generic, even at higher precision', () => {
  const m = manifest(P('precision: fp8, tp: 1'), P('precision: bf16, tp: 1, gpu: H100'), P('precision: bf16, tp: 1, gpu: H100, gpu_device: "2330:10de"'));
  const s = selectProfile(m, inv([gpu('H100', 0)]), cfg());
  assert.deepEqual(
    s.compatible.map((e) => e.profile.name),
    [nameOf('precision: bf16, tp: 1, gpu: H100, gpu_device: "2330:10de"'), nameOf('precision: bf16, tp: 1, gpu: H100'), nameOf('precision: fp8, tp: 1')],
  );
  assert.equal(s.how, 'auto');
});

test('lower precision first: nvfp4 < fp8 < int4_awq < bf16 < fp16 < fp32', () => {
  const m = manifest(...['fp16', 'bf16', 'fp32', 'int4_awq', 'fp8', 'nvfp4'].map((p) => P(`precision: ${p}`)));
  assert.deepEqual(names(m, inv([gpu('H100', 0)])), ['precision_nvfp4', 'precision_fp8', 'precision_int4_awq', 'precision_bf16', 'precision_fp16', 'precision_fp32']);
});

test('latency before throughput before untagged; then more GPUs first', () => {
  const m = manifest(
    P('precision: bf16, tp: 1'),
    P('precision: bf16, tp: 1, profile: throughput'),
    P('precision: bf16, tp: 1, profile: latency'),
    P('precision: bf16, tp: 2, profile: latency'),
    P('precision: bf16, tp: 4'),
  );
  assert.deepEqual(names(m, inv([0, 1, 2, 3].map((i) => gpu('H100', i)))), [
    'precision_bf16_tp_2_profile_latency',
    'precision_bf16_tp_1_profile_latency',
    'precision_bf16_tp_1_profile_throughput',
    'precision_bf16_tp_4',
    'precision_bf16_tp_1',
  ]);
});

test('CPU profiles rank below every GPU profile; LoRA profiles rank last', () => {
  const m = manifest(
    P('precision: bf16, feat_lora: true'),
    P('precision: bf16, device: cpu'),
    P('precision: fp32, tp: 1'),
    P('precision: bf16, tp: 1, gpu: H100'),
  );
  assert.deepEqual(names(m, inv([gpu('H100', 0)])), [
    'precision_bf16_tp_1_gpu_H100',
    'precision_fp32_tp_1',
    'precision_bf16_device_cpu',
    'precision_bf16_feat_lora_true',
  ]);
  // Without GPUs the CPU profile is selected.
  const s = selectProfile(m, inv([], 'missing'), cfg());
  assert.equal(s.profile.name, 'precision_bf16_device_cpu');
  assert.equal(s.cudaVisibleDevices, undefined);
  assert.deepEqual(s.gpus, []);
  assert.equal(s.evaluation.gpusNeeded, 0);
  // If only a LoRA profile can run, it is chosen.
  const loraOnly = manifest(P('precision: bf16, feat_lora: true'), P('precision: bf16, tp: 2'));
  assert.equal(selectProfile(loraOnly, inv([gpu('H100', 0)]), cfg()).profile.name, 'precision_bf16_feat_lora_true');
});

test('the id breaks remaining ties deterministically', () => {
  const m = manifest(P('precision: bf16', ', engine_args: [--enforce-eager]'), P('precision: bf16, tp: 1', ', engine_args: [--seed, "1"]'));
  const order = names(m, inv([gpu('H100', 0)]));
  const sortedById = [...m.profiles].sort((a, b) => (a.id < b.id ? -1 : 1)).map((p) => p.name);
  assert.deepEqual(order, sortedById);
});

test('rejection reasons are specific', () => {
  const m = manifest(
    P('precision: bf16, tp: 2'),
    P('precision: bf16, gpu: H100'),
    P('precision: bf16, gpu: H100, gpu_device: "2330:10de"'),
    P('precision: bf16, min_gpu_memory_gb: 40'),
    P('precision: bf16, tp: 8, gpu: H100'),
  );
  const reasons = (i: HardwareInventory) => Object.fromEntries(evaluateProfiles(m, i, cfg()).map((e) => [e.profile.name, e.reasons]));
  const l4 = reasons(inv([gpu('L4', 0)]));
  assert.deepEqual(l4.precision_bf16_tp_2, ['needs 2 GPUs (tp2 × pp1), 1 visible']);
  assert.deepEqual(l4.precision_bf16_gpu_H100, ['needs GPU family H100, found L4 24GB (27b8:10de)']);
  assert.deepEqual(l4.precision_bf16_min_gpu_memory_gb_40, ['needs ≥ 40 GiB per GPU, largest has 22.5 GiB']);
  assert.deepEqual(l4.precision_bf16_tp_8_gpu_H100, ['needs 8 GPUs (tp8 × pp1), 1 visible', 'needs GPU family H100, found L4 24GB (27b8:10de)']);
  const pcie = reasons(inv([gpu('H100PCIE', 0)]));
  assert.deepEqual(pcie.precision_bf16_gpu_H100, []);
  assert.deepEqual(pcie.precision_bf16_gpu_H100_gpu_device_2330_10de_, ['needs GPU device 2330:10de (H100), found H100 PCIe 80GB (2331:10de)']);
  const none = reasons(inv([], 'missing'));
  assert.deepEqual(none.precision_bf16_gpu_H100, ['needs 1 GPU (tp1 × pp1), none visible (nvidia-smi not found)']);
  const mixed = reasons(inv([gpu('H100', 0), gpu('L4', 1), gpu('L4', 2)]));
  assert.deepEqual(mixed.precision_bf16_tp_8_gpu_H100, ['needs 8 GPUs (tp8 × pp1), 3 visible']);
  const t4 = reasons(inv([gpu('T4', 0)]));
  assert.deepEqual(t4.precision_bf16_tp_2, [
    'needs 2 GPUs (tp2 × pp1), 1 visible',
    'precision bf16 needs compute capability ≥ 8.0, found T4 16GB (1eb8:10de) with 7.5',
  ]);
  assert.match(evaluateProfiles(manifest(P('precision: bf16')), inv([gpu('T4', 0)]), cfg())[0]!.reasons[0]!, /precision bf16 needs compute capability ≥ 8\.0, found T4 16GB \(1eb8:10de\) with 7\.5/);
});

test('tensor parallelism needs GPUs of one kind: the largest matching set is used', () => {
  const m = manifest(P('precision: bf16, tp: 2'), P('precision: bf16, tp: 4'));
  const i = inv([gpu('H100', 0), gpu('L4', 1), gpu('L4', 2), gpu('A100_40', 3)]);
  const [tp2, tp4] = evaluateProfiles(m, i, cfg());
  assert.equal(tp2!.compatible, true);
  assert.deepEqual(tp2!.gpus.map((g) => g.index), [1, 2]);
  assert.equal(tp4!.compatible, false);
  assert.deepEqual(tp4!.reasons, ['needs 4 GPUs (tp4 × pp1) of one kind, largest matching set is 2× L4 24GB (27b8:10de)']);
});

test('MIG instances count only for single-GPU profiles', () => {
  const m = manifest(P('precision: bf16, tp: 1'), P('precision: bf16, tp: 2'));
  const mig = (i: number) => gpu('H100', 0, { uuid: `MIG-${i}`, mig: true, memoryTotalMiB: 40000, memoryUsedMiB: null, name: 'NVIDIA H100 MIG 3g.40gb' });
  const [tp1, tp2] = evaluateProfiles(m, inv([mig(1), mig(2), gpu('H100', 1)]), cfg());
  assert.equal(tp1!.compatible, true);
  assert.equal(tp1!.gpus[0]!.mig, false, 'the whole GPU has more free memory');
  assert.equal(tp2!.compatible, false);
  assert.match(tp2!.reasons[0]!, /needs 2 GPUs \(tp2 × pp1\), 1 of 3 visible match; MIG instances \(2\) count only for tp1 × pp1 profiles/);
  // Only MIG instances: the single-GPU profile runs on one, addressed by its MIG UUID.
  const s = selectProfile(m, inv([mig(1), mig(2)]), cfg());
  assert.equal(s.profile.name, 'precision_bf16_tp_1');
  assert.equal(s.cudaVisibleDevices, 'MIG-1');
  assert.ok(s.evaluation.notes.some((n) => /MIG instance/.test(n)));
});

test('NIM_TENSOR_PARALLEL_SIZE / NIM_PIPELINE_PARALLEL_SIZE override the profile', () => {
  const m = manifest(P('precision: bf16, tp: 1'));
  const [e] = evaluateProfiles(m, inv([gpu('H100', 0)]), cfg({ tensorParallelSize: 2, pipelineParallelSize: 2 }));
  assert.equal(e!.tp, 2);
  assert.equal(e!.pp, 2);
  assert.equal(e!.gpusNeeded, 4);
  assert.deepEqual(e!.reasons, ['needs 4 GPUs (tp2 × pp2), 1 visible']);
  const s = selectProfile(m, inv([0, 1, 2, 3].map((i) => gpu('H100', i))), cfg({ tensorParallelSize: 4 }));
  assert.equal(s.gpus.length, 4);
});

test('GPU choice: most free memory first, then lowest index; CUDA_VISIBLE_DEVICES lists UUIDs in index order', () => {
  const m = manifest(P('precision: bf16, tp: 2'));
  const gpus = [
    gpu('H100', 0, { memoryUsedMiB: 30000, uuid: 'GPU-a' }),
    gpu('H100', 1, { memoryUsedMiB: 10, uuid: 'GPU-b' }),
    gpu('H100', 2, { memoryUsedMiB: 500, uuid: 'GPU-c' }),
    gpu('H100', 3, { memoryUsedMiB: 10, uuid: 'GPU-d' }),
  ];
  const s = selectProfile(m, inv(gpus), cfg());
  assert.deepEqual(s.gpus.map((g) => g.index), [1, 3]);
  assert.equal(s.cudaVisibleDevices, 'GPU-b,GPU-d');
  // Ties on free memory go to the lowest index.
  const same = selectProfile(manifest(P('precision: bf16, tp: 1')), inv([gpu('H100', 4, { uuid: 'GPU-x' }), gpu('H100', 2, { uuid: 'GPU-y' })]), cfg());
  assert.equal(same.cudaVisibleDevices, 'GPU-y');
  // Without UUIDs, indices.
  const noUuid = selectProfile(manifest(P('precision: bf16, tp: 1')), inv([gpu('H100', 3, { uuid: '' })]), cfg());
  assert.equal(noUuid.cudaVisibleDevices, '3');
});

test('GPU memory admission uses the share the engine will be given: 91% free fails vLLM\'s 0.92 default', () => {
  const m = manifest(P('precision: bf16, tp: 1'));
  const total = KINDS.H100.mib;
  const at = (freeShare: number) => inv([gpu('H100', 0, { memoryUsedMiB: Math.ceil(total * (1 - freeShare)) })]);
  const e91 = evaluateProfiles(m, at(0.91), cfg())[0]!;
  assert.equal(e91.gpuMemoryUtilization, 0.92);
  assert.equal(e91.lowFreeMemory, true, 'between 90 and 92% free: vLLM (default 0.92) would refuse to start');
  assert.equal(evaluateProfiles(m, at(0.93), cfg())[0]!.lowFreeMemory, false);
  // An override lowers the bar, and the evaluation carries the value the engine command will pass.
  const over = evaluateProfiles(m, at(0.91), cfg({ gpuMemoryUtilization: 0.9 }))[0]!;
  assert.equal(over.lowFreeMemory, false);
  assert.equal(over.gpuMemoryUtilization, 0.9);
});

test('low free memory: compatible but ranked below, never chosen automatically', () => {
  const m = manifest(P('precision: bf16, tp: 2, gpu: H100'), P('precision: bf16, tp: 1'));
  const busy = inv([gpu('H100', 0, { memoryUsedMiB: 70000 }), gpu('H100', 1)]);
  const s = selectProfile(m, busy, cfg());
  assert.equal(s.profile.name, 'precision_bf16_tp_1');
  assert.deepEqual(s.gpus.map((g) => g.index), [1]);
  const low = s.compatible.find((e) => e.lowFreeMemory)!;
  assert.equal(low.profile.name, 'precision_bf16_tp_2_gpu_H100');
  assert.equal(s.compatible.indexOf(low), 1);
  assert.ok(low.notes.some((n) => /GPU 0 has 11\.3 GiB free of 79\.6 GiB; vLLM needs 92%/.test(n)), low.notes.join('|'));
  // --gpu-memory-utilization in NIM_PASSTHROUGH_ARGS lowers the bar.
  const relaxed = evaluateProfiles(m, busy, cfg({ passthroughArgs: ['--gpu-memory-utilization', '0.1'] }));
  assert.equal(relaxed[0]!.lowFreeMemory, false);
  // Only low-memory profiles: an error that says so.
  assert.throws(() => selectProfile(manifest(P('precision: bf16, tp: 2')), busy, cfg()), (err: unknown) => {
    assert.ok(err instanceof SelectionError);
    assert.match(err.message, /can run now: 1 compatible profile needs more free GPU memory/);
    assert.match(err.hint ?? '', /NIM_MODEL_PROFILE/);
    return true;
  });
  // Explicitly requested: allowed, with a warning.
  const explicit = selectProfile(manifest(P('precision: bf16, tp: 2')), busy, cfg({ modelProfile: 'precision_bf16_tp_2' }));
  assert.equal(explicit.how, 'explicit');
  assert.match(explicit.warnings[0]!, /lack free memory/);
});

describe('no silent CPU fallback on a GPU host (issue #12)', () => {
  const m = manifest(P('precision: bf16, gpu: H100'), P('precision: bf16, tp: 2, gpu: H100'), P('precision: bf16, device: cpu'));
  const withEvidence = (gpus: GpuInfo[], evidence: string[], nvidiaSmi: HardwareInventory['nvidiaSmi'] = 'ok'): HardwareInventory => ({ ...inv(gpus, nvidiaSmi), nvidiaEvidence: evidence });
  const refused: Array<[string, HardwareInventory, Partial<SelectionConfig>, RegExp]> = [
    ['one H100 with NIM_TENSOR_PARALLEL_SIZE=2', withEvidence([gpu('H100', 0)], ['nvidia-smi works']), { tensorParallelSize: 2 }, /needs 2 GPUs/],
    ['every GPU lacking free memory', withEvidence([gpu('H100', 0, { memoryUsedMiB: 70000 })], ['nvidia-smi works']), {}, /needs more free GPU memory/],
    ['nvidia-smi present but failing', withEvidence([], ['nvidia-smi is installed but failed'], 'failed'), {}, /an NVIDIA GPU host: nvidia-smi is installed but failed/],
    ['GPU device nodes only', withEvidence([], ['device nodes /dev/nvidia0'], 'missing'), {}, /device nodes \/dev\/nvidia0/],
    ['NVIDIA_VISIBLE_DEVICES=all only', withEvidence([], ['NVIDIA_VISIBLE_DEVICES=all'], 'missing'), {}, /NVIDIA_VISIBLE_DEVICES=all/],
    ['a GPU no profile fits', withEvidence([gpu('L4', 0)], ['nvidia-smi works']), {}, /needs GPU family H100/],
  ];
  for (const [name, inventory, over, reason] of refused) {
    test(`${name}: exit 2 with the reasons, naming the CPU profile as the way out`, () => {
      assert.throws(() => selectProfile(m, inventory, cfg(over)), (err: unknown) => {
        assert.ok(err instanceof SelectionError);
        assert.equal(err.exitCode, 2);
        assert.match(err.message, reason);
        assert.match(err.hint ?? '', /NIM_MODEL_PROFILE=precision_bf16_device_cpu/);
        return true;
      });
    });
  }
  test('a host with no NVIDIA GPU at all gets the CPU profile', () => {
    for (const inventory of [inv([], 'missing'), withEvidence([], [], 'missing')]) {
      assert.equal(selectProfile(m, inventory, cfg()).profile.tags.device, 'cpu');
    }
  });
  test('naming the CPU profile runs it on a GPU host', () => {
    const s = selectProfile(m, withEvidence([gpu('L4', 0)], ['nvidia-smi works']), cfg({ modelProfile: 'precision_bf16_device_cpu' }));
    assert.equal(s.profile.tags.device, 'cpu');
    assert.equal(s.how, 'explicit');
  });
  test('reasons list ids shortened, then "and N more"', () => {
    const many = manifest(...Array.from({ length: 9 }, (_, i) => P(`precision: bf16, tp: ${i + 2}, gpu: H100`)));
    assert.throws(() => selectProfile(many, withEvidence([gpu('H100', 0)], ['nvidia-smi works']), cfg()), (err: unknown) => {
      assert.ok(err instanceof SelectionError);
      assert.match(err.message, /[0-9a-f]{8}… \(precision_bf16_tp_2_gpu_H100\): needs 2 GPUs/);
      assert.match(err.message, /\| and 3 more$/);
      assert.ok(!/[0-9a-f]{64}/.test(err.message), 'no full ids');
      return true;
    });
  });
  test('an explicit tp prefers a profile built for it over overriding another', () => {
    const two = manifest(P('precision: bf16, tp: 1, gpu: H100'), P('precision: bf16, tp: 2'));
    const s = selectProfile(two, inv([gpu('H100', 0), gpu('H100', 1)]), cfg({ tensorParallelSize: 2 }));
    assert.equal(s.profile.name, 'precision_bf16_tp_2');
    assert.equal(s.evaluation.shapeOverridden, false);
  });
});

test('NIM_MODEL_PROFILE: full id, unique prefix, name (any case), default', () => {
  const m = manifest(P('precision: bf16, tp: 1'), P('precision: fp8, tp: 1'));
  const i = inv([gpu('H100', 0)]);
  const target = m.profiles[0]!;
  const pick = (v: string) => selectProfile(m, i, cfg({ modelProfile: v }));
  assert.equal(pick(target.id).profile, target);
  assert.equal(pick(target.id).how, 'explicit');
  // A unique prefix: the shortest prefix of >= 4 characters that is unique.
  let n = 4;
  while (m.profiles.filter((p) => p.id.startsWith(target.id.slice(0, n))).length > 1) n++;
  assert.equal(pick(target.id.slice(0, n)).profile, target);
  assert.equal(pick(target.id.slice(0, n).toUpperCase()).profile, target);
  assert.equal(pick('PRECISION_BF16_TP_1').profile, target);
  assert.equal(pick('default').how, 'auto');
  assert.equal(pick('default').profile.name, 'precision_fp8_tp_1');
});

test('NIM_MODEL_PROFILE: unknown, too short, ambiguous', () => {
  // Find two profiles whose ids share a first hex digit (16 profiles guarantee one pair).
  const m = manifest(...Array.from({ length: 17 }, (_, k) => P(`precision: bf16, tp: ${k + 1}`)));
  const i = inv([gpu('H100', 0)]);
  assert.throws(() => selectProfile(m, i, cfg({ modelProfile: 'nope' })), (err: unknown) => {
    assert.ok(err instanceof SelectionError);
    assert.match(err.message, /NIM_MODEL_PROFILE="nope" matches no profile of t\/m/);
    assert.ok(err.hint?.includes(`${m.profiles[0]!.id.slice(0, 8)} (precision_bf16_tp_1)`), 'lists short ids and names');
    assert.match(err.hint!, / and 12 more; `nim-supervisor list-model-profiles` lists every profile$/, 'a long list is cut');
    assert.doesNotMatch(err.hint!, /[0-9a-f]{64}/, 'no full ids');
    assert.equal(err.exitCode, 2);
    return true;
  });
  assert.throws(() => selectProfile(m, i, cfg({ modelProfile: m.profiles[0]!.id.slice(0, 3) })), /too short: an id prefix needs at least 4/);
  // Build an ambiguous prefix: the longest common prefix of two ids, padded to 4 characters when possible.
  const ids = m.profiles.map((p) => p.id).sort();
  let best = '';
  for (let k = 1; k < ids.length; k++) {
    let c = 0;
    while (ids[k - 1]![c] === ids[k]![c]) c++;
    if (c > best.length) best = ids[k]!.slice(0, c);
  }
  if (best.length >= 4) {
    assert.throws(() => selectProfile(m, i, cfg({ modelProfile: best })), /is ambiguous: it is a prefix of \d+ profile ids/);
  } else {
    // No two ids share 4 characters: simulate with a manifest whose ids are given.
    const amb = parseManifest(
      `${HEADER}  - {id: ${'abcd1'.padEnd(64, '0')}, tags: {llm_engine: vllm, precision: bf16}}\n  - {id: ${'abcd2'.padEnd(64, '0')}, tags: {llm_engine: vllm, precision: fp8}}\n`,
      '/tmp/amb.yaml',
    );
    assert.throws(() => selectProfile(amb, i, cfg({ modelProfile: 'abcd' })), /is ambiguous: it is a prefix of 2 profile ids/);
  }
});

test('NIM_MODEL_PROFILE: an incompatible profile is refused with its reasons', () => {
  const m = manifest(P('precision: bf16, gpu: H100'), P('precision: bf16'));
  assert.throws(() => selectProfile(m, inv([gpu('L4', 0)]), cfg({ modelProfile: 'precision_bf16_gpu_H100' })), (err: unknown) => {
    assert.ok(err instanceof SelectionError);
    assert.match(err.message, /selects [0-9a-f]{8} \(precision_bf16_gpu_H100\), which cannot run on this system: needs GPU family H100, found L4 24GB/);
    assert.match(err.hint ?? '', /precision_bf16\)/);
    return true;
  });
});

test('no compatible profile: every reason and a hint', () => {
  const m = manifest(P('precision: bf16, gpu: H100'), P('precision: bf16, tp: 2'));
  assert.throws(() => selectProfile(m, inv([gpu('L4', 0)]), cfg()), (err: unknown) => {
    assert.ok(err instanceof SelectionError);
    assert.match(err.message, /no profile of t\/m can run on this system \(1 GPU visible: \[0\] L4 24GB \(27b8:10de\)\)/);
    assert.match(err.message, /… \(precision_bf16_gpu_H100\): needs GPU family H100/);
    assert.match(err.message, /… \(precision_bf16_tp_2\): needs 2 GPUs/);
    assert.match(err.hint ?? '', /CUDA_VISIBLE_DEVICES/);
    assert.match(err.hint ?? '', /NIM_MODEL_PROFILE/);
    return true;
  });
});

test('the shipped manifests on typical machines', () => {
  const nemotron = loadManifestSync(path.join(repoRoot, 'manifests', 'nemotron-3-content-safety.yaml'));
  const gemma = loadManifestSync(path.join(repoRoot, 'manifests', 'gemma-3-27b-it.yaml'));
  const pick = (m: Manifest, gpus: GpuInfo[]) => selectProfile(m, inv(gpus), cfg()).profile.name;
  const h100x8 = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => gpu('H100', i));
  assert.equal(pick(nemotron, []), 'vllm-bf16-cpu');
  assert.equal(pick(nemotron, [gpu('L4', 0)]), 'vllm-bf16-tp1-pp1');
  assert.equal(pick(nemotron, [gpu('L4', 0), gpu('L4', 1)]), 'vllm-bf16-tp2-pp1');
  assert.equal(pick(nemotron, h100x8), 'vllm-bf16-tp1-pp1-h100-latency');
  assert.equal(pick(nemotron, [gpu('A100_40', 0), gpu('A100_40', 1)]), 'vllm-bf16-tp1-pp1-a100-latency');
  assert.equal(pick(gemma, h100x8), 'vllm-fp8-tp2-pp1-h100-latency');
  assert.equal(pick(gemma, [gpu('H100', 0)]), 'vllm-fp8-tp1-pp1-h100-latency');
  assert.equal(pick(gemma, [gpu('A100_40', 0), gpu('A100_40', 1)]), 'vllm-bf16-tp2-pp1');
  assert.throws(() => pick(gemma, [gpu('L4', 0)]), SelectionError);
});
