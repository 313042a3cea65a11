// The model manifest: the model and the profiles it can run with.
// The YAML format is documented in docs/manifests.md.

export type Modality = 'vlm' | 'llm';

export interface LicenseInfo {
  name: string;
  /** Full license text (inline in the manifest, or read from `path`). */
  text: string;
  /** Absolute path of the license file when the manifest gave one. */
  path: string | undefined;
  url: string | undefined;
}

export interface ModelInfo {
  /** e.g. "meta/llama-3.2-11b-vision-instruct". */
  name: string;
  /** The name clients put in `model` unless NIM_SERVED_MODEL_NAME overrides it. */
  servedModelName: string;
  /** Where the weights come from, e.g. "hf://meta-llama/Llama-3.2-11B-Vision-Instruct": the engine's model argument. */
  source: string;
  modality: Modality;
  /** Release of this model package, e.g. "1.0.0". */
  release: string;
  license: LicenseInfo;
  /** Default context length, when the manifest sets one. */
  maxModelLen: number | undefined;
  description: string | undefined;
}

export type ProfileGoal = 'latency' | 'throughput';

export interface ProfileTags {
  engine: 'vllm';
  /** bf16, fp16, fp8, nvfp4, int4_awq … */
  precision: string;
  tp: number;
  pp: number;
  /**
   * Nodes the profile spans; absent = 1 (use `profileNodes`). Above 1 it runs on
   * vLLM's Ray backend across a LeaderWorkerSet group, with tp × pp / nodes GPUs
   * on each node.
   */
  nodes?: number;
  /** 'cpu' profiles run on vLLM's CPU backend and need no GPU. */
  device: 'gpu' | 'cpu';
  /** GPU family from the catalogue (e.g. "H100"); undefined = generic. */
  gpu: string | undefined;
  /** PCI `<device>:<vendor>` id (e.g. "2330:10de"); undefined = any device of the family. */
  gpuDevice: string | undefined;
  /** Minimum memory per GPU, GiB. */
  minGpuMemoryGiB: number | undefined;
  goal: ProfileGoal | undefined;
  lora: boolean;
}

export interface Profile {
  /** 64 hex: sha256 of the canonical profile content unless the manifest gives one. */
  id: string;
  /** Readable name in NIM's convention, e.g. "vllm-bf16-tp2-pp1-h100-latency". */
  name: string;
  tags: ProfileTags;
  /** Tags as NIM shows them (string values), for display and /v1/manifest. */
  displayTags: Record<string, string>;
  /** Extra vLLM flags this profile implies (before NIM_PASSTHROUGH_ARGS). */
  engineArgs: string[];
  /** Extra environment for the engine. */
  engineEnv: Record<string, string>;
  description: string | undefined;
}

export interface Manifest {
  /** Absolute path of the YAML file. */
  file: string;
  schemaVersion: string;
  model: ModelInfo;
  profiles: Profile[];
}

/** Nodes a profile spans: its `nodes` tag, 1 when absent. */
export function profileNodes(tags: Pick<ProfileTags, 'nodes'>): number {
  return tags.nodes ?? 1;
}
