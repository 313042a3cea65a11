// detectHardware(): the machine's GPUs (nvidia-smi, MIG layout, visible
// devices) and host facts, gathered concurrently. Problems become warnings
// for the caller to log; only a broken GPU catalogue file throws (it is read
// only where nvidia-smi exists: without it there is nothing to look up).
import { readdirSync } from 'node:fs';
import { getHostInfo, hostInfoFromOs, type SystemInformationLike } from './host.js';
import {
  applyMigLayout,
  listNvidiaSmi,
  parseNvidiaSmiVersion,
  versionNvidiaSmi,
  parseNvidiaSmiCsv,
  parseNvidiaSmiList,
  queryNvidiaSmi,
  NVIDIA_SMI_TIMEOUT_MS,
  nvidiaSmiCertainlyMissing,
} from './nvidia-smi.js';
import { applyVisibleDevices } from './visible-devices.js';
import type { GpuCatalogueEntry, HardwareInventory } from './types.js';

export interface DetectHardwareOptions {
  /** CUDA_VISIBLE_DEVICES as given (undefined = not set; '' = no GPUs). */
  cudaVisibleDevices?: string;
  /** NVIDIA_VISIBLE_DEVICES as given (undefined = not set). */
  nvidiaVisibleDevices?: string;
  /** nvidia-smi executable: a name looked up on env.PATH, or a path. Default 'nvidia-smi'. */
  nvidiaSmiCommand?: string;
  /** Environment for nvidia-smi (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Default: profiles/gpus.yaml. */
  catalogue?: GpuCatalogueEntry[];
  /** Time limit for each nvidia-smi call (default 15 s). */
  nvidiaSmiTimeoutMs?: number;
  /** For tests: a stand-in for systeminformation. */
  systemInformation?: SystemInformationLike;
  /**
   * 'full' (default): CPU model, memory and OS from systeminformation, for reports.
   * 'os': node:os alone, which is instant: for serve, where the host is only logged.
   */
  host?: 'full' | 'os';
  /** Also ask the driver's versions (`nvidia-smi --version`, run alongside the query): serve and the reports want the CUDA version. */
  driver?: boolean;
  /** Where to look for NVIDIA device nodes (default /dev; tests point it elsewhere). */
  devDir?: string;
}

/**
 * Evidence of an NVIDIA GPU host that does not depend on nvidia-smi working:
 * nvidia-smi present (even failing), /dev/nvidia<N> or /dev/nvidiactl, and
 * NVIDIA_VISIBLE_DEVICES set to anything but void/none (the container
 * toolkit's "no GPU" values). Pure but for one readdir.
 */
export function nvidiaHostEvidence(nvidiaSmi: HardwareInventory['nvidiaSmi'], nvidiaVisibleDevices: string | undefined, devDir = '/dev'): string[] {
  const evidence: string[] = [];
  if (nvidiaSmi !== 'missing') evidence.push(nvidiaSmi === 'ok' ? 'nvidia-smi works' : 'nvidia-smi is installed but failed');
  let nodes: string[] = [];
  try {
    nodes = readdirSync(devDir).filter((n) => /^nvidia(\d+|ctl)$/.test(n));
  } catch {
    /* no /dev to read: no evidence from it */
  }
  if (nodes.length > 0) evidence.push(`device nodes ${nodes.sort().map((n) => `${devDir}/${n}`).join(', ')}`);
  const nvd = nvidiaVisibleDevices?.trim().toLowerCase();
  if (nvd !== undefined && nvd !== '' && nvd !== 'void' && nvd !== 'none') evidence.push(`NVIDIA_VISIBLE_DEVICES=${nvidiaVisibleDevices!.trim()}`);
  return evidence;
}

export async function detectHardware(opts: DetectHardwareOptions = {}): Promise<HardwareInventory> {
  const run = {
    command: opts.nvidiaSmiCommand ?? 'nvidia-smi',
    env: opts.env ?? process.env,
    timeoutMs: opts.nvidiaSmiTimeoutMs ?? NVIDIA_SMI_TIMEOUT_MS,
  };
  // nvidia-smi starts first; the catalogue (yaml + zod) loads while it runs. Without
  // nvidia-smi there are no rows to look up, and no reason to parse it (start-up time).
  const queried = queryNvidiaSmi(run);
  const listed = listNvidiaSmi(run);
  const versioned = opts.driver ? versionNvidiaSmi(run) : undefined;
  const catalogue =
    opts.catalogue ??
    (nvidiaSmiCertainlyMissing(run.command, run.env.PATH) ? [] : (await import('./catalogue.js')).defaultGpuCatalogue());
  const [query, list, version, hostResult] = await Promise.all([
    queried,
    listed,
    versioned ?? Promise.resolve(undefined),
    opts.host === 'os'
      ? Promise.resolve({ host: hostInfoFromOs(), warnings: [] as string[] })
      : getHostInfo(opts.systemInformation ? { si: opts.systemInformation } : {}),
  ]);

  const warnings: string[] = [];
  let gpus: HardwareInventory['gpus'] = [];

  if (query.status === 'missing') {
    warnings.push(`no GPUs: ${query.message} (no NVIDIA driver utilities on PATH)`);
  } else if (query.status === 'failed') {
    warnings.push(`no GPUs: ${query.message}`);
  } else {
    const parsed = parseNvidiaSmiCsv(query.stdout, catalogue);
    warnings.push(...parsed.warnings);
    gpus = parsed.gpus;
    if (gpus.length === 0 && parsed.warnings.length > 0) {
      warnings.push('no GPUs: nvidia-smi output could not be parsed');
    }
    if (gpus.length > 0) {
      if (list.status === 'ok') {
        const listed = parseNvidiaSmiList(list.stdout);
        warnings.push(...listed.warnings);
        const mig = applyMigLayout(gpus, listed.gpus);
        warnings.push(...mig.warnings);
        const visible = applyVisibleDevices(mig.gpus, opts.cudaVisibleDevices, opts.nvidiaVisibleDevices, mig.migParents);
        warnings.push(...visible.warnings);
        gpus = visible.gpus;
      } else {
        warnings.push(`cannot check for MIG instances: ${list.message}; treating every GPU as a whole GPU`);
        const visible = applyVisibleDevices(gpus, opts.cudaVisibleDevices, opts.nvidiaVisibleDevices);
        warnings.push(...visible.warnings);
        gpus = visible.gpus;
      }
    }
    const unknownWarned = new Set<number>();
    for (const g of gpus) {
      if (g.family === null && !unknownWarned.has(g.index)) {
        unknownWarned.add(g.index);
        warnings.push(
          `GPU ${g.index} (${g.name}, PCI id ${g.pciDeviceId ?? 'unknown'}) is not in the GPU catalogue; only generic profiles can use it`,
        );
      }
    }
  }

  warnings.push(...hostResult.warnings);
  const driver = query.status === 'ok' && version?.status === 'ok' ? parseNvidiaSmiVersion(version.stdout) : undefined;
  const nvidiaEvidence = nvidiaHostEvidence(query.status, opts.nvidiaVisibleDevices, opts.devDir);
  return { gpus, host: hostResult.host, nvidiaSmi: query.status, nvidiaEvidence, warnings, ...(driver ? { driver } : {}) };
}
