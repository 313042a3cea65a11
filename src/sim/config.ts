// Everything the simulated server needs to know, derived once from vLLM's
// parsed command line and the simulator knobs.
import { createHash } from 'node:crypto';
import type { ServeArgs } from './args.js';
import type { Knobs } from './knobs.js';
import { loraConfig, parseLoraModules, type LoraModulePath, type LoraSimConfig } from './lora.js';
import { mmLimits, type MmLimits } from './multimodal.js';
import { RELEASES, type Release } from './release.js';

export interface SimConfig {
  /** The vLLM release behaved as (VLLM_SIM_VERSION). */
  release: Release;
  /** release.version, e.g. "0.31.0". */
  version: string;
  /** The --model value (HF id or path): the models' `root`. */
  model: string;
  /** config.json's architecture when the model's files were read (src/sim/model-files.ts). */
  architecture?: string | undefined;
  servedNames: string[];
  /** --lora-modules (loaded at start-up, before the server listens). */
  loras: LoraModulePath[];
  /** LoRAConfig (--enable-lora and friends, VLLM_ALLOW_RUNTIME_LORA_UPDATING). */
  lora: LoraSimConfig;
  /** LoRAConfig's ValueError at start-up, if any (vLLM exits 1 with it). */
  loraError: string | null;
  maxModelLen: number;
  apiKeys: string[];
  enableAutoToolChoice: boolean;
  toolCallParser: string | null;
  responseRole: string;
  enableRequestIdHeaders: boolean;
  enableForceIncludeUsage: boolean;
  enablePromptTokensDetails: boolean;
  enableServerLoadTracking: boolean;
  disableFastapiDocs: boolean;
  /** --enable-tokenizer-info-endpoint: GET /tokenizer_info. */
  enableTokenizerInfoEndpoint: boolean;
  /** --chat-template as given (reported by /tokenizer_info). */
  chatTemplate: string | null;
  accessLog: boolean;
  logRequests: boolean;
  logStats: boolean;
  mmLimits: MmLimits;
  rootPath: string;
  mode: 'random' | 'echo';
  imageTokens: number;
  ttftMs: number;
  tokenMs: number;
  maxConcurrency: number | null;
  blockSize: number;
  kvTokens: number;
  prefixCaching: boolean;
  gpuMemoryUtilization: number;
  tensorParallelSize: number;
  cacheDtype: string;
  /** --swap-space (0.11 only; null in releases without it). */
  swapSpaceGiB: number | null;
  /** --device-ids (0.31), as given. */
  deviceIds: string | null;
  /** system_fingerprint of OpenAI responses; null where the release sends null. */
  systemFingerprint: string | null;
  keepAliveMs: number;
}

/** --lora-modules as LoRAParserAction parsed them (argv parsing already refused bad items). */
function parseLoras(entries: unknown): LoraModulePath[] {
  if (!Array.isArray(entries)) return [];
  const parsed = parseLoraModules(entries.filter((e): e is string => typeof e === 'string'));
  return 'modules' in parsed ? parsed.modules : [];
}

/**
 * vLLM's build_system_fingerprint in mode full: `vllm-<ver>[-tpN][-ppN][-dpN]-<hash8>`
 * (serve/utils/fingerprint.py@M). The hash stands in for vllm_config.compute_hash():
 * stable for one configuration, different for another.
 */
export function systemFingerprint(release: Release, args: ServeArgs): string | null {
  if (!release.systemFingerprint) return null;
  const mode = (args.fingerprint_mode as string | undefined) ?? 'full';
  if (mode === 'none') return null;
  if (mode === 'custom') return (args.fingerprint_value as string | null) ?? null;
  const key = JSON.stringify([args.model, args.dtype, args.quantization, args.max_model_len, args.tensor_parallel_size, args.pipeline_parallel_size, args.kv_cache_dtype]);
  const hash8 = createHash('sha256').update(key).digest('hex').slice(0, 8);
  const parts = [`vllm-${release.version}`];
  if (mode === 'full') {
    for (const [dest, tag] of [['tensor_parallel_size', 'tp'], ['pipeline_parallel_size', 'pp'], ['data_parallel_size', 'dp']] as const) {
      const n = args[dest] as number;
      if (n > 1) parts.push(`${tag}${n}`);
    }
  }
  parts.push(hash8);
  return parts.join('-');
}

