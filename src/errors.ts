// Typed errors shared by every part of the supervisor. Each carries the exit
// code the CLI should use and, where we know one, a hint that tells the
// operator how to fix the problem. The CLI prints `message` (and `hint`) as
// one clear line; stack traces are only shown at NIM_LOG_LEVEL=DEBUG.

/** Exit codes: 2 for anything the operator must fix in configuration, 1 for run-time failures. */
export const EXIT_CONFIG = 2;
export const EXIT_RUNTIME = 1;

export class SupervisorError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;
  constructor(message: string, opts: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? EXIT_RUNTIME;
    this.hint = opts.hint;
  }
}

/** A bad environment variable or CLI flag. */
export class ConfigError extends SupervisorError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, { ...opts, exitCode: EXIT_CONFIG });
  }
}

/** A manifest that cannot be read, parsed or validated. `file` and `yamlPath` say where. */
export class ManifestError extends SupervisorError {
  readonly file: string;
  readonly yamlPath: string | undefined;
  readonly line: number | undefined;
  constructor(
    file: string,
    problem: string,
    opts: { yamlPath?: string; line?: number; hint?: string; cause?: unknown } = {},
  ) {
    const where = [file, opts.line !== undefined ? `line ${opts.line}` : undefined, opts.yamlPath]
      .filter(Boolean)
      .join(': ');
    super(`${where}: ${problem}`, { exitCode: EXIT_CONFIG, hint: opts.hint, cause: opts.cause });
    this.file = file;
    this.yamlPath = opts.yamlPath;
    this.line = opts.line;
  }
}

/** No profile can run, or the one asked for by NIM_MODEL_PROFILE is unknown, ambiguous or incompatible. */
export class SelectionError extends SupervisorError {
  constructor(message: string, opts: { hint?: string } = {}) {
    super(message, { ...opts, exitCode: EXIT_CONFIG });
  }
}

/** The engine failed: it could not start, timed out, or exited on its own. */
export class EngineError extends SupervisorError {
  constructor(message: string, opts: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, { ...opts, exitCode: opts.exitCode ?? EXIT_RUNTIME });
  }
}

/** One line for the operator: the message, then the hint when there is one. */
export function describeError(err: unknown): string {
  if (err instanceof SupervisorError) {
    return err.hint ? `${err.message} (${err.hint})` : err.message;
  }
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

export function exitCodeOf(err: unknown): number {
  return err instanceof SupervisorError ? err.exitCode : EXIT_RUNTIME;
}
