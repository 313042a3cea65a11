// Supervises the engine: spawns it, watches readiness, notices an exit at once
// (process event, not the next poll), optionally restarts it, and stops it.
// All state the HTTP layer needs is in the shared `Lifecycle`.
import { EventEmitter } from 'node:events';
import { EngineError } from '../errors.js';
import { sourceLogger, type Logger } from '../log/logger.js';
import type { Redact } from '../log/redact.js';
import { describeExit, exitCodeForExit, type ProcessExit } from '../process/exit.js';
import { OutputLog } from '../process/output-log.js';
import { SupervisedProcess } from '../process/supervised-process.js';
import type { EngineCommand } from '../selection/types.js';
import { explainEngineFailure } from './engine-failure.js';
import { isOwnAccessLine } from './own-requests.js';
import type { Lifecycle } from './lifecycle.js';
import { probeEngine } from './probe.js';

export interface EngineSupervisorOptions {
  /** The engine command, its executable already resolved to an absolute path. */
  command: EngineCommand;
  /** Where the engine listens (loopback). */
  host: string;
  port: number;
  servedModelName: string;
  baseEnv: NodeJS.ProcessEnv;
  lifecycle: Lifecycle;
  logger: Logger;
  startupTimeoutMs: number;
  stopTimeoutMs: number;
  /** Probe interval once ready. */
  healthIntervalMs: number;
  /** Probe interval while loading: small, so public readiness follows the engine closely. */
  startupPollMs?: number;
  probeTimeoutMs?: number;
  maxRestarts?: number;
  restartBackoffMs?: number;
  /** Bearer token for probes when the engine itself enforces an API key. */
  engineApiKey?: string;
  /** Masks secrets in engine output before it is logged or quoted. */
  redact?: Redact;
}

/** How supervision ended: the exit code the supervisor should use, and why. */
export interface SupervisionOutcome {
  exitCode: number;
  error?: EngineError;
}

export class EngineSupervisor extends EventEmitter<{ spawned: [SupervisedProcess]; ready: [] }> {
  readonly #opts: Required<Omit<EngineSupervisorOptions, 'engineApiKey' | 'redact'>> & { engineApiKey?: string };
  readonly #engineLogger: Logger;
  readonly log: OutputLog;
  readonly #baseUrl: URL;
  #engine: SupervisedProcess | undefined;
  #restarts = 0;
  #stopping = false;
  #pollTimer: NodeJS.Timeout | undefined;
  #startupTimer: NodeJS.Timeout | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #resolveDone!: (o: SupervisionOutcome) => void;
  /** Resolves when supervision is over: after `stop()`, or when the engine failed for good. */
  readonly done: Promise<SupervisionOutcome>;
  #settled = false;
  /** When the engine process was spawned and when it became ready (for metrics and start-up figures). */
  spawnedAt: number | undefined;
  readyAt: number | undefined;

  constructor(opts: EngineSupervisorOptions) {
    super();
    this.#opts = {
      startupPollMs: 50,
      probeTimeoutMs: 5000,
      maxRestarts: 0,
      restartBackoffMs: 5000,
      ...opts,
    };
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

