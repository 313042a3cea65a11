// What the model's own files say about it: architecture, dtype and quantization,
// context length, vision support, the sizes the memory estimate needs. Pure:
// reads parsed config.json; the caller supplies weight bytes and the parameter
// count (from safetensors headers via @huggingface/hub).
import { DownloadError } from '../hub/errors.js';

export interface ModelFacts {
  /** "org/name" for hub models, the directory's name for local ones. */
  name: string;
  architecture: string | undefined;
  modelType: string | undefined;
  /** The checkpoint's precision as a manifest precision tag (bf16, fp16, fp32, fp8, int4_awq, …). */
  precision: string;
  /** The model's own context length (max_position_embeddings and its aliases), text config first for VLMs. */
  maxModelLen: number | undefined;
  /** Images in (a vision_config, or a vision architecture). */
  vision: boolean;
  /** Parameters (from safetensors headers), when known. */
  parameterCount: number | undefined;
  /** Bytes of the weight files the engine loads. */
  weightBytes: number;
  /** For the KV-cache estimate; undefined when config.json does not say. */
  layers: number | undefined;
  kvHeads: number | undefined;
  /** Attention heads: tensor parallelism must divide them (vLLM checks it). */
  attentionHeads: number | undefined;
  headDim: number | undefined;
}

type Json = Record<string, unknown>;

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** torch dtype names → precision tags. */
const DTYPES: Record<string, string> = {
  bfloat16: 'bf16',
  bf16: 'bf16',
  float16: 'fp16',
  fp16: 'fp16',
  half: 'fp16',
  float32: 'fp32',
  float: 'fp32',
  fp32: 'fp32',
};

/** quantization_config.quant_method → precision tags (vLLM reads the method from the checkpoint). */
function quantPrecision(q: Json): string | undefined {
  const method = str(q.quant_method)?.toLowerCase();
  if (!method) return undefined;
  if (method === 'fp8') return 'fp8';
  if (method === 'awq') return 'int4_awq';
  if (method === 'gptq') return 'int4_gptq';
  if (method === 'mxfp4') return 'mxfp4';
  if (method === 'modelopt') return str(q.quant_algo)?.toLowerCase().includes('fp4') ? 'nvfp4' : 'fp8';
  if (method === 'compressed-tensors') {
    const s = JSON.stringify(q).toLowerCase();
    if (s.includes('nvfp4') || s.includes('"num_bits":4,"type":"float"')) return 'nvfp4';
    if (s.includes('"type":"float"') && s.includes('"num_bits":8')) return 'fp8';
    if (s.includes('"num_bits":8')) return 'int8';
  }
  return undefined;
}

/**
 * Facts from config.json. Throws MODEL_INVALID when it is not a model config
 * (no architectures or model_type). `where` names the file in messages.
 */
export function inspectConfig(config: unknown, where: string, extra: { name: string; weightBytes: number; parameterCount: number | undefined }): ModelFacts {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new DownloadError('MODEL_INVALID', `${where} is not a JSON object`, { hint: 'a Hugging Face model directory has a config.json with "architectures" and "model_type"' });
  }
  const c = config as Json;
  const text = (c.text_config && typeof c.text_config === 'object' ? c.text_config : c) as Json;
  const architectures = Array.isArray(c.architectures) ? c.architectures.filter((a): a is string => typeof a === 'string') : [];
  const modelType = str(c.model_type);
  if (architectures.length === 0 && !modelType) {
    throw new DownloadError('MODEL_INVALID', `${where} names no architecture (no "architectures" or "model_type")`, {
      hint: 'NIM_MODEL_PATH must point at a Hugging Face transformers model (config.json with "architectures")',
    });
  }
  const dtypeName = (str(c.torch_dtype) ?? str(c.dtype) ?? str(text.torch_dtype) ?? str(text.dtype) ?? 'bfloat16').toLowerCase();
  const q = (c.quantization_config ?? text.quantization_config) as Json | undefined;
  const precision = (q && typeof q === 'object' ? quantPrecision(q) : undefined) ?? DTYPES[dtypeName] ?? 'bf16';
  const maxModelLen = num(text.max_position_embeddings) ?? num(text.max_seq_len) ?? num(text.seq_length) ?? num(text.n_positions) ?? num(c.max_position_embeddings);
  const arch = architectures[0];
  const vision = c.vision_config !== undefined || /VL|Vision|Llava|ImageText|Pixtral|Idefics|Mllama/i.test(arch ?? '');
  const heads = num(text.num_attention_heads) ?? num(text.n_head);
  const hidden = num(text.hidden_size) ?? num(text.n_embd);
  return {
    name: extra.name,
    architecture: arch,
    modelType,
    precision,
    maxModelLen,
    vision,
    parameterCount: extra.parameterCount,
    weightBytes: extra.weightBytes,
    layers: num(text.num_hidden_layers) ?? num(text.n_layer),
    kvHeads: num(text.num_key_value_heads) ?? heads,
    attentionHeads: heads,
    headDim: num(text.head_dim) ?? (hidden && heads ? hidden / heads : undefined),
  };
}
