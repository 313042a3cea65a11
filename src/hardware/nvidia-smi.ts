// GPU discovery through nvidia-smi: the exact query we run, a pure parser for
// its CSV output and for `nvidia-smi -L` (which is how MIG instances are
// found), and a runner that never throws. See docs/hardware.md.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { lookupGpu } from './gpu-lookup.js';
import type { DriverInfo, GpuCatalogueEntry, GpuInfo, NvidiaSmiStatus } from './types.js';

/** The fields we ask nvidia-smi for, in order. Test fixtures record this exact list. */
export const NVIDIA_SMI_QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'pci.device_id',
  'memory.total',
  'memory.used',
  'utilization.gpu',
  'compute_cap',
] as const;

/** The arguments of the inventory query. */
export const NVIDIA_SMI_QUERY_ARGS: readonly string[] = [
  `--query-gpu=${NVIDIA_SMI_QUERY_FIELDS.join(',')}`,
  '--format=csv,noheader,nounits',
];

/** The arguments that print the driver's versions (R520+ drivers; older ones fail, which only leaves the CUDA version unknown). */
export const NVIDIA_SMI_VERSION_ARGS: readonly string[] = ['--version'];

/** The arguments that list GPUs and their MIG instances. */
export const NVIDIA_SMI_LIST_ARGS: readonly string[] = ['-L'];

/** Default time limit for one nvidia-smi call (it can be slow while the driver initialises). */
export const NVIDIA_SMI_TIMEOUT_MS = 15_000;

/** At most this many per-line warnings; the rest are summarised in one. */
const MAX_LINE_WARNINGS = 10;

export interface ParsedGpus {
  gpus: GpuInfo[];
  warnings: string[];
}

/** Values nvidia-smi prints instead of a number: [N/A], [Not Supported], [Unknown Error], N/A … */
function isUnavailable(v: string): boolean {
  return /^\[.*\]$/.test(v) || /^n\/a$/i.test(v);
}

function clip(s: string, n = 80): string {
  const one = s.replace(/[\x00-\x1f\x7f]/g, '?');
  return one.length > n ? `${one.slice(0, n)}…` : one;
}

/** `0x233010DE` → `2330:10de`; also accepts the normalised form. Null when not recognisable. */
export function normalisePciDeviceId(raw: string): string | null {
  const v = raw.trim();
  let m = /^0x([0-9a-f]{4})([0-9a-f]{4})$/i.exec(v);
  if (m) return `${m[1]!.toLowerCase()}:${m[2]!.toLowerCase()}`;
  m = /^([0-9a-f]{4}):([0-9a-f]{4})$/i.exec(v);
  if (m) return `${m[1]!.toLowerCase()}:${m[2]!.toLowerCase()}`;
  return null;
}

const NUMBER_RE = /^\d+(\.\d+)?$/;

/**
 * Parse the output of the inventory query (`NVIDIA_SMI_QUERY_ARGS`). Pure and
 * total: any input gives GPUs plus warnings, never an exception.
 *
 * - blank lines, CRLF and extra spaces are tolerated;
 * - `[N/A]`, `[Not Supported]`, `N/A` … become null where GpuInfo allows it
 *   (memory.used, utilization.gpu, compute_cap, pci.device_id);
 * - a line whose index, uuid or name is missing or malformed, or whose field
 *   count is wrong, is skipped with a warning; so is one without memory.total
 *   unless the catalogue knows the GPU (then its nominal memory is used);
 * - compute_cap falls back to the catalogue's value when not reported.
 *
 * Every GPU comes back with `mig: false`; MIG is applied by `applyMigLayout`.
 */
