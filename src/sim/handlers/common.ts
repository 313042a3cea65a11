// Pieces shared by the chat and completions handlers: model lookup, sampling
// parameters, request logging and the seed for deterministic output.
import { badRequest, modelNotFound } from '../errors.js';
import { hash32 } from '../generator.js';
import type { Ctx, SimState } from '../http.js';
import { pyRepr } from '../pyrepr.js';
import type { SimConfig } from '../config.js';
import { Checker, isObject, type Json, type ValidatorStyle } from '../validate.js';

/** The served name a request addresses; a missing model means the first served name. */
export function resolveModel(state: SimState, body: Json): string {
  const m = body.model;
  if (m === undefined || m === null || m === '') return state.config.servedNames[0]!;
  if (typeof m !== 'string') return state.config.servedNames[0]!;
  if (state.config.servedNames.includes(m) || state.lora.has(m)) return m;
  throw modelNotFound(m);
}

export interface Sampling {
  n: number;
  requestedMaxTokens: number | null;
  minTokens: number;
  ignoreEos: boolean;
  stop: string[];
  includeStopStr: boolean;
  seed: number | null;
  temperature: number | null;
}

/** Type checks shared by both APIs (FastAPI-style 400 on failure). */
export function checkCommon(c: Checker): void {
  c.str('model');
  c.bool('stream');
  c.bool('echo');
  c.bool('ignore_eos');
  c.bool('include_stop_str_in_output');
  c.int('max_tokens');
  c.int('max_completion_tokens');
  c.int('min_tokens');
  c.int('n');
  c.int('seed');
  c.num('temperature');
  c.num('top_p');
  c.obj('stream_options');
  const stop = c.body.stop;
  if (stop !== undefined && stop !== null && typeof stop !== 'string' && !(Array.isArray(stop) && stop.every((s) => typeof s === 'string'))) {
    c.custom('string_type', ['stop', 'str'], 'Input should be a valid string', stop);
  }
  // `data.get("stream_options") and not data.get("stream")`: an empty object is falsy in Python.
  if (pyTruthy(c.body.stream_options) && !pyTruthy(c.body.stream)) {
    c.modelError('Stream options can only be defined when `stream=True`.', 'stream_options');
  }
}

/** Python's truthiness of a JSON value. */
export function pyTruthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** The validator style of the simulated release. */
export function validatorStyle(config: SimConfig): ValidatorStyle {
  return config.release.responseShape === '0.31' ? 'vllm-validation-error' : 'value-error';
}

export function readSampling(body: Json): Sampling {
  const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
  const requested = num(body.max_completion_tokens) ?? num(body.max_tokens);
  const n = num(body.n) ?? 1;
  if (n < 1) throw badRequest(`n must be at least 1, got ${n}.`);
  if (requested !== null && requested < 1) throw badRequest(`max_tokens must be at least 1, got ${requested}.`);
  const stop = typeof body.stop === 'string' ? [body.stop] : Array.isArray(body.stop) ? (body.stop as string[]) : [];
  return {
    n,
    requestedMaxTokens: requested,
    minTokens: num(body.min_tokens) ?? 0,
    ignoreEos: body.ignore_eos === true,
    stop,
    includeStopStr: body.include_stop_str_in_output === true,
    seed: num(body.seed),
    temperature: num(body.temperature),
  };
}

/** Seed for choice `index`: same seed + prompt gives the same text; greedy (temperature 0) ignores the index. */
export function seedFor(s: Sampling, prompt: string, index: number): number {
  const idx = s.temperature === 0 ? 0 : index;
  return hash32(s.seed === null ? '' : String(s.seed), prompt, String(idx));
}

function pyFloat(v: number): string {
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

/** --enable-log-requests: vLLM's "Received request ..." line. */
export function logReceived(ctx: Ctx, id: string, prompt: string, s: Sampling, maxTokens: number): void {
  const { config, logger } = ctx.state;
  if (!config.logRequests) return;
  const params =
    `SamplingParams(n=${s.n}, presence_penalty=0.0, frequency_penalty=0.0, repetition_penalty=1.0, ` +
    `temperature=${pyFloat(s.temperature ?? 1)}, top_p=1.0, top_k=0, min_p=0.0, seed=${s.seed ?? 'None'}, ` +
    `stop=${pyRepr(s.stop)}, stop_token_ids=[], bad_words=[], include_stop_str_in_output=${s.includeStopStr ? 'True' : 'False'}, ` +
    `ignore_eos=${s.ignoreEos ? 'True' : 'False'}, max_tokens=${maxTokens}, min_tokens=${s.minTokens}, logprobs=None, ` +
    `prompt_logprobs=None, skip_special_tokens=True, spaces_between_special_tokens=True, truncate_prompt_tokens=None, ` +
    `structured_outputs=None, extra_args=None)`;
  logger.log(
    'INFO',
    'logger.py:40',
    `Received request ${id}: prompt: ${pyRepr(prompt)}, params: ${params}, prompt_token_ids: None, prompt_embeds shape: None, lora_request: None.`,
  );
  logger.log('INFO', 'async_llm.py:321', `Added request ${id}.`);
}

/** The non-streaming `usage` object (vLLM's field order; 0.31's UsageInfo adds completion_tokens_details, engine/protocol.py@M:124-129). */
export function usageBody(promptTokens: number, completionTokens: number, promptTokensDetails: boolean, shape: '0.11' | '0.31' = '0.11'): Json {
  return {
    prompt_tokens: promptTokens,
    total_tokens: promptTokens + completionTokens,
    completion_tokens: completionTokens,
    prompt_tokens_details: promptTokensDetails ? { cached_tokens: 0 } : null,
    ...(shape === '0.31' ? { completion_tokens_details: null } : {}),
  };
}

/**
 * Whether a stream carries a usage chunk, and usage on every chunk.
 * 0.11: stream_options present and include_usage not false (default true);
 * --enable-force-include-usage forces it only when stream_options is present.
 * 0.31: should_include_usage (serve/utils/api_utils.py@M:275-287): the flag
 * forces both; otherwise include_usage (default false) and continuous_usage_stats.
 */
export function streamUsage(config: SimConfig, streamOptions: unknown): { include: boolean; continuous: boolean } {
  const so = isObject(streamOptions) ? streamOptions : null;
  if (config.release.forceIncludeUsageAlways) {
    if (config.enableForceIncludeUsage) return { include: true, continuous: true };
    const include = so !== null && so.include_usage === true;
    return { include, continuous: include && so?.continuous_usage_stats === true };
  }
  const include = so !== null && ((so.include_usage ?? config.release.includeUsageDefault) !== false || config.enableForceIncludeUsage);
  return { include, continuous: include && so?.continuous_usage_stats === true };
}
