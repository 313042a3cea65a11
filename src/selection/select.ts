// Profile selection: rank the compatible profiles the way NIM documents it and
// pick the best runnable one, or the one NIM_MODEL_PROFILE names. Pure: the
// same manifest, inventory and configuration always give the same answer.
import { SelectionError } from '../errors.js';
import { shortId, someOf } from '../log/lists.js';
import { precisionRank } from '../manifest/precision.js';
import type { Manifest, Profile } from '../manifest/types.js';
import type { HardwareInventory } from '../hardware/types.js';
import { evaluateProfiles, type SelectionConfig } from './evaluate.js';
import type { ProfileEvaluation, Selection } from './types.js';

export const MIN_ID_PREFIX = 4;

const GOAL_ORDER = { latency: 0, throughput: 1 } as const;

/** 0 runnable on GPUs, 1 compatible but low free GPU memory, 2 CPU. */
function bucket(e: ProfileEvaluation): number {
  if (e.profile.tags.device === 'cpu') return 2;
  return e.lowFreeMemory ? 1 : 0;
}

/** 2 = a specific PCI device, 1 = a GPU family, 0 = generic. */
function specificity(p: Profile): number {
  return p.tags.gpuDevice !== undefined ? 2 : p.tags.gpu !== undefined ? 1 : 0;
}

/**
 * Best first: non-LoRA before LoRA (without NIM_PEFT_SOURCE LoRA is not
 * requested; with it, profiles without LoRA are incompatible); runnable GPU profiles, then GPU profiles short of free memory,
 * then CPU profiles; with NIM_TENSOR_PARALLEL_SIZE / NIM_PIPELINE_PARALLEL_SIZE,
 * profiles built for that tp/pp before ones it overrides; more nodes first (in a LeaderWorkerSet group, a profile
 * that uses the group); optimized (gpu_device, then gpu) before generic; lower
 * precision first; latency, then throughput, then untagged; more GPUs (then
 * higher tp) first; finally the id, so the order is total.
 */
export function compareEvaluations(a: ProfileEvaluation, b: ProfileEvaluation): number {
  const pa = a.profile;
  const pb = b.profile;
  return (
    Number(pa.tags.lora) - Number(pb.tags.lora) ||
    bucket(a) - bucket(b) ||
    // An explicit tp/pp: profiles built for it before ones whose own tp/pp it overrides.
    Number(a.shapeOverridden ?? false) - Number(b.shapeOverridden ?? false) ||
    // Multi-node profiles are only compatible in a group large enough: prefer the one that uses the group.
    b.nodes - a.nodes ||
    specificity(pb) - specificity(pa) ||
    precisionRank(pa.tags.precision) - precisionRank(pb.tags.precision) ||
    (pa.tags.goal ? GOAL_ORDER[pa.tags.goal] : 2) - (pb.tags.goal ? GOAL_ORDER[pb.tags.goal] : 2) ||
    b.gpusNeeded - a.gpusNeeded ||
    b.tp - a.tp ||
    (pa.id < pb.id ? -1 : pa.id > pb.id ? 1 : 0)
  );
}

export function rankEvaluations(evals: readonly ProfileEvaluation[]): ProfileEvaluation[] {
  return evals.filter((e) => e.compatible).sort(compareEvaluations);
}

/** `<short id> (<name>)` for messages: the id's first 8 characters, which NIM_MODEL_PROFILE accepts. */
export function profileLabel(p: Profile): string {
  return `${shortId(p.id)} (${p.name})`;
}

const MORE = '`nim-supervisor list-model-profiles` lists every profile';

/** The values NIM_MODEL_PROFILE accepts, `order` first (those that can run here), cut short. */
function validChoices(manifest: Manifest, order: readonly Profile[] = manifest.profiles): string {
  const profiles = [...order, ...manifest.profiles.filter((p) => !order.includes(p))];
  const shown = someOf(profiles.map(profileLabel));
  return `valid values: default, ${shown}${profiles.length > 6 ? `; ${MORE}` : ''}`;
}

/**
 * The profile NIM_MODEL_PROFILE names: a full id, a unique id prefix of at
 * least 4 characters, or a name (ignoring case). An exact id or name wins over
 * a prefix. Undefined for automatic selection (unset or "default"). A value
 * that matches nothing lists the valid ones, `order` first, cut short.
 */
