// Where a model-free model comes from: NIM_MODEL_PATH's `hf://org/name[@revision]`
// or a local directory (NIM 2.x "model-free" docs). Pure.
import path from 'node:path';
import { ConfigError } from '../errors.js';

export type ModelLocation =
  | { kind: 'hf'; /** "org/name" */ repo: string; /** branch, tag or commit; undefined = main */ revision: string | undefined; uri: string }
  | { kind: 'local'; /** absolute directory */ dir: string; uri: string };

// Hugging Face repo ids: one or two segments of letters, digits, '-', '_', '.' (no leading '.' or '-').
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
// Revisions: branch or tag names (may contain '/', e.g. refs/pr/1) or 40-hex commits.
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$/;
const OTHER_SCHEMES = ['ngc://', 's3://', 'gs://', 'modelscope://', 'http://', 'https://'];

/**
 * Parse a model location. `variable` names the setting in error messages.
 * Throws ConfigError for unsupported schemes, malformed repo ids and relative paths
 * that could be a repo id.
 */
export function parseModelLocation(raw: string, variable = 'NIM_MODEL_PATH'): ModelLocation {
  const value = raw.trim();
  const bad = (what: string, hint: string): ConfigError =>
    new ConfigError(`${variable}=${JSON.stringify(raw)} is invalid: ${what}`, { hint });
  if (value.startsWith('hf://')) {
    const rest = value.slice('hf://'.length).replace(/\/+$/, '');
    const at = rest.indexOf('@');
    const repo = at < 0 ? rest : rest.slice(0, at);
    const revision = at < 0 ? undefined : rest.slice(at + 1);
    const segs = repo.split('/');
    if (segs.length !== 2 || !segs.every((s) => SEGMENT.test(s) && !s.includes('..'))) {
      throw bad('expected hf://org/name or hf://org/name@revision', 'e.g. hf://Qwen/Qwen2.5-0.5B-Instruct or hf://meta-llama/Llama-3.1-8B-Instruct@main');
    }
    if (revision !== undefined && (!REVISION.test(revision) || revision.includes('..'))) {
      throw bad(`"${revision}" is not a branch, tag or commit`, 'write hf://org/name@main, @v1.0 or @<40-hex commit>');
    }
    return { kind: 'hf', repo, revision, uri: `hf://${repo}${revision ? `@${revision}` : ''}` };
  }
  const scheme = OTHER_SCHEMES.find((s) => value.toLowerCase().startsWith(s));
  if (scheme) {
    throw bad(`the ${scheme} scheme is not supported by this supervisor`, 'use hf://org/name, or copy the model into a directory and give its absolute path');
  }
  if (value.startsWith('file://')) return { kind: 'local', dir: path.resolve(value.slice('file://'.length)), uri: value };
  if (path.isAbsolute(value) || value.startsWith('./') || value.startsWith('../')) {
    const dir = path.resolve(value);
    return { kind: 'local', dir, uri: dir };
  }
  throw bad('expected hf://org/name[@revision] or a directory path', `for the Hugging Face repo write hf://${value}; for a directory write ./${value} or an absolute path`);
}
