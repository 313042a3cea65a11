// The download phase of `serve`: after selection, before the engine is spawned.
// Readiness reports `downloading` with progress, the log shows a progress line
// every few seconds, and NIM_STARTUP_TIMEOUT has not started yet (it counts from
// the engine's spawn). A stall fails the attempt (NIM_DOWNLOAD_STALL_TIMEOUT);
// a slow download that moves is never cut.
import type { Lifecycle } from '../engine/lifecycle.js';
import { DownloadProgress, formatBytes, formatDuration, progressLine } from '../hub/progress.js';
import type { Logger } from '../log/logger.js';
import { ensureFiles, type ModelFreeSettings, type PreparedModel } from './prepare.js';

export interface DownloadPhaseOptions {
  settings: ModelFreeSettings;
  prepared: PreparedModel;
  lifecycle: Lifecycle;
  logger: Logger;
  /** Progress line interval, ms (default 5 s). */
  logIntervalMs?: number;
  signal?: AbortSignal;
}

/** Fetch what the cache lacks; returns the progress (also for a model already complete). */
export async function downloadBeforeEngine(o: DownloadPhaseOptions, progress: DownloadProgress): Promise<void> {
  const { prepared, lifecycle, logger } = o;
  const record = prepared.record;
  if (!record) {
    logger.info({ model: prepared.engineModelDir }, `serving the local model directory ${prepared.engineModelDir}`);
    return;
  }
  const started = performance.now();
  let phase = false;
  const timer = setInterval(() => {
    if (!phase) return;
    const line = progressLine(progress.snapshot());
    lifecycle.note(`downloading ${line}`);
    logger.info({ download: progress.snapshot() }, `downloading ${line}`);
  }, o.logIntervalMs ?? 5000);
  timer.unref();
  const warn = (fields: Record<string, unknown>, msg: string): void => logger.warn({ repo: record.repo, ...fields }, msg);
  try {
    // ensureFiles sets the totals; the first check is quick, so enter the phase only when bytes must move.
    const settings = { ...o.settings, warn };
    const enter = (): void => {
      if (phase) return;
      phase = true;
      lifecycle.transition('downloading', `downloading ${record.repo}@${record.commit.slice(0, 12)} into ${o.settings.cacheRoot}`);
      logger.info({ repo: record.repo, commit: record.commit, cache: o.settings.cacheRoot, files: record.files.length }, `downloading ${record.repo} (commit ${record.commit}) into ${o.settings.cacheRoot}`);
    };
    await ensureFiles(settings, prepared, progress, o.signal, enter);
  } finally {
    clearInterval(timer);
  }
  const s = progress.snapshot();
  if (phase) {
    const secs = (performance.now() - started) / 1000;
    logger.info(
      { download: s },
      `downloaded ${record.repo}: ${formatBytes(s.bytesDownloaded)} in ${formatDuration(secs)} (${formatBytes(secs > 0 ? s.bytesDownloaded / secs : 0)}/s), ${s.filesTotal} files verified in ${prepared.engineModelDir}`,
    );
    lifecycle.transition('starting', 'model files downloaded and verified');
  } else {
    logger.info({ files: s.filesTotal, bytes: s.bytesTotal }, `${record.repo}: all ${s.filesTotal} files (${formatBytes(s.bytesTotal)}) already in the cache ${prepared.engineModelDir}`);
  }
}

/** What the boot handler shows while the full app is not loaded: readiness details and metrics. */
export interface BootStatus {
  readiness?: () => Record<string, unknown> | undefined;
  metrics?: () => Promise<{ contentType: string; body: string }>;
}

/**
 * serve's hook: set up progress, let the boot handler show it (readiness
 * `download` object, /v1/metrics), and run the download phase.
 */
export async function runDownloadPhase(o: { config: import('../config/env.js').Config; prepared: PreparedModel; lifecycle: Lifecycle; logger: Logger; boot: BootStatus }): Promise<DownloadProgress> {
  const [{ modelFreeSettings }, { downloadRegistry }, { progressJson }] = await Promise.all([
    import('./settings.js'),
    import('./metrics.js'),
    import('../hub/progress.js'),
  ]);
  const progress = new DownloadProgress(o.prepared.record?.repo ?? o.prepared.engineModelDir);
  const registry = downloadRegistry(progress);
  o.boot.readiness = () => (o.lifecycle.state === 'downloading' ? { download: progressJson(progress.snapshot()) } : undefined);
  o.boot.metrics = async () => ({ contentType: registry.contentType, body: await registry.metrics() });
  await downloadBeforeEngine(
    { settings: modelFreeSettings(o.config), prepared: o.prepared, lifecycle: o.lifecycle, logger: o.logger, logIntervalMs: o.config.model.logIntervalMs },
    progress,
  );
  return progress;
}
