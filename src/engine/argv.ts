// The vLLM command line and environment for a selected profile. Pure: the same
// manifest, selection, configuration, host and port always give the same
// command. The arguments come in layers, lowest to highest (NIM 2.x's order):
//
//   supervisor   serve <model> --host H --port P             (never overridden)
//   manifest     --served-model-name, --max-model-len         (model.*)
//   profile      -tp/-pp (tags), --distributed-executor-backend ray (nodes),
//                --dtype/--quantization (precision), --gpu-memory-utilization (vLLM's
//                default, always passed for GPU profiles), --enable-lora/--max-lora-rank,
//                then the profile's engine_args
//   variable     NIM_* variables (NIM_SERVED_MODEL_NAME, NIM_MAX_NUM_SEQS …), and the
//                LoRA flags of the served adapters (NIM_PEFT_SOURCE: src/lora/flags.ts)
//   passthrough  NIM_PASSTHROUGH_ARGS
//   command line serve --flag …
//
// Each setting (a flag, whatever its spelling: --max_num_seqs=8, -tp 2,
// --no-enable-prefix-caching) appears once, with the value of the highest layer
// that set it, at the place its first layer put it; `provenance` records which
// layer set each argument and environment variable and what it overrode. See
// docs/configuration.md ("Engine settings").
import type { Config, Sourced } from '../config/env.js';
import { ConfigError } from '../errors.js';
import { precisionFlags } from '../manifest/precision.js';
import { profileNodes, type Manifest } from '../manifest/types.js';
import { LORA_FLAGS, loraEngineArgs, loraEngineEnv, type LoraLaunch } from '../lora/flags.js';
import { DEFAULT_GPU_MEMORY_UTILIZATION } from '../selection/evaluate.js';
import type { EngineCommand, Selection } from '../selection/types.js';
import { engineTracing } from '../tracing/settings.js';
import { flagValue, lastValue, parseFlagList } from './flag-list.js';

/** The engine always listens on loopback: only the supervisor's public port is exposed. */
export const ENGINE_HOST = '127.0.0.1';

/** vLLM's default KV-cache block size on CUDA (CacheConfig.block_size resolves to 16; vllm/config/cache.py). */
export const DEFAULT_BLOCK_SIZE = 16;

export type ArgvConfig = Pick<
  Config,
  'engineCommand' | 'servedModelName' | 'maxModelLen' | 'maxImagesPerPrompt' | 'passthroughArgs'
> &
  Partial<Pick<Config, 'engine' | 'cliArgs' | 'tensorParallelSize' | 'pipelineParallelSize' | 'tracing'>> & {
    /** An operator's GPU memory share set by other means than NIM_GPU_MEM_FRACTION (selection's GpuMemoryConfig hook). */
    gpuMemoryUtilization?: number | undefined;
  };

export interface EngineCommandInput {
  manifest: Manifest;
  selection: Selection;
  config: ArgvConfig;
  host: string;
  port: number;
  /** LoRA adapters to serve (NIM_PEFT_SOURCE); undefined = LoRA only as the profile's flag. */
  lora?: LoraLaunch | undefined;
}

/** Where a setting came from: the layer, and within it the tag, field or variable. */
export type Layer = 'supervisor' | 'manifest' | 'profile' | 'variable' | 'passthrough' | 'command line';
export interface Origin {
  layer: Layer;
  /** e.g. "tags.tp", "engine_args", "NIM_MAX_NUM_SEQS", "NIM_PASSTHROUGH_ARGS", "serve". */
  source: string;
}

export interface Overridden extends Origin {
  value: string | null;
}

/** One engine argument: its flag, its value (null for a bare boolean), who set it and whom it overrode. */
export interface ArgProvenance extends Origin {
  flag: string;
  value: string | null;
  overrode: Overridden[];
}

/** A flag a higher layer removed (a boolean variable set to 0). */
export interface RemovedArg extends Origin {
  flag: string;
  overrode: Overridden[];
}

