// The downloader: fetches a repository's files at one commit into the hub cache
// (src/cache/layout.ts), which @huggingface/hub's downloadFileToCacheDir cannot
// do for a serving supervisor: it neither resumes a partial file, nor verifies
// checksums, nor reports progress, nor notices a stall. Here each file:
//   - is skipped when its snapshot entry (or blob) is already complete;
//   - resumes from blobs/<etag>.incomplete with an HTTP Range request;
//   - is verified against the hub's SHA-256 (LFS files) or git blob id (small
//     files) before it is renamed into blobs/ and linked from snapshots/;
//   - is retried on network errors, 5xx/429, short bodies, stalls (no bytes for
//     the stall timeout) and checksum mismatches, with exponential back-off.
// A slow but moving download is never cut: only a stall is.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readlink, rename, stat, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { blobPath, refPath, snapshotDir } from '../cache/layout.js';
import { hubRefusal, networkReason, USER_AGENT, type HubOptions, type RepoFileInfo } from './client.js';
import { DownloadError } from './errors.js';
import { formatBytes, type DownloadProgress } from './progress.js';

export interface DownloadOptions {
  hub: HubOptions;
  cacheRoot: string;
  /** Files fetched at once (NIM_SDK_MAX_PARALLEL_DOWNLOAD_REQUESTS; default 8). */
  concurrency: number;
  /** Fail an attempt when no byte arrives for this long, ms (NIM_DOWNLOAD_STALL_TIMEOUT). */
  stallTimeoutMs: number;
  /** Attempts per file before giving up (default 5). */
  maxAttempts?: number;
  /** First back-off, doubled per attempt up to 30 s (default 1000 ms). */
  retryBackoffMs?: number;
  progress: DownloadProgress;
  /** Told about retries and checksum failures (one line each). */
  warn?: (fields: Record<string, unknown>, msg: string) => void;
  signal?: AbortSignal;
}

/** A failure worth another attempt. */
class Transient extends Error {
  constructor(
    readonly kind: 'network' | 'http' | 'stall' | 'checksum' | 'short',
    message: string,
  ) {
    super(message);
  }
}

