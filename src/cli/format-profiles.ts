// Pure formatting for `list-model-profiles` and `select-profile`: data in,
// text (or a JSON-ready object) out, so the reports are unit-testable.
import type { EngineCommand } from '../selection/types.js';
import type { DriverInfo, GpuInfo, HardwareInventory, HostInfo } from '../hardware/types.js';
import type { Manifest } from '../manifest/types.js';
import type { ProfileEvaluation, Selection } from '../selection/types.js';
import { checkCudaCompatibility, imageCudaVersion, type CudaCompatibility } from '../hardware/cuda-compat.js';
import { DEFAULT_GPU_MEMORY_UTILIZATION, freeMiB } from '../selection/evaluate.js';
import { formatCommandLine, isSecretEnvName, maskArgs, maskEnv, MASK, type Origin, type Overridden, type Provenance } from '../engine/argv.js';

export type ProfileStatus = 'runnable' | 'low-free-memory' | 'incompatible';

export interface ProfileReportEntry {
  id: string;
  name: string;
  status: ProfileStatus;
  selected: boolean;
  /** 1 = best compatible profile; null when incompatible. */
  rank: number | null;
  device: 'gpu' | 'cpu';
  lora: boolean;
  tp: number;
  pp: number;
  gpusNeeded: number;
  /** Indices of the GPUs it would use. */
  gpus: number[];
  tags: Record<string, string>;
  reasons: string[];
  notes: string[];
  description: string | null;
}

export interface GpuReportEntry {
  index: number;
  uuid: string;
  name: string;
  pciDeviceId: string | null;
  family: string | null;
  product: string | null;
  mig: boolean;
  memoryTotalMiB: number;
  memoryUsedMiB: number | null;
  utilizationPct: number | null;
  /** At least DEFAULT_GPU_MEMORY_UTILIZATION (92%) of its memory free: an engine with the default share can start on it. */
  free: boolean;
}

export interface ProfilesReport {
  system: {
    host: HostInfo;
    nvidiaSmi: HardwareInventory['nvidiaSmi'];
    gpus: GpuReportEntry[];
    /** The host's NVIDIA driver (nvidia-smi --version); null when unknown. */
    driver: DriverInfo | null;
    /** The CUDA version the engine image was built for (its CUDA_VERSION); null outside such an image. */
    engineImageCuda: string | null;
    /** Set when the image needs more CUDA than the driver offers (src/hardware/cuda-compat.ts). */
    cudaCompatibility: CudaCompatibility | null;
  };
  model: { name: string; servedModelName: string; source: string; modality: string; release: string; manifest: string };
  profiles: ProfileReportEntry[];
  selected: { id: string; name: string; how: 'auto' | 'explicit' } | null;
  /** Why nothing was selected (no runnable profile, bad NIM_MODEL_PROFILE …). */
  selectionError: string | null;
}

export function isGpuFree(g: GpuInfo): boolean {
  const free = freeMiB(g);
  return free === null || free >= DEFAULT_GPU_MEMORY_UTILIZATION * g.memoryTotalMiB;
}

function statusOf(e: ProfileEvaluation): ProfileStatus {
  return !e.compatible ? 'incompatible' : e.lowFreeMemory ? 'low-free-memory' : 'runnable';
}

