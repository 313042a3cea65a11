// Can a profile run on this machine, and on which GPUs? A pure function of the
// profile, the detected hardware and the configuration. The rules are
// documented in docs/selection.md.
import type { ClusterConfig, Config, LoraConfig } from '../config/env.js';
import type { GpuInfo, HardwareInventory } from '../hardware/types.js';
import { lastValue } from '../engine/flag-list.js';
import { PRECISIONS } from '../manifest/precision.js';
import { profileNodes, type Manifest, type Profile } from '../manifest/types.js';
import type { ProfileEvaluation } from './types.js';

/**
 * The --gpu-memory-utilization the supervisor uses when neither the operator
 * nor the profile sets one: vLLM's own default since PR #38284 (0.92,
 * `vllm/config/cache.py`; 0.90 up to about v0.2x). vLLM refuses to start when
 * less than this share of a GPU's total memory is free
 * (`vllm/v1/worker/utils.py` request_memory). The supervisor always passes the
 * value it checked, so whichever vLLM runs, its default never applies.
 */
export const DEFAULT_GPU_MEMORY_UTILIZATION = 0.92;

/**
 * What decides the GPU memory share. `gpuMemoryUtilization` is the operator's
 * override, when a configuration variable of src/config/variables.ts sets it
 * (the hook for NIM's GPU memory fraction variables); NIM_PASSTHROUGH_ARGS
 * still wins over it.
 */
export type GpuMemoryConfig = Pick<Config, 'passthroughArgs'> & { gpuMemoryUtilization?: number | undefined };

/** The configuration selection reads. */
export type SelectionConfig = Pick<Config, 'modelProfile' | 'tensorParallelSize' | 'pipelineParallelSize' | 'passthroughArgs'> &
  GpuMemoryConfig &
  Partial<Pick<Config, 'cliArgs' | 'engine'>> & {
  /**
   * The LeaderWorkerSet group this pod leads (absent = a single node). The
   * leader cannot see the workers' GPUs: it counts LWS_GROUP_SIZE nodes, each
   * with NIM_GPUS_PER_NODE GPUs, or with as many as it has itself.
   */
  cluster?: Pick<ClusterConfig, 'groupSize' | 'gpusPerNode'> | undefined;
  /** With NIM_PEFT_SOURCE set, only profiles with LoRA support (feat_lora) can serve the adapters. */
  lora?: Pick<LoraConfig, 'peftSource'> | undefined;
};

export const MIB_PER_GIB = 1024;

export function gib(mib: number): string {
  const v = mib / MIB_PER_GIB;
  return `${Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1)} GiB`;
}

/** Free memory in MiB, or null when the driver does not report used memory. */
export function freeMiB(g: GpuInfo): number | null {
  return g.memoryUsedMiB === null ? null : Math.max(0, g.memoryTotalMiB - g.memoryUsedMiB);
}

/** A GPU's kind as people read it: "H100 SXM5 80GB (2330:10de)". */
export function describeGpuKind(g: GpuInfo): string {
  const label = g.product ?? g.name;
  if (g.pciDeviceId === null) return g.family === null ? `${label} (not in the GPU catalogue)` : label;
  return g.family === null ? `${label} (${g.pciDeviceId}, not in the GPU catalogue)` : `${label} (${g.pciDeviceId})`;
}