async function sizeOf(p: string): Promise<number | undefined> {
  try {
    const s = await stat(p); // follows the snapshot symlink to its blob
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/** Files whose snapshot entry is missing or has the wrong size. */
export async function missingFiles(root: string, repo: string, commit: string, files: readonly RepoFileInfo[]): Promise<RepoFileInfo[]> {
  const dir = snapshotDir(root, repo, commit);
  const out: RepoFileInfo[] = [];
  for (const f of files) if ((await sizeOf(path.join(dir, f.path))) !== f.size) out.push(f);
  return out;
}

/** Record which commit a branch or tag points at (refs/<revision>), as huggingface_hub does. */
export async function writeRef(root: string, repo: string, revision: string | undefined, commit: string): Promise<void> {
  const rev = revision ?? 'main';
  if (rev === commit) return;
  const file = refPath(root, repo, rev);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, commit);
}

function newHash(f: RepoFileInfo): Hash | undefined {
  if (f.sha256) return createHash('sha256');
  if (f.gitOid) return createHash('sha1').update(`blob ${f.size}\0`);
  return undefined;
}

async function hashPrefix(hash: Hash, file: string): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

async function link(pointer: string, blob: string): Promise<void> {
  await mkdir(path.dirname(pointer), { recursive: true });
  const target = path.relative(path.dirname(pointer), blob);
  try {
    if ((await lstat(pointer)).isSymbolicLink() && (await readlink(pointer)) === target) return;
    await unlink(pointer);
  } catch {
    /* absent */
  }
  await symlink(target, pointer);
}

function resolveUrl(endpoint: string, repo: string, commit: string, file: string): string {
  return `${endpoint}/${repo}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * One attempt at one file: append to `<blob>.incomplete` from where it ends,
 * verify, rename into place. Throws Transient for what a retry may fix,
 * DownloadError for what it cannot.
 */
async function attempt(f: RepoFileInfo, repo: string, commit: string, blob: string, opts: DownloadOptions): Promise<void> {
  const incomplete = `${blob}.incomplete`;
  const p = opts.progress;
  let offset = (await sizeOf(incomplete)) ?? 0;
  if (offset > f.size) {
    await truncate(incomplete, 0);
    p.discarded(offset);
    offset = 0;
  }
  let hash = newHash(f);
  if (hash && offset > 0) await hashPrefix(hash, incomplete);

  if (offset < f.size) {
    const controller = new AbortController();
    let stalled = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        stalled = true;
        controller.abort();
      }, opts.stallTimeoutMs);
    };
    const onAbort = (): void => controller.abort();
    opts.signal?.addEventListener('abort', onAbort);
    arm();
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, 'accept-encoding': 'identity' };
    if (opts.hub.token) headers.authorization = `Bearer ${opts.hub.token}`;
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const fh = await open(incomplete, offset > 0 ? 'a' : 'w');
    let written = offset;
    try {
      let res: Response;
      try {
        res = await (opts.hub.fetch ?? fetch)(resolveUrl(opts.hub.endpoint, repo, commit, f.path), { headers, signal: controller.signal, redirect: 'follow' });
      } catch (err) {
        if (stalled) throw new Transient('stall', `no answer for ${opts.stallTimeoutMs / 1000} s`);
        if (opts.signal?.aborted) throw err;
        throw new Transient('network', networkReason(err));
      }
      if (res.status === 401 || res.status === 403 || res.status === 404) {
        await res.body?.cancel();
        throw hubRefusal(res.status, res.headers.get('x-error-code'), repo, opts.hub.endpoint, opts.hub.token !== undefined, `file ${f.path} of ${repo}`);
      }
      if (res.status === 416 && offset > 0) {
        // The range starts at the end: the partial file may already be whole; verification decides.
        await res.body?.cancel();
      } else if (res.status !== 200 && res.status !== 206) {
        await res.body?.cancel();
        throw new Transient('http', `HTTP ${res.status}`);
      } else {
        const range = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
        if (offset > 0 && (res.status === 200 || Number(range?.[1]) !== offset)) {
          // The server ignored or moved the range: start the file again.
          await fh.truncate(0);
          p.discarded(offset);
          written = 0;
          hash = newHash(f);
          if (res.status === 206) {
            await res.body?.cancel();
            throw new Transient('http', 'the server answered a different range');
          }
        }
        if (!res.body) throw new Transient('short', 'empty body');
        try {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            arm();
            if (written + chunk.length > f.size) throw new Transient('short', `the server sent more than the ${f.size} bytes the hub lists`);
            await fh.write(chunk, 0, chunk.length, written);
            written += chunk.length;
            hash?.update(chunk);
            p.received(chunk.length);
          }
        } catch (err) {
          if (err instanceof Transient) throw err;
          if (stalled) throw new Transient('stall', `no bytes for ${opts.stallTimeoutMs / 1000} s at ${formatBytes(written)} of ${formatBytes(f.size)}`);
          if (opts.signal?.aborted) throw err;
          throw new Transient('network', `connection lost at ${formatBytes(written)} of ${formatBytes(f.size)}: ${networkReason(err)}`);
        }
        if (written < f.size) throw new Transient('short', `connection closed at ${formatBytes(written)} of ${formatBytes(f.size)}`);
      }
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      await fh.close();
    }
  }

  if (hash) {
    const digest = hash.digest('hex');
    const expected = f.sha256 ?? f.gitOid;
    if (digest !== expected) {
      await unlink(incomplete).catch(() => undefined);
      p.discarded(f.size);
      p.checksumFailures++;
      throw new Transient('checksum', `${f.sha256 ? 'SHA-256' : 'git blob id'} ${digest.slice(0, 16)}… does not match the hub's ${expected!.slice(0, 16)}…`);
    }
  }
  await rename(incomplete, blob);
}

