// Errors of the hub client, the downloader and the cache. Each carries a stable
// `code` (listed in docs/troubleshooting.md) and says which repository, file or
// path is involved and what the operator can do.
import { EXIT_CONFIG, EXIT_RUNTIME, SupervisorError } from '../errors.js';

export type DownloadErrorCode =
  | 'HUB_UNAUTHORIZED' // 401: no token, a bad token, or a private/gated repo hidden from anonymous callers
  | 'HUB_FORBIDDEN' // 403: the token has no access (gated repo whose terms were not accepted)
  | 'HUB_NOT_FOUND' // 404: repository, revision or file
  | 'HUB_UNREACHABLE' // network errors and 5xx after every retry
  | 'DOWNLOAD_STALLED' // no bytes for NIM_DOWNLOAD_STALL_TIMEOUT, after every retry
  | 'DOWNLOAD_CHECKSUM' // a file's SHA-256 did not match the hub's, after every retry
  | 'CACHE_INCOMPLETE' // offline (NIM_DISABLE_MODEL_DOWNLOAD) or read-only, and files are missing
  | 'CACHE_NOT_WRITABLE' // the cache cannot be written and something must be downloaded
  | 'MODEL_INVALID'; // the model's own files cannot be read (config.json missing or malformed)

/** A failure to fetch or find model files. Auth, not-found and cache errors exit 2 (configuration); others 1. */
export class DownloadError extends SupervisorError {
  readonly code: DownloadErrorCode;
  constructor(code: DownloadErrorCode, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    const config = ['HUB_UNAUTHORIZED', 'HUB_FORBIDDEN', 'HUB_NOT_FOUND', 'CACHE_INCOMPLETE', 'CACHE_NOT_WRITABLE', 'MODEL_INVALID'];
    super(message, { ...opts, exitCode: config.includes(code) ? EXIT_CONFIG : EXIT_RUNTIME });
    this.code = code;
  }
}
