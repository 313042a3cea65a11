// The engine supervisor's decisions, as pure functions that return their
// reasons as data: how a probe result moves readiness (Kubernetes' probe
// semantics: `failureThreshold` consecutive failures make a ready engine
// unhealthy, one success makes it ready again), when an unresponsive engine
// counts as wedged (NIM_ENGINE_UNHEALTHY_TIMEOUT), and whether an engine that
// ended is restarted (NIM_ENGINE_MAX_RESTARTS, with exponential backoff and a
// budget that resets after a long healthy run).

/** Settings of the health policy (all times in milliseconds). */
export interface HealthPolicy {
  /** Consecutive failed probes before ready → unhealthy (>= 1). */
  failureThreshold: number;
  /** Continuous failure, once ready, after which the engine is killed and restarted; 0 = never. */
  unhealthyTimeoutMs: number;
}

/** The current run of failed probes since the last success. */
export interface FailureStreak {
  /** Consecutive failed probes (0 after a success). */
  failures: number;
  /** When the first probe of the streak started (undefined while healthy). */
  since: number | undefined;
}

export const HEALTHY: FailureStreak = { failures: 0, since: undefined };

export type HealthVerdict =
  /** The probe passed: the streak ends; an unhealthy engine is ready again. */
  | { kind: 'healthy' }
  /** Failed, but fewer than `failureThreshold` times in a row: stay ready, traffic keeps flowing. */
  | { kind: 'degraded'; failures: number; reason: string }
  /** `failureThreshold` (or more) failures in a row: not ready. */
  | { kind: 'unhealthy'; failures: number; reason: string }
  /** Failing for `unhealthyTimeoutMs` or longer: kill the engine's process group and restart it. */
  | { kind: 'wedged'; failures: number; forMs: number; reason: string };

/**
 * Judge one probe of an engine that has been ready. `startedAt` is when the
 * probe began (a hung engine's failure starts then, not when the probe timed
 * out), `now` when it ended. Returns the new streak and the verdict.
 */
export function judgeProbe(
  streak: FailureStreak,
  probe: { ok: boolean; reason?: string | undefined; startedAt: number },
  now: number,
  policy: HealthPolicy,
): { streak: FailureStreak; verdict: HealthVerdict } {
  if (probe.ok) return { streak: HEALTHY, verdict: { kind: 'healthy' } };
  const next: FailureStreak = { failures: streak.failures + 1, since: streak.since ?? probe.startedAt };
  const reason = probe.reason ?? 'engine health check failed';
  const forMs = now - next.since!;
  if (policy.unhealthyTimeoutMs > 0 && forMs >= policy.unhealthyTimeoutMs) {
    return { streak: next, verdict: { kind: 'wedged', failures: next.failures, forMs, reason } };
  }
  if (next.failures >= Math.max(1, policy.failureThreshold)) {
    return { streak: next, verdict: { kind: 'unhealthy', failures: next.failures, reason } };
  }
  return { streak: next, verdict: { kind: 'degraded', failures: next.failures, reason } };
}

/** Settings of the restart policy (times in milliseconds). */
export interface RestartPolicy {
  /** Restarts allowed (NIM_ENGINE_MAX_RESTARTS); 0 = exit and let Kubernetes restart the pod. */
  maxRestarts: number;
  /** Delay before the first restart (NIM_ENGINE_RESTART_BACKOFF); doubled for each further one. */
  backoffMs: number;
  /** Longest delay between restarts. */
  maxBackoffMs: number;
  /** An engine that had been ready at least this long before it ended gets a fresh budget. */
  budgetResetMs: number;
}

export type RestartDecision =
  | { restart: true; attempt: number; delayMs: number; budgetReset: boolean }
  | { restart: false; used: number; budgetReset: boolean };

/**
 * Restart an engine that ended? `used` counts restarts spent so far; `readyForMs`
 * is how long the engine that ended had been ready (undefined: never ready).
 * A run of at least `budgetResetMs` resets the budget, so crashes weeks apart
 * never exhaust it.
 */
export function decideRestart(used: number, readyForMs: number | undefined, policy: RestartPolicy): RestartDecision {
  const budgetReset = used > 0 && readyForMs !== undefined && readyForMs >= policy.budgetResetMs;
  const spent = budgetReset ? 0 : used;
  if (spent >= policy.maxRestarts) return { restart: false, used: spent, budgetReset };
  const attempt = spent + 1;
  const delayMs = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (attempt - 1));
  return { restart: true, attempt, delayMs, budgetReset };
}
