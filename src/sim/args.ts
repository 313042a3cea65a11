// vLLM's command line (`vllm serve MODEL [flags]`), parsed the way Python's
// argparse would: same error text, same exit status (2). Pure: no I/O here.
// Adding a flag is one line in FLAGS; a flag only some releases have names
// them in `releases` (src/sim/release.ts).
import { parseLoraModules } from './lora.js';
import { NEWEST_RELEASE, RELEASES, type Release, type ReleaseId } from './release.js';

export const DEFAULT_MODEL = 'Qwen/Qwen3-0.6B';

const SERVE_USAGE = 'usage: vllm serve [model_tag] [options]';
const topUsage = (r: Release) => `usage: vllm [-h] [-v] {${r.subcommands.join(',')}} ...`;

type Kind =
  | 'str'
  | 'int'
  | 'float'
  | 'flag' // store_true
  | 'bool_opt' // argparse.BooleanOptionalAction: --x / --no-x
  | 'human_int' // 32k / 1K / 1M like vLLM's human_readable_int
  | 'json';

export interface FlagSpec {
  dest: string;
  names: string[];
  kind: Kind;
  /** '+' = one or more values (like --served-model-name A B). */
  nargs?: '+';
  choices?: readonly string[];
  default?: unknown;
  /** The releases whose parser has this flag; absent = every release. */
  releases?: readonly ReleaseId[];
}

const ONLY_011: readonly ReleaseId[] = ['0.11'];
const SINCE_031: readonly ReleaseId[] = ['0.31'];

const f = (dest: string, names: string[], kind: Kind, extra: Partial<FlagSpec> = {}): FlagSpec => ({
  dest,
  names,
  kind,
  default: kind === 'flag' ? false : null,
  ...extra,
});

