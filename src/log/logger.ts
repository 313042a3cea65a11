// The supervisor's logger: pino, writing JSON lines when NIM_JSONL_LOGGING is on
// and one readable line per record otherwise. Engine output goes through the
// same logger as child records tagged `source: "engine"`.
import { Writable } from 'node:stream';
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from '../config/env.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: LogLevel;
  jsonl: boolean;
  /** Where records go (default: stdout). */
  destination?: NodeJS.WritableStream;
}

const LEVEL_LABELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARNING',
  50: 'ERROR',
  60: 'CRITICAL',
};

const JSONL_LEVELS: Record<string, string> = { warn: 'WARNING', fatal: 'CRITICAL' };

// Fields pino adds itself, or that the readable format shows in its own place.
const OWN_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'source', 'stream']);

/** Turn one pino JSON record into `2026-01-01T00:00:00.000Z INFO [engine] message key=value`. */
export function formatReadable(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString() : String(rec.time ?? '');
  const level = LEVEL_LABELS[rec.level as number] ?? String(rec.level);
  const source = typeof rec.source === 'string' ? ` [${rec.source}]` : '';
  // A start-up phase record (src/cli/startup-report.ts) says everything in words.
  const extras = typeof rec.phase === 'string' ? '' : Object.entries(rec)
    .filter(([k]) => !OWN_FIELDS.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${level.padEnd(8)}${source} ${String(rec.msg ?? '')}${extras ? ` ${extras}` : ''}\n`;
}

function readableStream(out: NodeJS.WritableStream): DestinationStream {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      // pino writes exactly one record per write call, newline-terminated.
      out.write(formatReadable(chunk.toString('utf8').trimEnd()));
      cb();
    },
  });
}

// Each logger's root, so a logger for another source is a sibling rather than a
// child: pino writes a child's bindings after its parent's, and a second
// `source` key would make every JSON line carry two.
const roots = new WeakMap<Logger, Logger>();

export function createLogger(opts: LoggerOptions): Logger {
  const out = opts.destination ?? process.stdout;
  const dest = opts.jsonl ? (out as DestinationStream) : readableStream(out);
  const root = pino(
    {
      level: opts.level,
      base: {},
      timestamp: pino.stdTimeFunctions.isoTime,
      // NIM's JSONL format names the level, not a number, with Python's names (WARNING, CRITICAL).
      formatters: opts.jsonl ? { level: (label) => ({ level: JSONL_LEVELS[label] ?? label.toUpperCase() }) } : {},
    },
    dest,
  );
  return sourceLogger(root, 'supervisor');
}

/** A logger whose records carry `source: <source>` (e.g. "engine"), writing where `logger` writes. */
export function sourceLogger(logger: Logger, source: string): Logger {
  const root = roots.get(logger) ?? logger;
  const child = root.child({ source });
  roots.set(child, root);
  return child;
}
