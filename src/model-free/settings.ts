// The model-free settings from the configuration, and the hook plan.ts calls:
// a manifest generated from NIM_MODEL_PATH instead of one read from
// NIM_MANIFEST_PATH.
import type { Config } from '../config/env.js';
import type { ModelFreeSettings, PreparedModel } from './prepare.js';

export function modelFreeSettings(config: Config, warn?: ModelFreeSettings['warn']): ModelFreeSettings {
  const m = config.model;
  if (!m.location) throw new Error('modelFreeSettings without NIM_MODEL_PATH');
  return {
    location: m.location,
    cacheRoot: m.cachePath,
    disableDownload: m.disableDownload,
    hub: { endpoint: m.hfEndpoint, token: m.hfToken },
    maxModelLen: config.maxModelLen,
    concurrency: m.downloadConcurrency,
    stallTimeoutMs: m.stallTimeoutMs,
    warn,
  };
}

/** Warnings for the log from the prepare step (NIM_MODEL_NAME's mapping is the variable table's: config.warnings). */
export function modelWarnings(_config: Config, prepared: PreparedModel | undefined): string[] {
  return prepared ? [...prepared.warnings] : [];
}
