// Model-free serving (NIM_MODEL_PATH): turn a hub repo or a local directory into
// a manifest, a list of the files the engine needs, and the directory and
// environment the engine is started with. The hub is asked only for what the
// cache does not already hold: a second start of the same revision, or any
// start with NIM_DISABLE_MODEL_DOWNLOAD=1, reads everything from the cache.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, mkdir, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { hubCacheDir, isWritable, modelFreeDir, readRef, snapshotDir } from '../cache/layout.js';
import { listRepoFiles, resolveRevision, hubFetch, type HubOptions, type RepoFileInfo } from '../hub/client.js';
import { downloadFiles, missingFiles, writeRef, type DownloadOptions } from '../hub/download.js';
import { DownloadError } from '../hub/errors.js';
import { DownloadProgress } from '../hub/progress.js';
import { isWeightFile, selectEngineFiles } from '../hub/select-files.js';
import type { ModelLocation } from '../hub/uri.js';
import { parseManifest } from '../manifest/load.js';
import type { Manifest } from '../manifest/types.js';
import { generateManifest } from './generate.js';
import { inspectConfig, type ModelFacts } from './inspect.js';
import { directoryFetch } from './local-fetch.js';

export interface ModelFreeSettings {
  location: ModelLocation;
  cacheRoot: string;
  disableDownload: boolean;
  hub: HubOptions;
  /** NIM_MAX_MODEL_LEN: the context the memory estimate is sized for. */
  maxModelLen: number | undefined;
  concurrency: number;
  stallTimeoutMs: number;
  /** Retry back-off base, ms (tests shorten it). */
  retryBackoffMs?: number;
  warn?: (fields: Record<string, unknown>, msg: string) => void;
}

/** What is stored beside the generated manifest: enough to serve again without the network. */
export interface ModelRecord {
  repo: string;
  revision: string | undefined;
  commit: string;
  facts: ModelFacts;
  files: RepoFileInfo[];
}

export interface PreparedModel {
  location: ModelLocation;
  manifest: Manifest;
  /** Hub models: the record (commit, files); undefined for local directories. */
  record: ModelRecord | undefined;
  /** What the engine loads: the cached snapshot or the local directory. */
  engineModelDir: string;
  /** Environment for the engine: offline on the snapshot. */
  engineEnv: Record<string, string>;
  cacheWritable: boolean;
  warnings: string[];
}

const RECORD = 'model.json';
const MANIFEST = 'manifest.yaml';

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
}

async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

async function parameterCount(opts: { repo: string; revision: string; hubUrl: string; fetch: typeof fetch }): Promise<number | undefined> {
  try {
    const { parseSafetensorsMetadata } = await import('@huggingface/hub');
    const r = await parseSafetensorsMetadata({ repo: { type: 'model', name: opts.repo }, revision: opts.revision, hubUrl: opts.hubUrl, fetch: opts.fetch, computeParametersCount: true });
    // parameterTotal comes from metadata when the checkpoint states it; else sum the per-dtype counts.
    return r.parameterTotal ?? Object.values(r.parameterCount ?? {}).reduce((a, b) => a + (b ?? 0), 0);
  } catch {
    return undefined; // no safetensors (e.g. .bin only): the description omits the count
  }
}

