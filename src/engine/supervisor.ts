// Supervises the engine: spawns it, watches readiness, notices an exit at once
// (process event, not the next poll), replaces a wedged engine, optionally
// restarts it, and stops it. All state the HTTP layer needs is in the shared
// `Lifecycle`; the decisions are pure functions in health-policy.ts.
//
// Test seams: `spawn`, `probe` and `clock` are injected (defaults: a real
// process group, HTTP probes, Node's timers), so the state machine has fast
// table-driven tests (test/engine-supervisor-unit.test.ts) beside the
// end-to-end ones.
import { EventEmitter } from 'node:events';
import { EngineError } from '../errors.js';
import { sourceLogger, type Logger } from '../log/source.js';
import type { Redact } from '../log/redact.js';
import { describeExit, exitCodeForExit, type ProcessExit } from '../process/exit.js';
import { OutputLog } from '../process/output-log.js';
import { SupervisedProcess, type CloseResult, type SpawnProcessOptions } from '../process/supervised-process.js';
import type { EngineCommand } from '../selection/types.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { decideRestart, HEALTHY, judgeProbe, type FailureStreak } from './health-policy.js';
import { explainEngineFailure } from './engine-failure.js';
import { isOwnAccessLine } from './own-requests.js';
import type { Lifecycle } from './lifecycle.js';
import { probeEngine, type ProbeOptions, type ProbeResult } from './probe.js';

/** What the supervisor needs of a running engine (a `SupervisedProcess`, or a fake in tests). */
export interface EngineHandle {
  readonly pid: number;
  /** Resolves once the main process exited. */
  readonly exited: Promise<ProcessExit>;
  /** Resolves once its output is fully forwarded. */
  readonly drained: Promise<void>;
  readonly running: boolean;
  /** Graceful: SIGTERM to the group, SIGKILL after `timeoutMs`. */
  close(timeoutMs: number): Promise<CloseResult>;
  /** Immediate: SIGKILL to the whole group (works on a stopped group too). */
  destroy(): void;
}

export type SpawnEngine = (opts: SpawnProcessOptions) => EngineHandle;
export type ProbeEngine = (opts: ProbeOptions) => Promise<ProbeResult>;

/** Restart budget resets once an engine has been ready this long (documented in docs/configuration.md). */
export const RESTART_BUDGET_RESET_MS = 10 * 60_000;
/** Backoff between restarts never grows beyond this. */
export const MAX_RESTART_BACKOFF_MS = 5 * 60_000;

export interface EngineSupervisorOptions {
  /** The engine command, its executable already resolved to an absolute path. */
  command: EngineCommand;
  /** Where the engine listens (loopback). */
  host: string;
  port: number;
  /** Every name the engine serves (vLLM's --served-model-name takes several); ready once it lists any. */
  servedModelNames: readonly string[];
  baseEnv: NodeJS.ProcessEnv;
  lifecycle: Lifecycle;
  logger: Logger;
  startupTimeoutMs: number;
  stopTimeoutMs: number;
  /** Probe interval once ready (NIM_HEALTH_CHECK_INTERVAL). */
  healthIntervalMs: number;
  /** Probe interval while loading: small, so public readiness follows the engine closely. */
  startupPollMs?: number;
  /** One probe's time limit (NIM_HEALTH_CHECK_TIMEOUT). */
  probeTimeoutMs?: number;
  /** Consecutive failed probes before ready → unhealthy (NIM_HEALTH_FAILURE_THRESHOLD). */
  failureThreshold?: number;
  /** Continuous failure once ready before the engine is killed and restarted; 0 = never (NIM_ENGINE_UNHEALTHY_TIMEOUT). */
  unhealthyTimeoutMs?: number;
  maxRestarts?: number;
  restartBackoffMs?: number;
  maxRestartBackoffMs?: number;
  restartBudgetResetMs?: number;
  /** Bearer token for probes when the engine itself enforces an API key. */
  engineApiKey?: string | undefined;
  /** Masks secrets in engine output before it is logged or quoted. */
  redact?: Redact;
  /** Seams (defaults: real process group, HTTP probe, Node timers). */
  spawn?: SpawnEngine;
  probe?: ProbeEngine;
  clock?: Clock;
}

