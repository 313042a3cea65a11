// Pure decisions of the proxy-worker layout (src/workers): how many workers,
// each one's share of a limit, whether a dead worker is replaced.
import { cpuBudget, defaultProxyWorkers, type CpuBudget } from '../hardware/cpu-quota.js';

export interface WorkerCount {
  count: number;
  /** Where the number came from, for the log. */
  why: string;
}

/** NIM_PROXY_WORKERS when set, else the default for the container's CPU budget (hardware/cpu-quota.ts). */
export function proxyWorkerCount(configured: number | undefined, budget: () => CpuBudget = cpuBudget): WorkerCount {
  if (configured !== undefined) return { count: configured, why: 'NIM_PROXY_WORKERS' };
  const b = budget();
  return { count: defaultProxyWorkers(b.cpus), why: `${Number(b.cpus.toFixed(2))} CPUs (${b.source}) / 4, from 1 to 4` };
}

/** One worker's share of a limit shared by `workers` (0 = no cap stays 0): ceil(limit / workers). */
export function shareOf(limit: number, workers: number): number {
  return limit <= 0 ? 0 : Math.ceil(limit / Math.max(1, workers));
}

/** Replacing dead workers: at most `max` deaths within `windowMs`. */
export interface RespawnPolicy {
  max: number;
  windowMs: number;
}

export const RESPAWN_POLICY: RespawnPolicy = { max: 5, windowMs: 60_000 };

export type RespawnDecision = { respawn: true; recent: number } | { respawn: false; recent: number; reason: string };

/**
 * A worker died unexpectedly at `now` (ms); `deaths` are the earlier deaths'
 * times. Replace it unless more than `max` died within the window: then a
 * fault keeps killing them and the supervisor fails instead of looping.
 */
export function decideRespawn(deaths: readonly number[], now: number, policy: RespawnPolicy = RESPAWN_POLICY): RespawnDecision {
  const recent = deaths.filter((t) => now - t < policy.windowMs).length + 1;
  if (recent > policy.max) {
    return { respawn: false, recent, reason: `${recent} proxy workers died within ${policy.windowMs / 1000} s` };
  }
  return { respawn: true, recent };
}
