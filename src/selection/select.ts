// Profile selection: rank the compatible profiles the way NIM documents it and
// pick the best runnable one, or the one NIM_MODEL_PROFILE names. Pure: the
// same manifest, inventory and configuration always give the same answer.
import { SelectionError } from '../errors.js';
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
 * then CPU profiles; more nodes first (in a LeaderWorkerSet group, a profile
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

/** `<id> (<name>)` for messages. */
export function profileLabel(p: Profile): string {
  return `${p.id} (${p.name})`;
}

function validChoices(manifest: Manifest): string {
  return `valid values: default, ${manifest.profiles.map(profileLabel).join(', ')}`;
}

/**
 * The profile NIM_MODEL_PROFILE names: a full id, a unique id prefix of at
 * least 4 characters, or a name (ignoring case). An exact id or name wins over
 * a prefix. Undefined for automatic selection (unset or "default").
 */
export function resolveProfile(manifest: Manifest, value: string | undefined): Profile | undefined {
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
        { hint: validChoices(manifest) },
      );
    }
    if (byPrefix.length === 1) return byPrefix[0];
    if (byPrefix.length > 1) {
      throw new SelectionError(
        `NIM_MODEL_PROFILE=${JSON.stringify(v)} is ambiguous: it is a prefix of ${byPrefix.length} profile ids: ${byPrefix.map(profileLabel).join(', ')}`,
        { hint: 'use a longer prefix, the full id or the name' },
      );
    }
  }
  throw new SelectionError(`NIM_MODEL_PROFILE=${JSON.stringify(v)} matches no profile of ${manifest.model.name} (${manifest.file})`, {
    hint: validChoices(manifest),
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

/** CUDA_VISIBLE_DEVICES for the chosen GPUs: their UUIDs in index order (see docs/selection.md). */
export function cudaVisibleDevicesFor(evaluation: ProfileEvaluation): string | undefined {
  if (evaluation.profile.tags.device === 'cpu') return undefined;
  const gpus = [...evaluation.gpus].sort((a, b) => a.index - b.index);
  if (gpus.every((g) => /^(GPU|MIG)-/.test(g.uuid))) return gpus.map((g) => g.uuid).join(',');
  return gpus.map((g) => g.index).join(',');
}

/** Evaluate, rank and choose. Throws SelectionError when nothing (or not the requested profile) can run. */
export function selectProfile(manifest: Manifest, inventory: HardwareInventory, config: SelectionConfig): Selection {
  const evaluations = evaluateProfiles(manifest, inventory, config);
  const compatible = rankEvaluations(evaluations);
  const incompatible = evaluations.filter((e) => !e.compatible);
  const warnings: string[] = [];
  const requested = resolveProfile(manifest, config.modelProfile);

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
              ? `unset NIM_MODEL_PROFILE to select automatically, or choose one that can run: ${runnable.map((e) => profileLabel(e.profile)).join(', ')}`
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
    chosen = compatible.find((e) => !e.lowFreeMemory);
    if (!chosen) {
      const low = compatible.filter((e) => e.lowFreeMemory);
      if (low.length > 0) {
        throw new SelectionError(
          `no profile of ${manifest.model.name} can run now: ${low.length} compatible profile${low.length === 1 ? ' needs' : 's need'} more free GPU memory than is available (${low
            .map((e) => `${e.profile.name}: ${e.notes.filter((n) => n.includes('free')).join('; ')}`)
            .join(' | ')})`,
          {
            hint: 'free the GPUs, lower NIM_GPU_MEM_FRACTION (--gpu-memory-utilization), set NIM_RELAX_MEM_CONSTRAINTS=1 to skip this check, or set NIM_MODEL_PROFILE to start one anyway',
          },
        );
      }
      throw new SelectionError(
        `no profile of ${manifest.model.name} can run on this system (${inventorySummary(inventory)}): ${incompatible
          .map((e) => `${e.profile.name}: ${e.reasons.join('; ')}`)
          .join(' | ')}`,
        {
          hint:
            'check CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES and that nvidia-smi works, use a manifest with a profile for this hardware (NIM_MANIFEST_PATH), ' +
            'or set NIM_TENSOR_PARALLEL_SIZE / NIM_MODEL_PROFILE; `nim-supervisor list-model-profiles` shows every profile with its reasons',
        },
      );
    }
    if (chosen.profile.tags.device === 'cpu' && inventory.gpus.length > 0) {
      const low = compatible.filter((e) => e.lowFreeMemory);
      warnings.push(
        low.length > 0
          ? `running on the CPU: ${low.length} GPU profile(s) fit the GPUs but lack free GPU memory (${low.map((e) => e.profile.name).join(', ')})`
          : `running on the CPU: no GPU profile of ${manifest.model.name} fits the ${inventory.gpus.length} visible GPU(s)`,
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