/** How supervision ended: the exit code the supervisor should use, and why. */
export interface SupervisionOutcome {
  exitCode: number;
  error?: EngineError;
}

type Resolved = Required<Omit<EngineSupervisorOptions, 'engineApiKey' | 'redact'>> & { engineApiKey?: string | undefined };

export class EngineSupervisor extends EventEmitter<{ spawned: [EngineHandle]; ready: []; wedged: [] }> {
  readonly #opts: Resolved;
  readonly #clock: Clock;
  readonly #engineLogger: Logger;
  readonly log: OutputLog;
  readonly #baseUrl: URL;
  #engine: EngineHandle | undefined;
  #restarts = 0;
  #stopping = false;
  #streak: FailureStreak = HEALTHY;
  /** Why the supervisor itself killed the running engine (the watchdog), for the exit that follows. */
  #killedBecause: string | undefined;
  #pollTimer: TimerHandle | undefined;
  #startupTimer: TimerHandle | undefined;
  #restartTimer: TimerHandle | undefined;
  #resolveDone!: (o: SupervisionOutcome) => void;
  /** Resolves when supervision is over: after `close()`, or when the engine failed for good. */
  readonly done: Promise<SupervisionOutcome>;
  #settled = false;
  /** When (clock ms) the engine process was spawned and when it became ready (for metrics and start-up figures). */
  spawnedAt: number | undefined;
  readyAt: number | undefined;

  constructor(opts: EngineSupervisorOptions) {
    super();
    this.#opts = {
      startupPollMs: 50,
      probeTimeoutMs: 5000,
      failureThreshold: 3,
      unhealthyTimeoutMs: 120_000,
      maxRestarts: 0,
      restartBackoffMs: 5000,
      maxRestartBackoffMs: MAX_RESTART_BACKOFF_MS,
      restartBudgetResetMs: RESTART_BUDGET_RESET_MS,
      spawn: (o) => SupervisedProcess.spawn(o),
      probe: probeEngine,
      clock: systemClock,
      ...opts,
    };
    this.#clock = this.#opts.clock;
    this.#engineLogger = sourceLogger(opts.logger, 'engine');
    this.#baseUrl = new URL(`http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`);
    // The engine's access-log lines for the supervisor's own probes and scrapes are DEBUG only.
    this.log = new OutputLog({ hide: isOwnAccessLine, ...(opts.redact ? { redact: opts.redact } : {}) });
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  /** The engine's base URL (fixed for the supervisor's life: the port is chosen once). */
  get baseUrl(): URL {
    return this.#baseUrl;
  }

  get engine(): EngineHandle | undefined {
    return this.#engine;
  }

