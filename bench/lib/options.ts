// Command-line options of the bench scripts: `--name value` and `--flag`.

/** The value after `--name`, or `def`. */
export function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

/** `--name` as a non-negative number; throws naming the option otherwise. */
export function num(name: string, def: number): number {
  const v = Number(opt(name, String(def)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name}: expected a non-negative number, got ${opt(name, '')}`);
  return v;
}

/** Whether `--name` is given. */
export const flag = (name: string): boolean => process.argv.includes(`--${name}`);
