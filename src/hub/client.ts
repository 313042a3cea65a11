// The Hugging Face hub's REST API through @huggingface/hub (model info, file
// tree), with our own fetch wrapper: it adds HF_TOKEN, a User-Agent, a request
// timeout, and turns the hub's 401/403/404 answers into one clear DownloadError
// naming the repository and what to do.
import { DownloadError } from './errors.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubOptions {
  /** HF_ENDPOINT: the hub or a mirror, without a trailing slash. */
  endpoint: string;
  /** HF_TOKEN (never logged). */
  token: string | undefined;
  /** The underlying fetch (tests inject one). */
  fetch?: typeof fetch;
  /** Time to wait for response headers of one request, ms (default 30 s). */
  requestTimeoutMs?: number;
  /** Attempts for one metadata request on network errors, 5xx and 429 (default 4: 0.25, 0.5, 1 s apart). */
  metadataAttempts?: number;
}

/** One file of a repository at a commit, as the tree API lists it. */
export interface RepoFileInfo {
  path: string;
  size: number;
  /** The blob name in the hub cache: the LFS SHA-256 for LFS files, else the git blob id (hub semantics). */
  etag: string;
  /** SHA-256 of the content, for LFS files (what the hub stores; verified after download). */
  sha256: string | undefined;
  /** git blob SHA-1 for small (non-LFS) files (verified after download). */
  gitOid: string | undefined;
}

export const USER_AGENT = 'nim-supervisor (huggingface-hub compatible)';

/** Explain a hub refusal. `what` is e.g. "model org/name" or "file x of org/name". */
export function hubRefusal(status: number, errorCode: string | null, repo: string, endpoint: string, tokenSet: boolean, what = `model ${repo}`): DownloadError {
  const page = `${endpoint}/${repo}`;
  if (status === 401) {
    if (errorCode === 'GatedRepo') {
      return new DownloadError('HUB_UNAUTHORIZED', `${what} is gated: the hub needs a token to download it (HTTP 401)`, {
        hint: `accept the model's terms on ${page} and set HF_TOKEN to a token with read access`,
      });
    }
    if (errorCode === null && tokenSet) {
      return new DownloadError('HUB_UNAUTHORIZED', `the hub rejected HF_TOKEN for ${what} (HTTP 401: invalid credentials)`, {
        hint: 'HF_TOKEN is expired or mistyped; create a read token in your hub settings',
      });
    }
    return new DownloadError('HUB_UNAUTHORIZED', `${what} was not found, or is private and needs a token (HTTP 401)`, {
      hint: tokenSet ? `check the name; make sure the token can read ${repo}` : `check the name; for a private or gated model set HF_TOKEN`,
    });
  }
  if (status === 403) {
    return new DownloadError('HUB_FORBIDDEN', `HF_TOKEN has no access to ${what} (HTTP 403)`, {
      hint: `request access on ${page} (gated models need the terms accepted by the token's owner), or use a token that can read it`,
    });
  }
  if (errorCode === 'RevisionNotFound') {
    return new DownloadError('HUB_NOT_FOUND', `the revision asked for does not exist in ${repo} (HTTP 404)`, {
      hint: 'check the @revision in NIM_MODEL_PATH (a branch, tag or 40-hex commit)',
    });
  }
  if (errorCode === 'EntryNotFound') {
    return new DownloadError('HUB_NOT_FOUND', `${what} does not exist (HTTP 404)`, { hint: 'the repository changed while downloading; start again' });
  }
  return new DownloadError('HUB_NOT_FOUND', `${what} does not exist on ${endpoint} (HTTP 404)`, {
    hint: 'check the name in NIM_MODEL_PATH (hf://org/name, case matters) and HF_ENDPOINT',
  });
}

/**
 * A fetch for @huggingface/hub: adds the token and User-Agent, and throws a
 * DownloadError for 401/403 and repo/revision 404s (a missing file's 404 is
 * left to the caller, which may probe for optional files).
 */