async function fetchOne(f: RepoFileInfo, repo: string, commit: string, opts: DownloadOptions): Promise<void> {
  const p = opts.progress;
  const pointer = path.join(snapshotDir(opts.cacheRoot, repo, commit), f.path);
  const blob = blobPath(opts.cacheRoot, repo, f.etag);
  if ((await sizeOf(blob)) !== f.size) {
    await mkdir(path.dirname(blob), { recursive: true });
    const max = opts.maxAttempts ?? 5;
    for (let n = 1; ; n++) {
      try {
        await attempt(f, repo, commit, blob, opts);
        break;
      } catch (err) {
        if (!(err instanceof Transient)) throw err;
        if (n >= max) {
          const code = err.kind === 'stall' ? 'DOWNLOAD_STALLED' : err.kind === 'checksum' ? 'DOWNLOAD_CHECKSUM' : 'HUB_UNREACHABLE';
          throw new DownloadError(code, `cannot download ${f.path} of ${repo} after ${max} attempts: ${err.message}`, {
            hint:
              code === 'DOWNLOAD_STALLED'
                ? 'the hub stopped sending; check the network or raise NIM_DOWNLOAD_STALL_TIMEOUT. Start again to resume'
                : code === 'DOWNLOAD_CHECKSUM'
                  ? 'the bytes received differ from the hub\'s checksum every time; check proxies that rewrite content, or the mirror in HF_ENDPOINT'
                  : 'check the network and HF_ENDPOINT; start again to resume where it stopped',
          });
        }
        p.retries++;
        const waitMs = Math.min(30_000, (opts.retryBackoffMs ?? 1000) * 2 ** (n - 1));
        opts.warn?.({ file: f.path, attempt: n, reason: err.kind, retryInMs: waitMs }, `download of ${f.path} failed (${err.message}); retrying in ${(waitMs / 1000).toFixed(1)} s`);
        await new Promise((r) => setTimeout(r, waitMs));
        if (opts.signal?.aborted) throw opts.signal.reason;
      }
    }
  }
  await link(pointer, blob);
  p.filesDone++;
}

/**
 * Download `files` of `repo` at `commit` into the cache, `concurrency` at a
 * time, small files first. Progress totals are set here; files already
 * complete count as done. Throws DownloadError (HUB_*, DOWNLOAD_*).
 */
export async function downloadFiles(repo: string, commit: string, files: readonly RepoFileInfo[], opts: DownloadOptions): Promise<void> {
  const p = opts.progress;
  p.filesTotal += files.length;
  p.bytesTotal += files.reduce((a, f) => a + f.size, 0);
  const dir = snapshotDir(opts.cacheRoot, repo, commit);
  const todo: RepoFileInfo[] = [];
  for (const f of files) {
    if ((await sizeOf(path.join(dir, f.path))) === f.size) {
      p.filesDone++;
      p.bytesDone += f.size;
      continue;
    }
    const blob = blobPath(opts.cacheRoot, repo, f.etag);
    p.bytesDone += (await sizeOf(blob)) === f.size ? f.size : Math.min(f.size, (await sizeOf(`${blob}.incomplete`)) ?? 0);
    todo.push(f);
  }
  todo.sort((a, b) => a.size - b.size);
  // Two jobs for the same blob (identical files) must not write one .incomplete at once.
  const byEtag = new Map<string, Promise<void>>();
  const failed = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, failed.signal]) : failed.signal;
  let next = 0;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    while (next < todo.length && firstError === undefined) {
      const f = todo[next++]!;
      const prior = byEtag.get(f.etag);
      const job = (prior ?? Promise.resolve()).then(() => fetchOne(f, repo, commit, { ...opts, signal }));
      byEtag.set(f.etag, job.catch(() => undefined));
      try {
        await job;
      } catch (err) {
        firstError ??= err;
        failed.abort(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, todo.length)) }, worker));
  if (firstError !== undefined) throw firstError;
}