export function parseNvidiaSmiCsv(text: string, catalogue: readonly GpuCatalogueEntry[]): ParsedGpus {
  const gpus: GpuInfo[] = [];
  const warnings: string[] = [];
  let skipped = 0;
  const warnLine = (lineNo: number, problem: string, line: string): void => {
    skipped++;
    if (skipped <= MAX_LINE_WARNINGS) {
      warnings.push(`nvidia-smi output line ${lineNo}: ${problem}; line skipped: "${clip(line)}"`);
    }
  };
  const lines = String(text ?? '').split(/\r\n|\r|\n/);
  const nFields = NVIDIA_SMI_QUERY_FIELDS.length;

  lines.forEach((rawLine, i) => {
    const lineNo = i + 1;
    const line = rawLine.trim();
    if (line === '') return;
    const f = line.split(',').map((s) => s.trim());
    if (f.length !== nFields) {
      warnLine(lineNo, `expected ${nFields} comma-separated fields, got ${f.length}`, line);
      return;
    }
    const [idxS, uuid, name, pciS, totalS, usedS, utilS, ccS] = f as [
      string, string, string, string, string, string, string, string,
    ];

    if (!/^\d+$/.test(idxS)) {
      warnLine(lineNo, `index ${JSON.stringify(idxS)} is not a number`, line);
      return;
    }
    const index = Number(idxS);
    if (!/^(GPU|MIG)-[0-9a-z][0-9a-z-]*$/i.test(uuid)) {
      warnLine(lineNo, `uuid ${JSON.stringify(clip(uuid, 40))} is not a GPU-… uuid`, line);
      return;
    }
    if (name === '' || isUnavailable(name)) {
      warnLine(lineNo, 'no product name', line);
      return;
    }

    let pciDeviceId: string | null = null;
    if (!isUnavailable(pciS)) {
      pciDeviceId = normalisePciDeviceId(pciS);
      if (pciDeviceId === null) {
        warnings.push(`nvidia-smi output line ${lineNo}: GPU ${index}: unrecognised pci.device_id ${JSON.stringify(clip(pciS, 20))}; ignored`);
      }
    }
    const entry = lookupGpu(catalogue, pciDeviceId, name);

    let memoryTotalMiB: number;
    if (NUMBER_RE.test(totalS)) {
      memoryTotalMiB = Math.floor(Number(totalS));
    } else if (isUnavailable(totalS) && entry) {
      memoryTotalMiB = entry.memoryGiB * 1024;
      warnings.push(
        `nvidia-smi output line ${lineNo}: GPU ${index} (${name}) reports memory.total ${totalS}; assuming the catalogue's ${entry.memoryGiB} GiB`,
      );
    } else {
      warnLine(lineNo, `memory.total ${JSON.stringify(clip(totalS, 20))} is not a number`, line);
      return;
    }

    const optionalNumber = (v: string, field: string, max?: number): number | null => {
      if (isUnavailable(v)) return null;
      if (NUMBER_RE.test(v) && (max === undefined || Number(v) <= max)) return Number(v);
      warnings.push(`nvidia-smi output line ${lineNo}: GPU ${index}: ${field} ${JSON.stringify(clip(v, 20))} is not valid; treated as unknown`);
      return null;
    };
    const memoryUsedMiB = optionalNumber(usedS, 'memory.used');
    const utilizationPct = optionalNumber(utilS, 'utilization.gpu', 100);

    let computeCapability: string | null = null;
    if (/^\d+\.\d+$/.test(ccS)) computeCapability = ccS;
    else if (!isUnavailable(ccS)) {
      warnings.push(`nvidia-smi output line ${lineNo}: GPU ${index}: compute_cap ${JSON.stringify(clip(ccS, 20))} is not valid; treated as unknown`);
    }
    computeCapability ??= entry?.computeCapability ?? null;

    if (gpus.some((g) => g.index === index || g.uuid.toLowerCase() === uuid.toLowerCase())) {
      warnLine(lineNo, `duplicate GPU index ${index} or uuid`, line);
      return;
    }

    gpus.push({
      index,
      uuid,
      name: name.replace(/\s+/g, ' '),
      pciDeviceId,
      memoryTotalMiB,
      memoryUsedMiB,
      utilizationPct,
      computeCapability,
      family: entry?.family ?? null,
      product: entry?.product ?? null,
      mig: false,
    });
  });

  if (skipped > MAX_LINE_WARNINGS) {
    warnings.push(`nvidia-smi output: ${skipped - MAX_LINE_WARNINGS} more unparseable line(s) skipped`);
  }
  return { gpus, warnings };
}

/** One MIG instance as `nvidia-smi -L` lists it. */
export interface MigInstance {
  /** MIG profile, e.g. "3g.40gb" (or "1g.10gb+me"). */
  profile: string;
  /** MIG device index within its parent GPU. */
  deviceIndex: number;
  /** `MIG-…` */
  uuid: string;
}

/** One GPU as `nvidia-smi -L` lists it, with its MIG instances (empty when MIG is off or has none). */
export interface ListedGpu {
  index: number;
  name: string;
  uuid: string;
  migInstances: MigInstance[];
}

/**
 * Parse `nvidia-smi -L`:
 *
 *     GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-5d5ba0d6-…)
 *       MIG 3g.40gb     Device  0: (UUID: MIG-c6d4f1ef-…)
 *
 * Pure; unrecognised lines are ignored (the output also carries notes such as
 * "No devices found."), MIG lines before any GPU line give a warning.
 */
