// vLLM-style log lines: `(APIServer pid=N) INFO 10-09 12:34:56 [file.py:123] message`.
// vLLM (>= 0.10.1) decorates every line its API process writes with the
// process prefix, uvicorn's lines included, so raw() adds it too.

export type Level = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

export interface SimLogger {
  /** A vLLM logger line, e.g. log('INFO', 'api_server.py:1839', 'vLLM API server version 0.11.0'). */
  log(level: Level, where: string, message: string): void;
  /** A line printed as-is (after the process prefix), e.g. uvicorn's `INFO:     Started server process [1]`. */
  raw(line: string, stream?: 'stdout' | 'stderr'): void;
}

export interface Sink {
  stdout(text: string): void;
  stderr(text: string): void;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** `%m-%d %H:%M:%S`, the date format of vLLM's default logging config. */
export function vllmTimestamp(d: Date): string {
  return `${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function createLogger(sink: Sink, opts: { pid: number; processName?: string; prefix?: string; now?: () => Date }): SimLogger {
  const head = `${opts.prefix ?? ''}(${opts.processName ?? 'APIServer'} pid=${opts.pid}) `;
  const now = opts.now ?? (() => new Date());
  return {
    log(level, where, message) {
      // vLLM logs go to stdout whatever the level (its handler is ext://sys.stdout).
      const header = `${level} ${vllmTimestamp(now())} [${where}] `;
      if (!message.includes('\n')) {
        sink.stdout(`${head}${header}${message}\n`);
        return;
      }
      // NewLineFormatter replaces each "\n" by "\r\n" + the header, and the
      // process decoration prefixes every line (logging_utils/formatter.py).
      sink.stdout(`${message.split('\n').map((l) => `${head}${header}${l}`).join('\r\n')}\n`);
    },
    raw(line, stream = 'stdout') {
      const text = line.includes('\n')
        ? line
            .split('\n')
            .map((l) => `${head}${l}\n`)
            .join('')
        : `${head}${line}\n`;
      if (stream === 'stderr') sink.stderr(text);
      else sink.stdout(text);
    },
  };
}

export const silentLogger: SimLogger = { log() {}, raw() {} };

export function processSink(): Sink {
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
  };
}
