// GPU memory a model needs per GPU at a tensor-parallel size: its weights split
// over the GPUs, the KV cache for one sequence of the full context (vLLM refuses
// to start when max_model_len tokens do not fit: "The model's max seq len … is
// larger than the maximum number of tokens that can be stored in KV cache",
// vllm/v1/core/kv_cache_utils.py check_enough_kv_cache_memory), and headroom for
// activations, CUDA graphs and the CUDA context; divided by vLLM's default
// --gpu-memory-utilization 0.9. An estimate, stated as one.

export interface MemoryEstimate {
  /** GiB per GPU the profile asks for (rounded up): min_gpu_memory_gb. */
  perGpuGiB: number;
  weightsGiB: number;
  kvCacheGiB: number;
  headroomGiB: number;
  /** Context length the KV cache was sized for. */
  contextTokens: number;
}

const GIB = 1024 ** 3;
const GPU_MEMORY_UTILIZATION = 0.9;

export interface EstimateInput {
  weightBytes: number;
  layers: number | undefined;
  kvHeads: number | undefined;
  headDim: number | undefined;
  /** Bytes per KV element: 2 for bf16/fp16 caches. */
  kvBytes?: number;
}

export function estimateGpuMemory(m: EstimateInput, tp: number, contextTokens: number): MemoryEstimate {
  const weights = m.weightBytes / tp;
  // KV heads split over tp, but each GPU keeps at least one (they are replicated when tp > heads).
  const kvHeadsPerGpu = m.kvHeads !== undefined ? Math.max(1, Math.ceil(m.kvHeads / tp)) : undefined;
  const kvPerToken =
    m.layers !== undefined && kvHeadsPerGpu !== undefined && m.headDim !== undefined ? 2 * m.layers * kvHeadsPerGpu * m.headDim * (m.kvBytes ?? 2) : weights / 4096 / 1000; // unknown shape: a small share of the weights
  const kv = kvPerToken * contextTokens;
  const headroom = 1.0 * GIB + 0.05 * weights;
  const perGpu = (weights + kv + headroom) / GPU_MEMORY_UTILIZATION;
  const r = (b: number): number => Math.round((b / GIB) * 100) / 100;
  return { perGpuGiB: Math.max(1, Math.ceil(perGpu / GIB)), weightsGiB: r(weights), kvCacheGiB: r(kv), headroomGiB: r(headroom), contextTokens };
}
