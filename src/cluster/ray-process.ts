// A long-lived `ray start … --block` process (the head on the leader, the
// node on a worker), spawned and stopped exactly like the engine: its own
// process group, setpriv --pdeathsig and the reaper (SupervisedProcess), with its
// output forwarded to the log tagged `"source":"ray"`.
import { ConfigError } from '../errors.js';
import { findExecutable } from '../process/executable.js';
import { OutputLog } from '../process/output-log.js';
import { SupervisedProcess } from '../process/supervised-process.js';
import { sourceLogger, type Logger } from '../log/source.js';
import type { Redact } from '../log/redact.js';

/** The `ray` executable (NIM_RAY_COMMAND), resolved before anything starts; a ConfigError (exit 2) when missing. */
export function resolveRay(command: string, pathEnv: string | undefined): string {
  const exe = findExecutable(command, pathEnv);
  if (!exe) {
    throw new ConfigError(`ray executable "${command}" not found${command.includes('/') ? '' : ' on PATH'}`, {
      hint: "multi-node profiles run on vLLM's Ray backend: use an image with Ray installed (vLLM's images ship it), or point NIM_RAY_COMMAND at the ray executable",
    });
  }
  return exe;
}

/** Ray's output, with a callback per line (to notice "Ray runtime started."). */
export class WatchedLog extends OutputLog {
  readonly #onLine: (line: string) => void;
  constructor(onLine: (line: string) => void, opts: { redact?: Redact } = {}) {
    super(opts);
    this.#onLine = onLine;
  }
  override push(line: string): void {
    super.push(line);
    if (line.trim() !== '') this.#onLine(line);
  }
}

export interface SpawnRayOptions {
  ray: string;
  args: string[];
  env?: Record<string, string>;
  baseEnv: NodeJS.ProcessEnv;
  logger: Logger;
  log: OutputLog;
}

export function spawnRay(opts: SpawnRayOptions): SupervisedProcess {
  return SupervisedProcess.spawn({
    command: { command: opts.ray, args: opts.args, env: opts.env ?? {} },
    baseEnv: opts.baseEnv,
    logger: sourceLogger(opts.logger, 'ray'),
    log: opts.log,
  });
}

/** Ray prints this once `ray start` has started (head) or joined (worker) its node. */
export const RAY_STARTED_RE = /Ray runtime started/;
