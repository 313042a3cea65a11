// A child process's output: every stdout/stderr line is forwarded to the
// supervisor's log (the logger carries the source tag: engine, ray), and the
// last lines are kept for error messages and the readiness body.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { isJsonl, type Logger } from '../log/logger.js';
import { vllmLineFields } from '../log/vllm-line.js';
import type { Redact } from '../log/redact.js';

// vLLM prints `INFO 11-24 12:00:00 [api_server.py:1] …`, optionally behind `(APIServer pid=N) `;
// uvicorn prints `INFO:     …`. Use that level when present, so engine errors stay errors.
const LEVEL_RE = /^(?:\([^)]*\)\s+)?(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b/;
const LEVELS = { DEBUG: 'debug', INFO: 'info', WARNING: 'warn', WARN: 'warn', ERROR: 'error', CRITICAL: 'fatal' } as const;

export class OutputLog {
  readonly #max: number;
  readonly #lines: string[] = [];
  readonly #redact: Redact;
  #lastLine: string | undefined;

  /** `redact` masks secrets in every line before it is logged or kept. */
  constructor(opts: { max?: number; redact?: Redact } = {}) {
    this.#max = opts.max ?? 40;
    this.#redact = opts.redact ?? ((t) => t);
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
    this.#lastLine = line;
    this.#lines.push(line);
    if (this.#lines.length > this.#max) this.#lines.shift();
  }

  /** Forward each line of `stream` to `logger` and remember it. Resolves when the stream ends. */
  follow(stream: Readable, name: 'stdout' | 'stderr', logger: Logger): Promise<void> {
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    const jsonl = isJsonl(logger);
    rl.on('line', (raw) => {
      const line = this.#redact(raw);
      this.push(line);
      const m = LEVEL_RE.exec(line);
      const level = m ? LEVELS[m[1] as keyof typeof LEVELS] : 'info';
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
