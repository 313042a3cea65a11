// The supervisor's logger: pino, writing JSON lines when NIM_JSONL_LOGGING is on
// and one readable line per record otherwise. Engine output goes through the
// same logger as child records tagged `source: "engine"`.
//
// JSON lines carry the keys NIM documents for its JSONL logs, so collectors
// that parse NIM's format parse ours: `level` (DEBUG … CRITICAL), `time`,
// `message`, and where the line came from: `source` (supervisor or engine) and,
// for engine lines, vLLM's `file_name` and `line_number` (and `process`, e.g.
// "APIServer pid=42"). Source: NIM LLM 2.x "Logging and observability"
// (docs.nvidia.com/nim/large-language-models/2.1.4/reference/logging-and-observability.html).
import { Writable } from 'node:stream';
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from '../config/env.js';
import { jsonlLevel, registerRoot, sourceLogger } from './source.js';

export type { Logger } from 'pino';
export { isJsonl, sourceLogger } from './source.js';

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


// Fields pino adds itself, or that the readable format shows in its own place.
const OWN_FIELDS = new Set(['level', 'time', 'message', 'pid', 'hostname', 'source', 'stream', 'file_name', 'line_number', 'process']);

/** The key of the message in every record (NIM's JSONL name for it). */
export const MESSAGE_KEY = 'message';

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
  return `${time} ${level.padEnd(8)}${source} ${String(rec[MESSAGE_KEY] ?? '')}${extras ? ` ${extras}` : ''}\n`;
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

/**
 * When set, the time every record gets (ms since the epoch) instead of now:
 * records held before pino was loaded (log/deferred.ts) keep the time they were made.
 */
let recordTime: number | undefined;

/** Run `write` with every record it makes stamped `atMs` (ms since the epoch). */
export function withRecordTime(atMs: number, write: () => void): void {
  recordTime = atMs;
  try {
    write();
  } finally {
    recordTime = undefined;
  }
}

/** The supervisor's logger: records carry `source: "supervisor"`. */
export function createLogger(opts: LoggerOptions): Logger {
  return sourceLogger(createRootLogger(opts), 'supervisor');
}

/** The root logger (no `source` yet) that createLogger's and sourceLogger's loggers write through. */
export function createRootLogger(opts: LoggerOptions): Logger {
  const out = opts.destination ?? process.stdout;
  const dest = opts.jsonl ? (out as DestinationStream) : readableStream(out);
  const root = pino(
    {
      level: opts.level,
      base: {},
      // pino.stdTimeFunctions.isoTime, but a held record keeps its own time.
      timestamp: () => `,"time":"${new Date(recordTime ?? Date.now()).toISOString()}"`,
      messageKey: MESSAGE_KEY,
      // NIM's JSONL format names the level, not a number, with Python's names (WARNING, CRITICAL).
      formatters: opts.jsonl ? { level: (label) => ({ level: jsonlLevel(label) }) } : {},
    },
    dest,
  );
  registerRoot(root, opts.jsonl);
  return root;
}
