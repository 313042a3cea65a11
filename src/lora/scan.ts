// Reading NIM_PEFT_SOURCE: one sub-directory per adapter, named as clients
// will address it. The scan reads what checkAdapter (adapter.ts) needs and a
// fingerprint of each directory, so the caller can tell an adapter that is
// still being written (its fingerprint moves between two scans) from a
// finished one. Hidden entries (".tmp", Kubernetes' "..data") and plain files
// are not adapters and are passed over silently.
import { open, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { ADAPTER_CONFIG, WEIGHT_FILES, checkAdapter, type AdapterCheck, type AdapterFiles, type BaseModelNames } from './adapter.js';

/** One sub-directory of the source, as found by one scan. */
export interface ScanEntry {
  name: string;
  path: string;
  /** Changes whenever a file in the directory is added, removed, resized or touched. */
  fingerprint: string;
  check: AdapterCheck;
}

/** Throws a ConfigError unless `dir` is a readable directory (fail fast at start-up). */
export async function assertPeftSource(dir: string): Promise<void> {
  let s;
  try {
    s = await stat(dir);
  } catch (err) {
    throw new ConfigError(`NIM_PEFT_SOURCE=${JSON.stringify(dir)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: 'mount the adapter directory there, or unset NIM_PEFT_SOURCE to serve the base model alone',
    });
  }
  if (!s.isDirectory()) {
    throw new ConfigError(`NIM_PEFT_SOURCE=${JSON.stringify(dir)} is not a directory: expected one sub-directory per LoRA adapter`);
  }
}

/**
 * Check a safetensors file without loading it: 8 bytes of header length, a JSON
 * header, then exactly the bytes its tensors' data_offsets cover. A file that is
 * still being copied is shorter than that. Returns the problem, or undefined.
 * Format: https://github.com/huggingface/safetensors (README, "Format").
 */
export async function safetensorsProblem(file: string, size: number): Promise<string | undefined> {
  const name = path.basename(file);
  if (size < 8) return `${name} is truncated (${size} bytes, shorter than the 8-byte header length)`;
  const fh = await open(file, 'r');
  try {
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > size - 8 || headerLen > 100 * 1024 * 1024) {
      return `${name} is truncated or not a safetensors file (header of ${headerLen} bytes, file of ${size})`;
    }
    const header = Buffer.alloc(headerLen);
    await fh.read(header, 0, headerLen, 8);
    let parsed: unknown;
    try {
      parsed = JSON.parse(header.toString('utf8'));
    } catch {
      return `${name} has an unreadable header (not a safetensors file, or truncated)`;
    }
    let end = 0;
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (k === '__metadata__') continue;
      const offsets = (v as { data_offsets?: unknown } | null)?.data_offsets;
      if (Array.isArray(offsets) && typeof offsets[1] === 'number') end = Math.max(end, offsets[1]);
    }
    const expected = 8 + headerLen + end;
    if (size !== expected) return `${name} is ${size < expected ? 'truncated' : 'longer than its header says'} (${size} bytes, expected ${expected})`;
    return undefined;
  } finally {
    await fh.close();
  }
}

/** Read one adapter directory: its config, weights, fingerprint. */
async function readAdapterDir(name: string, dir: string): Promise<AdapterFiles> {
  const entries = await readdir(dir, { withFileTypes: true });
  const sizes = new Map<string, number>();
  const parts: string[] = [];
  for (const e of entries) {
    if (!e.isFile() && !e.isSymbolicLink()) continue;
    try {
      const s = await stat(path.join(dir, e.name));
      if (!s.isFile()) continue;
      sizes.set(e.name, s.size);
      parts.push(`${e.name}:${s.size}:${s.mtimeMs}`);
    } catch {
      parts.push(`${e.name}:gone`); // removed while we looked: the directory is changing
    }
  }
  parts.sort();
  let configText: string | undefined;
  if (sizes.has(ADAPTER_CONFIG)) {
    try {
      configText = await readFile(path.join(dir, ADAPTER_CONFIG), 'utf8');
    } catch {
      configText = undefined;
    }
  }
  const file = WEIGHT_FILES.find((f) => sizes.has(f));
  const weights = file === undefined ? undefined : { file, size: sizes.get(file)! };
  let weightsProblem: string | undefined;
  if (weights?.file === 'adapter_model.safetensors' && weights.size > 0) {
    try {
      weightsProblem = await safetensorsProblem(path.join(dir, weights.file), weights.size);
    } catch (err) {
      weightsProblem = `${weights.file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
  }
  return { name, path: dir, configText, weights, weightsProblem, fingerprint: parts.join('|') };
}

/**
 * Scan the source once. Every sub-directory (or link to one) whose name does
 * not start with "." is an adapter candidate, checked with checkAdapter.
 * Throws a ConfigError when the source itself cannot be read.
 */
export async function scanPeftSource(source: string, names: BaseModelNames): Promise<Map<string, ScanEntry>> {
  let entries;
  try {
    entries = await readdir(source, { withFileTypes: true });
  } catch (err) {
    throw new ConfigError(`NIM_PEFT_SOURCE=${JSON.stringify(source)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const out = new Map<string, ScanEntry>();
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.name.startsWith('.')) continue;
    const dir = path.join(source, e.name);
    if (!e.isDirectory()) {
      if (!e.isSymbolicLink()) continue;
      try {
        if (!(await stat(dir)).isDirectory()) continue;
      } catch {
        continue; // a dangling link is not an adapter
      }
    }
    let files: AdapterFiles;
    try {
      files = await readAdapterDir(e.name, dir);
    } catch (err) {
      out.set(e.name, {
        name: e.name,
        path: dir,
        fingerprint: `unreadable:${(err as NodeJS.ErrnoException).code ?? ''}`,
        check: { ok: false, reason: `its directory cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` },
      });
      continue;
    }
    out.set(e.name, { name: e.name, path: dir, fingerprint: files.fingerprint, check: checkAdapter(files, names) });
  }
  return out;
}
