// Shared helpers for tests that run real child processes on 127.0.0.1.
// Every process started here is tracked and killed (by pid, process group
// included) when the test file ends, so no test can leave an orphan behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { after } from 'node:test';

/** Repository root (tests run from dist/test/, sources live in test/). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const binDir = path.join(repoRoot, 'bin');
export const distDir = path.join(repoRoot, 'dist');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');
/** Directory holding the fake `nvidia-smi` used by tests. */
export const fakeNvidiaSmiDir = path.join(fixturesDir, 'bin');

/** A PATH with the given directories first, then the inherited PATH. */
export function pathWith(...dirs: string[]): string {
  return [...dirs, process.env.PATH ?? ''].join(path.delimiter);
}

/** Ask the kernel for a free loopback TCP port. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      srv.close(() => resolve(addr.port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `fn` until it returns a truthy value, or throw after `timeoutMs`. */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 25, what = 'condition' } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** True while `pid` runs. A zombie (exited, not yet reaped by its parent) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** stdout and stderr interleaved as they arrived. */
  output(): string;
  /** Resolves when a line of output matches `re`. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<ExitInfo>;
  /** Signal the process itself (the cleanup hook kills whole groups). */
  kill(signal?: NodeJS.Signals): void;
}

const tracked = new Set<Proc>();

after(async () => {
  for (const p of tracked) killTree(p, 'SIGKILL');
  tracked.clear();
});

function killTree(p: Proc, signal: NodeJS.Signals): void {
  try {
    process.kill(-p.pid, signal);
  } catch {
    /* not a group leader, or gone */
  }
  try {
    process.kill(p.pid, signal);
  } catch {
    /* gone */
  }
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Start the child as its own process group leader (default true). */
  detached?: boolean;
}

/**
 * Start a command with piped output. It is started in its own process group so
 * the cleanup hook can kill grandchildren too.
 */
export function start(command: string, args: string[], opts: StartOptions = {}): Proc {
  const child = spawn(command, args, {
    cwd: opts.cwd ?? repoRoot,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? true,
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  let out = '';
  let err = '';
  let all = '';
  const waiters: Array<{ re: RegExp; resolve: (s: string) => void }> = [];
  const onData = (which: 'out' | 'err') => (buf: Buffer) => {
    const s = buf.toString('utf8');
    if (which === 'out') out += s;
    else err += s;
    all += s;
    for (const w of [...waiters]) {
      const m = all.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  child.stdout!.on('data', onData('out'));
  child.stderr!.on('data', onData('err'));
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const proc: Proc = {
    child,
    pid: child.pid,
    stdout: () => out,
    stderr: () => err,
    output: () => all,
    exited,
    kill: (signal = 'SIGTERM') => {
      try {
        process.kill(proc.pid, signal);
      } catch {
        /* already gone */
      }
    },
    waitForOutput(re, timeoutMs = 15_000) {
      const m = all.match(re);
      if (m) return Promise.resolve(m[0]);
      return new Promise((resolve, reject) => {
        const w = { re, resolve };
        waiters.push(w);
        const t = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re} in output:\n${all.slice(-4000)}`));
        }, timeoutMs);
        t.unref();
        void exited.then(() => {
          // Give the last output a moment to arrive before giving up.
          setTimeout(() => {
            const i = waiters.indexOf(w);
            if (i < 0) return;
            const m2 = all.match(re);
            waiters.splice(i, 1);
            clearTimeout(t);
            if (m2) resolve(m2[0]);
            else reject(new Error(`process exited before ${re} appeared; output:\n${all.slice(-4000)}`));
          }, 50);
        });
      });
    },
  };
  tracked.add(proc);
  void exited.then(() => {
    // The leader is gone; its group may not be, so the after() hook still kills the group.
  });
  return proc;
}

/** Start a built Node entry point (path relative to dist/). */
export function startNode(distEntry: string, args: string[], opts: StartOptions = {}): Proc {
  return start(process.execPath, [path.join(distDir, distEntry), ...args], opts);
}

/** Run a command to completion and return its exit code and output. */
export async function run(
  command: string,
  args: string[],
  opts: StartOptions & { timeoutMs?: number } = {},
): Promise<ExitInfo & { stdout: string; stderr: string }> {
  const p = start(command, args, opts);
  const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
  const info = await p.exited;
  clearTimeout(timer);
  // Let the pipes drain.
  await Promise.all([
    new Promise((r) => (p.child.stdout!.readableEnded ? r(null) : p.child.stdout!.once('close', r))),
    new Promise((r) => (p.child.stderr!.readableEnded ? r(null) : p.child.stderr!.once('close', r))),
  ]);
  tracked.delete(p);
  return { ...info, stdout: p.stdout(), stderr: p.stderr() };
}

/** The pids of every live process whose parent is `pid` (from /proc). */
export async function childPids(pid: number): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const out: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = await readFile(`/proc/${d}/stat`, 'utf8');
      // Field 4 is the ppid; the command name (field 2) may contain spaces, so split after ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === pid) out.push(Number(d));
    } catch {
      /* raced with exit */
    }
  }
  return out;
}
