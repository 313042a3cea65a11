// One long-lived child process (vLLM, `ray start --block`) run as a process
// group: spawned in a group of its own, stopped by signalling that group, and
// never left behind.
//
// Two mechanisms make sure the child dies with the supervisor even when the
// supervisor is SIGKILLed and gets no chance to clean up:
// - `setpriv --pdeathsig SIGKILL` (util-linux) makes the kernel kill the child's
//   main process the moment its parent dies;
// - a tiny `sh` reaper, in a process group of its own, holds the read end of a
//   pipe from the supervisor. When the supervisor dies the pipe closes, `read`
//   returns, and the reaper kills the child's whole process group (vLLM's
//   EngineCore and worker processes included, which pdeathsig alone misses).
//
// Teardown follows the project's vocabulary: `close()` is graceful (SIGTERM,
// then SIGKILL after a timeout), `destroy()` is immediate (SIGKILL, synchronous).
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { findExecutable } from './executable.js';
import type { ProcessExit } from './exit.js';
import { OutputLog } from './output-log.js';

/** A command to run: executable (absolute path, or a name on PATH), arguments and extra environment. */
export interface ProcessCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
}

export interface SpawnProcessOptions {
  /** The resolved command (absolute executable path) and its arguments and extra env. */
  command: ProcessCommand;
  /** The supervisor's environment the child inherits (the command's env goes on top). */
  baseEnv: NodeJS.ProcessEnv;
  /** Receives every output line and the process's own warnings. */
  logger: Logger;
  log?: OutputLog;
}

/** How `close()` ended: the exit, and whether SIGKILL was needed. */
export interface CloseResult {
  exit: ProcessExit;
  killed: boolean;
}

const REAPER_SCRIPT = [
  // Wait for EOF on stdin: the supervisor closed the pipe or died.
  'read -r _ignored',
  // No `--` before the negative pid: dash's kill (Debian's /bin/sh) rejects it ("Illegal number").
  'kill -TERM "-$1" 2>/dev/null || exit 0',
  // Give the group half a second to exit on SIGTERM, then make sure.
  'for _ in 1 2 3 4 5; do sleep 0.1; kill -0 "-$1" 2>/dev/null || exit 0; done',
  'kill -KILL "-$1" 2>/dev/null',
  'exit 0',
].join('\n');

export class SupervisedProcess {
  readonly pid: number;
  readonly log: OutputLog;
  /** Resolves once the main process has exited (not waiting for its output to drain). */
  readonly exited: Promise<ProcessExit>;
  /** Resolves once both output streams are fully forwarded. */
  readonly drained: Promise<void>;
  #exit: ProcessExit | undefined;
  readonly #child: ChildProcess;
  readonly #reaper: ChildProcess | undefined;
  readonly #logger: Logger;

  private constructor(child: ChildProcess, pid: number, log: OutputLog, logger: Logger, reaper: ChildProcess | undefined) {
    this.#child = child;
    this.pid = pid;
    this.log = log;
    this.#reaper = reaper;
    this.#logger = logger;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
    this.drained = Promise.all([
      log.follow(child.stdout!, 'stdout', logger),
      log.follow(child.stderr!, 'stderr', logger),
    ]).then(() => undefined);
  }

