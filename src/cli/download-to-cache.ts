// `nim-supervisor download-to-cache [--profile ID|NAME]… [--all] [--model-uri URI]`
// (NIM's utility name): fill NIM_CACHE_PATH with the files the engine needs,
// without serving: for init containers and air-gapped preparation. The model is
// NIM_MODEL_PATH (or --model-uri), else the manifest's hf:// source. A progress
// bar on a terminal, a progress line every few seconds otherwise.
import { loadConfig, type Config } from '../config/env.js';
import { ConfigError, SelectionError } from '../errors.js';
import { DownloadProgress, formatBytes, formatDuration, progressLine, type ProgressSnapshot } from '../hub/progress.js';
import { parseModelLocation, type ModelLocation } from '../hub/uri.js';
import { createLogger } from '../log/logger.js';
import { loadManifest } from '../manifest/load.js';
import type { Manifest, Profile } from '../manifest/types.js';
import { resolveProfile } from '../selection/select.js';

export const DOWNLOAD_USAGE = `Usage: nim-supervisor download-to-cache [--profile ID|NAME]... [--all] [--model-uri URI]

Download the files the engine needs into the cache (NIM_CACHE_PATH), without
serving. The model is NIM_MODEL_PATH (hf://org/name[@revision]), --model-uri,
or the manifest's hf:// source. Every profile of a model reads the same files;
--profile checks that the profile exists, --all fetches for all of them.

  -p, --profile ID|NAME   a profile id, unique id prefix or name (repeatable)
      --all               all profiles
      --model-uri URI     the model, instead of NIM_MODEL_PATH
  -h, --help              this help

Then serve offline with the same NIM_CACHE_PATH and NIM_DISABLE_MODEL_DOWNLOAD=1.
`;

interface Options {
  profiles: string[];
  all: boolean;
  modelUri: string | undefined;
  help: boolean;
}

function parseOptions(args: readonly string[]): Options {
  const o: Options = { profiles: [], all: false, modelUri: undefined, help: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string => {
      const eq = a.indexOf('=');
      if (eq > 0) return a.slice(eq + 1);
      const v = args[++i];
      if (v === undefined || v.startsWith('-')) throw new ConfigError(`${a} needs a value`, { hint: 'usage: nim-supervisor download-to-cache --help' });
      return v;
    };
    const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
    if (name === '-h' || name === '--help') o.help = true;
    else if (name === '--all') o.all = true;
    else if (name === '-p' || name === '--profile' || name === '--profiles') o.profiles.push(...value().split(',').filter(Boolean));
    else if (name === '--model-uri') o.modelUri = value();
    else throw new ConfigError(`unknown option ${JSON.stringify(a)} for download-to-cache`, { hint: 'usage: nim-supervisor download-to-cache [--profile ID|NAME]... [--all] [--model-uri URI]' });
  }
  if (o.all && o.profiles.length > 0) throw new ConfigError('--all and --profile exclude each other', { hint: 'give one of them' });
  return o;
}