export const FLAGS: readonly FlagSpec[] = [
  f('model', ['--model'], 'str', { default: DEFAULT_MODEL }),
  f('host', ['--host'], 'str'),
  f('port', ['--port'], 'int', { default: 8000 }),
  f('uvicorn_log_level', ['--uvicorn-log-level'], 'str', {
    default: 'info',
    choices: ['critical', 'debug', 'error', 'info', 'trace', 'warning'],
  }),
  f('disable_uvicorn_access_log', ['--disable-uvicorn-access-log'], 'flag'),
  f('allow_credentials', ['--allow-credentials'], 'flag'),
  f('allowed_origins', ['--allowed-origins'], 'json', { default: ['*'] }),
  f('allowed_methods', ['--allowed-methods'], 'json', { default: ['*'] }),
  f('allowed_headers', ['--allowed-headers'], 'json', { default: ['*'] }),
  f('api_key', ['--api-key'], 'str', { nargs: '+' }),
  f('lora_modules', ['--lora-modules'], 'str', { nargs: '+' }),
  f('chat_template', ['--chat-template'], 'str'),
  f('chat_template_content_format', ['--chat-template-content-format'], 'str', {
    default: 'auto',
    choices: ['auto', 'openai', 'string'],
  }),
  f('trust_request_chat_template', ['--trust-request-chat-template'], 'flag'),
  f('response_role', ['--response-role'], 'str', { default: 'assistant' }),
  f('root_path', ['--root-path'], 'str'),
  f('middleware', ['--middleware'], 'str', { nargs: '+' }),
  f('enable_request_id_headers', ['--enable-request-id-headers'], 'flag'),
  f('enable_auto_tool_choice', ['--enable-auto-tool-choice'], 'flag'),
  f('tool_call_parser', ['--tool-call-parser'], 'str'),
  f('tool_parser_plugin', ['--tool-parser-plugin'], 'str'),
  f('disable_fastapi_docs', ['--disable-fastapi-docs'], 'flag'),
  f('enable_prompt_tokens_details', ['--enable-prompt-tokens-details'], 'flag'),
  f('enable_server_load_tracking', ['--enable-server-load-tracking'], 'flag'),
  f('enable_force_include_usage', ['--enable-force-include-usage'], 'flag'),
  f('enable_tokenizer_info_endpoint', ['--enable-tokenizer-info-endpoint'], 'flag'),
  f('enable_log_outputs', ['--enable-log-outputs'], 'flag'),
  f('max_log_len', ['--max-log-len'], 'int'),
  f('tokenizer', ['--tokenizer'], 'str'),
  f('tokenizer_mode', ['--tokenizer-mode'], 'str', { default: 'auto' }),
  f('revision', ['--revision'], 'str'),
  f('download_dir', ['--download-dir'], 'str'),
  f('load_format', ['--load-format'], 'str', { default: 'auto' }),
  f('trust_remote_code', ['--trust-remote-code'], 'flag'),
  f('dtype', ['--dtype'], 'str', { default: 'auto', choices: ['auto', 'bfloat16', 'float', 'float16', 'float32', 'half'] }),
  f('seed', ['--seed'], 'int'),
  f('max_model_len', ['--max-model-len'], 'human_int'),
  f('quantization', ['-q', '--quantization'], 'str'),
  f('enforce_eager', ['--enforce-eager'], 'flag'),
  f('max_logprobs', ['--max-logprobs'], 'int', { default: 20 }),
  f('generation_config', ['--generation-config'], 'str', { default: 'auto' }),
  f('served_model_name', ['--served-model-name'], 'str', { nargs: '+' }),
  f('distributed_executor_backend', ['--distributed-executor-backend'], 'str', {
    choices: ['external_launcher', 'mp', 'ray', 'uni'],
  }),
  f('pipeline_parallel_size', ['-pp', '--pipeline-parallel-size'], 'int', { default: 1 }),
  f('tensor_parallel_size', ['-tp', '--tensor-parallel-size'], 'int', { default: 1 }),
  f('data_parallel_size', ['-dp', '--data-parallel-size'], 'int', { default: 1 }),
  f('block_size', ['--block-size'], 'int'),
  // The default is per release (Release.defaultGpuMemoryUtilization).
  f('gpu_memory_utilization', ['--gpu-memory-utilization'], 'float', { default: 0.9 }),
  // Removed in PR #36216 (2026-03-07): absent from arg_utils.py@M.
  f('swap_space', ['--swap-space'], 'float', { default: 4, releases: ONLY_011 }),
  f('kv_cache_dtype', ['--kv-cache-dtype'], 'str', {
    default: 'auto',
    choices: ['auto', 'bfloat16', 'fp8', 'fp8_e4m3', 'fp8_e5m2', 'fp8_inc'],
  }),
  f('enable_prefix_caching', ['--enable-prefix-caching'], 'bool_opt'),
  // CacheConfig.num_gpu_blocks_override (vllm/config/cache.py, v0.11.0): NIM_NUM_KV_CACHE_SEQ_LENS sizes the KV cache with it.
  f('num_gpu_blocks_override', ['--num-gpu-blocks-override'], 'int'),
  // StructuredOutputsConfig as JSON (vllm/engine/arg_utils.py, v0.11.0; PR #22772 replaced --guided-decoding-backend).
  f('structured_outputs_config', ['--structured-outputs-config'], 'json', { default: {} }),
  f('cpu_offload_gb', ['--cpu-offload-gb'], 'float', { default: 0 }),
  f('limit_mm_per_prompt', ['--limit-mm-per-prompt'], 'json', { default: {} }),
  f('enable_lora', ['--enable-lora'], 'bool_opt'),
  f('max_loras', ['--max-loras'], 'int', { default: 1 }),
  // vllm/config/lora.py MaxLoRARanks: argparse choices.
  f('max_lora_rank', ['--max-lora-rank'], 'int', { default: 16, choices: ['1', '8', '16', '32', '64', '128', '256', '320', '512'] }),
  f('max_cpu_loras', ['--max-cpu-loras'], 'int'),
  // `--device` was removed in v0.10.0 (PR #21349), so neither release has it.
  // 0.31's --device-ids (arg_utils.py@M:1041, PR #45026): comma-separated GPU ids or UUIDs.
  f('device_ids', ['--device-ids'], 'str', { releases: SINCE_031 }),
  f('max_num_batched_tokens', ['--max-num-batched-tokens'], 'human_int'),
  f('max_num_seqs', ['--max-num-seqs'], 'int'),
  f('enable_chunked_prefill', ['--enable-chunked-prefill'], 'bool_opt'),
  f('reasoning_parser', ['--reasoning-parser'], 'str'),
  f('show_hidden_metrics_for_version', ['--show-hidden-metrics-for-version'], 'str'),
  f('enable_sleep_mode', ['--enable-sleep-mode'], 'flag'),
  f('headless', ['--headless'], 'flag'),
  f('api_server_count', ['--api-server-count'], 'int', { default: 1 }),
  f('disable_log_stats', ['--disable-log-stats'], 'flag'),
  f('otlp_traces_endpoint', ['--otlp-traces-endpoint'], 'str'),
  f('collect_detailed_traces', ['--collect-detailed-traces'], 'str'),
  f('enable_log_requests', ['--enable-log-requests'], 'flag', { releases: ONLY_011 }),
  // 0.31: BooleanOptionalAction (arg_utils.py@M:2873-2880).
  f('enable_log_requests', ['--enable-log-requests'], 'bool_opt', { releases: SINCE_031 }),
  // Deprecated in 0.10.1-0.11; removed in PR #35723 (2026-03-02).
  f('disable_log_requests', ['--disable-log-requests'], 'flag', { releases: ONLY_011 }),
  // 0.31 only: arg_utils.py@M:1690-1695 and openai/cli_args.py@M:177-188.
  f('shutdown_timeout', ['--shutdown-timeout'], 'int', { default: 0, releases: SINCE_031 }),
  f('fingerprint_mode', ['--fingerprint-mode'], 'str', { default: 'full', choices: ['custom', 'full', 'hash', 'none'], releases: SINCE_031 }),
  f('fingerprint_value', ['--fingerprint-value'], 'str', { releases: SINCE_031 }),
];

