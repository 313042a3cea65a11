// Which files of a repository the engine needs: weights in one format (vLLM
// prefers safetensors, then PyTorch .bin, then .pt: vllm/model_executor/
// model_loader/weight_utils.py download_weights_from_hf), configs, tokenizer,
// chat template, processor and custom code; never the duplicate `original/`
// (Meta's consolidated checkpoints) or weights of other frameworks. Pure.

export interface FileChoice<F extends { path: string }> {
  files: F[];
  skipped: Array<{ path: string; reason: string }>;
}

const CONFIG_LIKE = /\.(json|jinja|model|tiktoken|txt|py|py\.typed)$/i;
const NOT_NEEDED = /(^|\/)(README|LICENSE|USE_POLICY|NOTICE)[^/]*$|\.(md|png|jpe?g|gif|webp|svg|pdf|ipynb|onnx|h5|msgpack|ot|tflite|gguf|ckpt)$|^\.git/i;
const OTHER_FRAMEWORKS = /(^|\/)(onnx|openvino|coreml|flax|tf|mlx|gguf)\//i;

/**
 * Pick the engine's files. `weightMap` is the content of
 * model.safetensors.index.json's `weight_map` when there is one: only the shards it
 * names are kept (as vLLM's filter_duplicate_safetensors_files does).
 */
export function selectEngineFiles<F extends { path: string }>(all: readonly F[], weightMap?: Record<string, string>): FileChoice<F> {
  const skipped: Array<{ path: string; reason: string }> = [];
  const candidates: F[] = [];
  for (const f of all) {
    if (f.path.startsWith('original/') || f.path.includes('/original/')) skipped.push({ path: f.path, reason: 'original/ checkpoint (duplicate weights)' });
    else if (OTHER_FRAMEWORKS.test(f.path)) skipped.push({ path: f.path, reason: 'another framework' });
    else if (NOT_NEEDED.test(f.path)) skipped.push({ path: f.path, reason: 'not read by the engine' });
    else candidates.push(f);
  }
  const safetensors = candidates.filter((f) => f.path.endsWith('.safetensors'));
  const bins = candidates.filter((f) => /(^|\/)[^/]*\.bin$/.test(f.path) && !/(^|\/)training_args\.bin$/.test(f.path));
  const pts = candidates.filter((f) => f.path.endsWith('.pt') || f.path.endsWith('.pth'));
  let weights: F[];
  if (safetensors.length > 0) {
    const indexed = weightMap ? new Set(Object.values(weightMap)) : undefined;
    weights = indexed ? safetensors.filter((f) => indexed.has(f.path) || f.path.includes('/')) : safetensors;
    // Mistral-style repos: consolidated.safetensors duplicates the HF shards.
    if (!indexed && weights.some((f) => !/consolidated/.test(f.path))) weights = weights.filter((f) => !/(^|\/)consolidated[^/]*\.safetensors$/.test(f.path));
  } else if (bins.length > 0) {
    weights = bins;
  } else {
    weights = pts;
  }
  const weightSet = new Set(weights);
  const files: F[] = [];
  for (const f of candidates) {
    if (weightSet.has(f)) files.push(f);
    else if (f.path.endsWith('.safetensors') || f.path.endsWith('.bin') || f.path.endsWith('.pt') || f.path.endsWith('.pth')) {
      skipped.push({ path: f.path, reason: safetensors.length > 0 ? 'duplicate weights (safetensors are used)' : 'duplicate weights' });
    } else if (CONFIG_LIKE.test(f.path)) files.push(f);
    else skipped.push({ path: f.path, reason: 'not read by the engine' });
  }
  return { files, skipped };
}

/** The small files to fetch first (configs, index, tokenizer): everything that is not weights. */
export function isWeightFile(p: string): boolean {
  return /\.(safetensors|bin|pt|pth)$/.test(p);
}
