// Reading a manifest on the start-up path. YAML and the zod schema stay the
// source of truth (load.ts), but parsing and validating them costs ~60 ms of a
// cold start (the yaml and zod chunks' compile, the parse, the schema): for a
// manifest whose text is byte-for-byte one `npm run build` already validated,
// the build's result is read instead (precompiled.ts). Anything else -- an
// edited or user-written manifest, a missing or unreadable precompiled form --
// goes through the full parse, with its exact errors.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ManifestError } from '../errors.js';
import { lookupPrecompiled } from './precompiled.js';
import type { Manifest } from './types.js';

/** A parsed manifest, before its license file (if any) is read. */
export interface ParsedManifest {
  manifest: Manifest;
  /** Absolute license file to read into manifest.model.license.text, if any. */
  licenseFile: string | undefined;
  /** What the manifest wrote relative to its own directory (to place it elsewhere: precompiled.ts). */
  relative: {
    /** model.source as written, when it is `./…` or `../…`. */
    source: string | undefined;
    /** model.license.path as written. */
    licensePath: string | undefined;
  };
}

function readReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EISDIR') return 'the path is a directory, not a file';
  if (code === 'EACCES') return 'permission denied';
  return (err as Error).message;
}

export function readError(file: string, err: unknown): ManifestError {
  return new ManifestError(file, `cannot read the manifest: ${readReason(err)}`, {
    hint: 'set NIM_MANIFEST_PATH to a manifest file; the shipped ones are in manifests/',
    cause: err,
  });
}

export function licenseProblem(parsed: ParsedManifest, file: string, err: unknown): never {
  throw new ManifestError(file, `cannot read the license file ${parsed.licenseFile}: ${readReason(err)}`, {
    yamlPath: 'model.license.path',
    hint: 'license paths are relative to the manifest file',
    cause: err,
  });
}

/** The manifest with its license file's text read in (ManifestError if it cannot be read). */
export async function withLicense(parsed: ParsedManifest, abs: string): Promise<Manifest> {
  if (parsed.licenseFile) {
    try {
      parsed.manifest.model.license.text = await readFile(parsed.licenseFile, 'utf8');
    } catch (err) {
      licenseProblem(parsed, abs, err);
    }
  }
  return parsed.manifest;
}

/**
 * Read, parse and validate the manifest at `file` (relative to the working
 * directory). Throws ManifestError naming the file (and the line and YAML path
 * where the YAML gives them).
 */
export async function readManifest(file: string): Promise<Manifest> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw readError(abs, err);
  }
  const precompiled = lookupPrecompiled(text, abs);
  if (precompiled) return await withLicense(precompiled, abs);
  return await (await import('./load.js')).parseLoadedManifest(text, abs);
}