export interface EnvProvenance extends Origin {
  name: string;
  value: string;
  overrode: Overridden[];
}

export interface Provenance {
  args: ArgProvenance[];
  removed: RemovedArg[];
  env: EnvProvenance[];
}

/** One layer's word on one setting: its tokens, or null to remove it. */
interface Setting {
  key: string;
  tokens: string[] | null;
  origin: Origin;
  /** Put the new value where this layer puts it (at the end so far), not where the overridden one was. */
  move?: boolean;
}

interface Entry {
  key: string;
  tokens: string[];
  origin: Origin;
  overrode: Overridden[];
}

/** The name clients use in `model`: command line, passthrough, NIM_SERVED_MODEL_NAME, the manifest (highest first). */
export function servedModelNameFor(
  manifest: Manifest,
  config: Pick<Config, 'servedModelName'> & Partial<Pick<Config, 'passthroughArgs' | 'cliArgs'>>,
): string {
  const flag = lastValue([...(config.passthroughArgs ?? []), ...(config.cliArgs ?? [])], '--served-model-name');
  const first = typeof flag === 'string' ? flag.split(' ')[0] : undefined;
  return first || (config.servedModelName ?? manifest.model.servedModelName);
}

/** vLLM's model argument: a Hugging Face repo id (hf:// stripped) or a local path, as given. */
export function engineModelArg(source: string): string {
  return source.startsWith('hf://') ? source.slice('hf://'.length) : source;
}

/** A JSON-object flag value (--limit-mm-per-prompt, --structured-outputs-config) with `patch` merged in. */
function mergeJson(value: string | null | undefined, patch: Record<string, unknown>): string {
  let base: Record<string, unknown> = {};
  if (value) {
    try {
      const parsed: unknown = JSON.parse(value);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) base = parsed as Record<string, unknown>;
    } catch {
      /* not JSON: replaced entirely */
    }
  }
  return JSON.stringify({ ...base, ...patch });
}

function fromFlags(args: readonly string[], where: string, origin: Origin): Setting[] {
  return parseFlagList(args, where).map((f) => ({ key: f.key, tokens: f.tokens, origin }));
}

/** Merge the settings in order: a later one replaces an earlier one in place (or removes it), remembering what it overrode. */
function merge(settings: readonly Setting[]): { entries: Entry[]; removed: RemovedArg[] } {
  const entries: Entry[] = [];
  const removed: RemovedArg[] = [];
  for (const s of settings) {
    const i = entries.findIndex((e) => e.key === s.key);
    const prev = i >= 0 ? entries[i]! : undefined;
    const overrode = prev ? [...prev.overrode, { ...prev.origin, value: flagValue(prev.tokens) }] : [];
    if (s.tokens === null) {
      if (prev) {
        entries.splice(i, 1);
        removed.push({ flag: s.key, ...s.origin, overrode });
      }
      continue;
    }
    const entry = { key: s.key, tokens: s.tokens, origin: s.origin, overrode };
    if (prev && !s.move) {
      entries[i] = entry;
    } else {
      if (prev) entries.splice(i, 1);
      entries.push(entry);
    }
  }
  return { entries, removed };
}

const v = (variable: string): Origin => ({ layer: 'variable', source: variable });

/** A boolean variable: 1 → the flag, 0 → remove it (or its `--no-` form when vLLM has one). */
function boolSetting(key: string, s: Sourced<boolean> | undefined, negatable = false): Setting[] {
  if (!s) return [];
  if (s.value) return [{ key, tokens: [key], origin: v(s.variable) }];
  return [{ key, tokens: negatable ? [`--no-${key.slice(2)}`] : null, origin: v(s.variable) }];
}

function valueSetting(key: string, s: Sourced<string | number> | undefined): Setting[] {
  return s ? [{ key, tokens: [key, String(s.value)], origin: v(s.variable) }] : [];
}

