// Precisions a profile can name in its `precision` tag: how selection ranks
// them and which vLLM flags each one implies. One table, so the manifest
// validator, the ranking and the command-line builder cannot disagree.

export interface PrecisionInfo {
  /** Ranking position: lower is preferred (NIM prefers lower precision). */
  rank: number;
  /** vLLM flags this precision implies (`--dtype …` or `--quantization …`). */
  flags: readonly string[];
  /** One line for docs/manifests.md. */
  note: string;
  /** Lowest CUDA compute capability whose GPUs can run it (vLLM refuses bf16 below 8.0). */
  minComputeCapability?: number;
}

/**
 * Preference order, best first: nvfp4 < mxfp4 < fp8 < int4 (awq/gptq) < int8 <
 * bf16 < fp16 < fp32. This is NIM's "lower precision first", except that the
 * 8-bit float formats come before the 4-bit integer ones: fp8 runs on tensor
 * cores with little quality loss, int4 weight-only schemes trade more quality
 * for memory. bf16 comes before fp16 (same size, wider range, the native dtype
 * of nearly every current checkpoint).
 */
export const PRECISIONS: Readonly<Record<string, PrecisionInfo>> = {
  nvfp4: { rank: 0, flags: [], note: 'pre-quantized NVFP4 checkpoint; vLLM reads the method from the checkpoint (Blackwell)' },
  mxfp4: { rank: 1, flags: [], note: 'pre-quantized MXFP4 checkpoint; vLLM reads the method from the checkpoint' },
  fp8: { rank: 2, flags: ['--quantization', 'fp8'], note: 'FP8 weights quantized by vLLM at load time (--quantization fp8)' },
  int4_awq: { rank: 3, flags: ['--quantization', 'awq'], note: 'AWQ 4-bit checkpoint (--quantization awq)' },
  awq: { rank: 3, flags: ['--quantization', 'awq'], note: 'alias of int4_awq' },
  int4_gptq: { rank: 4, flags: ['--quantization', 'gptq'], note: 'GPTQ 4-bit checkpoint (--quantization gptq)' },
  gptq: { rank: 4, flags: ['--quantization', 'gptq'], note: 'alias of int4_gptq' },
  int8: { rank: 5, flags: [], note: 'pre-quantized INT8 (W8A8) checkpoint; vLLM reads the method from the checkpoint' },
  bf16: {
    rank: 6,
    flags: ['--dtype', 'bfloat16'],
    note: 'bfloat16 weights and activations (--dtype bfloat16); GPUs need compute capability 8.0+',
    minComputeCapability: 8.0,
  },
  fp16: { rank: 7, flags: ['--dtype', 'float16'], note: 'float16 weights and activations (--dtype float16)' },
  fp32: { rank: 8, flags: ['--dtype', 'float32'], note: 'float32 (--dtype float32); CPU or debugging only' },
};

export const PRECISION_NAMES = Object.keys(PRECISIONS);

export function precisionRank(precision: string): number {
  return PRECISIONS[precision]?.rank ?? Number.MAX_SAFE_INTEGER;
}

export function precisionFlags(precision: string): readonly string[] {
  return PRECISIONS[precision]?.flags ?? [];
}
