// The logger of serve's start-up path. pino and what it loads (worker_threads,
// its serializers, ~150 KB of bundled code) cost ~15 ms of start-up, so serve
// loads it only once the engine is spawned: until then this logger holds each
// record (with the time it was made) and writes them all, in order, through
// pino once `load()` has it. Loggers made from it (child, sourceLogger) keep
// working before and after, as pino's own would.
import { writeSync } from 'node:fs';
import type { Logger, LoggerOptions } from './logger.js';
import { jsonlLevel, registerRoot, sourceLogger } from './source.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
type Level = (typeof LEVELS)[number];

interface Held {
  node: HeldLogger;
  level: Level;
  args: unknown[];
  /** When the record was made, ms since the epoch. */
  atMs: number;
}

/** The shared state of one deferred root and the loggers made from it. */
class Deferral {
  pino: Logger | undefined;
  readonly held: Held[] = [];
  constructor(readonly opts: LoggerOptions) {}
}

/** A pino-compatible logger (the methods the supervisor uses) that holds records until its root is loaded. */
class HeldLogger {
  #target: Logger | undefined;
  constructor(
    readonly deferral: Deferral,
    readonly parent: HeldLogger | undefined,
    readonly bindings: Record<string, unknown>,
  ) {}

  get level(): string {
    return this.deferral.opts.level;
  }

  /** The pino logger this one writes through (its parent's child with its bindings); only once loaded. */
  target(): Logger {
    if (this.#target === undefined) {
      this.#target = this.parent === undefined ? this.deferral.pino! : this.parent.target().child(this.bindings);
    }
    return this.#target;
  }

  child(bindings: Record<string, unknown>): Logger {
    return new HeldLogger(this.deferral, this, bindings) as unknown as Logger;
  }

  write(level: Level, args: unknown[]): void {
    if (this.deferral.pino !== undefined) (this.target()[level] as (...a: unknown[]) => void)(...args);
    else this.deferral.held.push({ node: this, level, args, atMs: Date.now() });
  }
}

for (const level of LEVELS) {
  Object.defineProperty(HeldLogger.prototype, level, {
    value(this: HeldLogger, ...args: unknown[]) {
      this.write(level, args);
    },
  });
}

export interface DeferredLogger {
  /** The supervisor's logger (`source: "supervisor"`), usable at once. */
  logger: Logger;
  /** Loads pino and writes the held records through it; later records go straight to pino. Idempotent. */
  load(): Promise<void>;
}

/**
 * createLogger's logger (log/logger.ts) without loading pino yet. Records made
 * before `load()` resolves are written then, with their own times; if the
 * process exits first they are written to stdout as JSON lines, so none is lost.
 */
export function createDeferredLogger(opts: LoggerOptions): DeferredLogger {
  const deferral = new Deferral(opts);
  const root = new HeldLogger(deferral, undefined, {}) as unknown as Logger;
  registerRoot(root, opts.jsonl);
  holding.add(deferral);
  hookProcess();
  let loading: Promise<void> | undefined;
  const load = (): Promise<void> =>
    (loading ??= import('./logger.js').then(({ createRootLogger, withRecordTime }) => {
      deferral.pino = createRootLogger(opts);
      for (const h of deferral.held.splice(0)) withRecordTime(h.atMs, () => (h.node.target()[h.level] as (...a: unknown[]) => void)(...h.args));
      holding.delete(deferral);
    }));
  return { logger: sourceLogger(root, 'supervisor'), load };
}

/** The signals that stop a Node process by default and that start-up may receive before serve handles them. */
const HELD_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** Deferred loggers whose pino is not loaded yet: what the process hooks below write. */
const holding = new Set<Deferral>();
let processHooked = false;

/**
 * A signal nobody else handles ends the process without 'exit': write what is
 * held, then let the signal do what it would have done (the exit status stays
 * 128 + the signal's number). One listener per signal for the whole process,
 * kept for good and doing nothing while another listener (serve's) is there:
 * removing it could leave its signal without a listener for a moment, and Node
 * then drops a signal already caught but not yet delivered.
 */
function onHeldSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return; // serve's own handler takes it (and load() writes the records)
  for (const deferral of holding) writeHeldRaw(deferral);
  process.off(signal, onHeldSignal);
  process.kill(process.pid, signal); // no listener left: the default action, as if none had been added
}

/** Once per process: at exit, and on a signal nobody else handles, write what is still held. */
function hookProcess(): void {
  if (processHooked) return;
  processHooked = true;
  process.on('exit', () => {
    for (const deferral of holding) writeHeldRaw(deferral);
  });
  for (const s of HELD_SIGNALS) process.on(s, onHeldSignal);
}

/** Last resort at exit or on a signal before pino was loaded: each held record as one JSON line on stdout. */
function writeHeldRaw(deferral: Deferral): void {
  const least = LEVELS.indexOf(deferral.opts.level);
  for (const h of deferral.held.splice(0)) {
    if (LEVELS.indexOf(h.level) < least) continue;
    try {
      writeSync(1, `${rawLine(h)}\n`);
    } catch {
      // stdout is gone, or a value JSON cannot hold: the next record may still be written
    }
  }
}

/** One held record as pino would write it in NIM's JSON-lines format, near enough: errors as { type, message, stack }. */
function rawLine(h: Held): string {
  const chain: HeldLogger[] = [];
  for (let n: HeldLogger | undefined = h.node; n; n = n.parent) chain.unshift(n);
  const bindings = Object.assign({}, ...chain.map((n) => n.bindings)) as Record<string, unknown>;
  const [first, second] = h.args;
  // pino's call shapes: (message), (fields, message?), (error, message?).
  const fields = first instanceof Error ? { err: first } : typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : {};
  const message = typeof first === 'string' ? first : typeof second === 'string' ? second : first instanceof Error ? first.message : '';
  return JSON.stringify({ level: jsonlLevel(h.level), time: new Date(h.atMs).toISOString(), ...bindings, ...fields, message }, (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v instanceof Error ? { type: v.name, message: v.message, stack: v.stack } : v,
  );
}