export function buildProfilesReport(input: {
  inventory: HardwareInventory;
  manifest: Manifest;
  /** Compatible ones best first, then the incompatible ones. */
  evaluations: readonly ProfileEvaluation[];
  selection: Selection | undefined;
  selectionError?: string | undefined;
  /** The engine image's environment (CUDA_VERSION); default: none known. */
  imageEnv?: NodeJS.ProcessEnv;
}): ProfilesReport {
  const { inventory, manifest, evaluations, selection } = input;
  let rank = 0;
  const image = imageCudaVersion(input.imageEnv ?? {});
  return {
    system: {
      host: inventory.host,
      nvidiaSmi: inventory.nvidiaSmi,
      driver: inventory.driver ?? null,
      engineImageCuda: image ? `${image.version.major}.${image.version.minor}` : null,
      cudaCompatibility: checkCudaCompatibility(image, inventory.driver),
      gpus: inventory.gpus.map((g) => ({
        index: g.index,
        uuid: g.uuid,
        name: g.name,
        pciDeviceId: g.pciDeviceId,
        family: g.family,
        product: g.product,
        mig: g.mig,
        memoryTotalMiB: g.memoryTotalMiB,
        memoryUsedMiB: g.memoryUsedMiB,
        utilizationPct: g.utilizationPct,
        free: isGpuFree(g),
      })),
    },
    model: {
      name: manifest.model.name,
      servedModelName: manifest.model.servedModelName,
      source: manifest.model.source,
      modality: manifest.model.modality,
      release: manifest.model.release,
      manifest: manifest.file,
    },
    profiles: evaluations.map((e) => ({
      id: e.profile.id,
      name: e.profile.name,
      status: statusOf(e),
      selected: selection?.profile.id === e.profile.id,
      rank: e.compatible ? ++rank : null,
      device: e.profile.tags.device,
      lora: e.profile.tags.lora,
      tp: e.tp,
      pp: e.pp,
      gpusNeeded: e.gpusNeeded,
      gpus: e.gpus.map((g) => g.index),
      tags: e.profile.displayTags,
      reasons: e.reasons,
      notes: e.notes,
      description: e.profile.description ?? null,
    })),
    selected: selection ? { id: selection.profile.id, name: selection.profile.name, how: selection.how } : null,
    selectionError: input.selectionError ?? null,
  };
}

function gibText(mib: number | null): string {
  return mib === null ? 'N/A' : `${(mib / 1024).toFixed(1)} GiB`;
}

function gpuLine(g: GpuReportEntry): string {
  const kind = g.family || g.product ? ` (${[g.family ?? '?', g.product ?? '?'].join('/')})` : '';
  const util = g.utilizationPct === null ? 'N/A' : `${g.utilizationPct}%`;
  const mig = g.mig ? ` MIG ${g.uuid}` : '';
  return `  -  [${g.pciDeviceId ?? 'unknown'}] (${g.index})${mig} ${g.name}${kind} [memory ${gibText(g.memoryTotalMiB)} total, ${gibText(g.memoryUsedMiB)} used, current utilization: ${util}]`;
}

function hostLine(h: HostInfo): string {
  return `- Host: ${h.cpuModel} (${h.cpuCores} cores), ${(h.memoryTotalBytes / 1024 ** 3).toFixed(1)} GiB memory, ${h.os} ${h.arch}`;
}

function profileLine(p: ProfileReportEntry, indent: string): string[] {
  const mark = p.selected ? ' (selected)' : '';
  const where = p.device === 'cpu' ? ' [CPU]' : p.gpus.length > 0 ? ` [GPUs ${p.gpus.join(',')}]` : '';
  const lines = [`${indent}- ${p.id} (${p.name})${mark}${where}`];
  for (const r of p.reasons) lines.push(`${indent}    ✗ ${r}`);
  if (p.status === 'low-free-memory') for (const n of p.notes.filter((n) => n.includes(' free '))) lines.push(`${indent}    ! ${n}`);
  // Model-free manifests carry their memory estimate (and the max-model-len hint) in the description.
  if (p.description?.startsWith('estimated ')) lines.push(`${indent}    ≈ ${p.description}`);
  return lines;
}

function section(title: string, entries: ProfileReportEntry[], indent = '  '): string[] {
  if (entries.length === 0) return [`${indent.slice(2)}- ${title} <None>`];
  return [`${indent.slice(2)}- ${title}`, ...entries.flatMap((p) => profileLine(p, indent))];
}