  get engine(): SupervisedProcess | undefined {
    return this.#engine;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** Spawn the engine and start watching it. */
  start(): void {
    const { lifecycle, logger, command } = this.#opts;
    lifecycle.transition('starting', this.#restarts ? `restarting engine (restart ${this.#restarts})` : 'spawning engine');
    let engine: SupervisedProcess;
    this.log.rootCause.reset(); // a new process: its own failure, not the last one's
    try {
      engine = SupervisedProcess.spawn({ command, baseEnv: this.#opts.baseEnv, logger: this.#engineLogger, log: this.log });
    } catch (err) {
      this.#fail(new EngineError(`could not start the engine: ${(err as Error).message}`, { cause: err }), 1);
      return;
    }
    this.#engine = engine;
    this.spawnedAt = performance.now();
    this.readyAt = undefined;
    // At DEBUG: serve's start-up report says it in words (`engine spawned after …`, phase "spawned").
    logger.debug({ pid: engine.pid, port: this.#opts.port }, 'engine process spawned');
    this.emit('spawned', engine);
    lifecycle.transition('loading', `engine pid ${engine.pid} is loading the model`);
    void engine.exited.then((exit) => void this.#onExit(engine, exit));

    this.#startupTimer = setTimeout(() => void this.#onStartupTimeout(engine), this.#opts.startupTimeoutMs);
    this.#schedulePoll(engine, 0);
  }

  #schedulePoll(engine: SupervisedProcess, delayMs: number): void {
    clearTimeout(this.#pollTimer);
    this.#pollTimer = setTimeout(() => void this.#poll(engine), delayMs);
  }

  async #poll(engine: SupervisedProcess): Promise<void> {
    const { lifecycle, logger } = this.#opts;
    if (this.#engine !== engine || !engine.running || this.#stopping) return;
    const result = await probeEngine({
      baseUrl: this.baseUrl,
      servedModelName: this.#opts.servedModelName,
      timeoutMs: this.#opts.probeTimeoutMs,
      ...(this.#opts.engineApiKey ? { apiKey: this.#opts.engineApiKey } : {}),
    });
    if (this.#engine !== engine || !engine.running || this.#stopping) return;
    const state = lifecycle.state;
    if (result.ok) {
      if (state === 'loading') {
        clearTimeout(this.#startupTimer);
        this.readyAt = performance.now();
        const secs = ((this.readyAt - (this.spawnedAt ?? this.readyAt)) / 1000).toFixed(3);
        lifecycle.transition('ready', `engine ready after ${secs} s`);
        this.emit('ready');
      } else if (state === 'unhealthy') {
        lifecycle.transition('ready', 'engine healthy again');
      }
    } else if (state === 'ready') {
      lifecycle.transition('unhealthy', result.reason ?? 'engine health check failed');
      logger.warn({ reason: result.reason }, 'engine turned unhealthy');
    }
    const next = lifecycle.state === 'loading' ? this.#opts.startupPollMs : this.#opts.healthIntervalMs;
    this.#schedulePoll(engine, next);
  }

  async #onStartupTimeout(engine: SupervisedProcess): Promise<void> {
    if (this.#engine !== engine || this.#opts.lifecycle.state !== 'loading') return;
    const secs = Math.round(this.#opts.startupTimeoutMs / 1000);
    this.#opts.logger.warn(`engine not ready after ${secs} s (NIM_STARTUP_TIMEOUT); stopping it`);
    this.#stopping = true; // the exit that follows is ours
    clearTimeout(this.#pollTimer);
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

  async #onExit(engine: SupervisedProcess, exit: ProcessExit): Promise<void> {
    if (this.#engine !== engine || this.#stopping) return;
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#startupTimer);
    const { lifecycle, logger } = this.#opts;
    const how = describeExit(exit);
    const wasLoading = lifecycle.state === 'loading' || lifecycle.state === 'starting';
    // Orphans of the engine's group must not outlive it, whatever comes next.
    engine.destroy();
    // Its last words (the traceback) may still be in the pipes: read them before quoting.
    await Promise.race([engine.drained, new Promise((r) => setTimeout(r, 500))]);
    if (this.#engine !== engine || this.#stopping) return;
    if (this.#restarts < this.#opts.maxRestarts) {
      this.#restarts += 1;
      const delay = this.#opts.restartBackoffMs * 2 ** (this.#restarts - 1);
      lifecycle.transition('starting', `engine ${how}; restart ${this.#restarts} of ${this.#opts.maxRestarts} in ${delay} ms`);
      logger.warn({ exit, restart: this.#restarts, delayMs: delay }, `engine ${how}; restarting`);
      this.#restartTimer = setTimeout(() => this.start(), delay);
      return;
    }
    const phase = wasLoading ? 'while loading the model' : 'while serving';
    const explained = this.#explain();
    this.#fail(
      new EngineError(`engine ${how} ${phase}; ${explained.detail}`, {
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

  #settle(outcome: SupervisionOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#startupTimer);
    clearTimeout(this.#restartTimer);
    this.#resolveDone(outcome);
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
    if (error) return await this.#closeWithError(error);
    if (this.#settled) return await this.done;
    this.#stopping = true;
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#startupTimer);
    clearTimeout(this.#restartTimer);
    const { lifecycle, logger } = this.#opts;
    lifecycle.transition('stopping', 'shutting down');
    const engine = this.#engine;
    let outcome: SupervisionOutcome = { exitCode: 0 };
    if (engine) {
      const { exit, killed } = await engine.close(this.#opts.stopTimeoutMs);
      if (killed) {
        outcome = {
          exitCode: 1,
          error: new EngineError(`engine ignored SIGTERM for ${this.#opts.stopTimeoutMs} ms and was killed with SIGKILL`),
        };
      }
      logger.info({ exit, killed }, `engine ${describeExit(exit)}`);
      await Promise.race([engine.drained, new Promise((r) => setTimeout(r, 500))]);
    }
    lifecycle.transition(outcome.exitCode === 0 ? 'stopped' : 'failed', outcome.error?.message ?? 'engine stopped');
    this.#settle(outcome);
    return outcome;
  }

  async #closeWithError(error: EngineError): Promise<SupervisionOutcome> {
    if (this.#settled || this.#stopping) return await this.done;
    this.#stopping = true; // the engine exit that follows is ours
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#startupTimer);
    clearTimeout(this.#restartTimer);
    this.#opts.lifecycle.transition('failed', error.message);
    const engine = this.#engine;
    if (engine) {
      await engine.close(this.#opts.stopTimeoutMs);
      await Promise.race([engine.drained, new Promise((r) => setTimeout(r, 500))]);
    }
    this.#settle({ exitCode: error.exitCode, error });
    return await this.done;
  }

  /** Immediate teardown, synchronous: SIGKILL the engine's group (last resort for `process.on('exit')`). */
  destroy(): void {
    this.#engine?.destroy();
  }
}
