// Which logger a record goes through, without loading pino: the start-up path
// (engine supervision, engine output) needs these before pino is loaded
// (log/deferred.ts), so they live apart from log/logger.ts.
import type { Logger } from 'pino';

export type { Logger } from 'pino';

// Each logger's root, so a logger for another source is a sibling rather than a
// child: pino writes a child's bindings after its parent's, and a second
// `source` key would make every JSON line carry two.
const roots = new WeakMap<Logger, Logger>();
// Roots that write JSON lines (engine lines are then split into NIM's fields).
const jsonlRoots = new WeakSet<Logger>();

/** NIM's JSONL name of a pino level label: Python's names, WARNING and CRITICAL for warn and fatal, the rest upper-cased. */
export function jsonlLevel(label: string): string {
  return label === 'warn' ? 'WARNING' : label === 'fatal' ? 'CRITICAL' : label.toUpperCase();
}

/** Record `root` as a root logger (no `source` binding yet); `jsonl`: it writes JSON lines. */
export function registerRoot(root: Logger, jsonl: boolean): void {
  if (jsonl) jsonlRoots.add(root);
}

/** Whether `logger` writes JSON lines (NIM_JSONL_LOGGING). */
export function isJsonl(logger: Logger): boolean {
  return jsonlRoots.has(roots.get(logger) ?? logger);
}

/** A logger whose records carry `source: <source>` (e.g. "engine"), writing where `logger` writes. */
export function sourceLogger(logger: Logger, source: string): Logger {
  const root = roots.get(logger) ?? logger;
  const child = root.child({ source });
  roots.set(child, root);
  return child;
}