/** "2× L40S 48GB (26b9:10de), 1× L4 24GB (27b8:10de)". */
function describeKinds(gpus: readonly GpuInfo[]): string {
  const counts = new Map<string, number>();
  for (const g of gpus) counts.set(describeGpuKind(g), (counts.get(describeGpuKind(g)) ?? 0) + 1);
  return [...counts].map(([k, n]) => (n === 1 ? k : `${n}× ${k}`)).join(', ');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A usable --gpu-memory-utilization value (0 < x <= 1), else undefined. */
function share(raw: string | number | null | undefined): number | undefined {
  const n = raw === undefined || raw === null ? Number.NaN : Number(raw);
  return Number.isFinite(n) && n > 0 && n <= 1 ? n : undefined;
}

/** The flags above the profile, in precedence order: NIM_PASSTHROUGH_ARGS, then the command line. */
function overrideArgs(config: Pick<Config, 'passthroughArgs'> & Partial<Pick<Config, 'cliArgs'>>): string[] {
  return [...config.passthroughArgs, ...(config.cliArgs ?? [])];
}

/**
 * The --gpu-memory-utilization the engine will run with, as a share of each
 * GPU's total memory, by the precedence the engine command follows
 * (src/engine/argv.ts): the command line, NIM_PASSTHROUGH_ARGS, the operator's
 * override (config.gpuMemoryUtilization, or NIM_GPU_MEM_FRACTION /
 * NIM_KVCACHE_PERCENT), the profile's engine_args, else
 * DEFAULT_GPU_MEMORY_UTILIZATION. An unusable value above the profile is left
 * for vLLM to reject and does not change the check.
 */
export function gpuMemoryUtilization(profile: Profile, config: GpuMemoryConfig & Partial<Pick<Config, 'cliArgs' | 'engine'>>): number {
  const flag = (args: readonly string[]) => share(lastValue(args, '--gpu-memory-utilization'));
  return (
    flag(config.cliArgs ?? []) ??
    flag(config.passthroughArgs) ??
    share(config.gpuMemoryUtilization) ??
    share(config.engine?.gpuMemoryUtilization?.value) ??
    flag(profile.engineArgs) ??
    DEFAULT_GPU_MEMORY_UTILIZATION
  );
}

/** tp or pp after every override: the command line, NIM_PASSTHROUGH_ARGS, the NIM_* variable, else the profile's tag. */
function parallelSize(flag: string, variable: number | undefined, tag: number, config: SelectionConfig): number {
  const raw = lastValue(overrideArgs(config), flag);
  const n = typeof raw === 'string' ? Number(raw) : Number.NaN;
  return Number.isSafeInteger(n) && n >= 1 ? n : (variable ?? tag);
}

/** Order for picking GPUs: most free memory first (unknown = all of it), then lowest index. */
function byFreeThenIndex(a: GpuInfo, b: GpuInfo): number {
  const fa = freeMiB(a) ?? a.memoryTotalMiB;
  const fb = freeMiB(b) ?? b.memoryTotalMiB;
  return fb - fa || a.index - b.index || a.uuid.localeCompare(b.uuid);
}

/** Key of a homogeneous GPU set: the same board (PCI id, else name) and memory size. */
function kindKey(g: GpuInfo): string {
  return `${g.pciDeviceId ?? g.name}|${g.memoryTotalMiB}`;
}

/**
 * Choose `n` GPUs from the matching ones. One GPU: the one with most free
 * memory. Several: tensor/pipeline parallelism wants identical GPUs, so split
 * them into sets of one kind and use the largest set (ties: more memory per
 * GPU, then the set holding the lowest index); inside it, most free memory
 * first, then lowest index. Returns undefined when no set is large enough.
 */
function chooseGpus(matching: readonly GpuInfo[], n: number): { chosen?: GpuInfo[]; largestSet: GpuInfo[] } {
  if (n === 1) {
    const best = [...matching].sort(byFreeThenIndex)[0];
    return { chosen: best ? [best] : undefined, largestSet: best ? [best] : [] };
  }
  const sets = new Map<string, GpuInfo[]>();
  for (const g of matching) sets.set(kindKey(g), [...(sets.get(kindKey(g)) ?? []), g]);
  const ordered = [...sets.values()].sort(
    (a, b) =>
      b.length - a.length ||
      b[0]!.memoryTotalMiB - a[0]!.memoryTotalMiB ||
      Math.min(...a.map((g) => g.index)) - Math.min(...b.map((g) => g.index)),
  );
  const largestSet = ordered[0] ?? [];
  if (largestSet.length < n) return { largestSet };
  return { chosen: [...largestSet].sort(byFreeThenIndex).slice(0, n), largestSet };
}

/**
 * Whether the profile can run here: the hardware rules below, and, when LoRA
 * adapters are configured (NIM_PEFT_SOURCE), LoRA support. NIM does the same:
 * "Running NIM with LoRA. Only looking for compatible profiles that support LoRA."
 */
export function evaluateProfile(profile: Profile, inventory: HardwareInventory, config: SelectionConfig): ProfileEvaluation {
  const e = evaluateOnHardware(profile, inventory, config);
  if (config.lora?.peftSource === undefined || profile.tags.lora) return e;
  const reason = 'no LoRA support (feat_lora is not true), and NIM_PEFT_SOURCE asks for LoRA adapters';
  return { ...e, compatible: false, reasons: [reason, ...e.reasons], gpus: [], lowFreeMemory: false };
}

function evaluateOnHardware(profile: Profile, inventory: HardwareInventory, config: SelectionConfig): ProfileEvaluation {
  const tp = parallelSize('--tensor-parallel-size', config.tensorParallelSize, profile.tags.tp, config);
  const pp = parallelSize('--pipeline-parallel-size', config.pipelineParallelSize, profile.tags.pp, config);
  const nodes = profileNodes(profile.tags);
  const group = config.cluster?.groupSize ?? 1;
  const util = gpuMemoryUtilization(profile, config);
  const shapeOverridden = tp !== profile.tags.tp || pp !== profile.tags.pp;
  const base = { profile, tp, pp, nodes, reasons: [] as string[], notes: [] as string[], gpus: [] as GpuInfo[], lowFreeMemory: false, gpuMemoryUtilization: util, shapeOverridden };

  if (profile.tags.device === 'cpu') {
    return {
      ...base,
      compatible: true,
      gpusNeeded: 0,
      gpusPerNode: 0,
      notes: ["runs on vLLM's CPU backend (needs a CPU build of vLLM); slower than any GPU profile"],
    };
  }

  const n = tp * pp;
  const shape = `(tp${tp} × pp${pp})`;
  const all = inventory.gpus;
  const reasons: string[] = [];
  // A multi-node profile needs tp × pp / nodes GPUs on this node (the leader's
  // own inventory) and on each worker (NIM_GPUS_PER_NODE, else as many as here).
  const perNode = nodes > 1 ? n / nodes : n;
  const fail = (): ProfileEvaluation => ({ ...base, compatible: false, gpusNeeded: n, gpusPerNode: perNode, reasons });
  let need = `needs ${plural(n, 'GPU')} ${shape}`;
  let here = '';
  if (nodes > 1) {
    if (!Number.isInteger(perNode)) {
      reasons.push(`tp${tp} × pp${pp} = ${n} GPUs do not split evenly over ${nodes} nodes`);
      return fail();
    }
    need = `needs ${nodes} nodes × ${plural(perNode, 'GPU')} ${shape}`;
    here = ' on this node';
    if (group < nodes) {
      reasons.push(
        group === 1
          ? `${need}, this is a single node (LWS_GROUP_SIZE unset or 1)`
          : `${need}, the group has ${group} nodes (LWS_GROUP_SIZE=${group})`,
      );
    }
    const workerGpus = config.cluster?.gpusPerNode;
    if (workerGpus !== undefined && workerGpus < perNode) {
      reasons.push(`${need}, the workers have ${plural(workerGpus, 'GPU')} each (NIM_GPUS_PER_NODE=${workerGpus})`);
    }
  }

  if (all.length === 0) {
    const why =
      inventory.nvidiaSmi === 'missing' ? ' (nvidia-smi not found)' : inventory.nvidiaSmi === 'failed' ? ' (nvidia-smi failed)' : '';
    reasons.push(`${need}, none visible${here}${why}`);
    return fail();
  }
  if (all.length < perNode) reasons.push(`${need}, ${all.length} visible${here}`);

  const t = profile.tags;
  let matching = all;
  if (t.gpu !== undefined) {
    const family = t.gpu.toLowerCase();
    matching = matching.filter((g) => g.family !== null && g.family.toLowerCase() === family);
    if (matching.length === 0) {
      reasons.push(`needs GPU family ${t.gpu}, found ${describeKinds(all)}`);
      return fail();
    }
  }
  if (t.gpuDevice !== undefined) {
    const before = matching;
    matching = matching.filter((g) => g.pciDeviceId === t.gpuDevice);
    if (matching.length === 0) {
      reasons.push(`needs GPU device ${t.gpuDevice}${t.gpu ? ` (${t.gpu})` : ''}, found ${describeKinds(before)}`);
      return fail();
    }
  }
  if (t.minGpuMemoryGiB !== undefined) {
    const min = t.minGpuMemoryGiB;
    const before = matching;
    matching = matching.filter((g) => g.memoryTotalMiB >= min * MIB_PER_GIB);
    if (matching.length === 0) {
      const largest = Math.max(...before.map((g) => g.memoryTotalMiB));
      reasons.push(`needs ≥ ${min} GiB per GPU, largest has ${gib(largest)}`);
      return fail();
    }
  }
  const minCc = PRECISIONS[t.precision]?.minComputeCapability;
  if (minCc !== undefined) {
    const before = matching;
    matching = matching.filter((g) => g.computeCapability === null || Number(g.computeCapability) >= minCc);
    if (matching.length === 0) {
      reasons.push(
        `precision ${t.precision} needs compute capability ≥ ${minCc.toFixed(1)}, found ${describeKinds(before)} with ${[
          ...new Set(before.map((g) => g.computeCapability)),
        ].join(', ')}`,
      );
      return fail();
    }
  }
  const migCount = matching.filter((g) => g.mig).length;
  if (n > 1 && migCount > 0) matching = matching.filter((g) => !g.mig);

  if (reasons.length > 0) return fail(); // fewer GPUs than needed, and the filters found nothing else to say
  const { chosen, largestSet } = chooseGpus(matching, perNode);
  if (!chosen) {
    const migNote = n > 1 && migCount > 0 ? `; MIG instances (${migCount}) count only for tp1 × pp1 profiles` : '';
    if (matching.length < perNode) {
      const filtered = matching.length < all.length;
      reasons.push(
        filtered
          ? `${need}, ${matching.length} of ${all.length} visible${here} match${migNote}`
          : `${need}, ${matching.length} visible${here}${migNote}`,
      );
    } else {
      reasons.push(
        `${need} of one kind, largest matching set${here} is ${largestSet.length}× ${describeGpuKind(largestSet[0]!)}${migNote}`,
      );
    }
    return fail();
  }

  const gpus = [...chosen].sort((a, b) => a.index - b.index);
  const notes: string[] = [];
  notes.push(`on GPU${gpus.length === 1 ? '' : 's'} [${gpus.map((g) => g.index).join(', ')}]${nodes > 1 ? ' of this node (the leader)' : ''}`);
  if (nodes > 1) {
    // The group's GPUs: what this node has of the kind used, plus each worker's (assumed alike unless NIM_GPUS_PER_NODE says).
    const workerGpus = config.cluster?.gpusPerNode ?? largestSet.length;
    const total = largestSet.length + (group - 1) * workerGpus;
    notes.push(
      `multi-node on vLLM's Ray backend: ${nodes} nodes × ${plural(perNode, 'GPU')}; the group has ${group} nodes and ${total} GPUs ` +
        `(${largestSet.length} here + ${group - 1} worker${group - 1 === 1 ? '' : 's'} × ${workerGpus}${config.cluster?.gpusPerNode !== undefined ? ', NIM_GPUS_PER_NODE' : ''})`,
    );
  } else if (group > 1) {
    notes.push(`runs on this node alone; the group's ${group - 1} other node${group - 1 === 1 ? '' : 's'} only join Ray`);
  }
  for (const g of gpus) if (g.mig) notes.push(`GPU ${g.index} is a MIG instance (${g.uuid}) with ${gib(g.memoryTotalMiB)}`);

  const short = gpus.filter((g) => {
    const free = freeMiB(g);
    return free !== null && free < util * g.memoryTotalMiB;
  });
  if (short.length > 0) {
    for (const g of short) {
      notes.push(
        `GPU ${g.index} has ${gib(freeMiB(g)!)} free of ${gib(g.memoryTotalMiB)}; vLLM needs ${Math.round(util * 100)}% ` +
          `(${gib(util * g.memoryTotalMiB)}) free at start-up (--gpu-memory-utilization ${util})`,
      );
    }
  }
  // NIM_RELAX_MEM_CONSTRAINTS: the shortfall stays in the notes, but is no gate (select.ts warns when it picks such a profile).
  const relaxed = short.length > 0 && config.engine?.relaxMemConstraints === true;
  if (relaxed) notes.push('free-memory check skipped (NIM_RELAX_MEM_CONSTRAINTS=1)');
  return {
    ...base,
    compatible: true,
    gpusNeeded: n,
    gpusPerNode: perNode,
    gpus,
    notes,
    lowFreeMemory: short.length > 0 && !relaxed,
    ...(relaxed ? { memoryCheckRelaxed: true } : {}),
  };
}

/** Evaluate every profile of the manifest, in manifest order. */
export function evaluateProfiles(manifest: Manifest, inventory: HardwareInventory, config: SelectionConfig): ProfileEvaluation[] {
  return manifest.profiles.map((p) => evaluateProfile(p, inventory, config));
}