/** NIM's engine-setting variables as settings of the variable layer (docs/configuration.md, "Engine settings"). */
function variableSettings(config: ArgvConfig, below: Entry[]): Setting[] {
  const e = config.engine;
  const out: Setting[] = [];
  if (config.servedModelName !== undefined) {
    out.push({ key: '--served-model-name', tokens: ['--served-model-name', config.servedModelName], origin: v('NIM_SERVED_MODEL_NAME') });
  }
  if (config.tensorParallelSize !== undefined) {
    out.push({ key: '--tensor-parallel-size', tokens: ['--tensor-parallel-size', String(config.tensorParallelSize)], origin: v('NIM_TENSOR_PARALLEL_SIZE') });
  }
  if (config.pipelineParallelSize !== undefined) {
    out.push({ key: '--pipeline-parallel-size', tokens: ['--pipeline-parallel-size', String(config.pipelineParallelSize)], origin: v('NIM_PIPELINE_PARALLEL_SIZE') });
  }
  if (config.maxModelLen !== undefined) {
    out.push({ key: '--max-model-len', tokens: ['--max-model-len', String(config.maxModelLen)], origin: v('NIM_MAX_MODEL_LEN') });
  }
  const share = config.gpuMemoryUtilization !== undefined ? { value: config.gpuMemoryUtilization, variable: 'the operator override' } : e?.gpuMemoryUtilization;
  out.push(...valueSetting('--gpu-memory-utilization', share));
  if (!e) return out;
  out.push(...valueSetting('--max-num-seqs', e.maxNumSeqs));
  out.push(...boolSetting('--enable-prefix-caching', e.enableKvCacheReuse, true));
  out.push(...boolSetting('--enforce-eager', e.disableCudaGraph));
  out.push(...boolSetting('--enable-auto-tool-choice', e.enableAutoToolChoice));
  out.push(...valueSetting('--tool-call-parser', e.toolCallParser));
  out.push(...valueSetting('--tool-parser-plugin', e.toolParserPlugin));
  out.push(...valueSetting('--chat-template', e.chatTemplate));
  out.push(...boolSetting('--trust-remote-code', e.trustCustomCode));
  if (e.guidedDecodingBackend) {
    const key = '--structured-outputs-config';
    const current = below.find((x) => x.key === key);
    out.push({
      key,
      tokens: [key, mergeJson(current ? flagValue(current.tokens) : undefined, { backend: e.guidedDecodingBackend.value })],
      origin: v(e.guidedDecodingBackend.variable),
    });
  }
  // NIM_DISABLE_LOG_REQUESTS=1 is vLLM's default since 0.10.1 (request logging off); =0 turns it on.
  // (--disable-log-requests itself is deprecated in 0.11 and gone in 0.31.)
  if (e.disableLogRequests) out.push(...boolSetting('--enable-log-requests', { ...e.disableLogRequests, value: !e.disableLogRequests.value }));
  return out;
}

/** --limit-mm-per-prompt from NIM_MAX_IMAGES_PER_PROMPT / NIM_MAX_VIDEOS_PER_PROMPT, keeping the profile's other modalities. */
function multimodalSetting(manifest: Manifest, config: ArgvConfig, below: Entry[]): Setting[] {
  if (manifest.model.modality !== 'vlm') return [];
  const patch: Record<string, number> = {};
  const names: string[] = [];
  if (config.maxImagesPerPrompt !== undefined) {
    patch.image = config.maxImagesPerPrompt;
    names.push('NIM_MAX_IMAGES_PER_PROMPT');
  }
  const videos = config.engine?.maxVideosPerPrompt;
  if (videos) {
    patch.video = videos.value;
    names.push(videos.variable);
  }
  if (names.length === 0) return [];
  const key = '--limit-mm-per-prompt';
  const current = below.find((x) => x.key === key);
  return [{ key, tokens: [key, mergeJson(current ? flagValue(current.tokens) : undefined, patch)], origin: v(names.join(' + ')) }];
}

