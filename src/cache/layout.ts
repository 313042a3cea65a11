// NIM_CACHE_PATH: the one cache root. Under it, the Hugging Face hub cache in
// its standard layout (so vLLM, transformers and `hf` reuse it), and the
// manifests the supervisor generated for model-free models:
//
//   <NIM_CACHE_PATH>/huggingface/hub/models--org--name/   (= HF_HOME/hub, huggingface_hub's layout)
//       blobs/<etag>                 file content (<etag>.incomplete while downloading)
//       snapshots/<commit>/<path>    relative symlinks to ../../blobs/<etag>
//       refs/<revision>              the commit a branch or tag pointed at when last resolved
//   <NIM_CACHE_PATH>/nim/model-free/models--org--name/<commit>/
//       manifest.yaml                the generated manifest
//       files.json                   the files the engine needs (path, size, etag, sha256)
import { access, constants, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Default NIM_CACHE_PATH outside the image: a per-user cache directory (XDG). The image sets /opt/nim/.cache. */
export function defaultCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache'), 'nim');
}

/** The hub cache (HF_HUB_CACHE) under the root. */
export function hubCacheDir(root: string): string {
  return path.join(root, 'huggingface', 'hub');
}

/** `models--org--name` (huggingface_hub's repo_folder_name). */
export function repoFolderName(repo: string): string {
  return ['models', ...repo.split('/')].join('--');
}

export function repoDir(root: string, repo: string): string {
  return path.join(hubCacheDir(root), repoFolderName(repo));
}

export function snapshotDir(root: string, repo: string, commit: string): string {
  return path.join(repoDir(root, repo), 'snapshots', commit);
}

export function blobPath(root: string, repo: string, etag: string): string {
  return path.join(repoDir(root, repo), 'blobs', etag);
}

export function refPath(root: string, repo: string, revision: string): string {
  return path.join(repoDir(root, repo), 'refs', revision);
}

export function modelFreeDir(root: string, repo: string, commit: string): string {
  return path.join(root, 'nim', 'model-free', repoFolderName(repo), commit);
}

/** The commit a revision resolved to last time (refs/<rev>), or the revision itself when it is a commit. */
export async function readRef(root: string, repo: string, revision: string | undefined): Promise<string | undefined> {
  const rev = revision ?? 'main';
  if (/^[0-9a-f]{40}$/.test(rev)) return rev;
  try {
    const text = (await readFile(refPath(root, repo, rev), 'utf8')).trim();
    return /^[0-9a-f]{40}$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Whether this process may write under `dir` (its nearest existing ancestor). */
export async function isWritable(dir: string): Promise<boolean> {
  let d = path.resolve(dir);
  for (;;) {
    try {
      await access(d, constants.F_OK);
      break;
    } catch {
      const up = path.dirname(d);
      if (up === d) return false;
      d = up;
    }
  }
  try {
    await access(d, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