export function resolveProfile(manifest: Manifest, value: string | undefined, order?: readonly Profile[]): Profile | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '' || v.toLowerCase() === 'default') return undefined;
  const lower = v.toLowerCase();
  const byId = manifest.profiles.find((p) => p.id === lower);
  if (byId) return byId;
  const byName = manifest.profiles.filter((p) => p.name.toLowerCase() === lower);
  if (byName.length === 1) return byName[0];
  if (/^[0-9a-f]+$/.test(lower)) {
    const byPrefix = manifest.profiles.filter((p) => p.id.startsWith(lower));
    if (byPrefix.length > 0 && lower.length < MIN_ID_PREFIX) {
      throw new SelectionError(
        `NIM_MODEL_PROFILE=${JSON.stringify(v)} is too short: an id prefix needs at least ${MIN_ID_PREFIX} characters`,
        { hint: validChoices(manifest, order) },
      );
    }
    if (byPrefix.length === 1) return byPrefix[0];
    if (byPrefix.length > 1) {
      throw new SelectionError(
        `NIM_MODEL_PROFILE=${JSON.stringify(v)} is ambiguous: it is a prefix of ${byPrefix.length} profile ids: ${someOf(distinctLabels(byPrefix))}`,
        { hint: 'use a longer prefix, the full id or the name' },
      );
    }
  }
  throw new SelectionError(`NIM_MODEL_PROFILE=${JSON.stringify(v)} matches no profile of ${manifest.model.name} (${manifest.file})`, {
    hint: validChoices(manifest, order),
  });
}

function inventorySummary(inv: HardwareInventory): string {
  if (inv.gpus.length === 0) {
    return inv.nvidiaSmi === 'ok' ? 'no GPUs visible' : `no GPUs visible (nvidia-smi ${inv.nvidiaSmi})`;
  }
  return `${inv.gpus.length} GPU${inv.gpus.length === 1 ? '' : 's'} visible: ${inv.gpus
    .map((g) => `[${g.index}] ${g.product ?? g.name}${g.pciDeviceId ? ` (${g.pciDeviceId})` : ''}`)
    .join(', ')}`;
}

/** `3693ebe2… (vllm-bf16-tp1-pp1-h100-latency)`: a shortened id for one-line messages. */
function shortLabel(p: Profile): string {
  return `${p.id.slice(0, 8)}… (${p.name})`;
}

/** The first `max` items joined with " | ", then "and N more". */
function listWithMore(items: readonly string[], max: number): string {
  const shown = items.slice(0, max).join(' | ');
  return items.length > max ? `${shown} | and ${items.length - max} more` : shown;
}

/** CUDA_VISIBLE_DEVICES for the chosen GPUs: their UUIDs in index order (see docs/selection.md). */
export function cudaVisibleDevicesFor(evaluation: ProfileEvaluation): string | undefined {
  if (evaluation.profile.tags.device === 'cpu') return undefined;
  const gpus = [...evaluation.gpus].sort((a, b) => a.index - b.index);
  if (gpus.every((g) => /^(GPU|MIG)-/.test(g.uuid))) return gpus.map((g) => g.uuid).join(',');
  return gpus.map((g) => g.index).join(',');
}

/** Labels for profiles whose ids share a prefix: each id cut where they differ (at least 8 characters). */
function distinctLabels(profiles: readonly Profile[]): string[] {
  let n = 8;
  while (n < 64 && new Set(profiles.map((p) => p.id.slice(0, n))).size < profiles.length) n += 4;
  return profiles.map((p) => `${shortId(p.id, n)} (${p.name})`);
}