  /** Spawn the command in a process group of its own. Throws when it cannot be spawned. */
  static spawn(opts: SpawnProcessOptions): SupervisedProcess {
    const { command, baseEnv, logger } = opts;
    const log = opts.log ?? new OutputLog();
    const setpriv = findExecutable('setpriv', baseEnv.PATH);
    // setpriv execs the command, so the pid (and process group) we get is the command's own.
    const [file, args] = setpriv
      ? [setpriv, ['--pdeathsig', 'SIGKILL', '--', command.command, ...command.args]]
      : [command.command, command.args];
    // node:child_process, not execa (the design's choice, still used for one-shot
    // commands): this spawn is on the start-up path, execa's import alone cost ~70 ms
    // of CPU before the engine could start (docs/benchmarks.md, "Start-up"), and
    // every execa feature was off here (buffer, reject, cleanup, extendEnv, final newline).
    const child = spawn(file, args, {
      env: { ...baseEnv, ...command.env },
      detached: true, // own process group: signals reach the child's workers too
      // stdin ignored: a child waiting on a prompt would hang forever. Nothing buffered:
      // the output is followed line by line (OutputLog). We stop it ourselves, group and all.
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // A failed spawn (ENOENT, EACCES) also emits 'error' (asynchronously); we report it by throwing below.
    child.on('error', () => undefined);
    if (child.pid === undefined) {
      throw new Error(`could not spawn ${command.command}`);
    }
    const reaper = startReaper(child.pid, logger);
    if (!setpriv) logger.warn('setpriv not found on PATH: relying on the reaper alone to stop the process if the supervisor is killed');
    return new SupervisedProcess(child, child.pid, log, logger, reaper);
  }

  get exitInfo(): ProcessExit | undefined {
    return this.#exit;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** Send `signal` to the whole process group (the main process and every process it started). */
  signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      /* the group is gone */
    }
  }

  /** True while any process of the group is alive (zombies do not count). */
  groupAlive(): boolean {
    try {
      process.kill(-this.pid, 0);
    } catch {
      return false;
    }
    return liveGroupMembers(this.pid) !== 0;
  }

  /**
   * Graceful stop: SIGTERM to the group, SIGKILL to the group after `timeoutMs`,
   * then wait (briefly) until no process of the group remains. Resolves with how it ended.
   */
  async close(timeoutMs: number): Promise<CloseResult> {
    let killed = false;
    if (this.running || this.groupAlive()) {
      this.signalGroup('SIGTERM');
      const stoppedInTime = await waitUntil(() => !this.running && !this.groupAlive(), timeoutMs);
      if (!stoppedInTime) {
        this.#logger.warn({ pid: this.pid, timeoutMs }, 'process did not stop after SIGTERM; sending SIGKILL to its process group');
        this.signalGroup('SIGKILL');
        killed = true;
      }
    }
    const exit = await this.exited;
    // Members of the group that outlived the leader (now orphans) must go too.
    if (!(await waitUntil(() => !this.groupAlive(), 2000))) this.signalGroup('SIGKILL');
    this.#releaseReaper();
    return { exit, killed };
  }

  /**
   * Immediate stop, synchronous: SIGKILL to the whole group (works on a stopped,
   * `SIGSTOP`ped group too) and release the reaper. Safe to call at any time, also
   * after the main process exited (its orphans go) and from `process.on('exit')`.
   */
  destroy(): void {
    this.signalGroup('SIGKILL');
    this.#releaseReaper();
    if (this.running) this.#child.kill('SIGKILL');
  }

  /** The group is gone: the reaper has nothing left to guard. */
  #releaseReaper(): void {
    if (this.#reaper && this.#reaper.exitCode === null && this.#reaper.pid !== undefined) {
      try {
        this.#reaper.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

function startReaper(pgid: number, logger: Logger): ChildProcess | undefined {
  const sh = findExecutable('sh', process.env.PATH) ?? '/bin/sh';
  try {
    const reaper = spawn(sh, ['-c', REAPER_SCRIPT, 'nim-supervisor-reaper', String(pgid)], {
      detached: true, // its own group, so signals for the engine's group never reach it
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    reaper.on('error', (err) => logger.warn({ err: err.message }, 'process reaper failed to start'));
    // Neither the reaper nor its pipe may keep the supervisor's event loop alive.
    reaper.unref();
    (reaper.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    reaper.stdin?.on('error', () => undefined);
    return reaper;
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'process reaper failed to start');
    return undefined;
  }
}

/**
 * Live (non-zombie) members of process group `pgid`, from /proc. Orphaned
 * zombies of the child wait for PID 1 to reap them and must not make us wait.
 * Returns -1 when /proc cannot be read (then the group counts as alive).
 */
function liveGroupMembers(pgid: number): number {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return -1;
  }
  let n = 0;
  for (const d of entries) {
    if (d.charCodeAt(0) < 48 || d.charCodeAt(0) > 57) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // After the command name: state ppid pgrp …
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 3);
      if (Number(pgrp) === pgid && state !== 'Z') n += 1;
    } catch {
      /* exited while we looked */
    }
  }
  return n;
}

async function waitUntil(cond: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return true;
}
