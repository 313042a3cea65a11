// The model's own files, read the way vLLM reads them before loading: a local
// directory must hold config.json (vllm/transformers_utils/config.py get_config:
// "Invalid repository ID or local directory specified"), weights in a format the
// default loader takes (vllm/model_executor/model_loader/default_loader.py:
// "Cannot find any model weights with `<dir>`"); a repository id under
// HF_HUB_OFFLINE=1 must already be in the hub cache (refs/main → snapshot).
// A repository id online is taken on trust (the simulator downloads nothing).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface ModelFiles {
  /** The directory read, when there is one. */
  dir: string | undefined;
  /** config.json's context length (max_position_embeddings and aliases), when known. */
  maxPositionEmbeddings: number | undefined;
  /** config.json's first architecture, for the "Resolved architecture" line. */
  architecture: string | undefined;
}

export type ModelFilesResult = { ok: true; files: ModelFiles } | { ok: false; /** vLLM's error, last line first-class */ error: string; stage: 'config' | 'weights' };

const OFFLINE = new Set(['1', 'ON', 'YES', 'TRUE']);

function hubCache(env: NodeJS.ProcessEnv): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  const home = env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

function invalid(model: string): string {
  return (
    `ValueError: Invalid repository ID or local directory specified: '${model}'.\n` +
    'Please verify the following requirements:\n' +
    '1. Provide a valid Hugging Face repository ID.\n' +
    '2. Specify a local directory that contains a recognized configuration file.\n' +
    "   - For Hugging Face models: ensure the presence of a 'config.json'.\n" +
    "   - For Mistral models: ensure the presence of a 'params.json'."
  );
}

function readConfig(dir: string): Pick<ModelFiles, 'maxPositionEmbeddings' | 'architecture'> {
  try {
    const c = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const t = (c.text_config ?? c) as Record<string, unknown>;
    const n = [t.max_position_embeddings, t.max_seq_len, t.seq_length, t.n_positions, c.max_position_embeddings].find((v) => typeof v === 'number' && v > 0) as number | undefined;
    const arch = Array.isArray(c.architectures) && typeof c.architectures[0] === 'string' ? c.architectures[0] : undefined;
    return { maxPositionEmbeddings: n, architecture: arch };
  } catch {
    return { maxPositionEmbeddings: undefined, architecture: undefined };
  }
}

function hasWeights(dir: string): boolean {
  const walk = (d: string, depth: number): boolean => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (/\.(safetensors|bin|pt)$/.test(e.name)) {
        try {
          if (statSync(path.join(d, e.name)).isFile()) return true; // a dangling snapshot link is no weight
        } catch {
          /* dangling */
        }
      } else if (e.isDirectory() && depth < 1 && e.name !== 'original') {
        if (walk(path.join(d, e.name), depth + 1)) return true;
      }
    }
    return false;
  };
  return walk(dir, 0);
}

/** Find and check the model's files as vLLM would before loading. */
export function resolveModelFiles(model: string, env: NodeJS.ProcessEnv = process.env): ModelFilesResult {
  let dir: string | undefined;
  if (existsSync(model) && statSync(model).isDirectory()) {
    dir = model;
  } else if (OFFLINE.has((env.HF_HUB_OFFLINE ?? '').toUpperCase())) {
    // Offline: the repository must be in the hub cache.
    const repoDir = path.join(hubCache(env), ['models', ...model.split('/')].join('--'));
    let commit: string | undefined;
    try {
      commit = readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8').trim();
    } catch {
      commit = undefined;
    }
    if (!commit) return { ok: false, stage: 'config', error: invalid(model) };
    dir = path.join(repoDir, 'snapshots', commit);
  } else {
    return { ok: true, files: { dir: undefined, maxPositionEmbeddings: undefined, architecture: undefined } };
  }
  if (!existsSync(path.join(dir, 'config.json')) && !existsSync(path.join(dir, 'params.json'))) return { ok: false, stage: 'config', error: invalid(model) };
  if (!hasWeights(dir)) return { ok: false, stage: 'weights', error: `RuntimeError: Cannot find any model weights with \`${model}\`` };
  return { ok: true, files: { dir, ...readConfig(dir) } };
}
