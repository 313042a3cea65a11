// The adapters of NIM_PEFT_SOURCE over the server's life: discovered at
// start-up (two scans, so nothing half-written is passed to vLLM), then, with
// NIM_PEFT_REFRESH_INTERVAL, re-scanned and loaded or unloaded through vLLM's
// runtime LoRA API on the engine's private port. Those admin routes are never
// proxied (src/server/routes.ts). Each adapter that cannot be served gets one
// warning naming it and why; the warning repeats only when the reason changes.
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoraConfig } from '../config/env.js';
import type { Logger } from '../log/logger.js';
import type { BaseModelNames, LoraAdapter } from './adapter.js';
import { setLoraModules, type LoraLaunch } from './flags.js';
import { reconcile } from './reconcile.js';
import { scanPeftSource, type ScanEntry } from './scan.js';

/** Time between the two start-up scans: an adapter whose files move in between is still being written. */
export const SETTLE_MS = 500;

/** vLLM's runtime LoRA routes (VLLM_ALLOW_RUNTIME_LORA_UPDATING), as the supervisor uses them. */
export interface EngineLoraApi {
  /** POST /v1/load_lora_adapter; throws with vLLM's message when the engine refuses. */
  load(name: string, path: string): Promise<void>;
  /** POST /v1/unload_lora_adapter; an adapter the engine does not know counts as unloaded. */
  unload(name: string): Promise<void>;
}

/** vLLM's error message from a JSON error body, or the body itself. */
function engineMessage(status: number, body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: unknown }; message?: unknown; detail?: unknown };
    const m = j.error?.message ?? j.message ?? j.detail;
    if (m !== undefined) return `${status}: ${typeof m === 'string' ? m : JSON.stringify(m)}`;
  } catch {
    /* not JSON */
  }
  return `${status}: ${body.slice(0, 300)}`;
}

/**
 * The runtime API on the engine's private port. Source: vLLM v0.11
 * vllm/entrypoints/openai/api_server.py (routes, 200 with a plain-text
 * "Success: …" body) and serving_models.py (400 "… has already been loaded.",
 * 404 "… cannot be found.").
 */
export function engineLoraApi(baseUrl: () => URL | undefined, timeoutMs: number): EngineLoraApi {
  const post = async (route: string, body: unknown): Promise<{ status: number; text: string }> => {
    const base = baseUrl();
    if (!base) throw new Error('the engine is not running');
    const res = await fetch(new URL(route, base), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, text: await res.text() };
  };
  return {
    async load(name, path) {
      const r = await post('/v1/load_lora_adapter', { lora_name: name, lora_path: path });
      if (r.status === 200) return;
      if (r.status === 400 && r.text.includes('has already been loaded')) return;
      throw new Error(`vLLM refused to load it (${engineMessage(r.status, r.text)})`);
    },
    async unload(name) {
      const r = await post('/v1/unload_lora_adapter', { lora_name: name });
      if (r.status === 200 || r.status === 404) return;
      throw new Error(`vLLM refused to unload it (${engineMessage(r.status, r.text)})`);
    },
  };
}

export type LoraEvent = { kind: 'load' | 'unload'; name: string; ok: boolean };

export interface LoraAdaptersOptions {
  lora: LoraConfig;
  names: BaseModelNames;
  logger: Logger;
  /** Injected for tests. */
  scan?: (source: string, names: BaseModelNames) => Promise<Map<string, ScanEntry>>;
  settleMs?: number;
}

/** One adapter as /v1/metadata reports it. */
export interface AdapterSummary {
  name: string;
  path: string;
  rank: number;
  baseModel: string | null;
}

