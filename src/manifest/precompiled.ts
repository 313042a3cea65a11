// Precompiled manifests: `npm run build` parses and validates each shipped
// manifest (manifests/*.yaml) with the full parser (load.ts) and writes the
// result as JSON, named by the sha256 of the YAML text, under
// dist/src/manifests-precompiled/. On start-up a manifest whose text has that
// digest is read from there (read.ts): same Manifest, deep-equal (test/manifest-precompiled.test.ts),
// without loading yaml and zod. The digest covers the whole text, so any edit
// to a manifest -- or a different one -- falls back to the full parse; so does
// any problem with the precompiled file (missing, unreadable, another format,
// contents that do not match their own digest).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../config/paths.js';
import type { ParsedManifest } from './read.js';
import type { Manifest } from './types.js';

/** Where the build writes them: inside dist/src, so the image and the npm package carry them. */
export const PRECOMPILED_DIR = path.join(packageRoot, 'dist', 'src', 'manifests-precompiled');

/** Bump when the stored shape changes: older files are then ignored. */
const FORMAT = 2;

/** JSON has no undefined; the Manifest's `x: T | undefined` keys are kept with this in their place. */
const UNDEFINED = { $undefined: true } as const;

interface Stored {
  format: number;
  /** sha256 of the manifest's YAML text. */
  sha256: string;
  /** sha256 of the JSON of `{ manifest, relative }` as written: an edited or damaged file is not used. */
  payloadSha256: string;
  /** The manifest as parsed where the build found it; `file` and the paths below are replaced on lookup. */
  manifest: unknown;
  relative: ParsedManifest['relative'];
}

/** sha256 of the manifest text (UTF-8), hex. */
export function manifestDigest(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function precompiledFile(text: string, dir = PRECOMPILED_DIR): string {
  return path.join(dir, `${manifestDigest(text)}.json`);
}

function isUndefinedMark(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (v as { $undefined?: unknown }).$undefined === true && Object.keys(v).length === 1;
}

/** Put undefined back where the marks are (in place). No value of a valid Manifest is an object like the mark. */
function restoreUndefined(v: unknown): void {
  if (typeof v !== 'object' || v === null) return;
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (isUndefinedMark(o[k])) o[k] = undefined;
    else restoreUndefined(o[k]);
  }
}

/** Write the precompiled form of `parsed` (the full parser's result for `text`); returns its path. */
export function writePrecompiled(text: string, parsed: ParsedManifest, dir = PRECOMPILED_DIR): string {
  const marked = JSON.parse(JSON.stringify({ manifest: parsed.manifest, relative: parsed.relative }, (_k, v: unknown) => (v === undefined ? UNDEFINED : v))) as Pick<Stored, 'manifest' | 'relative'>;
  const stored: Stored = { format: FORMAT, sha256: manifestDigest(text), payloadSha256: payloadDigest(marked), ...marked };
  const file = precompiledFile(text, dir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(stored)}\n`);
  return file;
}

/** The digest of what a precompiled file carries (JSON.stringify of parsed JSON gives back the same text). */
function payloadDigest(p: Pick<Stored, 'manifest' | 'relative'>): string {
  return manifestDigest(JSON.stringify({ manifest: p.manifest, relative: p.relative }));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The shape every later step relies on (a build writes it; an edited file may not have it: then the YAML is parsed). */
function plausible(m: unknown): boolean {
  return (
    isObject(m) &&
    isObject(m.model) &&
    isObject(m.model.license) &&
    Array.isArray(m.profiles) &&
    m.profiles.every((p) => isObject(p) && typeof p.id === 'string' && typeof p.name === 'string' && isObject(p.tags))
  );
}

/**
 * The parsed manifest for `text` read from `abs`, if the build precompiled
 * that exact text; undefined otherwise (and on any problem with the stored
 * file: the caller then parses the YAML). Paths the manifest gives relative to
 * itself are resolved against `abs`'s directory, as the parser does.
 */
export function lookupPrecompiled(text: string, abs: string, dir = PRECOMPILED_DIR): ParsedManifest | undefined {
  let stored: Stored;
  try {
    stored = JSON.parse(readFileSync(precompiledFile(text, dir), 'utf8')) as Stored;
  } catch {
    return undefined; // none for this text (or unreadable): parse it
  }
  try {
    if (stored?.format !== FORMAT || stored.sha256 !== manifestDigest(text) || stored.payloadSha256 !== payloadDigest(stored)) return undefined;
    if (!plausible(stored.manifest)) return undefined;
    restoreUndefined(stored);
    const manifest = stored.manifest as Manifest;
    const here = path.dirname(abs);
    const { source, licensePath } = stored.relative ?? {};
    const licenseFile = licensePath === undefined ? undefined : path.resolve(here, licensePath);
    manifest.file = abs;
    if (source !== undefined) manifest.model.source = path.resolve(here, source);
    manifest.model.license.path = licenseFile;
    return { manifest, licenseFile, relative: stored.relative };
  } catch {
    return undefined; // a shape no build writes: parse the YAML
  }
}