/** vLLM's human-readable ints (--max-model-len 32k); NaN when not one. */
function humanInt(value: string | null | undefined): number {
  const m = /^\s*(\d+)([kKmM]?)\s*$/.exec(value ?? '');
  if (!m) return Number.NaN;
  return Number(m[1]) * { '': 1, k: 1e3, K: 1024, m: 1e6, M: 1024 * 1024 }[m[2] as '' | 'k' | 'K' | 'm' | 'M'];
}

/**
 * NIM_NUM_KV_CACHE_SEQ_LENS (with NIM_RELAX_MEM_CONSTRAINTS): enough KV-cache
 * blocks for N sequences of the final --max-model-len, as NIM 1.x sized its
 * cache (→ --num-gpu-blocks-override).
 */
function kvCacheBlocksSetting(config: ArgvConfig, merged: Entry[]): Setting[] {
  const seqs = config.engine?.numKvCacheSeqLens;
  if (!seqs) return [];
  const valueOf = (key: string) => {
    const e = merged.find((x) => x.key === key);
    return e ? flagValue(e.tokens) : undefined;
  };
  const maxLen = humanInt(valueOf('--max-model-len'));
  if (!Number.isFinite(maxLen)) {
    throw new ConfigError(`${seqs.variable}=${seqs.value} needs the context length to size the KV cache, and none is set`, {
      hint: "set NIM_MAX_MODEL_LEN (or the manifest's max_model_len, or --max-model-len)",
    });
  }
  const block = humanInt(valueOf('--block-size'));
  const blockSize = Number.isFinite(block) && block > 0 ? block : DEFAULT_BLOCK_SIZE;
  const blocks = Math.ceil((seqs.value * maxLen) / blockSize);
  return [{ key: '--num-gpu-blocks-override', tokens: ['--num-gpu-blocks-override', String(blocks)], origin: v(seqs.variable) }];
}

/** NIM_ENABLE_OTEL: vLLM exports its own spans to the same collector (unless a flag above the profile passes the endpoint). */
function tracingFor(input: EngineCommandInput): { args: string[]; env: Record<string, string> } {
  const { config, selection } = input;
  return engineTracing(config.tracing, [...selection.profile.engineArgs, ...config.passthroughArgs, ...(config.cliArgs ?? [])]);
}

/** Served adapters (NIM_PEFT_SOURCE): their LoRA flags replace the profile's, and LoRA flags they do not use are removed. */
function loraSettings(lora: LoraLaunch | undefined): Setting[] {
  if (!lora) return [];
  const origin = v('NIM_PEFT_SOURCE');
  // Kept together, in src/lora/flags.ts's order: --lora-modules follows the limits it must fit (setLoraModules relies on it).
  const set = fromFlags(loraEngineArgs(lora), 'LoRA', origin).map((s) => ({ ...s, move: true }));
  const removed = LORA_FLAGS.filter((f) => !set.some((s) => s.key === f)).map((key) => ({ key, tokens: null, origin }));
  return [...set, ...removed];
}