export function parseNvidiaSmiList(text: string): { gpus: ListedGpu[]; warnings: string[] } {
  const gpus: ListedGpu[] = [];
  const warnings: string[] = [];
  for (const raw of String(text ?? '').split(/\r\n|\r|\n/)) {
    const line = raw.trimEnd();
    let m = /^\s*GPU\s+(\d+):\s*(.*?)\s*\(UUID:\s*(GPU-[^)\s]+)\s*\)\s*$/.exec(line);
    if (m) {
      gpus.push({ index: Number(m[1]), name: m[2]!, uuid: m[3]!, migInstances: [] });
      continue;
    }
    m = /^\s*MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*(MIG-[^)\s]+)\s*\)\s*$/.exec(line);
    if (m) {
      const parent = gpus[gpus.length - 1];
      if (!parent) {
        warnings.push(`nvidia-smi -L: MIG device before any GPU: "${clip(line.trim())}"; ignored`);
        continue;
      }
      parent.migInstances.push({ profile: m[1]!, deviceIndex: Number(m[2]), uuid: m[3]! });
    }
  }
  return { gpus, warnings };
}

/**
 * Memory of a MIG instance from its profile name (`3g.40gb` → 40 GB), in MiB.
 * The name gives decimal GB, so this is a slight under-estimate of the real
 * slice (safe for "does the model fit"). Null when the name has no size.
 */
export function migProfileMemoryMiB(profile: string): number | null {
  const m = /(?:^|\.)(\d+(?:\.\d+)?)gb(?:\+|$)/i.exec(profile);
  if (!m) return null;
  return Math.floor((Number(m[1]) * 1e9) / (1024 * 1024));
}

export interface MigLayout {
  gpus: GpuInfo[];
  /** MIG instance uuid → parent GPU uuid, for CUDA_VISIBLE_DEVICES=GPU-… matching. */
  migParents: Map<string, string>;
  warnings: string[];
}

/**
 * Replace every GPU that `nvidia-smi -L` shows with MIG instances by those
 * instances: one GpuInfo each, `mig: true`, uuid `MIG-…`, the parent's index,
 * PCI id, family and product, memory estimated from the MIG profile, and
 * memory used / utilisation unknown (drivers report [N/A] for MIG). A CUDA
 * process can use only one MIG instance, so they suit single-GPU profiles
 * only; a warning per MIG GPU says so. GPUs without MIG instances are kept as
 * they are. Pure.
 */
export function applyMigLayout(gpus: readonly GpuInfo[], listed: readonly ListedGpu[]): MigLayout {
  const out: GpuInfo[] = [];
  const migParents = new Map<string, string>();
  const warnings: string[] = [];
  const byUuid = new Map(listed.map((l) => [l.uuid.toLowerCase(), l]));
  for (const g of gpus) {
    const l = byUuid.get(g.uuid.toLowerCase());
    if (!l || l.migInstances.length === 0) {
      out.push(g);
      continue;
    }
    const profiles = l.migInstances.map((m) => m.profile).join(', ');
    warnings.push(
      `GPU ${g.index} (${g.name}, ${g.uuid}) is in MIG mode: using its ${l.migInstances.length} MIG instance(s) (${profiles}) ` +
        'instead of the whole GPU; a MIG instance can only run single-GPU (tp=1) profiles, and its memory is estimated from the MIG profile name',
    );
    for (const m of l.migInstances) {
      const mem = migProfileMemoryMiB(m.profile);
      if (mem === null) {
        warnings.push(`MIG instance ${m.uuid} on GPU ${g.index}: cannot tell its memory from profile "${m.profile}"; assuming 0 MiB`);
      }
      out.push({
        ...g,
        uuid: m.uuid,
        name: `${g.name} MIG ${m.profile}`,
        memoryTotalMiB: mem ?? 0,
        memoryUsedMiB: null,
        utilizationPct: null,
        mig: true,
      });
      migParents.set(m.uuid, g.uuid);
    }
  }
  return { gpus: out, migParents, warnings };
}