  /** Restarts spent from the current budget. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Spawn the engine and start watching it. */
  start(): void {
    if (this.#settled || this.#stopping) return;
    const { lifecycle, logger, command } = this.#opts;
    lifecycle.transition('starting', this.#restarts ? `restarting engine (restart ${this.#restarts})` : 'spawning engine');
    let engine: EngineHandle;
    this.log.rootCause.reset(); // a new process: its own failure, not the last one's
    try {
      engine = this.#opts.spawn({ command, baseEnv: this.#opts.baseEnv, logger: this.#engineLogger, log: this.log });
    } catch (err) {
      this.#fail(new EngineError(`could not start the engine: ${(err as Error).message}`, { cause: err }), 1);
      return;
    }
    this.#engine = engine;
    this.#streak = HEALTHY;
    this.#killedBecause = undefined;
    this.spawnedAt = this.#clock.now();
    this.readyAt = undefined;
    // At DEBUG: serve's start-up report says it in words (`engine spawned after …`, phase "spawned").
    logger.debug({ pid: engine.pid, port: this.#opts.port }, 'engine process spawned');
    this.emit('spawned', engine);
    lifecycle.transition('loading', `engine pid ${engine.pid} is loading the model`);
    void engine.exited.then((exit) => void this.#onExit(engine, exit));

    this.#startupTimer = this.#clock.setTimeout(() => void this.#onStartupTimeout(engine), this.#opts.startupTimeoutMs);
    this.#schedulePoll(engine, 0);
  }

  #schedulePoll(engine: EngineHandle, delayMs: number): void {
    this.#clock.clearTimeout(this.#pollTimer);
    this.#pollTimer = this.#clock.setTimeout(() => void this.#poll(engine), delayMs);
  }

  #current(engine: EngineHandle): boolean {
    return this.#engine === engine && engine.running && !this.#stopping && this.#killedBecause === undefined;
  }

  async #poll(engine: EngineHandle): Promise<void> {
    if (!this.#current(engine)) return;
    const startedAt = this.#clock.now();
    const result = await this.#opts.probe({
      baseUrl: this.baseUrl,
      servedModelNames: this.#opts.servedModelNames,
      timeoutMs: this.#opts.probeTimeoutMs,
      ...(this.#opts.engineApiKey ? { apiKey: this.#opts.engineApiKey } : {}),
    });
    if (!this.#current(engine)) return;
    const { lifecycle } = this.#opts;
    if (lifecycle.state === 'loading') {
      if (result.ok) this.#onReady();
    } else {
      this.#judge(engine, result, startedAt);
      if (this.#killedBecause !== undefined) return;
    }
    const next = lifecycle.state === 'loading' ? this.#opts.startupPollMs : this.#opts.healthIntervalMs;
    this.#schedulePoll(engine, next);
  }

  #onReady(): void {
    const { lifecycle } = this.#opts;
    this.#clock.clearTimeout(this.#startupTimer);
    this.readyAt = this.#clock.now();
    const secs = ((this.readyAt - (this.spawnedAt ?? this.readyAt)) / 1000).toFixed(3);
    lifecycle.transition('ready', `engine ready after ${secs} s`);
    this.emit('ready');
  }

  /** A probe of an engine that has been ready: hysteresis and the watchdog. */
  #judge(engine: EngineHandle, result: ProbeResult, startedAt: number): void {
    const { lifecycle, logger, failureThreshold, unhealthyTimeoutMs } = this.#opts;
    const { streak, verdict } = judgeProbe(this.#streak, { ...result, startedAt }, this.#clock.now(), { failureThreshold, unhealthyTimeoutMs });
    this.#streak = streak;
    const watchdog =
      unhealthyTimeoutMs > 0
        ? `it is killed and restarted once unresponsive for ${fmtSecs(unhealthyTimeoutMs)} (NIM_ENGINE_UNHEALTHY_TIMEOUT)`
        : 'NIM_ENGINE_UNHEALTHY_TIMEOUT=0: it is never killed for this';
    switch (verdict.kind) {
      case 'healthy':
        if (lifecycle.state === 'unhealthy') {
          lifecycle.transition('ready', 'engine healthy again');
          logger.info('engine healthy again');
        }
        return;
      case 'degraded':
        logger.warn({ failures: verdict.failures, threshold: failureThreshold, reason: verdict.reason }, `engine health check failed (${verdict.failures} of ${failureThreshold} before unready); still serving`);
        return;
      case 'unhealthy': {
        const why = `engine health check failed ${verdict.failures} times in a row (NIM_HEALTH_FAILURE_THRESHOLD=${failureThreshold}): ${verdict.reason}; ${watchdog}`;
        if (lifecycle.state === 'ready') {
          lifecycle.transition('unhealthy', why);
          logger.warn({ failures: verdict.failures, reason: verdict.reason }, 'engine turned unhealthy');
        } else {
          lifecycle.note(why);
        }
        return;
      }
      case 'wedged': {
        const why = `engine unresponsive for ${fmtSecs(verdict.forMs)} (NIM_ENGINE_UNHEALTHY_TIMEOUT=${fmtSecs(unhealthyTimeoutMs)}): ${verdict.reason}`;
        logger.error({ pid: engine.pid, failures: verdict.failures, forMs: Math.round(verdict.forMs) }, `${why}; killing its process group`);
        this.#killedBecause = why;
        this.#clock.clearTimeout(this.#pollTimer);
        if (lifecycle.state === 'ready') lifecycle.transition('unhealthy', `${why}; killing it`);
        else lifecycle.note(`${why}; killing it`);
        this.emit('wedged');
        // SIGKILL works on a stopped (SIGSTOP) group too; the exit that follows restarts or fails.
        engine.destroy();
        return;
      }
    }
  }

  async #onStartupTimeout(engine: EngineHandle): Promise<void> {
    if (this.#engine !== engine || this.#opts.lifecycle.state !== 'loading') return;
    const secs = Math.round(this.#opts.startupTimeoutMs / 1000);
    this.#opts.logger.warn(`engine not ready after ${secs} s (NIM_STARTUP_TIMEOUT); stopping it`);
    this.#stopping = true; // the exit that follows is ours
    this.#clock.clearTimeout(this.#pollTimer);
    await engine.close(this.#opts.stopTimeoutMs);
    // An engine that logged an error and then hung (vLLM's API server can outlive a dead
    // engine core) failed for that reason: quote it, and do not advise a longer timeout.
    const explained = this.#explain();
    const stuck = this.log.rootCause.rootCause !== undefined;
    this.#fail(
      new EngineError(`engine did not become ready within ${secs} s (NIM_STARTUP_TIMEOUT); ${explained.detail}`, {
        hint: stuck ? explained.hint : 'raise NIM_STARTUP_TIMEOUT for large models, or check the engine log above',
      }),
      1,
    );
  }

  async #onExit(engine: EngineHandle, exit: ProcessExit): Promise<void> {
    if (this.#engine !== engine || this.#stopping) return;
    this.#clock.clearTimeout(this.#pollTimer);
    this.#clock.clearTimeout(this.#startupTimer);
    const { lifecycle, logger } = this.#opts;
    const killedBecause = this.#killedBecause;
    const how = killedBecause ?? `engine ${describeExit(exit)}`;
    const wasLoading = killedBecause === undefined && (lifecycle.state === 'loading' || lifecycle.state === 'starting');
    // Orphans of the engine's group must not outlive it, whatever comes next.
    engine.destroy();
    // Its last words (the traceback) may still be in the pipes: read them before quoting.
    await this.#drain(engine);
    if (this.#engine !== engine || this.#stopping) return;
    const readyForMs = this.readyAt === undefined ? undefined : this.#clock.now() - this.readyAt;
    const decision = decideRestart(this.#restarts, readyForMs, {
      maxRestarts: this.#opts.maxRestarts,
      backoffMs: this.#opts.restartBackoffMs,
      maxBackoffMs: this.#opts.maxRestartBackoffMs,
      budgetResetMs: this.#opts.restartBudgetResetMs,
    });
    if (decision.budgetReset) logger.info({ readyForMs: Math.round(readyForMs!) }, 'engine had been ready long enough: restart budget reset');
    if (decision.restart) {
      this.#restarts = decision.attempt;
      const reason = `${how}; restart ${decision.attempt} of ${this.#opts.maxRestarts} in ${decision.delayMs} ms`;
      lifecycle.transition('starting', reason);
      logger.warn({ exit, restart: decision.attempt, delayMs: decision.delayMs }, `${how}; restarting`);
      this.#restartTimer = this.#clock.setTimeout(() => this.start(), decision.delayMs);
      return;
    }
    this.#restarts = decision.used;
    const last = this.log.lastLine ?? '(the engine printed nothing)';
    if (killedBecause !== undefined) {
      this.#fail(
        new EngineError(`${killedBecause}; killed it, and no restart is left (NIM_ENGINE_MAX_RESTARTS=${this.#opts.maxRestarts}); it last logged: ${last}`, {
          hint: 'the pod restarts it; raise NIM_ENGINE_MAX_RESTARTS to restart inside the pod, or NIM_ENGINE_UNHEALTHY_TIMEOUT if the engine is only slow under load',
        }),
        1,
      );
      return;
    }
    const phase = wasLoading ? 'while loading the model' : 'while serving';
    const explained = this.#explain();
    this.#fail(
      new EngineError(`${how} ${phase}; ${explained.detail}`, {
        exitCode: exitCodeForExit(exit),
        hint: wasLoading || this.log.rootCause.rootCause ? explained.hint : undefined,
      }),
      exitCodeForExit(exit),
    );
  }

  /** The engine's root cause (or last line) and a hint that fits it. */
  #explain(): ReturnType<typeof explainEngineFailure> {
    return explainEngineFailure({
      rootCause: this.log.rootCause.rootCause,
      usageError: this.log.rootCause.isUsageError,
      lastLine: this.log.lastLine,
    });
  }

  #fail(error: EngineError, exitCode: number): void {
    this.#opts.lifecycle.transition('failed', error.message);
    this.#settle({ exitCode, error });
  }