function engineEnvFor(root: string | undefined): Record<string, string> {
  // Offline: the engine must load what is on disk and never reach for the hub itself.
  const env: Record<string, string> = { HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' };
  if (root) {
    env.HF_HOME = path.join(root, 'huggingface');
    env.HF_HUB_CACHE = hubCacheDir(root);
  }
  return env;
}

function manifestFor(record: { facts: ModelFacts }, source: string, release: string, modelUrl: string | undefined, maxModelLen: number | undefined, file: string): { text: string; manifest: Manifest } {
  const text = generateManifest({ facts: record.facts, source, release, maxModelLen, modelUrl });
  return { text, manifest: parseManifest(text, file) };
}

async function prepareHub(s: ModelFreeSettings, loc: Extract<ModelLocation, { kind: 'hf' }>): Promise<PreparedModel> {
  const root = s.cacheRoot;
  const writable = await isWritable(root);
  const warnings: string[] = [];
  let commit: string | undefined;
  if (s.disableDownload) {
    commit = await readRef(root, loc.repo, loc.revision);
    if (!commit) {
      throw new DownloadError('CACHE_INCOMPLETE', `${loc.uri} is not in the cache ${hubCacheDir(root)} and NIM_DISABLE_MODEL_DOWNLOAD=1 forbids downloading it`, {
        hint: `fill the cache first: NIM_MODEL_PATH=${loc.uri} nim-supervisor download-to-cache (with the same NIM_CACHE_PATH), or unset NIM_DISABLE_MODEL_DOWNLOAD`,
      });
    }
  } else {
    try {
      commit = await resolveRevision(s.hub, loc.repo, loc.revision);
    } catch (err) {
      // The hub is down: a model already cached for this revision still serves.
      const cached = err instanceof DownloadError && err.code === 'HUB_UNREACHABLE' ? await readRef(root, loc.repo, loc.revision) : undefined;
      if (!cached) throw err;
      commit = cached;
      warnings.push(`${err instanceof Error ? err.message : String(err)}; using the cached commit ${cached} of ${loc.uri}`);
    }
  }
  const dir = modelFreeDir(root, loc.repo, commit);
  let record: ModelRecord | undefined;
  try {
    record = (await readJson(path.join(dir, RECORD))) as ModelRecord;
  } catch {
    record = undefined;
  }
  if (!record) {
    if (s.disableDownload || warnings.length > 0) {
      throw new DownloadError('CACHE_INCOMPLETE', `the cache ${root} has no generated manifest for ${loc.uri} (commit ${commit}): ${path.join(dir, RECORD)} is missing`, {
        hint: 'run download-to-cache once with network access and the same NIM_CACHE_PATH',
      });
    }
    if (!writable) {
      throw new DownloadError('CACHE_NOT_WRITABLE', `the cache ${root} is read-only and does not hold ${loc.uri}`, {
        hint: 'mount the cache read-write, or fill it first with download-to-cache',
      });
    }
    record = await inspectHubModel(s, loc, commit);
    await writeAtomic(path.join(dir, RECORD), `${JSON.stringify(record, null, 2)}\n`);
  }
  if (!s.disableDownload && writable && warnings.length === 0) await writeRef(root, loc.repo, loc.revision, commit);
  const modelUrl = `${s.hub.endpoint}/${loc.repo}`;
  const release = loc.revision ?? 'main';
  const file = path.join(dir, MANIFEST);
  const stored = manifestFor(record, `hf://${loc.repo}`, release, modelUrl, undefined, file);
  if (writable) {
    const existing = await readFile(file, 'utf8').catch(() => undefined);
    if (existing !== stored.text) await writeAtomic(file, stored.text);
  }
  const manifest = s.maxModelLen === undefined ? stored.manifest : manifestFor(record, `hf://${loc.repo}`, release, modelUrl, s.maxModelLen, file).manifest;
  return {
    location: loc,
    manifest,
    record,
    engineModelDir: snapshotDir(root, loc.repo, commit),
    engineEnv: engineEnvFor(root),
    cacheWritable: writable,
    warnings,
  };
}

/** Ask the hub for the file list, fetch the small files (config, index, tokenizer), read the facts. */
async function inspectHubModel(s: ModelFreeSettings, loc: Extract<ModelLocation, { kind: 'hf' }>, commit: string): Promise<ModelRecord> {
  const all = await listRepoFiles(s.hub, loc.repo, commit);
  if (!all.some((f) => f.path === 'config.json')) {
    throw new DownloadError('MODEL_INVALID', `${loc.uri} has no config.json at commit ${commit}`, {
      hint: 'NIM_MODEL_PATH must name a Hugging Face transformers model repository (GGUF-only and adapter-only repos are not served)',
    });
  }
  const first = selectEngineFiles(all);
  const small = first.files.filter((f) => !isWeightFile(f.path));
  await downloadFiles(loc.repo, commit, small, downloadOptions(s, new DownloadProgress(loc.repo)));
  const snap = snapshotDir(s.cacheRoot, loc.repo, commit);
  let weightMap: Record<string, string> | undefined;
  const index = small.find((f) => f.path === 'model.safetensors.index.json');
  if (index) weightMap = ((await readJson(path.join(snap, index.path)).catch(() => ({}))) as { weight_map?: Record<string, string> }).weight_map;
  const files = selectEngineFiles(all, weightMap).files;
  const config = await readJson(path.join(snap, 'config.json')).catch((err: unknown) => {
    throw new DownloadError('MODEL_INVALID', `config.json of ${loc.uri} is not valid JSON: ${(err as Error).message}`);
  });
  const weightBytes = files.filter((f) => isWeightFile(f.path)).reduce((a, f) => a + f.size, 0);
  const params = await parameterCount({ repo: loc.repo, revision: commit, hubUrl: s.hub.endpoint, fetch: hubFetch(s.hub, loc.repo) });
  const facts = inspectConfig(config, `config.json of ${loc.uri}`, { name: loc.repo, weightBytes, parameterCount: params });
  return { repo: loc.repo, revision: loc.revision, commit, facts, files };
}

async function walk(dir: string, prefix = ''): Promise<Array<{ path: string; size: number }>> {
  const out: Array<{ path: string; size: number }> = [];
  for (const e of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory()) out.push(...(await walk(dir, rel)));
    else out.push({ path: rel, size: (await stat(path.join(dir, rel))).size }); // follows symlinks (a snapshot dir works too)
  }
  return out;
}

