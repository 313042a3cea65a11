// NIM_* variables the supervisor does not read: a misspelt one (SEVER for
// SERVER) would otherwise be ignored without a word. Each gets one warning, with the
// nearest known name when one is close, or what to use instead when it is a
// NIM variable this supervisor does not implement.
import { knownNames } from './variables.js';

/**
 * NIM variables (1.x or 2.x) that this supervisor does not read, with what to
 * do instead. Sources: NIM LLM 1.x configuration pages and 2.x environment
 * variable reference (see /work/shared/reference/nim-parity.md, section A).
 * A name here must not also be in the table (test/config-table.test.ts).
 */
export const NOT_SUPPORTED: Readonly<Record<string, string>> = {
  NIM_TAGS_SELECTOR: 'select a profile with NIM_MODEL_PROFILE (an id, id prefix or name)',
  NIM_MANIFEST_PROFILE: 'select a profile with NIM_MODEL_PROFILE',
  NIM_MANIFEST_ALLOW_UNSAFE: 'any profile of the manifest can be forced with NIM_MODEL_PROFILE',
  NIM_ENGINE_ARGS_JSON: 'put engine flags in NIM_PASSTHROUGH_ARGS or on the command line (serve --flag …)',
  NIM_USE_SGLANG: 'this supervisor runs vLLM only',
  NIM_USE_TRTLLM_LEGACY_BACKEND: 'this supervisor runs vLLM only',
  NIM_LOW_MEMORY_MODE: 'lower --gpu-memory-utilization or NIM_MAX_MODEL_LEN instead',
  NIM_ENABLE_KV_CACHE_HOST_OFFLOAD: 'a TensorRT-LLM setting; this supervisor runs vLLM only',
  NIM_KV_CACHE_HOST_MEM_FRACTION: 'a TensorRT-LLM setting; this supervisor runs vLLM only',
  NIM_TOKENIZER_MODE: 'pass --tokenizer-mode in NIM_PASSTHROUGH_ARGS',
  NIM_SCHEDULER_POLICY: 'pass --scheduling-policy in NIM_PASSTHROUGH_ARGS',
  NIM_DRAFT_MODEL_PATH: 'pass --speculative-config in NIM_PASSTHROUGH_ARGS',
  NIM_HTTP_API_PORT: 'the public port is NIM_SERVER_PORT',
  NIM_TELEMETRY_MODE: 'this supervisor sends no telemetry',
};

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name closest to `name`, when close enough to be a typo (about one edit per five characters). */
export function nearestName(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(name.toUpperCase(), k);
    if (d < bestD || (d === bestD && best !== undefined && k < best)) {
      best = k;
      bestD = d;
    }
  }
  const core = name.replace(/^NIM_/i, '').length;
  return best !== undefined && best !== name && bestD <= Math.max(1, Math.min(3, Math.floor(core / 5))) ? best : undefined;
}

/** One warning for each NIM_* variable in `env` the supervisor does not read, in name order. */
export function unknownVariableWarnings(env: NodeJS.ProcessEnv): string[] {
  const known = knownNames();
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!/^NIM_/i.test(name) || known.has(name)) continue;
    const instead = NOT_SUPPORTED[name];
    if (instead !== undefined) {
      out.push(`${name} is a NIM variable nim-supervisor does not support; it is ignored (${instead})`);
      continue;
    }
    const near = nearestName(name, known);
    out.push(`${name} is not a variable nim-supervisor knows; it is ignored${near ? ` (did you mean ${near}?)` : ''}`);
  }
  return out;
}
