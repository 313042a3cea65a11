// What `serve` says of its own while it starts: one line per phase with the
// time since the supervisor was launched, a "still loading" line every
// NIM_LOG_PROGRESS_INTERVAL seconds with the engine's latest line, and one
// `ready: <url> model <name> in <s> s` line once the public port serves.
//
// Each record carries `phase` (hardware, profile, spawned, loading, ready) and
// `elapsedS` for JSON-lines consumers; the readable format shows the words only.
import type { EngineState } from '../engine/lifecycle.js';
import type { HardwareInventory } from '../hardware/types.js';
import type { Logger } from '../log/logger.js';

export type StartupPhase = 'hardware' | 'profile' | 'spawned' | 'loading' | 'ready';

export interface StartupReportOptions {
  logger: Logger;
  /**
   * Milliseconds since the supervisor was launched (default: process.uptime(), which counts from process start;
   * not performance.now(): its first use loads node:perf_hooks, ~2 ms before the engine's spawn).
   */
  now?: () => number;
  /** Interval of the "still loading" lines in ms; 0 = none. */
  progressIntervalMs: number;
  /** The lifecycle state and the engine's latest line, read at each progress tick. */
  progress: () => { state: EngineState; reason: string; lastLine: string | undefined };
  /** Timer seam for tests (default: setInterval/clearInterval). */
  every?: (fn: () => void, ms: number) => () => void;
}

/** Seconds for a log line: 0.42, 3.1, 125. */
export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  if (s < 10) return s.toFixed(2);
  if (s < 100) return s.toFixed(1);
  return String(Math.round(s));
}

/** `no GPUs visible (nvidia-smi missing)` / `2 GPUs: 2 × NVIDIA H100 80GB HBM3`. */
export function describeInventory(inv: HardwareInventory): string {
  if (inv.gpus.length === 0) return inv.nvidiaSmi === 'ok' ? 'no GPUs visible' : `no GPUs visible (nvidia-smi ${inv.nvidiaSmi})`;
  const byName = new Map<string, number>();
  for (const g of inv.gpus) byName.set(g.name, (byName.get(g.name) ?? 0) + 1);
  const kinds = [...byName].map(([name, n]) => `${n} × ${name}`).join(', ');
  return `${inv.gpus.length} GPU${inv.gpus.length === 1 ? '' : 's'}: ${kinds}`;
}

/** The URL a user can open for a bound host: a wildcard address becomes localhost. */
export function publicUrl(scheme: 'http' | 'https', host: string, port: number): string {
  const shown = host === '0.0.0.0' || host === '::' || host === '' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `${scheme}://${shown}:${port}`;
}

const defaultEvery = (fn: () => void, ms: number): (() => void) => {
  const t = setInterval(fn, ms);
  t.unref();
  return () => clearInterval(t);
};

export class StartupReport {
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #opts: StartupReportOptions;
  #stopProgress: (() => void) | undefined;
  #engineReady = false;
  #appReady = false;
  #readyLogged = false;
  #ready: { url: string; model: string } | undefined;

  constructor(opts: StartupReportOptions) {
    this.#opts = opts;
    this.#logger = opts.logger;
    this.#now = opts.now ?? (() => process.uptime() * 1000);
    if (opts.progressIntervalMs > 0) {
      this.#stopProgress = (opts.every ?? defaultEvery)(() => this.#tick(), opts.progressIntervalMs);
    }
  }

  #log(phase: StartupPhase, fields: Record<string, unknown>, msg: string): void {
    this.#logger.info({ phase, elapsedS: Number((this.#now() / 1000).toFixed(3)), ...fields }, msg);
  }

  #elapsed(): string {
    return formatSeconds(this.#now());
  }

  hardware(inv: HardwareInventory): void {
    this.#log('hardware', { gpus: inv.gpus.length }, `hardware detected after ${this.#elapsed()} s: ${describeInventory(inv)}`);
  }

  profile(label: string, how: 'auto' | 'explicit', fields: Record<string, unknown>): void {
    const why = how === 'explicit' ? 'as NIM_MODEL_PROFILE asks' : 'automatically';
    this.#log('profile', fields, `profile selected after ${this.#elapsed()} s: ${label}, ${why}`);
  }

  /** An engine process started; `restart` is 0 for the first. */
  spawned(pid: number, port: number, restart: number, maxRestarts: number): void {
    this.#engineReady = false;
    const what = restart === 0 ? 'engine spawned' : `engine restarted (restart ${restart} of ${maxRestarts})`;
    this.#log('spawned', { pid, port, restart }, `${what} after ${this.#elapsed()} s: pid ${pid}, loading the model`);
  }

  /** Where clients reach the supervisor and the model they name. */
  serving(url: string, model: string): void {
    this.#ready = { url, model };
  }

  /** The engine answered its readiness probe. */
  engineReady(): void {
    this.#engineReady = true;
    this.#maybeReady();
  }

  /** The full HTTP app serves the public port (before, readiness answers 503). */
  appReady(): void {
    this.#appReady = true;
    this.#maybeReady();
  }

  #maybeReady(): void {
    if (!this.#engineReady || !this.#appReady || !this.#ready) return;
    const { url, model } = this.#ready;
    if (!this.#readyLogged) {
      this.#readyLogged = true;
      this.#log('ready', { url, model }, `ready: ${url} model ${model} in ${this.#elapsed()} s`);
    } else {
      this.#log('ready', { url, model }, `ready again after ${this.#elapsed()} s: ${url} model ${model}`);
    }
  }

  #tick(): void {
    const { state, reason, lastLine } = this.#opts.progress();
    if (state === 'loading') {
      this.#log('loading', {}, `still loading after ${this.#elapsed()} s: ${lastLine ?? '(the engine has printed nothing yet)'}`);
    } else if (state === 'starting') {
      this.#log('loading', {}, `still starting after ${this.#elapsed()} s: ${reason}`);
    }
  }

  /** No more progress lines (shutdown, or the supervisor is exiting). */
  close(): void {
    this.#stopProgress?.();
    this.#stopProgress = undefined;
  }
}
