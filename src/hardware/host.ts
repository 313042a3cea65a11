// The host: CPU, memory, OS. From systeminformation, falling back to node:os
// field by field when it throws, hangs or leaves a value empty. GPUs are never
// taken from systeminformation (si.graphics() needs lspci, which containers
// lack); they come from nvidia-smi.
import os from 'node:os';
import type { HostInfo } from './types.js';

/** The parts of systeminformation we use (injectable for tests). */
export interface SystemInformationLike {
  cpu(): Promise<{ manufacturer?: string; brand?: string; cores?: number }>;
  mem(): Promise<{ total?: number }>;
  osInfo(): Promise<{ distro?: string; release?: string; platform?: string; kernel?: string; arch?: string }>;
}

export interface HostInfoOptions {
  /** Default: the systeminformation package. */
  si?: SystemInformationLike;
  /** Give up on systeminformation after this long and use node:os. Default 5000 ms. */
  timeoutMs?: number;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Host facts from node:os alone. */
export function hostInfoFromOs(): HostInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() || 'unknown',
    cpuCores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    memoryTotalBytes: os.totalmem(),
    os: `${os.type()} ${os.release()}`,
    arch: process.arch,
  };
}

/**
 * Host CPU model, logical CPU count, total memory, OS and architecture. Never
 * throws: anything systeminformation cannot tell comes from node:os, and
 * `warnings` says when that happened.
 */
export async function getHostInfo(opts: HostInfoOptions = {}): Promise<{ host: HostInfo; warnings: string[] }> {
  // Imported on demand: systeminformation is large, and serve does not need it (see detectHardware's `host`).
  const lib: SystemInformationLike = opts.si ?? ((await import('systeminformation')).default as SystemInformationLike);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const fallback = hostInfoFromOs();
  const warnings: string[] = [];
  const settle = async <T>(what: string, f: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await withTimeout(Promise.resolve().then(f), timeoutMs, what);
    } catch (err) {
      warnings.push(`host detection: systeminformation ${what} failed (${err instanceof Error ? err.message : String(err)}); using node:os`);
      return undefined;
    }
  };
  const [cpu, mem, osInfo] = await Promise.all([
    settle('cpu()', () => lib.cpu()),
    settle('mem()', () => lib.mem()),
    settle('osInfo()', () => lib.osInfo()),
  ]);

  const brand = [cpu?.manufacturer, cpu?.brand].filter((s) => typeof s === 'string' && s.trim() !== '').join(' ').trim();
  const osName = [osInfo?.distro, osInfo?.release].filter((s) => typeof s === 'string' && s.trim() !== '' && s !== 'unknown').join(' ');
  const kernel = osInfo?.kernel ? ` (${osInfo.platform ?? process.platform} ${osInfo.kernel})` : '';
  const cores = cpu?.cores;
  const total = mem?.total;
  return {
    host: {
      cpuModel: brand || fallback.cpuModel,
      cpuCores: typeof cores === 'number' && Number.isInteger(cores) && cores > 0 ? cores : fallback.cpuCores,
      memoryTotalBytes: typeof total === 'number' && total > 0 ? total : fallback.memoryTotalBytes,
      os: osName ? `${osName}${kernel}` : fallback.os,
      arch: osInfo?.arch || fallback.arch,
    },
    warnings,
  };
}