/** Evaluate, rank and choose. Throws SelectionError when nothing (or not the requested profile) can run. */
export function selectProfile(manifest: Manifest, inventory: HardwareInventory, config: SelectionConfig): Selection {
  const evaluations = evaluateProfiles(manifest, inventory, config);
  const compatible = rankEvaluations(evaluations);
  const incompatible = evaluations.filter((e) => !e.compatible);
  const warnings: string[] = [];
  // A value that names no profile gets the ones that can run here listed first.
  const requested = resolveProfile(manifest, config.modelProfile, compatible.map((e) => e.profile));

  let chosen: ProfileEvaluation | undefined;
  if (requested) {
    chosen = evaluations.find((e) => e.profile === requested)!;
    if (!chosen.compatible) {
      const runnable = compatible.filter((e) => !e.lowFreeMemory);
      throw new SelectionError(
        `NIM_MODEL_PROFILE=${JSON.stringify(config.modelProfile)} selects ${profileLabel(requested)}, which cannot run on this system: ${chosen.reasons.join('; ')}`,
        {
          hint:
            runnable.length > 0
              ? `unset NIM_MODEL_PROFILE to select automatically, or choose one that can run: ${someOf(runnable.map((e) => profileLabel(e.profile)))}`
              : 'no profile of this manifest can run here; run `nim-supervisor list-model-profiles` for the reasons',
        },
      );
    }
    if (chosen.lowFreeMemory) {
      warnings.push(
        `profile ${requested.name} was requested by NIM_MODEL_PROFILE although its GPUs lack free memory: ${chosen.notes.filter((n) => n.includes('free')).join('; ')}`,
      );
    }
  } else {
    // The CPU profile is an automatic choice only on a host with no NVIDIA GPU at all:
    // on a GPU host a request that cannot be met fails instead of silently running on the CPU.
    const gpuHost = inventory.gpus.length > 0 || (inventory.nvidiaEvidence ?? []).length > 0;
    chosen = compatible.find((e) => !e.lowFreeMemory && !(gpuHost && e.profile.tags.device === 'cpu'));
    const cpu = compatible.filter((e) => e.profile.tags.device === 'cpu').map((e) => e.profile);
    const onCpuAnyway = cpu.length > 0 && gpuHost ? `; to run on the CPU anyway, set NIM_MODEL_PROFILE=${cpu[0]!.name}` : '';
    if (!chosen && config.lora?.peftSource !== undefined && !manifest.profiles.some((p) => p.tags.lora)) {
      // One clear line rather than the same LoRA reason repeated for every profile.
      throw new SelectionError(
        `NIM_PEFT_SOURCE is set, but no profile of ${manifest.model.name} (${manifest.file}) supports LoRA (feat_lora: true)`,
        { hint: 'use a manifest with a LoRA profile for this hardware (NIM_MANIFEST_PATH), or unset NIM_PEFT_SOURCE to serve the base model alone' },
      );
    }
    if (!chosen) {
      const low = compatible.filter((e) => e.lowFreeMemory);
      if (low.length > 0) {
        throw new SelectionError(
          `no profile of ${manifest.model.name} can run now: ${low.length} compatible profile${low.length === 1 ? ' needs' : 's need'} more free GPU memory than is available (${someOf(
            low.map((e) => `${e.profile.name}: ${e.notes.filter((n) => n.includes('free')).join('; ')}`),
            5,
            ' | ',
          )})`,
          {
            hint: `free the GPUs (an engine left behind?), lower NIM_GPU_MEM_FRACTION (--gpu-memory-utilization), set NIM_RELAX_MEM_CONSTRAINTS=1 to skip this check, or set NIM_MODEL_PROFILE to start one anyway${onCpuAnyway}`,
          },
        );
      }
      const evidence = inventory.gpus.length === 0 && gpuHost ? `; an NVIDIA GPU host: ${(inventory.nvidiaEvidence ?? []).join(', ')}` : '';
      throw new SelectionError(
        `no profile of ${manifest.model.name} can run on this system (${inventorySummary(inventory)}${evidence}): ${listWithMore(
          incompatible.map((e) => `${shortLabel(e.profile)}: ${e.reasons.join('; ')}`),
          6,
        )}`,
        {
          hint:
            'check CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES and that nvidia-smi works, use a manifest with a profile for this hardware (NIM_MANIFEST_PATH), ' +
            `or set NIM_TENSOR_PARALLEL_SIZE / NIM_MODEL_PROFILE${onCpuAnyway}; \`nim-supervisor list-model-profiles\` shows every profile with its reasons`,
        },
      );
    }

  }

  if (chosen.memoryCheckRelaxed) {
    warnings.push(
      `NIM_RELAX_MEM_CONSTRAINTS=1: starting ${chosen.profile.name} although its GPUs lack the free memory vLLM asks for ` +
        `(${chosen.notes.filter((n) => n.includes('free of')).join('; ')}); lower NIM_GPU_MEM_FRACTION if vLLM runs out of memory`,
    );
  }
  return {
    profile: chosen.profile,
    evaluation: chosen,
    how: requested ? 'explicit' : 'auto',
    gpus: chosen.gpus,
    cudaVisibleDevices: cudaVisibleDevicesFor(chosen),
    compatible,
    incompatible,
    warnings,
  };
}
