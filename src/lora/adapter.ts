// What makes a directory under NIM_PEFT_SOURCE a LoRA adapter vLLM will load,
// decided without I/O: the caller hands in what it read. Each rule mirrors a
// check vLLM makes when it loads an adapter, so an adapter that fails here is
// skipped with one warning instead of failing the engine's start-up:
//   - adapter_config.json with r, lora_alpha and target_modules
//     (vllm/lora/peft_helper.py PEFTHelper.from_dict, v0.11);
//   - no DoRA, no modules_to_save, bias "none" (PEFTHelper._validate_features,
//     validate_legal);
//   - r within --max-lora-rank, which vLLM only accepts as one of
//     1, 8, 16, 32, 64, 128, 256, 320, 512 (vllm/config/lora.py MaxLoRARanks);
//   - a weights file adapter_model.safetensors, .bin or .pt
//     (vllm/lora/models.py LoRAModel.from_local_checkpoint: "doesn't contain tensors").
// The base-model check is NIM's rule ("the NIM must match the base model of the LoRAs").

/** The ranks vLLM's --max-lora-rank accepts (vllm/config/lora.py, MaxLoRARanks, v0.11 to v0.31). */
export const VLLM_LORA_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512] as const;

/** Weight files vLLM looks for, in its order of preference. */
export const WEIGHT_FILES = ['adapter_model.safetensors', 'adapter_model.bin', 'adapter_model.pt'] as const;

export const ADAPTER_CONFIG = 'adapter_config.json';

/** One adapter that passed every check. */
export interface LoraAdapter {
  /** The directory name: the `model` clients send, and the id in /v1/models. */
  name: string;
  /** Absolute path of the adapter directory (vLLM's lora_path). */
  path: string;
  /** The LoRA rank `r`. */
  rank: number;
  /** base_model_name_or_path from adapter_config.json, when given. */
  baseModel: string | undefined;
  /** The weights file vLLM will read (a name from WEIGHT_FILES). */
  weightsFile: string;
  /** Sizes and modification times of the adapter's files: changes when the adapter is rewritten. */
  fingerprint: string;
}

export type AdapterCheck = { ok: true; adapter: LoraAdapter } | { ok: false; reason: string };

/** What the scanner read from one adapter directory. */
export interface AdapterFiles {
  name: string;
  path: string;
  /** adapter_config.json's text, or undefined when the file is missing. */
  configText: string | undefined;
  /** The first weights file present, with its size; undefined when none is. */
  weights: { file: string; size: number } | undefined;
  /** A problem found in the weights file itself (e.g. a truncated safetensors file). */
  weightsProblem: string | undefined;
  fingerprint: string;
}

/** The names the served model goes by, for the base-model check and name collisions. */
export interface BaseModelNames {
  /** The served model name (NIM_SERVED_MODEL_NAME or the manifest's). */
  servedModelName: string;
  /** The manifest's model name, e.g. google/gemma-3-27b-it. */
  modelName: string;
  /** The model source: a Hugging Face repo id (hf:// stripped) or a local path. */
  source: string;
}

