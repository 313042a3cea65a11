// Child processes for the bench: started here, stopped here, by pid only.
// Every wait has a count and a deadline.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface Child {
  name: string;
  child: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  out: () => string;
}
const children = new Set<Child>();

/** Signal every child still running (by its pid). */
export function killAll(signal: NodeJS.Signals): void {
  for (const c of children) {
    if (c.child.exitCode !== null || c.child.signalCode !== null) continue;
    try {
      process.kill(c.pid, signal);
    } catch {
      /* gone */
    }
  }
}

/** Extra pids to SIGKILL on exit (the engines the supervisors spawned, in case a supervisor died first). */
export const orphanWatch = new Set<number>();
process.on('exit', () => {
  killAll('SIGKILL');
  for (const pid of orphanWatch) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

const shOut = (cmd: string): string => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout?.trim() ?? '';
export const hardNofile = Number(shOut('ulimit -Hn')) || 65536;
export const softNofile = Number(shOut('ulimit -Sn')) || 1024;
/** The soft open-files limit children get: enough for 5,000 streams (a client and an engine socket each). */
export const WANT_NOFILE = Math.min(65536, Number.isFinite(hardNofile) ? hardNofile : 65536);
/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
export const CLK_TCK = Number(shOut('getconf CLK_TCK')) || 100;

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  keepOutput?: boolean;
  /** Raise the soft open-files limit through `sh -c 'ulimit -n N; exec …'` (exec keeps the pid). */
  raiseNofile?: boolean;
}

/** Spawn a child; its stdout and stderr are kept in memory (or dropped). */
export function startChild(name: string, command: string, args: string[], o: StartOptions = {}): Child {
  const env = o.env ?? process.env;
  const raise = (o.raiseNofile ?? true) && softNofile < WANT_NOFILE;
  const child = raise
    ? spawn('sh', ['-c', `ulimit -n ${WANT_NOFILE}; exec "$0" "$@"`, command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  let out = '';
  const keep = o.keepOutput ?? true;
  const onData = (b: Buffer): void => {
    if (keep && out.length < 4_000_000) out += b.toString('utf8');
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const c: Child = { name, child, pid: child.pid, exited, out: () => out };
  children.add(c);
  void exited.then(() => children.delete(c));
  return c;
}

export const running = (c: Child): boolean => c.child.exitCode === null && c.child.signalCode === null;

/** Signal a child and wait for it, SIGKILL after `graceMs`. */
export async function stopChild(c: Child, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (!running(c)) return;
  try {
    process.kill(c.pid, signal);
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await c.exited;
  clearTimeout(t);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` every `everyMs` until it returns a value; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000, everyMs = 10): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < 1e6; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Is the process alive (signal 0)? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of a command on PATH, or undefined. */
export function which(cmd: string, extra: string[] = []): string | undefined {
  for (const p of extra) if (spawnSync('test', ['-x', p]).status === 0) return p;
  const r = shOut(`command -v ${cmd} 2>/dev/null`);
  return r.startsWith('/') ? r : undefined;
}
