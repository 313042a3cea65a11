// Which of the GPUs nvidia-smi reports this process may use, after
// CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES. Pure. The rules are in
// docs/hardware.md; in short:
//
// CUDA_VISIBLE_DEVICES (set, even to '') takes precedence and follows CUDA:
//   - a comma list of indices, GPU-uuids (or unique prefixes of them, "GPU-"
//     included) and MIG-uuids; GPUs come back in the list's order;
//   - enumeration stops at the first invalid entry: only entries before it
//     count (so "0,2,-1,1" = GPUs 0 and 2, and "-1" = none);
//   - '' (empty), 'none', 'void' and '-1' mean no GPUs;
//   - 'all' is not a CUDA value (CUDA would see no GPU); we read it as "no
//     restriction", with a warning.
// NVIDIA_VISIBLE_DEVICES (only when CUDA_VISIBLE_DEVICES is unset) is applied by
// the container runtime, which mounts only those GPUs, so nvidia-smi's list is
// authoritative: 'all', '' and unset change nothing; 'void'/'none' change
// nothing either (whatever nvidia-smi shows is what is mounted), with a warning
// when GPUs are shown; an explicit list filters by uuid and index, except that
// an index-only list naming as many GPUs as nvidia-smi shows is taken as
// already applied (inside a container nvidia-smi renumbers from 0).
import type { GpuInfo } from './types.js';

export interface VisibleDevices {
  gpus: GpuInfo[];
  warnings: string[];
}

const NONE_WORDS = new Set(['none', 'void']);

/** GPUs an entry names: an index, a (prefix of a) GPU-uuid, or a MIG-uuid. */
function resolveEntry(
  gpus: readonly GpuInfo[],
  entry: string,
  migParents: ReadonlyMap<string, string>,
): { match: GpuInfo[] } | { error: string } {
  if (/^\d+$/.test(entry)) {
    const idx = Number(entry);
    const match = gpus.filter((g) => g.index === idx);
    return match.length ? { match } : { error: `no GPU with index ${idx}` };
  }
  const lower = entry.toLowerCase();
  if (lower.startsWith('gpu-')) {
    // A whole GPU: matches a GPU's uuid, or the parent of MIG instances.
    const parentOf = (g: GpuInfo): string => (g.mig ? (migParents.get(g.uuid) ?? '') : g.uuid).toLowerCase();
    const parents = [...new Set(gpus.map(parentOf).filter((u) => u.startsWith(lower)))];
    if (parents.length === 0) return { error: `no GPU with uuid ${entry}` };
    if (parents.length > 1) return { error: `uuid prefix ${entry} is ambiguous (${parents.length} GPUs)` };
    return { match: gpus.filter((g) => parentOf(g) === parents[0]) };
  }
  if (lower.startsWith('mig-')) {
    if (entry.includes('/')) {
      return { error: `legacy MIG identifier ${entry} (MIG-GPU-<uuid>/<gi>/<ci>) is not supported; use the MIG-<uuid> from nvidia-smi -L` };
    }
    const match = gpus.filter((g) => g.mig && g.uuid.toLowerCase().startsWith(lower));
    if (match.length === 0) return { error: `no MIG instance with uuid ${entry}` };
    if (match.length > 1) return { error: `MIG uuid prefix ${entry} is ambiguous (${match.length} instances)` };
    return { match };
  }
  return { error: `unrecognised device ${JSON.stringify(entry)}` };
}

