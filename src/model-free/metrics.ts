// Download metrics, read from the progress at scrape time. Registered in the
// supervisor's registry (so /v1/metrics has them for the life of the process)
// and, while the download runs and the full app is not loaded yet, in a small
// registry of their own that the boot handler serves.
import { Counter, Gauge, Registry } from 'prom-client';
import type { DownloadProgress } from '../hub/progress.js';

const P = 'nim_supervisor_';

export function registerDownloadMetrics(registry: Registry, progress: DownloadProgress): void {
  const registers = [registry];
  const snap = (): ReturnType<DownloadProgress['snapshot']> => progress.snapshot();
  new Counter({
    name: `${P}download_bytes_total`,
    help: 'Model bytes received from the hub by this process (resumed and retried ranges included).',
    registers,
    collect() {
      this.reset();
      this.inc(snap().bytesDownloaded);
    },
  });
  new Gauge({
    name: `${P}download_model_bytes`,
    help: 'Bytes of the files the engine needs: state="done" present in the cache, state="total" all of them.',
    labelNames: ['state'],
    registers,
    collect() {
      const s = snap();
      this.set({ state: 'done' }, s.bytesDone);
      this.set({ state: 'total' }, s.bytesTotal);
    },
  });
  new Gauge({
    name: `${P}download_files`,
    help: 'Files the engine needs: state="done" complete and verified in the cache, state="total" all of them.',
    labelNames: ['state'],
    registers,
    collect() {
      const s = snap();
      this.set({ state: 'done' }, s.filesDone);
      this.set({ state: 'total' }, s.filesTotal);
    },
  });
  new Counter({
    name: `${P}download_retries_total`,
    help: 'File download attempts retried (network errors, 5xx, stalls, checksum mismatches).',
    registers,
    collect() {
      this.reset();
      this.inc(snap().retries);
    },
  });
  new Counter({
    name: `${P}download_checksum_failures_total`,
    help: 'Downloaded files whose SHA-256 (or git blob id) did not match the hub and were fetched again.',
    registers,
    collect() {
      this.reset();
      this.inc(snap().checksumFailures);
    },
  });
  new Gauge({
    name: `${P}download_rate_bytes_per_second`,
    help: 'Download rate over the last ~10 seconds.',
    registers,
    collect() {
      this.set(snap().rateBytesPerSecond);
    },
  });
}

/** A registry with only the download metrics (served while the full app is not loaded). */
export function downloadRegistry(progress: DownloadProgress): Registry {
  const r = new Registry();
  registerDownloadMetrics(r, progress);
  return r;
}