export function hubFetch(opts: HubOptions, repo: string): typeof fetch {
  const base = opts.fetch ?? fetch;
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    headers.delete('authorization'); // never the library's; ours, from HF_TOKEN
    if (opts.token) headers.set('authorization', `Bearer ${opts.token}`);
    headers.set('user-agent', USER_AGENT);
    // Metadata requests are small: retry network errors, 5xx and 429 a few times before giving up.
    let res: Response | undefined;
    for (let attempt = 1; ; attempt++) {
      const timeout = AbortSignal.timeout(opts.requestTimeoutMs ?? 30_000);
      const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
      let failure: unknown;
      try {
        res = await base(input, { ...init, headers, signal });
        if (res.status < 500 && res.status !== 429) break;
        failure = new Error(`HTTP ${res.status}`);
      } catch (err) {
        if (init?.signal?.aborted) throw err;
        failure = err;
      }
      if (attempt >= (opts.metadataAttempts ?? 4)) {
        if (res && (res.status >= 500 || res.status === 429)) break; // the library reports the status
        throw new DownloadError('HUB_UNREACHABLE', `cannot reach ${opts.endpoint} for ${repo}: ${networkReason(failure)}`, {
          hint: 'check HF_ENDPOINT and the network (HTTPS_PROXY); to serve from the cache only, set NIM_DISABLE_MODEL_DOWNLOAD=1',
          cause: failure,
        });
      }
      await res?.body?.cancel();
      res = undefined;
      await new Promise((r) => setTimeout(r, 250 * 2 ** (attempt - 1)));
    }
    const code = res.headers.get('x-error-code');
    if (res.status === 401 || res.status === 403 || (res.status === 404 && code !== 'EntryNotFound' && code !== null)) {
      await res.body?.cancel();
      throw hubRefusal(res.status, code, repo, opts.endpoint, opts.token !== undefined);
    }
    return res;
  };
}

/** A short reason for a network error (undici wraps the useful part in `cause`). */
export function networkReason(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'no answer in time';
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** The commit a revision (branch, tag, commit; default main) points at now. */
export async function resolveRevision(opts: HubOptions, repo: string, revision: string | undefined): Promise<string> {
  const { modelInfo } = await import('@huggingface/hub');
  const info = await wrap(opts, repo, () =>
    modelInfo({ name: repo, revision: revision ?? 'main', hubUrl: opts.endpoint, fetch: hubFetch(opts, repo), additionalFields: ['sha'] }),
  );
  const sha = (info as { sha?: unknown }).sha;
  if (typeof sha !== 'string' || !/^[0-9a-f]{40}$/.test(sha)) {
    throw new DownloadError('HUB_UNREACHABLE', `${opts.endpoint} answered without a commit for ${repo}`, { hint: 'HF_ENDPOINT must point at a Hugging Face compatible hub' });
  }
  return sha;
}

/** Every file of the repository at `commit` (recursive tree listing). */
export async function listRepoFiles(opts: HubOptions, repo: string, commit: string): Promise<RepoFileInfo[]> {
  const { listFiles } = await import('@huggingface/hub');
  return await wrap(opts, repo, async () => {
    const out: RepoFileInfo[] = [];
    for await (const e of listFiles({ repo: { type: 'model', name: repo }, revision: commit, recursive: true, hubUrl: opts.endpoint, fetch: hubFetch(opts, repo) })) {
      if (e.type !== 'file') continue;
      const sha256 = e.lfs?.oid;
      out.push({ path: e.path, size: e.lfs?.size ?? e.size, etag: sha256 ?? e.oid ?? '', sha256, gitOid: sha256 ? undefined : e.oid });
    }
    return out;
  });
}

/** Run a library call; its own HubApiError (5xx, odd answers) becomes HUB_UNREACHABLE. */
async function wrap<T>(opts: HubOptions, repo: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DownloadError) throw err;
    const status = (err as { statusCode?: number }).statusCode;
    throw new DownloadError('HUB_UNREACHABLE', `${opts.endpoint} failed for ${repo}${status ? ` (HTTP ${status})` : ''}: ${(err as Error).message.split('. URL:')[0]}`, {
      hint: 'retry later; check HF_ENDPOINT; to serve from the cache only, set NIM_DISABLE_MODEL_DOWNLOAD=1',
      cause: err,
    });
  }
}