function applyCuda(
  gpus: readonly GpuInfo[],
  value: string,
  migParents: ReadonlyMap<string, string>,
): VisibleDevices {
  const v = value.trim();
  if (v === '') return { gpus: [], warnings: [] };
  if (NONE_WORDS.has(v.toLowerCase())) return { gpus: [], warnings: [] };
  if (v.toLowerCase() === 'all') {
    return {
      gpus: [...gpus],
      warnings: [
        'CUDA_VISIBLE_DEVICES=all is not a CUDA value (CUDA itself would see no GPU); treating it as unset, all GPUs visible',
      ],
    };
  }
  const warnings: string[] = [];
  const out: GpuInfo[] = [];
  const entries = v.split(',').map((s) => s.trim());
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const rest = entries.length - i - 1;
    const stop = (why: string | null): void => {
      if (why !== null || rest > 0) {
        warnings.push(
          `CUDA_VISIBLE_DEVICES=${JSON.stringify(value)}: ${why ?? `"${entry}" ends the list`}` +
            (rest > 0 ? `; like CUDA, ignoring it and the ${rest} entr${rest === 1 ? 'y' : 'ies'} after it` : '; like CUDA, ignoring it'),
        );
      }
    };
    if (/^-\d+$/.test(entry)) {
      // A negative index: the documented way to hide the rest. Only warn if something follows.
      stop(null);
      break;
    }
    if (entry === '') {
      stop('empty entry');
      break;
    }
    const r = resolveEntry(gpus, entry, migParents);
    if ('error' in r) {
      stop(r.error);
      break;
    }
    const fresh = r.match.filter((g) => !out.includes(g));
    if (fresh.length === 0) {
      warnings.push(`CUDA_VISIBLE_DEVICES=${JSON.stringify(value)}: "${entry}" names a GPU already listed; ignored`);
      continue;
    }
    out.push(...fresh);
  }
  return { gpus: out, warnings };
}

function applyNvidia(
  gpus: readonly GpuInfo[],
  value: string,
  migParents: ReadonlyMap<string, string>,
): VisibleDevices {
  const v = value.trim();
  const lower = v.toLowerCase();
  if (v === '' || lower === 'all') return { gpus: [...gpus], warnings: [] };
  if (NONE_WORDS.has(lower)) {
    return {
      gpus: [...gpus],
      warnings: gpus.length
        ? [
            `NVIDIA_VISIBLE_DEVICES=${v} asks the container runtime for no GPUs, yet nvidia-smi shows ${gpus.length}; ` +
              'using what nvidia-smi shows (those are what is mounted)',
          ]
        : [],
    };
  }
  const entries = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const physical = new Set(gpus.map((g) => g.index));
  const allIndices = entries.every((e) => /^\d+$/.test(e));
  if (allIndices && entries.length === physical.size && !entries.every((e) => physical.has(Number(e)))) {
    // Inside a container the runtime mounted exactly these GPUs and nvidia-smi
    // renumbered them from 0: the list is already applied.
    return { gpus: [...gpus], warnings: [] };
  }
  const warnings: string[] = [];
  const keep = new Set<GpuInfo>();
  for (const e of entries) {
    if (/^\d+:\d+$/.test(e)) {
      warnings.push(`NVIDIA_VISIBLE_DEVICES: "${e}" (<gpu>:<mig> index form) is not supported; ignored`);
      continue;
    }
    const r = resolveEntry(gpus, e, migParents);
    if ('error' in r) warnings.push(`NVIDIA_VISIBLE_DEVICES: ${r.error}; ignored`);
    else r.match.forEach((g) => keep.add(g));
  }
  return { gpus: gpus.filter((g) => keep.has(g)), warnings };
}

/**
 * Apply CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES (undefined = not set) to
 * the GPUs nvidia-smi reports. `migParents` maps MIG instance uuids to their
 * GPU's uuid (from applyMigLayout) so that a GPU-uuid selects its instances.
 */
export function applyVisibleDevices(
  gpus: readonly GpuInfo[],
  cudaVisibleDevices: string | undefined,
  nvidiaVisibleDevices: string | undefined,
  migParents: ReadonlyMap<string, string> = new Map(),
): VisibleDevices {
  if (cudaVisibleDevices !== undefined) return applyCuda(gpus, cudaVisibleDevices, migParents);
  if (nvidiaVisibleDevices !== undefined) return applyNvidia(gpus, nvidiaVisibleDevices, migParents);
  return { gpus: [...gpus], warnings: [] };
}
