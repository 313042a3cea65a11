// Running the `ray` command line: `ray status --address H:P`, read with
// parseRayStatus. Short-lived; bounded by a timeout and cancellable, and it
// dies with the supervisor (setpriv --pdeathsig) like the long-lived processes.
import { execa } from 'execa';
import { findExecutable } from '../process/executable.js';
import { parseRayStatus, type RayStatusSummary } from './ray-status.js';

export type RayStatusResult = { ok: true; summary: RayStatusSummary } | { ok: false; reason: string };

export interface RayStatusOptions {
  /** The resolved `ray` executable. */
  ray: string;
  /** The head, `host:port`. */
  address: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  signal?: AbortSignal;
}

function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1) ?? ''
  );
}

export async function rayStatus(opts: RayStatusOptions): Promise<RayStatusResult> {
  const setpriv = findExecutable('setpriv', opts.env.PATH);
  const args = ['status', '--address', opts.address];
  const [file, argv] = setpriv ? [setpriv, ['--pdeathsig', 'SIGKILL', '--', opts.ray, ...args]] : [opts.ray, args];
  const r = await execa(file, argv, {
    env: opts.env,
    extendEnv: false,
    stdin: 'ignore',
    reject: false,
    timeout: opts.timeoutMs,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    stripFinalNewline: false,
  });
  const stdout = String(r.stdout ?? '');
  const stderr = String(r.stderr ?? '');
  if (r.timedOut) return { ok: false, reason: `ray status --address ${opts.address} gave no answer within ${opts.timeoutMs} ms` };
  if (r.isCanceled) return { ok: false, reason: 'cancelled' };
  if (r.exitCode !== 0) {
    const why = lastLine(stderr) || lastLine(stdout) || (r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode ?? '?'}`);
    return { ok: false, reason: `ray status --address ${opts.address} failed: ${why}` };
  }
  const summary = parseRayStatus(stdout);
  if (!summary) return { ok: false, reason: `ray status --address ${opts.address} printed no node status` };
  return { ok: true, summary };
}