/** The settings each layer contributes, lowest first (the variable layer's may depend on what is below it). */
function layeredSettings(input: EngineCommandInput, extraVariables: Setting[] = []): Setting[] {
  const { manifest, selection, config } = input;
  const profile = selection.profile;
  const m: Origin = { layer: 'manifest', source: 'model' };
  const p = (source: string): Origin => ({ layer: 'profile', source });
  const below: Setting[] = [
    { key: '--served-model-name', tokens: ['--served-model-name', manifest.model.servedModelName], origin: { ...m, source: 'model.served_model_name' } },
    { key: '--tensor-parallel-size', tokens: ['--tensor-parallel-size', String(profile.tags.tp)], origin: p('tags.tp') },
    { key: '--pipeline-parallel-size', tokens: ['--pipeline-parallel-size', String(profile.tags.pp)], origin: p('tags.pp') },
  ];
  // Multi-node: vLLM spreads tp × pp over the Ray cluster the leader formed (see docs/multi-node.md).
  if (profileNodes(profile.tags) > 1) {
    below.push({ key: '--distributed-executor-backend', tokens: ['--distributed-executor-backend', 'ray'], origin: p('tags.nodes') });
  }
  if (manifest.model.maxModelLen !== undefined) {
    below.push({ key: '--max-model-len', tokens: ['--max-model-len', String(manifest.model.maxModelLen)], origin: { ...m, source: 'model.max_model_len' } });
  }
  below.push(...fromFlags(precisionFlags(profile.tags.precision), 'precision', p('tags.precision')));
  // GPU profiles always pass the share selection checked free memory against (the highest layer's value, as
  // gpuMemoryUtilization() resolves it), never vLLM's own default, which moved from 0.90 to 0.92 (vLLM PR #38284).
  if (profile.tags.device !== 'cpu') {
    const key = '--gpu-memory-utilization';
    below.push({ key, tokens: [key, String(DEFAULT_GPU_MEMORY_UTILIZATION)], origin: { layer: 'supervisor', source: "vLLM's default, passed explicitly" } });
  }
  if (profile.tags.lora) {
    below.push({ key: '--enable-lora', tokens: ['--enable-lora'], origin: p('tags.feat_lora') });
    const rank = profile.displayTags.feat_lora_max_rank;
    if (rank !== undefined) below.push({ key: '--max-lora-rank', tokens: ['--max-lora-rank', rank], origin: p('tags.feat_lora_max_rank') });
  }
  below.push(...fromFlags(profile.engineArgs, `profile ${profile.name} engine_args`, p('engine_args')));
  const { entries: profileLayer } = merge(below);
  const variables = [
    ...variableSettings(config, profileLayer),
    ...multimodalSetting(manifest, config, profileLayer),
    ...loraSettings(input.lora),
    ...fromFlags(tracingFor(input).args, 'tracing', v('NIM_ENABLE_OTEL')),
    ...extraVariables,
  ];
  return [
    ...below,
    ...variables,
    ...fromFlags(config.passthroughArgs, 'NIM_PASSTHROUGH_ARGS', { layer: 'passthrough', source: 'NIM_PASSTHROUGH_ARGS' }),
    ...fromFlags(config.cliArgs ?? [], 'the command line', { layer: 'command line', source: 'serve' }),
  ];
}

