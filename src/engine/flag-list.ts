// vLLM flag lists as argparse reads them: `--flag value`, `--flag=value`,
// `--flag v1 v2` (nargs='+'), bare booleans, `--no-flag` (BooleanOptionalAction),
// `_` spelled as `-`, and the short aliases. Used to merge the layers of
// engine arguments (src/engine/argv.ts) and to check what operators pass.
// Source: vLLM's FlexibleArgumentParser (vllm/utils/argparse_utils.py; v0.11.0
// and v0.31.0) accepts underscores in flag names and the -tp/-pp/-dp/-q aliases.
import { ConfigError } from '../errors.js';

/** Short aliases vLLM's parser knows, by their long name. */
const ALIASES: Readonly<Record<string, string>> = {
  '-tp': '--tensor-parallel-size',
  '-pp': '--pipeline-parallel-size',
  '-dp': '--data-parallel-size',
  '-q': '--quantization',
};

/** Flags the supervisor owns: the engine must listen where the supervisor probes and proxies. */
export const SUPERVISOR_FLAGS: Readonly<Record<string, string>> = {
  '--host': 'the engine listens on a private loopback address the supervisor chooses; the public address is NIM_SERVER_HOST',
  '--port': 'the engine listens on a private port the supervisor chooses; the public port is NIM_SERVER_PORT',
  '--uds': 'the engine listens on a private loopback port the supervisor chooses; the public port is NIM_SERVER_PORT',
};

export interface FlagEntry {
  /** The setting: the long flag name, `-` for `_`, without `no-` (e.g. `--enable-prefix-caching`). */
  key: string;
  /** The tokens as written (one flag and its values), e.g. ['--max-num-seqs', '8'] or ['--no-enable-prefix-caching']. */
  tokens: string[];
}

function looksLikeFlag(token: string): boolean {
  return token.startsWith('-') && token !== '-' && !/^-\d/.test(token) && !/^-\.\d/.test(token);
}

/** The setting a flag token names (`--max_num_seqs=8` → `--max-num-seqs`; `--no-enforce-eager` → `--enforce-eager`). */
export function flagKey(token: string): string {
  const eq = token.indexOf('=');
  let name = eq > 0 ? token.slice(0, eq) : token;
  if (ALIASES[name]) return ALIASES[name]!;
  if (name.startsWith('--')) name = `--${name.slice(2).replace(/_/g, '-')}`;
  if (name.startsWith('--no-')) name = `--${name.slice(5)}`;
  if (/^-O./.test(name)) return '-O'; // -O3, -O.level=3: the compilation config
  return name;
}

/** The value a flag's tokens carry: the text after `=`, the values after the flag, or null for a bare boolean. */
export function flagValue(tokens: readonly string[]): string | null {
  const first = tokens[0] ?? '';
  const eq = first.indexOf('=');
  if (first.startsWith('--') && eq > 0) return first.slice(eq + 1);
  if (tokens.length > 1) return tokens.slice(1).join(' ');
  if (first.startsWith('--no-')) return 'false';
  return null;
}

/**
 * Split a flag list into flags with their values. A token that is not a flag
 * and follows no flag is an error naming `where` (the engine's model comes
 * from the manifest, so there is no positional argument to give).
 */
export function parseFlagList(args: readonly string[], where: string): FlagEntry[] {
  const out: FlagEntry[] = [];
  for (let i = 0; i < args.length; i++) {
    const t = args[i]!;
    if (!looksLikeFlag(t)) {
      throw new ConfigError(`${where}: ${JSON.stringify(t)} is not a vLLM flag`, {
        hint: 'give flags as --name value or --name=value; the model comes from the manifest (NIM_MANIFEST_PATH)',
      });
    }
    const tokens = [t];
    if (!(t.startsWith('--') && t.includes('='))) {
      while (i + 1 < args.length && !looksLikeFlag(args[i + 1]!)) tokens.push(args[++i]!);
    }
    out.push({ key: flagKey(t), tokens });
  }
  return out;
}

/** Refuse flags the supervisor owns (and positional words) in `args`, naming where they came from. */
export function checkEngineFlags(args: readonly string[], where: string): void {
  for (const f of parseFlagList(args, where)) {
    const why = SUPERVISOR_FLAGS[f.key];
    if (why) throw new ConfigError(`${where}: ${f.tokens[0]!.split('=')[0]} is set by the supervisor itself and cannot be given: ${why}`);
  }
}

/** The last value `args` give the setting `key` (any spelling of it), or undefined. */
export function lastValue(args: readonly string[], key: string): string | null | undefined {
  let value: string | null | undefined;
  for (const f of parseFlagList(args, 'flags')) if (f.key === key) value = flagValue(f.tokens);
  return value;
}
