// A child process's output: every stdout/stderr line is forwarded to the
// supervisor's log (the logger carries the source tag: engine, ray), and the
// last lines are kept for error messages and the readiness body.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { engineLineLevel, RootCauseReader, stripEnginePrefixes, type EngineLevel } from '../log/engine-lines.js';
import { isJsonl, type Logger } from '../log/source.js';
import { vllmLineFields } from '../log/vllm-line.js';
import type { Redact } from '../log/redact.js';

export class OutputLog {
  readonly #max: number;
  readonly #lines: string[] = [];
  readonly #redact: Redact;
  #lastLine: string | undefined;
  /** The line that best explains a failed start (see RootCauseReader). */
  readonly rootCause = new RootCauseReader();
  readonly #hide: (line: string) => boolean;

  /**
   * `redact` masks secrets in every line before it is logged or kept; lines for
   * which `hide` is true are logged at DEBUG only and never kept (the engine's
   * access-log lines for the supervisor's own probes).
   */
  constructor(opts: { max?: number; redact?: Redact; hide?: (line: string) => boolean } = {}) {
    this.#max = opts.max ?? 40;
    this.#redact = opts.redact ?? ((t) => t);
    this.#hide = opts.hide ?? (() => false);
  }

  /** The most recent non-empty line the engine printed. */
  get lastLine(): string | undefined {
    return this.#lastLine;
  }

  /** The last `n` lines, oldest first. */
  tail(n = this.#max): string[] {
    return this.#lines.slice(-n);
  }

  push(line: string): void {
    if (line.trim() === '') return;
    this.rootCause.push(line);
    this.#lastLine = line;
    this.#lines.push(line);
    if (this.#lines.length > this.#max) this.#lines.shift();
  }

  /** Forward each line of `stream` to `logger` and remember it. Resolves when the stream ends. */
  follow(stream: Readable, name: 'stdout' | 'stderr', logger: Logger): Promise<void> {
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    const levelOf = continuedLevels();
    const jsonl = isJsonl(logger);
    rl.on('line', (raw) => {
      const line = this.#redact(raw);
      if (this.#hide(line)) {
        logger.debug({ stream: name }, line);
        return;
      }
      this.push(line);
      const level = levelOf(line);
      // In JSON lines vLLM's prefix becomes NIM's fields (file_name, line_number, …); readable logs keep the line as written.
      const fields = jsonl ? vllmLineFields(line) : undefined;
      if (fields) {
        const { message, ...where } = fields;
        logger[level]({ stream: name, ...where }, message);
      } else {
        logger[level]({ stream: name }, line);
      }
    });
    return new Promise((resolve) => rl.once('close', resolve));
  }
}

/**
 * The level of each line of one stream: the level it announces, else the level
 * of the ERROR record it continues (a traceback names no level on its lines), else INFO.
 */
function continuedLevels(): (line: string) => EngineLevel {
  let continues: EngineLevel | undefined;
  return (line) => {
    const level = engineLineLevel(line);
    if (level) {
      continues = level === 'error' || level === 'fatal' ? level : undefined;
      return level;
    }
    if (stripEnginePrefixes(line).startsWith('Traceback (most recent call last):')) continues = 'error';
    return continues ?? 'info';
  };
}