export function buildEngineCommand(input: EngineCommandInput): EngineCommand {
  const { manifest, selection, config, host, port } = input;
  const profile = selection.profile;

  let { entries, removed } = merge(layeredSettings(input));
  const blocks = kvCacheBlocksSetting(config, entries);
  if (blocks.length > 0) ({ entries, removed } = merge(layeredSettings(input, blocks)));

  // vLLM refuses --enable-auto-tool-choice without a parser (a TypeError at start-up): say so before starting it.
  const auto = entries.find((e) => e.key === '--enable-auto-tool-choice');
  if (auto && flagValue(auto.tokens) !== 'false' && !entries.some((e) => e.key === '--tool-call-parser')) {
    throw new ConfigError(`--enable-auto-tool-choice (from ${auto.origin.source}) needs a tool call parser, and none is set`, {
      hint: 'set NIM_TOOL_CALL_PARSER (e.g. llama3_json, hermes, mistral) or pass --tool-call-parser',
    });
  }

  const model = engineModelArg(manifest.model.source);
  const args = ['serve', model, '--host', host, '--port', String(port), ...entries.flatMap((e) => e.tokens)];
  const sup = (source: string): Origin => ({ layer: 'supervisor', source });
  const argProvenance: ArgProvenance[] = [
    { flag: 'model', value: model, layer: 'manifest', source: 'model.source', overrode: [] },
    { flag: '--host', value: host, ...sup('engine on loopback'), overrode: [] },
    { flag: '--port', value: String(port), ...sup('a free loopback port'), overrode: [] },
    ...entries.map((e) => ({ flag: e.key, value: flagValue(e.tokens), ...e.origin, overrode: e.overrode })),
  ];

  // The environment the engine gets on top of the supervisor's own.
  const env: Record<string, string> = {};
  const envProvenance = new Map<string, EnvProvenance>();
  const setEnv = (name: string, value: string, origin: Origin): void => {
    const prev = envProvenance.get(name);
    env[name] = value;
    envProvenance.set(name, { name, value, ...origin, overrode: prev ? [...prev.overrode, { ...prev, value: prev.value }] : [] });
  };
  for (const [k, val] of Object.entries(tracingFor(input).env)) setEnv(k, val, v('NIM_ENABLE_OTEL'));
  for (const [k, val] of Object.entries(profile.engineEnv)) setEnv(k, val, { layer: 'profile', source: 'env' });
  if (input.lora) for (const [k, val] of Object.entries(loraEngineEnv(input.lora))) setEnv(k, val, v('NIM_PEFT_REFRESH_INTERVAL'));
  if (profile.tags.device !== 'cpu' && selection.cudaVisibleDevices !== undefined) {
    setEnv('CUDA_VISIBLE_DEVICES', selection.cudaVisibleDevices, sup('the GPUs selection chose'));
    // Index form only makes sense in nvidia-smi's (PCI bus) order; harmless with UUIDs.
    setEnv('CUDA_DEVICE_ORDER', 'PCI_BUS_ID', sup('GPU indices in nvidia-smi order'));
  }
  const level = config.engine?.logLevel;
  if (level) setEnv('VLLM_LOGGING_LEVEL', level.value, v(level.variable));

  const provenance: Provenance = {
    args: argProvenance,
    removed,
    env: [...envProvenance.values()].map((e) => ({ ...e, overrode: e.overrode.map(({ layer, source, value }) => ({ layer, source, value })) })),
  };
  return { command: config.engineCommand, args, env, provenance };
}

export const MASK = '***';

/** Environment variable names whose values are secrets. */
export function isSecretEnvName(name: string): boolean {
  return /(_KEY|_TOKEN|_SECRET)$/i.test(name) || /PASSWORD/i.test(name) || /^(API_KEY|TOKEN|SECRET)$/i.test(name);
}

const SAFE_TOKEN = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX shell quoting: bare when safe, else single quotes. */
export function shellQuote(token: string): string {
  if (token !== '' && SAFE_TOKEN.test(token)) return token;
  return `'${token.replace(/'/g, `'\\''`)}'`;
}

/** Flags whose values are secrets (vLLM accepts several keys after --api-key). */
const SECRET_FLAGS = ['--api-key'];

/** The argument list with secret values replaced by ***. */
export function maskArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const t = args[i]!;
    const flag = SECRET_FLAGS.find((f) => t === f || t.startsWith(`${f}=`));
    if (!flag) {
      out.push(t);
    } else if (t !== flag) {
      out.push(`${flag}=${MASK}`);
    } else {
      out.push(t);
      while (i + 1 < args.length && !args[i + 1]!.startsWith('-')) {
        out.push(MASK);
        i++;
      }
    }
  }
  return out;
}

/** The environment with secret values replaced by ***. */
export function maskEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, isSecretEnvName(k) ? MASK : v]));
}

/**
 * One shell-quoted line, `NAME=value … command args…`, for logs and
 * `select-profile`: secrets show as ***, everything else can be pasted into a shell.
 */
export function formatCommandLine(cmd: EngineCommand): string {
  // Sorted by UTF-16 code unit, not localeCompare: its first call loads ICU's collator (~10 ms of start-up).
  const env = Object.entries(cmd.env)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${isSecretEnvName(k) ? MASK : shellQuote(v)}`);
  const args = maskArgs(cmd.args).map((a) => (a === MASK || a.endsWith(`=${MASK}`) ? a : shellQuote(a)));
  return [...env, shellQuote(cmd.command), ...args].join(' ');
}