/** The last path segment, lower-cased, without trailing slashes: "Google/Gemma-3-27B-it/" → "gemma-3-27b-it". */
function lastSegment(s: string): string {
  const parts = s.trim().replace(/^hf:\/\//, '').replace(/[/\\]+$/, '').split(/[/\\]/);
  return (parts[parts.length - 1] ?? '').toLowerCase();
}

/**
 * Whether an adapter trained on `baseModel` fits the served model. Names are
 * compared on their last path segment, ignoring case, so a Hugging Face id
 * (`google/gemma-3-27b-it`), a local copy (`/models/gemma-3-27b-it`) and the
 * served name all match. An adapter that names no base model is accepted.
 */
export function baseModelMatches(baseModel: string | undefined, names: BaseModelNames): boolean {
  if (baseModel === undefined || baseModel.trim() === '') return true;
  const want = lastSegment(baseModel);
  return [names.source, names.modelName, names.servedModelName].some((n) => lastSegment(n) === want);
}

/** The smallest rank vLLM's --max-lora-rank accepts that holds `rank` (undefined above 512). */
export function vllmRankFor(rank: number): number | undefined {
  return VLLM_LORA_RANKS.find((r) => r >= rank);
}

function isStringList(v: unknown): boolean {
  return typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
}

/**
 * Validate one adapter directory's contents. Returns the adapter, or the reason
 * it cannot be served (one sentence, naming the file or field).
 */
export function checkAdapter(files: AdapterFiles, names: BaseModelNames): AdapterCheck {
  const fail = (reason: string): AdapterCheck => ({ ok: false, reason });
  if (files.name === names.servedModelName) {
    return fail(`its name is the base model's served name "${names.servedModelName}"; rename the directory`);
  }
  if (files.configText === undefined) return fail(`no ${ADAPTER_CONFIG} in ${files.path}`);
  let config: unknown;
  try {
    config = JSON.parse(files.configText);
  } catch (err) {
    return fail(`${ADAPTER_CONFIG} is not valid JSON (${(err as Error).message})`);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return fail(`${ADAPTER_CONFIG} is not a JSON object`);
  const c = config as Record<string, unknown>;
  if (c.peft_type !== undefined && c.peft_type !== null && String(c.peft_type).toUpperCase() !== 'LORA') {
    return fail(`${ADAPTER_CONFIG} has peft_type ${JSON.stringify(c.peft_type)}: only LORA adapters can be served`);
  }
  const missing = ['r', 'lora_alpha', 'target_modules'].filter((k) => c[k] === undefined || c[k] === null);
  if (missing.length > 0) return fail(`${ADAPTER_CONFIG} lacks ${missing.join(', ')} (vLLM requires r, lora_alpha and target_modules)`);
  const rank = c.r;
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 1) {
    return fail(`${ADAPTER_CONFIG} field r (the rank) is ${JSON.stringify(rank)}: expected a positive integer`);
  }
  if (typeof c.lora_alpha !== 'number') return fail(`${ADAPTER_CONFIG} field lora_alpha is ${JSON.stringify(c.lora_alpha)}: expected a number`);
  if (!isStringList(c.target_modules)) return fail(`${ADAPTER_CONFIG} field target_modules must be a string or a list of strings`);
  if (c.use_dora === true) return fail(`it is a DoRA adapter (use_dora: true), which vLLM does not support`);
  if (Array.isArray(c.modules_to_save) ? c.modules_to_save.length > 0 : c.modules_to_save !== undefined && c.modules_to_save !== null) {
    return fail(`${ADAPTER_CONFIG} sets modules_to_save, which vLLM does not support`);
  }
  if (c.bias !== undefined && c.bias !== null && c.bias !== 'none') {
    return fail(`${ADAPTER_CONFIG} has bias ${JSON.stringify(c.bias)}: vLLM supports only "none"`);
  }
  if (vllmRankFor(rank) === undefined) {
    return fail(`its rank ${rank} is above ${VLLM_LORA_RANKS[VLLM_LORA_RANKS.length - 1]}, the largest --max-lora-rank vLLM accepts`);
  }
  const baseModel = typeof c.base_model_name_or_path === 'string' ? c.base_model_name_or_path : undefined;
  if (!baseModelMatches(baseModel, names)) {
    return fail(`it was trained for base model "${baseModel}", and this server runs ${names.modelName} (${names.source})`);
  }
  if (files.weights === undefined) return fail(`no weights file (${WEIGHT_FILES.join(', ')}) in ${files.path}`);
  if (files.weights.size === 0) return fail(`${files.weights.file} is empty`);
  if (files.weightsProblem !== undefined) return fail(files.weightsProblem);
  return {
    ok: true,
    adapter: { name: files.name, path: files.path, rank, baseModel, weightsFile: files.weights.file, fingerprint: files.fingerprint },
  };
}

/** Why an adapter's rank is too large for the rank limit, or undefined when it fits. */
export function rankProblem(adapter: LoraAdapter, limit: number, limitSource: string): string | undefined {
  return adapter.rank > limit ? `its rank ${adapter.rank} is above the limit ${limit} (${limitSource})` : undefined;
}
