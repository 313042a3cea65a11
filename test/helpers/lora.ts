// Real LoRA adapter directories for tests: adapter_config.json as PEFT writes
// it and a well-formed safetensors file (8-byte header length, JSON header,
// tensor bytes), so the supervisor's and the simulator's checks see what they
// would see on disk in production.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface AdapterSpec {
  rank?: number;
  baseModel?: string | null;
  /** Which weights file to write; 'none' writes none. */
  weights?: 'safetensors' | 'bin' | 'none';
  /** Overrides merged into adapter_config.json (null deletes a key). */
  config?: Record<string, unknown>;
}

/** safetensors bytes holding lora_A/lora_B for q_proj and v_proj of one layer (F32, zeros). */
export function safetensorsBytes(rank: number, hidden = 16): Buffer {
  const tensors: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
  let offset = 0;
  for (const mod of ['q_proj', 'v_proj']) {
    for (const [ab, shape] of [
      ['lora_A', [rank, hidden]],
      ['lora_B', [hidden, rank]],
    ] as const) {
      const bytes = shape[0] * shape[1] * 4;
      tensors[`base_model.model.model.layers.0.self_attn.${mod}.${ab}.weight`] = { dtype: 'F32', shape: [...shape], data_offsets: [offset, offset + bytes] };
      offset += bytes;
    }
  }
  const header = Buffer.from(JSON.stringify({ __metadata__: { format: 'pt' }, ...tensors }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, Buffer.alloc(offset)]);
}

export function adapterConfig(spec: AdapterSpec = {}): Record<string, unknown> {
  const c: Record<string, unknown> = {
    base_model_name_or_path: spec.baseModel === undefined ? 'nvidia/Nemotron-3-Content-Safety' : spec.baseModel,
    bias: 'none',
    fan_in_fan_out: false,
    lora_alpha: 16,
    lora_dropout: 0.05,
    modules_to_save: null,
    peft_type: 'LORA',
    r: spec.rank ?? 8,
    target_modules: ['q_proj', 'v_proj'],
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  };
  for (const [k, v] of Object.entries(spec.config ?? {})) {
    if (v === null) delete c[k];
    else c[k] = v;
  }
  return c;
}

/** Write an adapter directory `<root>/<name>` and return its path. */
export function writeAdapter(root: string, name: string, spec: AdapterSpec = {}): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(adapterConfig(spec), null, 2));
  const weights = spec.weights ?? 'safetensors';
  if (weights === 'safetensors') writeFileSync(path.join(dir, 'adapter_model.safetensors'), safetensorsBytes(spec.rank ?? 8));
  if (weights === 'bin') writeFileSync(path.join(dir, 'adapter_model.bin'), Buffer.from('PK\u0003\u0004 pretend torch zip'));
  return dir;
}
