// Which engine answers behind the supervisor: vLLM's own `GET /version`
// (`{"version":"0.31.0"}`, vllm/entrypoints/serve/instrumentator/basic.py in
// current vLLM, api_server.py in 0.11), read once each time the engine becomes
// ready, so /v1/version and /v1/metadata can report it without proxying the
// engine's route. /version has no /v1 prefix, so vLLM's --api-key never guards it.
import type { Logger } from '../log/logger.js';
import type { Lifecycle } from './lifecycle.js';

/** The engine as /v1/version and /v1/metadata report it. `version` is null until the engine has been read once. */
export interface EngineIdentity {
  name: 'vllm';
  version: string | null;
}

export interface EngineVersionDeps {
  lifecycle: Lifecycle;
  /** The engine's base URL while a process runs (undefined otherwise). */
  engineUrl: () => URL | undefined;
  logger?: Pick<Logger, 'info' | 'warn'>;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Parse vLLM's /version body; null when it is not `{"version": "<string>"}`. */
export function parseEngineVersion(body: unknown): string | null {
  if (typeof body !== 'object' || body === null) return null;
  const v = (body as { version?: unknown }).version;
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
}

/**
 * Keeps the running engine's version: read when the lifecycle enters `ready`
 * (and at once if it already is). A failed read keeps the last known version
 * and logs a warning; it never affects readiness.
 */
export class EngineVersion {
  #version: string | null = null;
  readonly #deps: EngineVersionDeps;
  #reading: Promise<void> | undefined;

  constructor(deps: EngineVersionDeps) {
    this.#deps = deps;
    deps.lifecycle.on('change', (c) => {
      if (c.to === 'ready' && c.from !== 'unhealthy') void this.refresh();
    });
    if (deps.lifecycle.isReady) void this.refresh();
  }

  get identity(): EngineIdentity {
    return { name: 'vllm', version: this.#version };
  }

  /** Read /version now (one read at a time). Resolves when done; never rejects. */
  refresh(): Promise<void> {
    this.#reading ??= this.#read().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #read(): Promise<void> {
    const base = this.#deps.engineUrl();
    if (!base) return;
    const doFetch = this.#deps.fetch ?? fetch;
    try {
      const res = await doFetch(new URL('/version', base), { signal: AbortSignal.timeout(this.#deps.timeoutMs ?? 5000) });
      const version = res.ok ? parseEngineVersion(await res.json()) : null;
      if (version === null) throw new Error(`GET /version answered ${res.status} without a version`);
      if (version !== this.#version) this.#deps.logger?.info({ engineVersion: version }, `engine is vLLM ${version}`);
      this.#version = version;
    } catch (e) {
      this.#deps.logger?.warn({ err: (e as Error).message }, "could not read the engine's version from its /version route");
    }
  }
}
