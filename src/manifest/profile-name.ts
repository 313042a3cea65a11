// Readable profile names in NIM's convention:
//   vllm-<precision>-tp<N>-pp<N>[-n<nodes>][-<gpu>][-<latency|throughput>][-lora]
// e.g. vllm-bf16-tp2-pp1-h100-latency, vllm-bf16-tp1-pp1 (generic), and for
// vLLM's CPU backend vllm-bf16-cpu (tp/pp only when either is above 1).
import type { ProfileTags } from './types.js';

export type NameTags = Pick<ProfileTags, 'engine' | 'precision' | 'tp' | 'pp' | 'device' | 'gpu' | 'goal' | 'lora'> &
  Partial<Pick<ProfileTags, 'nodes'>>;

export function deriveProfileName(tags: NameTags): string {
  const parts: string[] = [tags.engine, tags.precision];
  if (tags.device === 'cpu') {
    parts.push('cpu');
    if (tags.tp > 1 || tags.pp > 1) parts.push(`tp${tags.tp}`, `pp${tags.pp}`);
  } else {
    parts.push(`tp${tags.tp}`, `pp${tags.pp}`);
    if (tags.nodes !== undefined && tags.nodes > 1) parts.push(`n${tags.nodes}`); // multi-node: vllm-bf16-tp8-pp2-n2-h100
    if (tags.gpu) parts.push(tags.gpu.toLowerCase().replace(/\s+/g, '_'));
  }
  if (tags.goal) parts.push(tags.goal);
  if (tags.lora) parts.push('lora');
  return parts.join('-');
}
