// Reading vLLM's output line by line: the level of a line, the root cause of a
// failed start, and uvicorn's access-log lines. Pure functions and a small
// stateful reader; no I/O.
//
// Shapes, from vLLM's logging (vllm/logger.py, vllm/utils decorate_logs) and uvicorn:
//   (APIServer pid=7) INFO 11-24 12:00:00 [api_server.py:1839] vLLM API server version 0.11.0
//   (EngineCore_DP0 pid=8) (Worker pid=9) ERROR 11-24 12:00:01 [gpu_worker.py:1] …   (worker processes: two prefixes)
//   (VllmWorker TP0 pid=9) WARNING …  /  (RayWorkerWrapper pid=9, ip=10.0.0.2) INFO …
//   (APIServer pid=7) INFO:     127.0.0.1:52344 - "GET /health HTTP/1.1" 200 OK       (uvicorn access log)
//   usage: vllm serve [model_tag] [options]
//   vllm: error: unrecognized arguments: --disable-log-requests                    (argparse, exit 2)

export type EngineLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

// Any number of `(name pid=N[, ip=…]) ` process prefixes, as vLLM nests them for workers.
const PREFIXES_RE = /^(?:\([^()]*\) ?)+/;
// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b\[[0-9;]*m/g;
const LEVEL_RE = /^(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b/;
// argparse: `vllm: error: …` / `vllm serve: error: …`.
const ARGPARSE_RE = /^[\w.-]+(?: [\w.-]+)?: error: .+/;
const LEVELS: Record<string, EngineLevel> = { DEBUG: 'debug', INFO: 'info', WARNING: 'warn', WARN: 'warn', ERROR: 'error', CRITICAL: 'fatal' };

/** A line without colour codes and without vLLM's `(Process pid=N) ` prefixes. */
export function stripEnginePrefixes(line: string): string {
  return line.replace(ANSI_RE, '').replace(PREFIXES_RE, '');
}

/**
 * The level a vLLM or uvicorn line announces (argparse's `prog: error: …` counts
 * as ERROR), or undefined when it names none (traceback lines, raw prints).
 */
export function engineLineLevel(line: string): EngineLevel | undefined {
  const bare = stripEnginePrefixes(line);
  const m = LEVEL_RE.exec(bare);
  if (m) return LEVELS[m[1]!];
  return ARGPARSE_RE.test(bare) ? 'error' : undefined;
}

export interface AccessLine {
  client: string;
  clientPort: number;
  method: string;
  path: string;
  status: number;
}

const ACCESS_RE = /^INFO:\s+(\[[0-9a-fA-F:.]+\]|[0-9.]+|[0-9a-fA-F:]+):(\d+) - "([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})\b/;

/** uvicorn's access-log line (`INFO:     127.0.0.1:52344 - "GET /health HTTP/1.1" 200 OK`), parsed. */
export function parseAccessLine(line: string): AccessLine | undefined {
  const m = ACCESS_RE.exec(stripEnginePrefixes(line));
  if (!m) return undefined;
  return { client: m[1]!.replace(/^\[|\]$/g, ''), clientPort: Number(m[2]), method: m[3]!, path: m[4]!, status: Number(m[5]) };
}

// A Python exception line: `torch.OutOfMemoryError: CUDA out of memory…`, `ValueError: …`, `KeyboardInterrupt`.
const EXCEPTION_RE = /^([A-Za-z_][\w]*\.)*[A-Za-z_]\w*(Error|Exception|Exit|Interrupt|Warning|Failure)(: .*)?$/;
// Wrappers that point elsewhere for the real cause.
const WRAPPER_RE = /See root cause above|see stack trace above|Engine core initialization failed/i;

/**
 * Follows an engine's output and remembers the line that best explains a
 * failure: the first exception line of a Python traceback that is not a
 * wrapper ("See root cause above"), else argparse's `prog: error: …` line, else
 * a wrapper exception line. Lines are given as printed (prefixes are stripped here).
 */
export class RootCauseReader {
  #inTraceback = false;
  #cause: string | undefined;
  #usage: string | undefined;
  #wrapper: string | undefined;
  #sawUsage = false;

  push(raw: string): void {
    const line = stripEnginePrefixes(raw).trimEnd();
    if (line === '') return;
    if (line.startsWith('Traceback (most recent call last):')) {
      this.#inTraceback = true;
      return;
    }
    if (line.startsWith('usage: ')) {
      this.#sawUsage = true;
      return;
    }
    if (this.#sawUsage && this.#usage === undefined && ARGPARSE_RE.test(line)) {
      this.#usage = line;
      return;
    }
    const indented = /^\s/.test(line);
    if (this.#inTraceback && !indented) {
      // The first unindented line after the frames is the exception.
      this.#inTraceback = false;
      this.#note(line);
      return;
    }
    if (!this.#inTraceback && !indented && EXCEPTION_RE.test(line)) this.#note(line);
  }

  #note(line: string): void {
    if (WRAPPER_RE.test(line)) this.#wrapper ??= line;
    else this.#cause ??= line;
  }

  /** The root-cause line, without process prefixes; undefined when nothing looked like one. */
  get rootCause(): string | undefined {
    return this.#cause ?? this.#usage ?? this.#wrapper;
  }

  /** True when the engine printed an argparse usage error (it rejected its command line). */
  get isUsageError(): boolean {
    return this.#usage !== undefined && this.#cause === undefined;
  }

  /** Forget everything (a new engine process starts). */
  reset(): void {
    this.#inTraceback = false;
    this.#cause = this.#usage = this.#wrapper = undefined;
    this.#sawUsage = false;
  }
}
