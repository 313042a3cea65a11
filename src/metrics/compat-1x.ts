// NIM 1.x metric names (`NIM_METRICS_COMPAT=1x`). NIM 1.x served vLLM's metrics
// without the `vllm:` prefix (NIM LLM 1.x observability page: num_requests_running,
// gpu_cache_usage_perc, time_to_first_token_seconds, request_success_total, …), and
// Datadog's, AppDynamics', Run:ai's and Dynatrace's NIM integrations still query
// those names. This module derives them from the engine's current `vllm:` families;
// the mapping is a table so docs/metrics.md can list it row by row.
import { declaredFamilies } from './exposition.js';

/** One 1.x family and where its samples come from. */
export interface CompatFamily {
  /** The 1.x name (a counter's name includes `_total`, as 1.x exposed it). */
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  /** `vllm:` families to read, first present wins (older names first where vLLM renamed one). */
  from: readonly string[];
  /** Keep only samples whose `finished_reason` is one of these (request outcome counters). */
  finishedReasons?: readonly string[];
}

/**
 * The mapping. Sources: vLLM v0.11 `vllm/v1/metrics/loggers.py` and v0.31's
 * (gpu_cache_usage_perc → kv_cache_usage_perc in 0.10; time_per_output_token_seconds
 * → inter_token_latency_seconds, removed in 0.12 by vLLM PR #32661); finished_reason
 * values from `vllm/v1/engine/__init__.py` FinishReason (stop, length, abort, error).
 */
export const COMPAT_1X: readonly CompatFamily[] = [
  { name: 'num_requests_running', type: 'gauge', help: 'Number of requests currently running on the GPU.', from: ['vllm:num_requests_running'] },
  { name: 'num_requests_waiting', type: 'gauge', help: 'Number of requests waiting to be processed.', from: ['vllm:num_requests_waiting'] },
  { name: 'gpu_cache_usage_perc', type: 'gauge', help: 'GPU KV-cache usage. 1 means 100 percent usage.', from: ['vllm:gpu_cache_usage_perc', 'vllm:kv_cache_usage_perc'] },
  { name: 'prompt_tokens_total', type: 'counter', help: 'Number of prefill tokens processed.', from: ['vllm:prompt_tokens_total'] },
  { name: 'generation_tokens_total', type: 'counter', help: 'Number of generation tokens processed.', from: ['vllm:generation_tokens_total'] },
  { name: 'time_to_first_token_seconds', type: 'histogram', help: 'Histogram of time to first token in seconds.', from: ['vllm:time_to_first_token_seconds'] },
  {
    name: 'time_per_output_token_seconds',
    type: 'histogram',
    help: 'Histogram of time per output token in seconds.',
    from: ['vllm:time_per_output_token_seconds', 'vllm:inter_token_latency_seconds'],
  },
  { name: 'e2e_request_latency_seconds', type: 'histogram', help: 'Histogram of end to end request latency in seconds.', from: ['vllm:e2e_request_latency_seconds'] },
  { name: 'request_prompt_tokens', type: 'histogram', help: 'Number of prefill tokens processed per request.', from: ['vllm:request_prompt_tokens'] },
  { name: 'request_generation_tokens', type: 'histogram', help: 'Number of generation tokens processed per request.', from: ['vllm:request_generation_tokens'] },
  { name: 'request_finish_total', type: 'counter', help: 'Count of finished requests, by finished_reason.', from: ['vllm:request_success_total'] },
  {
    name: 'request_success_total',
    type: 'counter',
    help: 'Count of successfully processed requests (finished_reason stop or length).',
    from: ['vllm:request_success_total'],
    finishedReasons: ['stop', 'length'],
  },
  {
    name: 'request_failure_total',
    type: 'counter',
    help: 'Count of failed requests (finished_reason abort or error).',
    from: ['vllm:request_success_total'],
    finishedReasons: ['abort', 'error'],
  },
];

const SUFFIXES: Record<CompatFamily['type'], readonly string[]> = {
  gauge: [''],
  counter: [''],
  histogram: ['_bucket', '_sum', '_count'],
};

/** The base of a family name: counters are declared with `_total`, their samples too. */
function sampleNames(family: string, type: CompatFamily['type']): string[] {
  return SUFFIXES[type].map((s) => family + s);
}

function finishedReason(line: string): string | undefined {
  return /[{,]finished_reason="([^"]*)"/.exec(line)?.[1];
}

/**
 * Derive the 1.x families from an engine exposition (Prometheus text format).
 * Returns exposition text (possibly empty): for each row of {@link COMPAT_1X}
 * whose source the engine has, `# HELP`, `# TYPE` and the source's samples
 * renamed, labels unchanged. Rows without a source in `engineText` are omitted.
 */
export function deriveCompat1x(engineText: string, table: readonly CompatFamily[] = COMPAT_1X): string {
  if (engineText === '') return '';
  const declared = declaredFamilies(engineText);
  const lines = engineText.split('\n');
  const out: string[] = [];
  for (const fam of table) {
    const source = fam.from.find((f) => declared.has(f));
    if (source === undefined) continue;
    const names = new Map(sampleNames(source, fam.type).map((n, i) => [n, sampleNames(fam.name, fam.type)[i]!]));
    const samples: string[] = [];
    for (const line of lines) {
      if (line === '' || line.startsWith('#')) continue;
      const name = /^[^\s{]+/.exec(line)?.[0] ?? '';
      const renamed = names.get(name);
      if (renamed === undefined) continue;
      if (fam.finishedReasons !== undefined && !fam.finishedReasons.includes(finishedReason(line) ?? '')) continue;
      samples.push(renamed + line.slice(name.length));
    }
    out.push(`# HELP ${fam.name} ${fam.help}`, `# TYPE ${fam.name} ${fam.type}`, ...samples);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
