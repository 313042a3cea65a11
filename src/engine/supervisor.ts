// Supervises the engine: spawns it, watches readiness, notices an exit at once
// (process event, not the next poll), optionally restarts it, and stops it.
// All state the HTTP layer needs is in the shared `Lifecycle`.
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { EngineError } from '../errors.js';
import { sourceLogger, type Logger } from '../log/logger.js';
import type { Redact } from '../log/redact.js';
import type { EngineCommand } from '../selection/types.js';
import { EngineLog } from './engine-log.js';
import { EngineProcess, type EngineExit } from './engine-process.js';
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

/** Map an unexpected engine exit to the supervisor's exit code (never 0: the engine was meant to run). */
export function exitCodeForEngineExit(exit: EngineExit): number {
  if (exit.code !== null && exit.code > 0) return Math.min(exit.code, 255);
  if (exit.signal) {
    const signo = osConstants.signals[exit.signal];
    return signo ? 128 + signo : 1;
  }
  return 1;
}

export function describeExit(exit: EngineExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code ?? 'unknown'}`;
}

export class EngineSupervisor extends EventEmitter<{ spawned: [EngineProcess]; ready: [] }> {
  readonly #opts: Required<Omit<EngineSupervisorOptions, 'engineApiKey' | 'redact'>> & { engineApiKey?: string };
  readonly #engineLogger: Logger;
  readonly log: EngineLog;
  readonly #baseUrl: URL;
  #engine: EngineProcess | undefined;
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
    this.log = new EngineLog(opts.redact ? { redact: opts.redact } : {});
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  /** The engine's base URL (fixed for the supervisor's life: the port is chosen once). */
  get baseUrl(): URL {
    return this.#baseUrl;
  }

  get engine(): EngineProcess | undefined {
    return this.#engine;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** Spawn the engine and start watching it. */
  start(): void {
    const { lifecycle, logger, command } = this.#opts;
    lifecycle.transition('starting', this.#restarts ? `restarting engine (restart ${this.#restarts})` : 'spawning engine');
    let engine: EngineProcess;
    try {
      engine = EngineProcess.spawn({ command, baseEnv: this.#opts.baseEnv, logger: this.#engineLogger, log: this.log });
    } catch (err) {
      this.#fail(new EngineError(`could not start the engine: ${(err as Error).message}`, { cause: err }), 1);
      return;
    }
    this.#engine = engine;
    this.spawnedAt = performance.now();
    this.readyAt = undefined;
    logger.info({ pid: engine.pid, port: this.#opts.port }, 'engine process spawned');
    this.emit('spawned', engine);
    lifecycle.transition('loading', `engine pid ${engine.pid} is loading the model`);
    void engine.exited.then((exit) => this.#onExit(engine, exit));

    this.#startupTimer = setTimeout(() => void this.#onStartupTimeout(engine), this.#opts.startupTimeoutMs);
    this.#schedulePoll(engine, 0);
  }

  #schedulePoll(engine: EngineProcess, delayMs: number): void {
    clearTimeout(this.#pollTimer);
    this.#pollTimer = setTimeout(() => void this.#poll(engine), delayMs);
  }

  async #poll(engine: EngineProcess): Promise<void> {
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

  async #onStartupTimeout(engine: EngineProcess): Promise<void> {
    if (this.#engine !== engine || this.#opts.lifecycle.state !== 'loading') return;
    const secs = Math.round(this.#opts.startupTimeoutMs / 1000);
    const last = this.log.lastLine ?? '(the engine printed nothing)';
    this.#opts.logger.error({ lastLines: this.log.tail(10) }, `engine not ready after ${secs} s; stopping it`);
    this.#stopping = true; // the exit that follows is ours
    clearTimeout(this.#pollTimer);
    await engine.stop(this.#opts.stopTimeoutMs, this.#opts.logger);
    this.#fail(
      new EngineError(`engine did not become ready within ${secs} s (NIM_STARTUP_TIMEOUT); it last logged: ${last}`, {
        hint: 'raise NIM_STARTUP_TIMEOUT for large models, or check the engine log above',
      }),
      1,
    );
  }

  #onExit(engine: EngineProcess, exit: EngineExit): void {
    if (this.#engine !== engine || this.#stopping) return;
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#startupTimer);
    const { lifecycle, logger } = this.#opts;
    const how = describeExit(exit);
    const wasLoading = lifecycle.state === 'loading' || lifecycle.state === 'starting';
    // Orphans of the engine's group must not outlive it, whatever comes next.
    engine.signalGroup('SIGKILL');
    engine.releaseReaper();
    if (this.#restarts < this.#opts.maxRestarts) {
      this.#restarts += 1;
      const delay = this.#opts.restartBackoffMs * 2 ** (this.#restarts - 1);
      lifecycle.transition('starting', `engine ${how}; restart ${this.#restarts} of ${this.#opts.maxRestarts} in ${delay} ms`);
      logger.warn({ exit, restart: this.#restarts, delayMs: delay }, `engine ${how}; restarting`);
      this.#restartTimer = setTimeout(() => this.start(), delay);
      return;
    }
    const last = this.log.lastLine ?? '(the engine printed nothing)';
    const phase = wasLoading ? 'while loading the model' : 'while serving';
    this.#fail(
      new EngineError(`engine ${how} ${phase}; it last logged: ${last}`, {
        exitCode: exitCodeForEngineExit(exit),
        hint: wasLoading ? 'check the engine log above (out of GPU memory? wrong model path?)' : undefined,
      }),
      exitCodeForEngineExit(exit),
    );
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
   * Stop the engine (SIGTERM to its group, SIGKILL after the stop timeout). The
   * caller moves the lifecycle to `stopping` first and drains requests.
   */
  async stop(): Promise<SupervisionOutcome> {
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
      const { exit, killed } = await engine.stop(this.#opts.stopTimeoutMs, logger);
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

  /**
   * Fail from outside the engine (a multi-node group lost a node, or never
   * formed): turn unready at once, stop the engine if it runs, and settle
   * `done` with this error. No-op once supervision is over.
   */
  async abort(error: EngineError): Promise<void> {
    if (this.#settled || this.#stopping) return;
    this.#stopping = true; // the engine exit that follows is ours
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#startupTimer);
    clearTimeout(this.#restartTimer);
    this.#opts.lifecycle.transition('failed', error.message);
    const engine = this.#engine;
    if (engine) {
      await engine.stop(this.#opts.stopTimeoutMs, this.#opts.logger);
      await Promise.race([engine.drained, new Promise((r) => setTimeout(r, 500))]);
    }
    this.#settle({ exitCode: error.exitCode, error });
  }

  /** Synchronous last resort for `process.on('exit')`. */
  killNow(): void {
    this.#engine?.killNow();
  }
}
