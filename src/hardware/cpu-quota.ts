// The CPUs this container may use: its cgroup CPU quota (what Kubernetes'
// `resources.limits.cpu` and `docker run --cpus` set), else the CPUs the
// process may run on. Parsers are pure (tested with fixtures); reading the
// files is a thin edge.
import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * cgroup v2 `cpu.max`: `"<quota> <period>"` in µs, or `"max <period>"` for no
 * quota. Returns the quota in CPUs (e.g. 2.5), or undefined for no quota or
 * unparsable text. Source: kernel Documentation/admin-guide/cgroup-v2.rst.
 */
export function parseCgroupV2CpuMax(text: string): number | undefined {
  const m = /^\s*(max|\d+)(?:\s+(\d+))?\s*$/.exec(text);
  if (!m || m[1] === 'max') return undefined;
  const quota = Number(m[1]);
  const period = m[2] === undefined ? 100_000 : Number(m[2]); // the kernel's default period
  return quota > 0 && period > 0 ? quota / period : undefined;
}

/**
 * cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` (µs; quota -1 = none).
 * Returns the quota in CPUs, or undefined.
 */
export function parseCgroupV1Quota(quotaText: string, periodText: string): number | undefined {
  const quota = Number(quotaText.trim());
  const period = Number(periodText.trim());
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return quota / period;
}

export interface CpuBudget {
  /** CPUs this process may use (fractional for a quota like 2.5). */
  cpus: number;
  /** Where the figure came from. */
  source: 'cgroup v2 cpu.max' | 'cgroup v1 cfs quota' | 'available parallelism';
}

/** The files a CPU budget is read from (a seam for tests). */
export interface CpuFiles {
  read(file: string): string | undefined;
  availableParallelism(): number;
}

const osFiles: CpuFiles = {
  read(file) {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  },
  availableParallelism: () => os.availableParallelism(),
};

/**
 * The container's CPU budget: the cgroup v2 quota, else the v1 quota, else
 * os.availableParallelism() (CPU affinity; cpusets). A quota is never taken as
 * more than the CPUs available.
 */
export function cpuBudget(files: CpuFiles = osFiles, root = '/sys/fs/cgroup'): CpuBudget {
  const available = files.availableParallelism();
  const v2 = files.read(`${root}/cpu.max`);
  const fromV2 = v2 === undefined ? undefined : parseCgroupV2CpuMax(v2);
  if (fromV2 !== undefined) return { cpus: Math.min(fromV2, available), source: 'cgroup v2 cpu.max' };
  for (const dir of [`${root}/cpu`, `${root}/cpu,cpuacct`]) {
    const q = files.read(`${dir}/cpu.cfs_quota_us`);
    const p = files.read(`${dir}/cpu.cfs_period_us`);
    const fromV1 = q === undefined || p === undefined ? undefined : parseCgroupV1Quota(q, p);
    if (fromV1 !== undefined) return { cpus: Math.min(fromV1, available), source: 'cgroup v1 cfs quota' };
  }
  return { cpus: available, source: 'available parallelism' };
}

/** Most proxy workers the default gives (beyond it, set NIM_PROXY_WORKERS). */
export const MAX_DEFAULT_PROXY_WORKERS = 4;

/**
 * The default NIM_PROXY_WORKERS for a CPU budget: floor(cpus / 4), from 1 to 4.
 * Why a quarter: the proxy's share of the container's CPUs. The rest belongs to
 * vLLM's own processes on the same quota -- its API server (HTTP, detokenizing
 * the stream), its engine core (the scheduler loop, one busy core) and its
 * tokenizer/multimodal workers -- which do more work per token than the proxy
 * does per forwarded event. One worker forwards ~35,000 SSE events/s (issue
 * #19's measurement), so 4 cover a fast model on one GPU.
 */
export function defaultProxyWorkers(cpus: number): number {
  return Math.max(1, Math.min(MAX_DEFAULT_PROXY_WORKERS, Math.floor(cpus / 4)));
}