export function buildConfig(args: ServeArgs, knobs: Knobs, release: Release = RELEASES[knobs.VLLM_SIM_VERSION as keyof typeof RELEASES]): SimConfig {
  const served = (args.served_model_name as string[] | null) ?? [args.model];
  const gmu = args.gpu_memory_utilization as number;
  const tp = (args.tensor_parallel_size as number) * (args.pipeline_parallel_size as number);
  const maxModelLen = (args.max_model_len as number | null) ?? knobs.VLLM_SIM_MAX_MODEL_LEN ?? 4096;
  const apiKeys = (args.api_key as string[] | null) ?? (knobs.VLLM_API_KEY ? [knobs.VLLM_API_KEY] : []);
  // --max-num-seqs bounds the batch; the knob overrides it; neither means no bound.
  const maxConcurrency = knobs.VLLM_SIM_MAX_CONCURRENCY ?? (args.max_num_seqs as number | null) ?? null;
  const loras = parseLoras(args.lora_modules);
  const lora = loraConfig(args, knobs.VLLM_ALLOW_RUNTIME_LORA_UPDATING === true, loras);
  return {
    release,
    version: release.version,
    model: args.model,
    servedNames: served,
    loras,
    lora: 'error' in lora ? { enabled: false, maxLoraRank: 16, maxLoras: 1, maxCpuLoras: 1, modules: loras, runtimeUpdates: false } : lora,
    loraError: 'error' in lora ? lora.error : null,
    maxModelLen,
    apiKeys,
    enableAutoToolChoice: Boolean(args.enable_auto_tool_choice),
    toolCallParser: (args.tool_call_parser as string | null) ?? null,
    responseRole: args.response_role as string,
    enableRequestIdHeaders: Boolean(args.enable_request_id_headers),
    enableForceIncludeUsage: Boolean(args.enable_force_include_usage),
    enablePromptTokensDetails: Boolean(args.enable_prompt_tokens_details),
    enableServerLoadTracking: Boolean(args.enable_server_load_tracking),
    disableFastapiDocs: Boolean(args.disable_fastapi_docs),
    enableTokenizerInfoEndpoint: Boolean(args.enable_tokenizer_info_endpoint),
    chatTemplate: (args.chat_template as string | null) ?? null,
    accessLog: !args.disable_uvicorn_access_log && ['debug', 'info', 'trace'].includes(args.uvicorn_log_level as string),
    logRequests: Boolean(args.enable_log_requests),
    logStats: !args.disable_log_stats,
    mmLimits: mmLimits(args.limit_mm_per_prompt),
    rootPath: (args.root_path as string | null) ?? '',
    mode: knobs.VLLM_SIM_MODE as 'random' | 'echo',
    imageTokens: knobs.VLLM_SIM_IMAGE_TOKENS as number,
    ttftMs: knobs.VLLM_SIM_TTFT_MS as number,
    tokenMs: knobs.VLLM_SIM_TOKEN_MS as number,
    maxConcurrency,
    blockSize: (args.block_size as number | null) ?? 16,
    // A pretend 80 GiB card: KV room grows with memory share and parallelism.
    kvTokens: Math.max(maxModelLen, Math.round(560_000 * gmu * Math.max(1, tp))),
    prefixCaching: args.enable_prefix_caching !== false,
    gpuMemoryUtilization: gmu,
    tensorParallelSize: tp,
    cacheDtype: args.kv_cache_dtype as string,
    swapSpaceGiB: (args.swap_space as number | undefined) ?? null,
    deviceIds: (args.device_ids as string | null | undefined) ?? null,
    systemFingerprint: systemFingerprint(release, args),
    keepAliveMs: Math.round((knobs.VLLM_HTTP_TIMEOUT_KEEP_ALIVE as number) * 1000),
  };
}