export class LoraAdapters {
  readonly source: string;
  readonly #opts: LoraAdaptersOptions;
  readonly #scan: NonNullable<LoraAdaptersOptions['scan']>;
  #previous = new Map<string, string>();
  #current = new Map<string, ScanEntry>();
  /** Adapters the engine has (or will have, from --lora-modules). */
  readonly #loaded = new Map<string, LoraAdapter>();
  readonly #failed = new Map<string, string>();
  /** name → reason last warned about (to warn once per reason). */
  readonly #reported = new Map<string, string>();
  #pending: string[] = [];
  #launch: LoraLaunch | undefined;
  #api: EngineLoraApi | undefined;
  #args: string[] | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** Called after each load or unload attempt (metrics). */
  onEvent: ((e: LoraEvent) => void) | undefined;
  /** Names ever served: the bounded label set for per-adapter request counts. */
  readonly everLoaded = new Set<string>();

  constructor(opts: LoraAdaptersOptions) {
    if (opts.lora.peftSource === undefined) throw new Error('LoraAdapters needs NIM_PEFT_SOURCE');
    this.source = opts.lora.peftSource;
    this.#opts = opts;
    this.#scan = opts.scan ?? scanPeftSource;
  }

  /** Two scans SETTLE_MS apart: afterwards the stable, valid adapters are known (rank not yet checked). */
  async discover(): Promise<void> {
    await this.#scanOnce();
    await sleep(this.#opts.settleMs ?? SETTLE_MS);
    await this.#scanOnce();
  }

  /** Valid adapters that held still over the last two scans (before the rank limit). */
  candidates(): LoraAdapter[] {
    const out: LoraAdapter[] = [];
    for (const [name, e] of this.#current) {
      if (this.#previous.get(name) === e.fingerprint && e.check.ok) out.push(e.check.adapter);
    }
    return out;
  }

  /**
   * Fix the launch settings (from planLoraLaunch, given candidates() within the
   * rank limit): the adapters in launch.modules count as loaded; every other
   * adapter found is reported once, with its reason.
   */
  launchWith(launch: LoraLaunch): void {
    this.#launch = launch;
    for (const a of launch.modules) this.#markLoaded(a);
    const r = this.#decide();
    for (const s of r.skip) this.#warn(s.name, s.reason);
    this.#pending = r.pending;
    for (const name of r.pending) {
      this.#warn(
        name,
        this.#opts.lora.refreshIntervalMs === undefined
          ? 'its files were still changing during the start-up scan (set NIM_PEFT_REFRESH_INTERVAL to pick it up once written)'
          : 'its files are still changing; it will be loaded once they hold still',
      );
    }
    this.#opts.logger.info(
      {
        peftSource: this.source,
        adapters: launch.modules.map((a) => a.name),
        maxLoraRank: launch.maxLoraRank,
        maxLoras: launch.maxLoras,
        maxCpuLoras: launch.maxCpuLoras,
        refreshSeconds: this.#opts.lora.refreshIntervalMs === undefined ? null : this.#opts.lora.refreshIntervalMs / 1000,
      },
      `serving ${launch.modules.length} LoRA adapter${launch.modules.length === 1 ? '' : 's'} from ${this.source}`,
    );
  }