async function prepareLocal(s: ModelFreeSettings, loc: Extract<ModelLocation, { kind: 'local' }>): Promise<PreparedModel> {
  const dir = loc.dir;
  let config: unknown;
  try {
    config = await readJson(path.join(dir, 'config.json'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DownloadError(
      'MODEL_INVALID',
      code === 'ENOENT' ? `${path.join(dir, 'config.json')} does not exist` : `cannot read ${path.join(dir, 'config.json')}: ${code ?? (err as Error).message}`,
      { hint: 'NIM_MODEL_PATH must be a Hugging Face model directory (config.json, *.safetensors, tokenizer files)' },
    );
  }
  const all = await walk(dir);
  const files = selectEngineFiles(all).files;
  const weightBytes = files.filter((f) => isWeightFile(f.path)).reduce((a, f) => a + f.size, 0);
  const params = await parameterCount({ repo: 'local/model', revision: 'main', hubUrl: 'http://local', fetch: directoryFetch(dir) });
  const name = path.basename(dir);
  const facts = inspectConfig(config, path.join(dir, 'config.json'), { name, weightBytes, parameterCount: params });
  const key = createHash('sha256').update(dir).digest('hex').slice(0, 16);
  const file = path.join(s.cacheRoot, 'nim', 'model-free', `local--${name}--${key}`, MANIFEST);
  const writable = await isWritable(s.cacheRoot);
  const stored = manifestFor({ facts }, dir, 'local', undefined, undefined, file);
  if (writable) await writeAtomic(file, stored.text).catch(() => undefined);
  const manifest = s.maxModelLen === undefined ? stored.manifest : manifestFor({ facts }, dir, 'local', undefined, s.maxModelLen, file).manifest;
  return { location: loc, manifest, record: undefined, engineModelDir: dir, engineEnv: engineEnvFor(undefined), cacheWritable: writable, warnings: [] };
}

/** Build (or read from the cache) the manifest and file list. Throws DownloadError / ManifestError. */
export async function prepareModel(s: ModelFreeSettings): Promise<PreparedModel> {
  return s.location.kind === 'hf' ? await prepareHub(s, s.location) : await prepareLocal(s, s.location);
}

export function downloadOptions(s: ModelFreeSettings, progress: DownloadProgress, signal?: AbortSignal): DownloadOptions {
  return {
    hub: s.hub,
    cacheRoot: s.cacheRoot,
    concurrency: s.concurrency,
    stallTimeoutMs: s.stallTimeoutMs,
    retryBackoffMs: s.retryBackoffMs,
    progress,
    warn: s.warn,
    signal,
  };
}

/**
 * Make sure every file the engine needs is in the snapshot: nothing to do when
 * complete (a read-only cache included); CACHE_INCOMPLETE listing what is
 * missing when offline or read-only; else `onDownload()`, then download with `progress`.
 */
export async function ensureFiles(s: ModelFreeSettings, prepared: PreparedModel, progress: DownloadProgress, signal?: AbortSignal, onDownload?: () => void): Promise<void> {
  const record = prepared.record;
  if (!record) return; // a local directory: used as it is
  const missing = await missingFiles(s.cacheRoot, record.repo, record.commit, record.files);
  if (missing.length === 0) {
    progress.filesTotal = progress.filesDone = record.files.length;
    progress.bytesTotal = progress.bytesDone = record.files.reduce((a, f) => a + f.size, 0);
    return;
  }
  const list = missing.slice(0, 8).map((f) => f.path).join(', ') + (missing.length > 8 ? `, … (${missing.length} in all)` : '');
  const where = snapshotDir(s.cacheRoot, record.repo, record.commit);
  if (s.disableDownload) {
    throw new DownloadError('CACHE_INCOMPLETE', `the cached snapshot ${where} lacks ${missing.length} file(s) and NIM_DISABLE_MODEL_DOWNLOAD=1 forbids fetching them: ${list}`, {
      hint: 'complete the cache with download-to-cache (same NIM_MODEL_PATH and NIM_CACHE_PATH), or unset NIM_DISABLE_MODEL_DOWNLOAD',
    });
  }
  if (!prepared.cacheWritable) {
    throw new DownloadError('CACHE_INCOMPLETE', `the cache ${s.cacheRoot} is read-only and the snapshot ${where} lacks ${missing.length} file(s): ${list}`, {
      hint: 'fill the cache with download-to-cache where it is writable, or mount it read-write',
    });
  }
  onDownload?.();
  await downloadFiles(record.repo, record.commit, record.files, downloadOptions(s, progress, signal));
}