/** The flags of one release, with that release's defaults. */
export function flagsOf(release: Release): FlagSpec[] {
  return FLAGS.filter((s) => !s.releases || s.releases.includes(release.id)).map((s) =>
    s.dest === 'gpu_memory_utilization' ? { ...s, default: release.defaultGpuMemoryUtilization } : s,
  );
}

export type ServeArgs = Record<string, unknown> & {
  model_tag: string | null;
  model: string;
  host: string | null;
  port: number;
};

export type ParseResult =
  | { kind: 'serve'; args: ServeArgs; nonDefault: Record<string, unknown> }
  | { kind: 'exit'; code: number; stdout: string; stderr: string };

interface Parser {
  release: Release;
  flags: FlagSpec[];
  byName: Map<string, FlagSpec>;
}

const parsers = new Map<ReleaseId, Parser>();
function parserFor(release: Release): Parser {
  let p = parsers.get(release.id);
  if (!p) {
    const flags = flagsOf(release);
    const byName = new Map<string, FlagSpec>();
    for (const spec of flags) {
      for (const n of spec.names) byName.set(n, spec);
      if (spec.kind === 'bool_opt') byName.set(`--no-${spec.names[spec.names.length - 1]!.slice(2)}`, spec);
    }
    parsers.set(release.id, (p = { release, flags, byName }));
  }
  return p;
}

class ArgError extends Error {
  constructor(
    readonly prog: string,
    readonly usage: string,
    message: string,
  ) {
    super(message);
  }
}

/** vLLM's human_readable_int: 25.6k = 25600 (decimal), 1K = 1024 (binary). */
export function parseHumanInt(value: string): number | null {
  const m = /^(\d+(?:\.\d+)?)([kmgtKMGT]?)$/.exec(value.trim());
  if (!m) return /^-?\d+$/.test(value.trim()) ? Number(value) : null;
  const num = Number(m[1]);
  const suffix = m[2] ?? '';
  if (suffix === '') return Number.isInteger(num) ? num : null;
  const power = 'kmgt'.indexOf(suffix.toLowerCase()) + 1;
  const base = suffix === suffix.toUpperCase() ? 1024 : 1000;
  // Binary suffixes only take integers in vLLM.
  if (base === 1024 && !Number.isInteger(num)) return null;
  return Math.round(num * base ** power);
}