/** The text report, in the shape of NIM's list-model-profiles, plus reasons. */
export function formatProfilesReport(r: ProfilesReport): string {
  const lines: string[] = ['SYSTEM INFO', hostLine(r.system.host)];
  if (r.system.gpus.length === 0) {
    const why = r.system.nvidiaSmi === 'missing' ? ' (nvidia-smi not found)' : r.system.nvidiaSmi === 'failed' ? ' (nvidia-smi failed)' : '';
    lines.push(`- GPUs: <None>${why}`);
  } else {
    const free = r.system.gpus.filter((g) => g.free);
    const busy = r.system.gpus.filter((g) => !g.free);
    lines.push(free.length ? '- Free GPUs:' : '- Free GPUs: <None>', ...free.map(gpuLine));
    lines.push(busy.length ? '- Non-free GPUs:' : '- Non-free GPUs: <None>', ...busy.map(gpuLine));
  }
  if (r.system.driver) lines.push(`- NVIDIA driver: ${r.system.driver.version ?? 'unknown'} (supports CUDA ${r.system.driver.cudaVersion ?? 'unknown'})`);
  if (r.system.engineImageCuda) lines.push(`- Engine image: CUDA ${r.system.engineImageCuda}`);
  const cuda = r.system.cudaCompatibility;
  if (cuda) lines.push(`  ${cuda.level === 'error' ? '✗' : '!'} ${cuda.message}; ${cuda.hint} [${cuda.code}]`);
  lines.push(`MODEL PROFILES (${r.model.name}, release ${r.model.release}, ${r.model.manifest})`);
  const runnable = r.profiles.filter((p) => p.status === 'runnable');
  lines.push(...section('Compatible with system and runnable:', runnable.filter((p) => !p.lora)));
  lines.push(...section('With LoRA support:', runnable.filter((p) => p.lora), '    '));
  lines.push(...section('Compatible with system but low free memory:', r.profiles.filter((p) => p.status === 'low-free-memory')));
  lines.push(...section('Incompatible with system:', r.profiles.filter((p) => p.status === 'incompatible')));
  if (r.selected) {
    lines.push(`SELECTED PROFILE: ${r.selected.id} (${r.selected.name}), ${r.selected.how === 'auto' ? 'selected automatically' : 'named by NIM_MODEL_PROFILE'}`);
  } else {
    lines.push(`SELECTED PROFILE: <None>${r.selectionError ? `: ${r.selectionError}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** What `select-profile` reports. The engine port is chosen at start-up, so it shows as `<port>`. */
export interface SelectionReport {
  profile: { id: string; name: string; tags: Record<string, string>; description: string | null };
  how: 'auto' | 'explicit';
  howText: string;
  gpus: { index: number; uuid: string; name: string }[];
  notes: string[];
  servedModelName: string;
  engine: { command: string; args: string[]; env: Record<string, string>; commandLine: string; provenance: Provenance | null };
}

const SECRET_FLAG_KEYS = new Set(['--api-key']);

/** Provenance with secret values masked (the --api-key values, secret-looking env names). */
function maskProvenance(p: Provenance, portPlaceholder: string): Provenance {
  const argValue = (flag: string, value: string | null): string | null =>
    value === null ? null : SECRET_FLAG_KEYS.has(flag) ? MASK : flag === '--port' ? portPlaceholder : value;
  return {
    args: p.args.map((a) => ({ ...a, value: argValue(a.flag, a.value), overrode: a.overrode.map((o) => ({ ...o, value: argValue(a.flag, o.value) })) })),
    removed: p.removed.map((r) => ({ ...r, overrode: r.overrode.map((o) => ({ ...o, value: argValue(r.flag, o.value) })) })),
    env: p.env.map((e) => {
      const secret = isSecretEnvName(e.name);
      return { ...e, value: secret ? MASK : e.value, overrode: e.overrode.map((o) => ({ ...o, value: secret ? MASK : o.value })) };
    }),
  };
}

/** "NIM_MAX_NUM_SEQS", "profile engine_args", "NIM_PASSTHROUGH_ARGS", "command line". */
export function describeOrigin(o: Origin): string {
  switch (o.layer) {
    case 'variable':
    case 'passthrough':
      return o.source;
    case 'command line':
      return 'command line';
    default:
      return `${o.layer} ${o.source}`;
  }
}

export const PORT_PLACEHOLDER = '<port>';

/** Replace the value after --port with `<port>` (the port is only known when serve starts the engine). */
export function withPortPlaceholder(cmd: EngineCommand): EngineCommand {
  const args = [...cmd.args];
  const i = args.indexOf('--port');
  if (i >= 0 && i + 1 < args.length) args[i + 1] = PORT_PLACEHOLDER;
  return { ...cmd, args };
}

export function buildSelectionReport(input: {
  selection: Selection;
  servedModelName: string;
  /** With the port already replaced by the placeholder. */
  command: EngineCommand;
  modelProfile: string | undefined;
}): SelectionReport {
  const { selection, command } = input;
  const p = selection.profile;
  const howText =
    selection.how === 'explicit'
      ? `named by NIM_MODEL_PROFILE=${JSON.stringify(input.modelProfile)}`
      : `selected automatically: the best of ${selection.compatible.length} compatible profile(s) (${selection.incompatible.length} incompatible)`;
  return {
    profile: { id: p.id, name: p.name, tags: p.displayTags, description: p.description ?? null },
    how: selection.how,
    howText,
    gpus: selection.gpus.map((g) => ({ index: g.index, uuid: g.uuid, name: g.name })),
    notes: selection.evaluation.notes,
    servedModelName: input.servedModelName,
    engine: {
      command: command.command,
      args: maskArgs(command.args),
      env: maskEnv(command.env),
      commandLine: formatCommandLine(command).replace(`'${PORT_PLACEHOLDER}'`, PORT_PLACEHOLDER),
      provenance: command.provenance ? maskProvenance(command.provenance, PORT_PLACEHOLDER) : null,
    },
  };
}

export function formatSelectionReport(r: SelectionReport): string {
  const lines = [
    `Selected profile: ${r.profile.id} (${r.profile.name})`,
    `How: ${r.howText}`,
    `Tags: ${Object.entries(r.profile.tags)
      .map(([k, v]) => `${k}: ${v}`)
      .join(' / ')}`,
  ];
  if (r.profile.description) lines.push(`Description: ${r.profile.description}`);
  lines.push(r.gpus.length ? `GPUs: ${r.gpus.map((g) => `[${g.index}] ${g.name} (${g.uuid})`).join(', ')}` : 'GPUs: none (CPU profile)');
  for (const n of r.notes) lines.push(`Note: ${n}`);
  lines.push(`Served model name: ${r.servedModelName}`);
  lines.push(`Engine environment (added to the supervisor's):`);
  const env = Object.entries(r.engine.env).sort(([a], [b]) => a.localeCompare(b));
  lines.push(...(env.length ? env.map(([k, v]) => `  ${k}=${v}`) : ['  <none>']));
  lines.push(`Engine command (${PORT_PLACEHOLDER} is a free loopback port chosen when serve starts the engine):`);
  lines.push(`  ${r.engine.commandLine}`);
  if (r.engine.provenance) lines.push(...formatProvenance(r.engine.provenance));
  return `${lines.join('\n')}\n`;
}

/** "Where each engine argument and variable comes from" lines for the text report. */
function formatProvenance(p: Provenance): string[] {
  const show = (flag: string, value: string | null) => (value === null ? flag : flag === 'model' ? value : `${flag} ${value}`);
  const over = (list: Overridden[], flag: string) =>
    list.length ? ` (over ${list.map((o) => `${o.value === null ? 'set' : show(flag, o.value).replace(`${flag} `, '')} from ${describeOrigin(o)}`).join(', ')})` : '';
  const rows = p.args.map((a) => [show(a.flag, a.value), `${describeOrigin(a)}${over(a.overrode, a.flag)}`] as const);
  for (const r of p.removed) rows.push([`(removed) ${r.flag}`, `${describeOrigin(r)}${over(r.overrode, r.flag)}`]);
  const envRows = p.env.map((e) => [`${e.name}=${e.value}`, `${describeOrigin(e)}${over(e.overrode, e.name)}`] as const);
  const width = Math.min(48, Math.max(...[...rows, ...envRows].map(([l]) => l.length)));
  const fmt = ([l, r]: readonly [string, string]) => `  ${l.padEnd(width)}  ← ${r}`;
  const out = ['Where each engine argument comes from (layers, lowest first: manifest, profile, NIM_* variables, NIM_PASSTHROUGH_ARGS, command line):'];
  out.push(...rows.map(fmt));
  if (envRows.length) out.push('Where each engine environment variable comes from:', ...envRows.map(fmt));
  return out;
}