/** A text progress bar: "[██████░░░░░░░░]  45%  1.2 GiB / 2.6 GiB  85.0 MiB/s  ETA 12s  3/12 files". */
export function progressBar(p: ProgressSnapshot, width = 30): string {
  const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 1;
  const full = Math.round(frac * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}] ${String(Math.floor(frac * 100)).padStart(3)}%  ${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}  ${formatBytes(p.rateBytesPerSecond)}/s  ETA ${formatDuration(p.etaSeconds)}  ${p.filesDone}/${p.filesTotal} files`;
}

function checkProfiles(manifest: Manifest, names: string[]): Profile[] {
  return names.map((n) => {
    try {
      const p = resolveProfile(manifest, n);
      if (!p) throw new SelectionError(`--profile ${JSON.stringify(n)} names no single profile`);
      return p;
    } catch (err) {
      if (err instanceof SelectionError) throw new SelectionError(err.message.replace(/^NIM_MODEL_PROFILE=/, '--profile '), { hint: err.hint });
      throw err;
    }
  });
}

export async function downloadToCacheCommand(args: string[]): Promise<number> {
  const opts = parseOptions(args);
  if (opts.help) {
    process.stdout.write(DOWNLOAD_USAGE);
    return 0;
  }
  let config: Config = loadConfig(process.env);
  const log = createLogger({ level: config.logLevel, jsonl: config.jsonlLogging, destination: process.stderr });
  for (const w of config.warnings) log.warn(w);
  let location: ModelLocation | undefined = opts.modelUri ? parseModelLocation(opts.modelUri, '--model-uri') : config.model.location;
  let written: Manifest | undefined;
  if (!location) {
    // A written manifest whose weights come from the hub: fill the same hub cache vLLM reads (HF_HOME under NIM_CACHE_PATH).
    const manifest = (written = await loadManifest(config.manifestPath));
    if (!manifest.model.source.startsWith('hf://')) {
      throw new ConfigError(`the manifest's model source ${manifest.model.source} is a local directory: there is nothing to download`, {
        hint: 'set NIM_MODEL_PATH=hf://org/name (or --model-uri) to download a model from the hub',
      });
    }
    location = parseModelLocation(manifest.model.source, `model.source of ${manifest.file}`);
  }
  if (location.kind === 'local') throw new ConfigError(`${location.dir} is a local directory: there is nothing to download`, { hint: 'download-to-cache fetches hf:// models' });
  if (config.model.disableDownload) {
    throw new ConfigError('NIM_DISABLE_MODEL_DOWNLOAD=1 forbids downloading', { hint: 'unset it for download-to-cache (it is meant for serving offline afterwards)' });
  }
  config = { ...config, model: { ...config.model, location } };
  const [{ prepareModel, ensureFiles }, { modelFreeSettings }] = await Promise.all([import('../model-free/prepare.js'), import('../model-free/settings.js')]);
  const tty = process.stderr.isTTY === true;
  const settings = modelFreeSettings(config, (fields, msg) => {
    if (tty) process.stderr.write('\n');
    log.warn(fields, msg);
  });
  const prepared = await prepareModel(settings);
  for (const w of prepared.warnings) log.warn(w);
  const forProfiles = written ?? prepared.manifest;
  const profiles = opts.all ? forProfiles.profiles : checkProfiles(forProfiles, opts.profiles);
  const record = prepared.record!;
  log.info(
    { repo: record.repo, commit: record.commit, cache: config.model.cachePath, profiles: profiles.map((p) => p.name) },
    `downloading ${location.uri} (commit ${record.commit}) into ${config.model.cachePath}${profiles.length ? ` for ${profiles.length === prepared.manifest.profiles.length ? 'all profiles' : profiles.map((p) => p.name).join(', ')}` : ''}`,
  );

  const progress = new DownloadProgress(record.repo);
  const draw = (): void => {
    if (tty) process.stderr.write(`\r\x1b[2K${progressBar(progress.snapshot(), Math.max(10, Math.min(40, (process.stderr.columns ?? 100) - 70)))}`);
    else log.info({ download: progress.snapshot() }, `downloading ${progressLine(progress.snapshot())}`);
  };
  const timer = setInterval(draw, tty ? 200 : config.model.logIntervalMs);
  const started = performance.now();
  try {
    await ensureFiles(settings, prepared, progress);
  } finally {
    clearInterval(timer);
  }
  if (tty) {
    draw();
    process.stderr.write('\n');
  }
  const s = progress.snapshot();
  const secs = (performance.now() - started) / 1000;
  process.stdout.write(
    `Cached ${location.uri} (commit ${record.commit}): ${s.filesTotal} files, ${formatBytes(s.bytesTotal)} in ${prepared.engineModelDir}\n` +
      `Fetched ${formatBytes(s.bytesDownloaded)} in ${formatDuration(secs)}${s.retries ? `, ${s.retries} retries` : ''}. Serve offline with NIM_CACHE_PATH=${config.model.cachePath} NIM_DISABLE_MODEL_DOWNLOAD=1\n`,
  );
  return 0;
}