function pyQuote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function convert(spec: FlagSpec, raw: string): unknown {
  const bad = (typeName: string): never => {
    throw new ArgError('vllm serve', SERVE_USAGE, `argument ${spec.names.join('/')}: invalid ${typeName} value: ${pyQuote(raw)}`);
  };
  let value: unknown;
  switch (spec.kind) {
    case 'int':
      if (!/^\s*[-+]?\d+\s*$/.test(raw)) bad('int');
      value = Number.parseInt(raw, 10);
      break;
    case 'float': {
      const n = Number(raw);
      if (raw.trim() === '' || Number.isNaN(n)) bad('float');
      value = n;
      break;
    }
    case 'human_int': {
      const n = parseHumanInt(raw);
      if (n === null) bad('human_readable_int');
      value = n;
      break;
    }
    case 'json':
      try {
        value = JSON.parse(raw);
      } catch {
        bad('loads');
      }
      break;
    default:
      value = raw;
  }
  if (spec.choices && !spec.choices.includes(String(value))) {
    // argparse prints repr(): ints bare, strings quoted.
    const rep = (s: string): string => (spec.kind === 'int' ? s : pyQuote(s));
    throw new ArgError(
      'vllm serve',
      SERVE_USAGE,
      `argument ${spec.names.join('/')}: invalid choice: ${rep(spec.kind === 'int' ? String(value) : raw)} (choose from ${spec.choices.map(rep).join(', ')})`,
    );
  }
  return value;
}

function looksLikeOption(tok: string): boolean {
  // argparse treats "-1" as a value when no option looks like a negative number.
  return tok.startsWith('-') && tok.length > 1 && !/^-\d+(\.\d+)?$/.test(tok);
}

export function defaults(release: Release = RELEASES[NEWEST_RELEASE]): ServeArgs {
  const out: Record<string, unknown> = { model_tag: null };
  for (const spec of parserFor(release).flags) out[spec.dest] = spec.default;
  return out as ServeArgs;
}

function parseServe(argv: string[], parser: Parser): { args: ServeArgs; nonDefault: Record<string, unknown> } {
  const { byName, flags } = parser;
  const args = defaults(parser.release);
  const seen: Record<string, unknown> = {};
  const unknown: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (tok === '--') {
      const rest = argv.slice(i + 1);
      if (positionals.length === 0 && rest.length) positionals.push(rest.shift()!);
      unknown.push(...rest);
      break;
    }
    if (!looksLikeOption(tok)) {
      // The first positional is model_tag; argparse reports later ones with the unknown flags, in order.
      if (positionals.length === 0) positionals.push(tok);
      else unknown.push(tok);
      continue;
    }
    const eq = tok.indexOf('=');
    let name = eq >= 0 ? tok.slice(0, eq) : tok;
    const inline = eq >= 0 ? tok.slice(eq + 1) : undefined;
    // vLLM's FlexibleArgumentParser accepts --max_model_len as --max-model-len.
    if (name.startsWith('--')) name = '--' + name.slice(2).replace(/_/g, '-');
    if (name === '-h' || name === '--help') {
      throw Object.assign(new ArgError('', '', ''), { help: true });
    }
    // argparse's allow_abbrev: a unique prefix stands for the whole flag.
    const spec = byName.get(name) ?? byName.get(parser.release.abbreviations[name] ?? '');
    if (!spec) {
      unknown.push(tok);
      continue;
    }
    const label = spec.names.join('/');
    if (spec.kind === 'flag' || spec.kind === 'bool_opt') {
      if (inline !== undefined) throw new ArgError('vllm serve', SERVE_USAGE, `argument ${label}: ignored explicit argument ${pyQuote(inline)}`);
      const v = !(spec.kind === 'bool_opt' && name.startsWith('--no-'));
      args[spec.dest] = v;
      seen[spec.dest] = v;
      continue;
    }
    const values: string[] = [];
    if (inline !== undefined) values.push(inline);
    else if (spec.nargs === '+') {
      while (i + 1 < argv.length && !looksLikeOption(argv[i + 1]!) && argv[i + 1] !== '--') values.push(argv[++i]!);
    } else if (i + 1 < argv.length && !looksLikeOption(argv[i + 1]!)) values.push(argv[++i]!);
    if (values.length === 0) {
      throw new ArgError(
        'vllm serve',
        SERVE_USAGE,
        `argument ${label}: expected ${spec.nargs === '+' ? 'at least one argument' : 'one argument'}`,
      );
    }
    const converted = values.map((v) => convert(spec, v));
    if (spec.dest === 'lora_modules') {
      // LoRAParserAction runs as the flag is parsed: its parser.error comes first.
      const parsed = parseLoraModules(converted as string[]);
      if ('error' in parsed) throw new ArgError('vllm serve', SERVE_USAGE, parsed.error);
    }
    const v = spec.nargs === '+' ? converted : converted[0];
    args[spec.dest] = v;
    seen[spec.dest] = v;
  }
  if (positionals.length > 0) args.model_tag = positionals[0]!;
  if (unknown.length > 0) {
    throw new ArgError('vllm', topUsage(parser.release), `unrecognized arguments: ${unknown.join(' ')}`);
  }
  // The positional model_tag overrides --model, as in vLLM.
  if (args.model_tag !== null) args.model = args.model_tag;
  const nonDefault: Record<string, unknown> = {};
  if (args.model_tag !== null) nonDefault.model_tag = args.model_tag;
  for (const spec of flags) {
    if (spec.dest in seen || (spec.dest === 'model' && args.model_tag !== null)) {
      const v = args[spec.dest];
      if (JSON.stringify(v) !== JSON.stringify(spec.default)) nonDefault[spec.dest] = v;
    }
  }
  return { args, nonDefault };
}

