// Fixed-count HTTP/1.1 load from nghttp2's h2load (a C client, one thread).
import { startChild, stopChild, which } from './proc.js';

export const H2LOAD = which('h2load', ['/usr/bin/h2load', '/usr/local/bin/h2load']);
export const H2LOAD_HINT = 'h2load not found: apt-get install nghttp2-client; the per-request CPU measurement is skipped';

export interface H2loadResult {
  requests: number;
  succeeded: number;
  failed: number;
  status2xx: number;
  seconds: number;
  rps: number;
  /** Mean time per request, ms. */
  meanMs: number;
}

/** Parse h2load's summary ("requests: N total, … succeeded, F failed", "finished in 1.23s, …", "status codes: N 2xx"). */
export function parseH2load(out: string): H2loadResult {
  const req = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
  const fin = /finished in ([\d.]+)(ms|s),/.exec(out);
  const codes = /status codes: (\d+) 2xx/.exec(out);
  const mean = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(out);
  if (!req || !fin || !codes) throw new Error(`h2load gave no summary: ${out.slice(-1500)}`);
  const seconds = Number(fin[1]) / (fin[2] === 'ms' ? 1000 : 1);
  const unit = mean?.[2] === 'us' ? 1e-3 : mean?.[2] === 's' ? 1e3 : 1;
  return {
    requests: Number(req[1]),
    succeeded: Number(req[2]),
    failed: Number(req[3]),
    status2xx: Number(codes[1]),
    seconds,
    rps: Number(codes[1]) / seconds,
    meanMs: mean ? Number(mean[1]) * unit : NaN,
  };
}

/** POST `bodyFile` n times over c keep-alive connections (HTTP/1.1). */
export async function h2load(port: number, urlPath: string, bodyFile: string, n: number, c: number, timeoutS = 120): Promise<H2loadResult> {
  if (!H2LOAD) throw new Error(H2LOAD_HINT);
  const proc = startChild('h2load', H2LOAD, ['--h1', '-n', String(n), '-c', String(c), '-m', '1', '-t', '1', '-d', bodyFile, '-H', 'content-type: application/json', `http://127.0.0.1:${port}${urlPath}`]);
  const timer = setTimeout(() => void stopChild(proc, 'SIGKILL'), timeoutS * 1000);
  await proc.exited;
  clearTimeout(timer);
  return parseH2load(proc.out());
}