  /**
   * Start refreshing (NIM_PEFT_REFRESH_INTERVAL) through the engine's runtime
   * API. `args` is the engine command's argument list: its --lora-modules are
   * kept equal to the adapters served, for an engine restart.
   */
  startRefresh(api: EngineLoraApi, args: string[], isReady: () => boolean): void {
    this.#api = api;
    this.#args = args;
    const interval = this.#opts.lora.refreshIntervalMs;
    if (interval === undefined) return;
    this.#timer = setInterval(() => {
      if (!isReady() || this.#running) return;
      this.#running = this.refresh().finally(() => (this.#running = undefined));
    }, interval);
    this.#timer.unref();
  }

  /** One refresh: scan, then load and unload through the engine. Never throws. */
  async refresh(): Promise<void> {
    try {
      await this.#scanOnce();
    } catch (err) {
      this.#warn('', `NIM_PEFT_SOURCE cannot be scanned: ${(err as Error).message}`);
      return;
    }
    this.#reported.delete('');
    const r = this.#decide();
    this.#pending = r.pending;
    const api = this.#api;
    if (!api) return;
    for (const u of r.unload) {
      try {
        await api.unload(u.name);
        this.#loaded.delete(u.name);
        this.#opts.logger.info({ adapter: u.name }, `LoRA adapter ${u.name} unloaded: ${u.why}`);
        this.onEvent?.({ kind: 'unload', name: u.name, ok: true });
      } catch (err) {
        this.#opts.logger.warn({ adapter: u.name }, `LoRA adapter ${u.name} could not be unloaded: ${(err as Error).message}`);
        this.onEvent?.({ kind: 'unload', name: u.name, ok: false });
      }
    }
    for (const s of r.skip) this.#warn(s.name, s.reason);
    for (const a of r.load) {
      try {
        await api.load(a.name, a.path);
        this.#failed.delete(a.name);
        this.#markLoaded(a);
        this.#opts.logger.info({ adapter: a.name, rank: a.rank, path: a.path }, `LoRA adapter ${a.name} loaded`);
        this.onEvent?.({ kind: 'load', name: a.name, ok: true });
      } catch (err) {
        this.#failed.set(a.name, a.fingerprint);
        this.#warn(a.name, (err as Error).message);
        this.onEvent?.({ kind: 'load', name: a.name, ok: false });
      }
    }
    // Names that disappeared entirely are forgotten, so a new adapter of that name is warned about afresh.
    for (const name of [...this.#reported.keys()]) if (name !== '' && !this.#current.has(name)) this.#reported.delete(name);
    for (const name of [...this.#failed.keys()]) if (!this.#current.has(name)) this.#failed.delete(name);
    if (this.#args) setLoraModules(this.#args, [...this.#loaded.values()]);
  }

  /** Stop refreshing (a refresh under way finishes on its own). */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Whether `name` is (or was) an adapter served here. */
  isAdapter(name: string): boolean {
    return this.everLoaded.has(name);
  }

  get loadedCount(): number {
    return this.#loaded.size;
  }

  /** For /v1/metadata and metrics. */
  summary(): { source: string; refreshIntervalSeconds: number | null; loaded: AdapterSummary[]; skipped: Array<{ name: string; reason: string }>; pending: string[] } {
    return {
      source: this.source,
      refreshIntervalSeconds: this.#opts.lora.refreshIntervalMs === undefined ? null : this.#opts.lora.refreshIntervalMs / 1000,
      loaded: [...this.#loaded.values()]
        .sort((a, b) => (a.name < b.name ? -1 : 1))
        .map((a) => ({ name: a.name, path: a.path, rank: a.rank, baseModel: a.baseModel ?? null })),
      skipped: [...this.#reported].filter(([n]) => n !== '' && !this.#loaded.has(n) && !this.#pending.includes(n)).map(([name, reason]) => ({ name, reason })),
      pending: [...this.#pending],
    };
  }

  #markLoaded(a: LoraAdapter): void {
    this.#loaded.set(a.name, a);
    this.everLoaded.add(a.name);
    this.#reported.delete(a.name);
  }

  async #scanOnce(): Promise<void> {
    const next = await this.#scan(this.source, this.#opts.names);
    this.#previous = new Map([...this.#current].map(([n, e]) => [n, e.fingerprint]));
    this.#current = next;
  }

  #decide() {
    const launch = this.#launch;
    return reconcile({
      previous: this.#previous,
      current: this.#current,
      loaded: this.#loaded,
      failed: this.#failed,
      rankLimit: launch?.rankLimit ?? 512,
      rankLimitSource: launch?.rankLimitSource ?? "vLLM's largest --max-lora-rank",
    });
  }

  #warn(name: string, reason: string): void {
    if (this.#reported.get(name) === reason) return;
    this.#reported.set(name, reason);
    if (name === '') this.#opts.logger.warn({ peftSource: this.source }, reason);
    else this.#opts.logger.warn({ adapter: name, peftSource: this.source }, `LoRA adapter ${name} skipped: ${reason}`);
  }
}
