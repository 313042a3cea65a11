// A tiny, generated Hugging Face model repository: the files a real Llama-style
// checkpoint has (config.json, sharded safetensors with a real header and an
// index, tokenizer files, a chat template), plus the extras the downloader must
// skip (a duplicate pytorch_model.bin, original/ weights, README). Deterministic:
// the same options give the same bytes, so checksums are stable across runs.
import { createHash } from 'node:crypto';

export interface RepoFile {
  path: string;
  content: Buffer;
}

export interface TinyModelOptions {
  /** Bytes of weights per safetensors shard (approximate; default 256 KiB). */
  shardBytes?: number;
  /** Number of safetensors shards (default 2; 1 writes model.safetensors without an index). */
  shards?: number;
  /** config.json's torch_dtype (default bfloat16). */
  dtype?: 'bfloat16' | 'float16';
  maxPositionEmbeddings?: number;
  /** Add a vision_config (a VLM). */
  vision?: boolean;
}

/** Deterministic pseudo-random bytes (xorshift), seeded by a string. */
function bytes(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  let x = createHash('sha256').update(seed).digest().readUInt32LE(0) || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** One safetensors file: 8-byte little-endian header length, JSON header (space-padded to 8), data. */
export function safetensorsFile(tensors: Array<{ name: string; dtype: string; shape: number[] }>, seed: string): Buffer {
  const size = (t: { dtype: string; shape: number[] }): number =>
    t.shape.reduce((a, b) => a * b, 1) * ({ BF16: 2, F16: 2, F32: 4, F8_E4M3: 1 }[t.dtype] ?? 2);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size(t)] };
    offset += size(t);
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), bytes(offset, seed)]);
}

/** The files of a tiny Llama-style repository. */
export function tinyModelFiles(opts: TinyModelOptions = {}): RepoFile[] {
  const shards = opts.shards ?? 2;
  const shardBytes = opts.shardBytes ?? 256 * 1024;
  const dtype = opts.dtype ?? 'bfloat16';
  const st = dtype === 'bfloat16' ? 'BF16' : 'F16';
  const hidden = 64;
  const layers = 2;
  const config: Record<string, unknown> = {
    architectures: [opts.vision ? 'Qwen2_5_VLForConditionalGeneration' : 'LlamaForCausalLM'],
    model_type: opts.vision ? 'qwen2_5_vl' : 'llama',
    hidden_size: hidden,
    intermediate_size: 128,
    num_hidden_layers: layers,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    vocab_size: 256,
    max_position_embeddings: opts.maxPositionEmbeddings ?? 2048,
    rms_norm_eps: 1e-5,
    torch_dtype: dtype,
    bos_token_id: 1,
    eos_token_id: 2,
  };
  if (opts.vision) config.vision_config = { hidden_size: 32, depth: 1, patch_size: 14 };
  const files: RepoFile[] = [
    { path: '.gitattributes', content: Buffer.from('*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n') },
    { path: 'README.md', content: Buffer.from('# tiny-llama\n\nA generated test model.\n') },
    { path: 'config.json', content: Buffer.from(JSON.stringify(config, null, 2)) },
    { path: 'generation_config.json', content: Buffer.from(JSON.stringify({ bos_token_id: 1, eos_token_id: 2, temperature: 0.6 })) },
    {
      path: 'tokenizer_config.json',
      content: Buffer.from(
        JSON.stringify({
          bos_token: '<s>',
          eos_token: '</s>',
          model_max_length: 2048,
          chat_template: "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}<|assistant|>",
        }),
      ),
    },
    { path: 'special_tokens_map.json', content: Buffer.from(JSON.stringify({ bos_token: '<s>', eos_token: '</s>' })) },
    { path: 'tokenizer.json', content: Buffer.from(JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: { '<s>': 1, '</s>': 2 }, merges: [] } })) },
  ];
  // Tensors: spread over the shards, each shard about shardBytes of weights.
  const perShardElems = Math.max(hidden, Math.floor(shardBytes / 2 / hidden)) * hidden;
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let s = 1; s <= shards; s++) {
    const name = shards === 1 ? 'model.safetensors' : `model-${String(s).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const tensors = [
      { name: `model.layers.${s - 1}.mlp.weight`, dtype: st, shape: [perShardElems / hidden, hidden] },
      { name: `model.layers.${s - 1}.input_layernorm.weight`, dtype: st, shape: [hidden] },
    ];
    if (s === 1) tensors.unshift({ name: 'model.embed_tokens.weight', dtype: st, shape: [256, hidden] });
    const content = safetensorsFile(tensors, name);
    for (const t of tensors) weightMap[t.name] = name;
    totalSize += content.length - 8 - content.readUInt32LE(0);
    files.push({ path: name, content });
  }
  if (shards > 1) {
    files.push({
      path: 'model.safetensors.index.json',
      content: Buffer.from(JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)),
    });
  }
  // What a real repo also carries and the engine does not need when safetensors exist.
  files.push({ path: 'pytorch_model.bin', content: bytes(64 * 1024, 'bin') });
  files.push({ path: 'original/consolidated.00.pth', content: bytes(64 * 1024, 'orig') });
  return files;
}