function serveHelp(flags: readonly FlagSpec[]): string {
  const lines = [SERVE_USAGE, '', 'Launch a local OpenAI-compatible API server to serve LLM', 'completions via HTTP.', '', 'positional arguments:', '  model_tag             The model tag to serve (optional if specified in config)', '', 'options:', '  -h, --help            show this help message and exit'];
  for (const spec of flags) {
    const names = spec.kind === 'bool_opt' ? [...spec.names, `--no-${spec.names[spec.names.length - 1]!.slice(2)}`] : spec.names;
    const meta = spec.kind === 'flag' || spec.kind === 'bool_opt' ? '' : ` ${spec.dest.toUpperCase()}${spec.nargs === '+' ? ` [${spec.dest.toUpperCase()} ...]` : ''}`;
    lines.push(`  ${names.join(', ')}${meta}`);
  }
  return lines.join('\n') + '\n';
}

/** Parse `vllm …` as the given release's parser would (default: the newest release). */
export function parseArgv(argv: string[], release: Release = RELEASES[NEWEST_RELEASE]): ParseResult {
  const parser = parserFor(release);
  const fail = (e: ArgError): ParseResult => ({
    kind: 'exit',
    code: 2,
    stdout: '',
    stderr: `${e.usage}\n${e.prog}: error: ${e.message}\n`,
  });
  const first = argv[0];
  if (first === undefined || first === '-h' || first === '--help') {
    return { kind: 'exit', code: 0, stdout: `${topUsage(release)}\n\nvLLM CLI\n\npositional arguments:\n  {${release.subcommands.join(',')}}\n`, stderr: '' };
  }
  if (first === '-v' || first === '--version') return { kind: 'exit', code: 0, stdout: `${release.version}\n`, stderr: '' };
  if (first.startsWith('-')) {
    return fail(new ArgError('vllm', topUsage(release), `unrecognized arguments: ${argv.join(' ')}`));
  }
  if (!release.subcommands.includes(first)) {
    return fail(
      new ArgError('vllm', topUsage(release), `argument subparser: invalid choice: ${pyQuote(first)} (choose from ${release.subcommands.map(pyQuote).join(', ')})`),
    );
  }
  if (first !== 'serve') {
    return { kind: 'exit', code: 2, stdout: '', stderr: `vllm ${first}: not available in this simulator (only \`vllm serve\` is)\n` };
  }
  try {
    return { kind: 'serve', ...parseServe(argv.slice(1), parser) };
  } catch (e) {
    if (e instanceof ArgError) {
      if ((e as ArgError & { help?: boolean }).help) return { kind: 'exit', code: 0, stdout: serveHelp(parser.flags), stderr: '' };
      return fail(e);
    }
    throw e;
  }
}