  #clearTimers(): void {
    this.#clock.clearTimeout(this.#pollTimer);
    this.#clock.clearTimeout(this.#startupTimer);
    this.#clock.clearTimeout(this.#restartTimer);
  }

  #settle(outcome: SupervisionOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#clearTimers();
    this.#resolveDone(outcome);
  }

  /** Wait for the engine's output to be forwarded, but not forever. */
  async #drain(engine: EngineHandle): Promise<void> {
    let timer: TimerHandle | undefined;
    await Promise.race([engine.drained, new Promise((r) => (timer = this.#clock.setTimeout(() => r(undefined), 500)))]);
    this.#clock.clearTimeout(timer);
  }

  /**
   * Graceful teardown: stop the engine (SIGTERM to its group, SIGKILL after the
   * stop timeout) and settle `done`. Without `error` this is a shutdown: the
   * caller moves the lifecycle to `stopping` first and drains requests. With
   * `error` the failure comes from outside the engine (a multi-node group lost
   * a node, or never formed): readiness turns `failed` at once and `done`
   * settles with that error. Idempotent: later calls return the first outcome.
   */
  async close(error?: EngineError): Promise<SupervisionOutcome> {
    if (this.#settled || this.#stopping) return await this.done;
    this.#stopping = true;
    this.#clearTimers();
    const { lifecycle, logger } = this.#opts;
    if (error) lifecycle.transition('failed', error.message);
    else lifecycle.transition('stopping', 'shutting down');
    const engine = this.#engine;
    let outcome: SupervisionOutcome = error ? { exitCode: error.exitCode, error } : { exitCode: 0 };
    if (engine) {
      const { exit, killed } = await engine.close(this.#opts.stopTimeoutMs);
      if (killed && !error) {
        outcome = {
          exitCode: 1,
          error: new EngineError(`engine ignored SIGTERM for ${this.#opts.stopTimeoutMs} ms and was killed with SIGKILL`),
        };
      }
      logger.info({ exit, killed }, `engine ${describeExit(exit)}`);
      await this.#drain(engine);
    }
    if (!error) lifecycle.transition(outcome.exitCode === 0 ? 'stopped' : 'failed', outcome.error?.message ?? 'engine stopped');
    this.#settle(outcome);
    return await this.done;
  }

  /** Immediate teardown, synchronous: SIGKILL the engine's group (last resort for `process.on('exit')`). */
  destroy(): void {
    this.#stopping = true;
    this.#clearTimers();
    this.#engine?.destroy();
  }
}

function fmtSecs(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}
