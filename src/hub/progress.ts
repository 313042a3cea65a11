// Download progress: bytes and files done of total, a rate over the last
// seconds, and an ETA. Fed by the downloader, read by readiness, the log lines,
// the metrics and the CLI progress bar. The clock is injectable for tests.

export interface ProgressSnapshot {
  repo: string;
  /** Bytes present of the files to fetch (cached before this run included), and their total. */
  bytesDone: number;
  bytesTotal: number;
  /** Bytes received from the network in this run (resumed and retried bytes included). */
  bytesDownloaded: number;
  filesDone: number;
  filesTotal: number;
  /** Bytes per second over the last ~10 s; 0 before the first bytes. */
  rateBytesPerSecond: number;
  /** Seconds left at the current rate; undefined while the rate is unknown. */
  etaSeconds: number | undefined;
  /** Seconds since the download began. */
  elapsedSeconds: number;
  retries: number;
  checksumFailures: number;
}

const WINDOW_MS = 10_000;

export class DownloadProgress {
  readonly repo: string;
  bytesTotal = 0;
  bytesDone = 0;
  bytesDownloaded = 0;
  filesTotal = 0;
  filesDone = 0;
  retries = 0;
  checksumFailures = 0;
  readonly #now: () => number;
  readonly #startedAt: number;
  /** (time, bytesDownloaded) samples within the window. */
  #samples: Array<[number, number]> = [];

  constructor(repo: string, now: () => number = () => performance.now()) {
    this.repo = repo;
    this.#now = now;
    this.#startedAt = now();
    this.#samples.push([this.#startedAt, 0]);
  }

  /** Bytes that arrived from the network (and count towards the file being written). */
  received(n: number): void {
    this.bytesDownloaded += n;
    this.bytesDone += n;
    const t = this.#now();
    this.#samples.push([t, this.bytesDownloaded]);
    while (this.#samples.length > 2 && this.#samples[1]![0] < t - WINDOW_MS) this.#samples.shift();
  }

  /** A partial file was thrown away (corrupt, or the server restarted the range). */
  discarded(n: number): void {
    this.bytesDone -= n;
  }

  snapshot(): ProgressSnapshot {
    const t = this.#now();
    const first = this.#samples.find(([at]) => at >= t - WINDOW_MS) ?? this.#samples[0]!;
    const [t0, b0] = first;
    const span = (t - t0) / 1000;
    const rate = span > 0.2 ? (this.bytesDownloaded - b0) / span : 0;
    const left = Math.max(0, this.bytesTotal - this.bytesDone);
    return {
      repo: this.repo,
      bytesDone: this.bytesDone,
      bytesTotal: this.bytesTotal,
      bytesDownloaded: this.bytesDownloaded,
      filesDone: this.filesDone,
      filesTotal: this.filesTotal,
      rateBytesPerSecond: Math.round(rate),
      etaSeconds: left === 0 ? 0 : rate > 0 ? Math.ceil(left / rate) : undefined,
      elapsedSeconds: (t - this.#startedAt) / 1000,
      retries: this.retries,
      checksumFailures: this.checksumFailures,
    };
  }
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** 175 → "2m55s". */
export function formatDuration(s: number | undefined): string {
  if (s === undefined) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.round(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** One log line: "org/name: 1.2 GiB of 15.0 GiB (8%), 3 of 12 files, 85.3 MiB/s, ETA 2m55s". */
export function progressLine(p: ProgressSnapshot): string {
  const pct = p.bytesTotal > 0 ? Math.floor((p.bytesDone / p.bytesTotal) * 100) : 100;
  return `${p.repo}: ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)} (${pct}%), ${p.filesDone} of ${p.filesTotal} files, ${formatBytes(p.rateBytesPerSecond)}/s, ETA ${formatDuration(p.etaSeconds)}`;
}

/** The readiness body's `download` object (snake_case, like the rest of NIM's JSON). */
export function progressJson(p: ProgressSnapshot): Record<string, unknown> {
  return {
    repo: p.repo,
    bytes_done: p.bytesDone,
    bytes_total: p.bytesTotal,
    files_done: p.filesDone,
    files_total: p.filesTotal,
    rate_bytes_per_second: p.rateBytesPerSecond,
    eta_seconds: p.etaSeconds ?? null,
    elapsed_seconds: Math.round(p.elapsedSeconds * 10) / 10,
    retries: p.retries,
  };
}
