// Helpers for vLLM flag lists (profile engine_args, NIM_PASSTHROUGH_ARGS):
// argparse accepts `--flag value` and `--flag=value`, and the last occurrence
// of a flag wins.

function matches(token: string, names: readonly string[]): 'bare' | 'inline' | undefined {
  for (const n of names) {
    if (token === n) return 'bare';
    if (token.startsWith(`${n}=`)) return 'inline';
  }
  return undefined;
}

/** The value of the last occurrence of a value-taking flag, or undefined. */
export function lastFlagValue(args: readonly string[], ...names: string[]): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const t = args[i]!;
    const m = matches(t, names);
    if (m === 'inline') value = t.slice(t.indexOf('=') + 1);
    else if (m === 'bare' && i + 1 < args.length) value = args[++i];
  }
  return value;
}

export function hasFlag(args: readonly string[], ...names: string[]): boolean {
  return args.some((t) => matches(t, names) !== undefined);
}

/** `args` without any occurrence of a value-taking flag (and its value). */
export function withoutFlag(args: readonly string[], ...names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const m = matches(args[i]!, names);
    if (m === 'bare') i++;
    else if (m === undefined) out.push(args[i]!);
  }
  return out;
}