export interface NvidiaSmiRunOptions {
  /** Executable name (looked up on the PATH of `env`) or path. Default 'nvidia-smi'. */
  command?: string;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export interface NvidiaSmiResult {
  status: NvidiaSmiStatus;
  stdout: string;
  /** Empty when 'ok'; otherwise one line that says what went wrong. */
  message: string;
}

function firstLine(...texts: Array<string | undefined>): string {
  for (const t of texts) {
    const l = (t ?? '').split(/\r?\n/).map((s) => s.trim()).find((s) => s !== '');
    if (l) return l;
  }
  return '';
}

/**
 * True when execvp would fail with ENOENT: no file of that name on PATH (or at
 * that path). Lets a GPU-less host skip three forks that can only fail (~40 ms
 * of the start-up path on the simulator). Undecided (false) when PATH is unset
 * or has an empty entry (the cwd), where the lookup is execvp's own.
 */
export function nvidiaSmiCertainlyMissing(command: string, pathEnv: string | undefined): boolean {
  if (command.includes('/')) return !existsSync(command);
  if (!pathEnv) return false;
  const dirs = pathEnv.split(path.delimiter);
  return !dirs.includes('') && !dirs.some((dir) => existsSync(path.join(dir, command)));
}

/**
 * Run nvidia-smi with `args` (no shell). Never throws. (node:child_process
 * rather than execa: this runs on the start-up path, before the engine is
 * spawned, and execa's import alone costs ~70 ms.)
 */
export function runNvidiaSmi(args: readonly string[], opts: NvidiaSmiRunOptions = {}): Promise<NvidiaSmiResult> {
  const command = opts.command ?? 'nvidia-smi';
  const timeoutMs = opts.timeoutMs ?? NVIDIA_SMI_TIMEOUT_MS;
  const env = opts.env ?? process.env;
  if (nvidiaSmiCertainlyMissing(command, env.PATH)) return Promise.resolve({ status: 'missing', stdout: '', message: `${command} not found` });
  return new Promise((resolve) => {
    try {
      execFile(
        command,
        [...args],
        { env, timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (!err) return resolve({ status: 'ok', stdout, message: '' });
          const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals | null; code?: string | number };
          if (e.code === 'ENOENT') return resolve({ status: 'missing', stdout: '', message: `${command} not found` });
          if (e.killed && e.signal === 'SIGKILL') {
            return resolve({ status: 'failed', stdout, message: `${command} timed out after ${timeoutMs} ms` });
          }
          if (typeof e.code === 'number') {
            const detail = firstLine(stderr, stdout);
            return resolve({ status: 'failed', stdout, message: `${command} exited with code ${e.code}${detail ? `: ${detail}` : ''}` });
          }
          if (e.signal) return resolve({ status: 'failed', stdout, message: `${command} was killed by ${e.signal}` });
          resolve({ status: 'failed', stdout, message: `${command} could not run: ${firstLine(e.message) || 'unknown error'}` });
        },
      );
    } catch (err) {
      // Synchronous spawn failures (e.g. an invalid argument) are reported like the others.
      resolve({ status: 'failed', stdout: '', message: `${command} could not run: ${err instanceof Error ? err.message : String(err)}` });
    }
  });
}

/** Run the inventory query (`NVIDIA_SMI_QUERY_ARGS`). Never throws. */
export function queryNvidiaSmi(opts: NvidiaSmiRunOptions = {}): Promise<NvidiaSmiResult> {
  return runNvidiaSmi(NVIDIA_SMI_QUERY_ARGS, opts);
}

/** Run `nvidia-smi -L` (GPUs and MIG instances). Never throws. */
export function listNvidiaSmi(opts: NvidiaSmiRunOptions = {}): Promise<NvidiaSmiResult> {
  return runNvidiaSmi(NVIDIA_SMI_LIST_ARGS, opts);
}

/** Run `nvidia-smi --version` (driver and CUDA versions). Never throws. */
export function versionNvidiaSmi(opts: NvidiaSmiRunOptions = {}): Promise<NvidiaSmiResult> {
  return runNvidiaSmi(NVIDIA_SMI_VERSION_ARGS, opts);
}

/**
 * Parse `nvidia-smi --version`:
 *   NVIDIA-SMI version  : 550.54.15
 *   NVML version        : 550.54
 *   DRIVER version      : 550.54.15
 *   CUDA Version        : 12.4
 * "CUDA Version" is the newest CUDA the installed driver supports (the same
 * figure as the `CUDA Version:` in nvidia-smi's banner). Absent fields are null.
 */
export function parseNvidiaSmiVersion(text: string): DriverInfo {
  const field = (re: RegExp): string | null => re.exec(text)?.[1] ?? null;
  return {
    version: field(/^\s*DRIVER version\s*:\s*(\d+(?:\.\d+)+)\s*$/im),
    cudaVersion: field(/^\s*CUDA Version\s*:\s*(\d+\.\d+)\s*$/im) ?? field(/CUDA Version:\s*(\d+\.\d+)/),
  };
}
