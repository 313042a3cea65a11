// Read, parse and validate a model manifest. Every problem becomes a
// ManifestError naming the file, the line (where the YAML gives one), the YAML
// path (e.g. `profiles[3].tags.tp`) and what is wrong.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ManifestError } from '../errors.js';
import { deriveProfileName } from './profile-name.js';
import { computeProfileId } from './profile-id.js';
import { KNOWN_KEYS, manifestSchema, show, type RawManifest, type RawProfile } from './schema.js';
import { profileNodes, type Manifest, type Profile, type ProfileTags } from './types.js';
import { licenseProblem, readError, withLicense, type ParsedManifest } from './read.js';

export { readManifest as loadManifest } from './read.js';

export const SUPPORTED_SCHEMA = /^1(\.\d+){0,2}$/;
const FORMAT_HINT = 'the manifest format is described in docs/manifests.md';

type PathKey = string | number;

/** `profiles[3].tags.tp`, `env["MY VAR"]`, `engine_args["--max-num-seqs"]`. */
export function formatYamlPath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (typeof k === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) out += out === '' ? k : `.${k}`;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

/** A problem found in a manifest, before it becomes an error. */
export interface ManifestProblem {
  path: PathKey[];
  message: string;
  /** Point at the key itself (unknown keys) rather than its value. */
  atKey?: boolean;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

function knownKeysAt(p: readonly PathKey[]): readonly string[] | undefined {
  const s = p.map((k) => (typeof k === 'number' ? '#' : k)).join('/');
  if (s === '') return KNOWN_KEYS.root;
  if (s === 'model') return KNOWN_KEYS.model;
  if (s === 'model/license') return KNOWN_KEYS.license;
  if (s === 'profiles/#') return KNOWN_KEYS.profile;
  if (s === 'profiles/#/tags') return KNOWN_KEYS.tags;
  return undefined;
}

function unknownKeyMessage(key: string, at: readonly PathKey[]): string {
  const known = knownKeysAt(at);
  if (!known) return `unknown key ${show(key)}`;
  const best = [...known].sort((a, b) => editDistance(key, a) - editDistance(key, b))[0];
  const suggestion = best !== undefined && editDistance(key, best) <= Math.max(2, Math.floor(key.length / 3)) ? `did you mean "${best}"? ` : '';
  return `unknown key ${show(key)} (${suggestion}allowed: ${known.join(', ')})`;
}

/** Turn zod issues into problems, picking the union branch that matches the value's shape. */
function problemsFromIssues(issues: readonly z.core.$ZodIssue[], base: PathKey[] = []): ManifestProblem[] {
  const out: ManifestProblem[] = [];
  for (const iss of issues) {
    const p = [...base, ...(iss.path as PathKey[])];
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) out.push({ path: [...p, key], message: unknownKeyMessage(key, p), atKey: true });
    } else if (iss.code === 'invalid_union') {
      // A branch "matches the shape" when it did not fail on the value's type at its root.
      const branch = iss.errors.find((errs) => !errs.some((e) => e.path.length === 0 && e.code === 'invalid_type'));
      if (branch && branch.length > 0) out.push(...problemsFromIssues(branch, p));
      else out.push({ path: p, message: iss.message });
    } else {
      out.push({ path: p, message: iss.message });
    }
  }
  return out;
}

/** The line (1-based) of the node at `p`, or of its nearest ancestor that exists. */
function lineOf(doc: Document, lc: LineCounter, p: readonly PathKey[], atKey = false): number | undefined {
  if (atKey && p.length > 0) {
    const parent = doc.getIn(p.slice(0, -1), true);
    if (isMap(parent)) {
      const last = p[p.length - 1];
      const pair = parent.items.find((it) => isScalar(it.key) && String(it.key.value) === String(last));
      const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
      if (range) return lc.linePos(range[0]).line;
    }
  }
  for (let n = p.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(p.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) {
      // A missing key: point at the key of the map that should hold it.
      if (n < p.length && n > 0) {
        const parent = doc.getIn(p.slice(0, n - 1), true);
        if (isMap(parent)) {
          const pair = parent.items.find((it) => isScalar(it.key) && String(it.key.value) === String(p[n - 1]));
          if (pair && isScalar(pair.key) && pair.key.range) return lc.linePos(pair.key.range[0]).line;
        }
      }
      return lc.linePos(range[0]).line;
    }
  }
  return undefined;
}

function throwProblems(file: string, problems: ManifestProblem[], doc?: Document, lc?: LineCounter): never {
  const located = problems.map((pr) => ({
    ...pr,
    yamlPath: pr.path.length ? formatYamlPath(pr.path) : undefined,
    line: doc && lc ? lineOf(doc, lc, pr.path, pr.atKey) : undefined,
  }));
  located.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  const [first, ...rest] = located;
  if (!first) throw new ManifestError(file, 'invalid manifest', { hint: FORMAT_HINT });
  const more = rest
    .slice(0, 5)
    .map((r) => [r.line !== undefined ? `line ${r.line}` : undefined, r.yamlPath, r.message].filter(Boolean).join(': '));
  const hint =
    rest.length === 0
      ? FORMAT_HINT
      : `${rest.length} more problem${rest.length === 1 ? '' : 's'}: ${more.join('; ')}${rest.length > 5 ? '; …' : ''}`;
  throw new ManifestError(file, first.message, { yamlPath: first.yamlPath, line: first.line, hint });
}

function normaliseTags(raw: RawProfile['tags']): ProfileTags {
  return {
    engine: raw.llm_engine,
    precision: raw.precision,
    tp: raw.tp ?? 1,
    pp: raw.pp ?? 1,
    device: raw.device ?? 'gpu',
    gpu: raw.gpu,
    gpuDevice: raw.gpu_device,
    minGpuMemoryGiB: raw.min_gpu_memory_gb,
    goal: raw.profile,
    lora: raw.feat_lora ?? false,
    // Only when the manifest gives it: single-node profiles look as they always did.
    ...(raw.nodes !== undefined ? { nodes: raw.nodes } : {}),
  };
}

/** NIM's string form of the tags (defaults filled in): what ids hash and what list-model-profiles shows. */
function displayTags(t: ProfileTags, loraMaxRank: number | undefined): Record<string, string> {
  const out: Record<string, string> = {
    llm_engine: t.engine,
    precision: t.precision,
    tp: String(t.tp),
    pp: String(t.pp),
    device: t.device,
    feat_lora: String(t.lora),
  };
  // Only multi-node profiles carry `nodes`, so single-node profiles keep the ids they always had.
  if (profileNodes(t) > 1) out.nodes = String(profileNodes(t));
  if (t.gpu !== undefined) out.gpu = t.gpu;
  if (t.gpuDevice !== undefined) out.gpu_device = t.gpuDevice;
  if (t.minGpuMemoryGiB !== undefined) out.min_gpu_memory_gb = String(t.minGpuMemoryGiB);
  if (t.goal !== undefined) out.profile = t.goal;
  if (loraMaxRank !== undefined) out.feat_lora_max_rank = String(loraMaxRank);
  return out;
}

/** Parse and validate manifest text. `file` is used for messages and to resolve relative paths. */
export function parseManifestText(text: string, file: string): ParsedManifest {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const yamlErr = doc.errors[0];
  if (yamlErr) {
    const line = yamlErr.linePos?.[0]?.line ?? lc.linePos(yamlErr.pos[0]).line;
    const msg = yamlErr.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ManifestError(file, `invalid YAML: ${msg}`, { line, hint: FORMAT_HINT });
  }
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (data === null || data === undefined) {
    throw new ManifestError(file, 'the manifest is empty', { hint: FORMAT_HINT });
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ManifestError(file, `expected a map with schema_version, model and profiles, got ${show(data)}`, {
      line: 1,
      hint: FORMAT_HINT,
    });
  }
  const parsed = manifestSchema.safeParse(data, {
    error: (iss) => (iss.code === 'invalid_type' && iss.input === undefined ? 'is required' : undefined),
  });
  if (!parsed.success) throwProblems(file, problemsFromIssues(parsed.error.issues), doc, lc);
  const raw: RawManifest = parsed.data;
  const problems: ManifestProblem[] = [];

  if (!SUPPORTED_SCHEMA.test(raw.schema_version)) {
    problems.push({
      path: ['schema_version'],
      message: `unsupported schema_version ${show(raw.schema_version)}: this supervisor reads version 1 (e.g. "1.0")`,
    });
  }

  // model.source: hf://org/repo, an absolute path, or ./relative (to the manifest).
  const dir = path.dirname(file);
  let source = raw.model.source;
  if (!source.startsWith('hf://')) {
    if (path.isAbsolute(source)) {
      // as given
    } else if (source.startsWith('./') || source.startsWith('../')) {
      source = path.resolve(dir, source);
    } else {
      problems.push({
        path: ['model', 'source'],
        message: `ambiguous source ${show(source)}: write "hf://${source}" for a Hugging Face repository or "./${source}" for a directory next to the manifest`,
      });
    }
  }

  let licenseFile: string | undefined;
  if (raw.model.license.path !== undefined) licenseFile = path.resolve(dir, raw.model.license.path);

  const profiles: Profile[] = [];
  const byId = new Map<string, number>();
  const byName = new Map<string, number>();
  raw.profiles.forEach((rp, i) => {
    const tags = normaliseTags(rp.tags);
    const at = (...rest: PathKey[]): PathKey[] => ['profiles', i, ...rest];
    if (tags.device === 'cpu') {
      for (const key of ['gpu', 'gpu_device', 'min_gpu_memory_gb'] as const) {
        if (rp.tags[key] !== undefined) {
          problems.push({ path: at('tags', key), message: `a device: cpu profile cannot have a ${key} tag` });
        }
      }
    }
    const nodes = profileNodes(tags);
    if (nodes > 1) {
      if (tags.device === 'cpu') {
        problems.push({ path: at('tags', 'nodes'), message: 'a device: cpu profile runs on one node: nodes must be 1' });
      } else if ((tags.tp * tags.pp) % nodes !== 0) {
        problems.push({
          path: at('tags', 'nodes'),
          message: `tp × pp = ${tags.tp * tags.pp} GPUs do not split evenly over ${nodes} nodes: GPUs per node (tp × pp / nodes) must be a whole number`,
        });
      }
    }
    if (rp.tags.feat_lora_max_rank !== undefined && !tags.lora) {
      problems.push({ path: at('tags', 'feat_lora_max_rank'), message: 'feat_lora_max_rank needs feat_lora: true' });
    }
    const engineArgs = rp.engine_args ?? [];
    const engineEnv = rp.env ?? {};
    const dTags = displayTags(tags, rp.tags.feat_lora_max_rank);
    const id = rp.id ?? computeProfileId({ model: raw.model.name, tags: dTags, engineArgs, env: engineEnv });
    const name = rp.name ?? deriveProfileName(tags);
    const dupId = byId.get(id);
    if (dupId !== undefined) {
      problems.push({
        path: rp.id !== undefined ? at('id') : at(),
        message:
          rp.id !== undefined
            ? `duplicate profile id ${id} (also profiles[${dupId}])`
            : `profile has the same content, and so the same id ${id.slice(0, 12)}…, as profiles[${dupId}]`,
      });
    } else byId.set(id, i);
    const dupName = byName.get(name.toLowerCase());
    if (dupName !== undefined) {
      problems.push({
        path: rp.name !== undefined ? at('name') : at(),
        message:
          rp.name !== undefined
            ? `duplicate profile name "${name}" (also profiles[${dupName}]; names are compared ignoring case)`
            : `the derived name "${name}" is also the name of profiles[${dupName}]; give one of them an explicit name`,
      });
    } else byName.set(name.toLowerCase(), i);
    profiles.push({
      id,
      name,
      tags,
      displayTags: dTags,
      engineArgs,
      engineEnv,
      description: rp.description,
    });
  });
  // A name must not read as another profile's id or id prefix, or NIM_MODEL_PROFILE would be ambiguous.
  profiles.forEach((p, i) => {
    if (raw.profiles[i]!.name === undefined) return;
    const lower = p.name.toLowerCase();
    const clash = profiles.find((q) => q !== p && /^[0-9a-f]{4,64}$/.test(lower) && q.id.startsWith(lower));
    if (clash) problems.push({ path: ['profiles', i, 'name'], message: `name "${p.name}" is also a prefix of profile id ${clash.id}` });
  });
  if (problems.length) throwProblems(file, problems, doc, lc);

  const manifest: Manifest = {
    file,
    schemaVersion: raw.schema_version,
    model: {
      name: raw.model.name,
      servedModelName: raw.model.served_model_name ?? raw.model.name,
      source,
      modality: raw.model.modality,
      release: raw.model.release,
      license: {
        name: raw.model.license.name,
        text: raw.model.license.text ?? '',
        path: licenseFile,
        url: raw.model.license.url,
      },
      maxModelLen: raw.model.max_model_len,
      description: raw.model.description,
    },
    profiles,
  };
  return {
    manifest,
    licenseFile,
    relative: {
      source: source === raw.model.source ? undefined : raw.model.source,
      licensePath: raw.model.license.path,
    },
  };
}

/** Parse manifest text as if read from `file` (license files are read synchronously). */
export function parseManifest(text: string, file: string): Manifest {
  const abs = path.resolve(file);
  const parsed = parseManifestText(text, abs);
  if (parsed.licenseFile) {
    try {
      parsed.manifest.model.license.text = readFileSync(parsed.licenseFile, 'utf8');
    } catch (err) {
      licenseProblem(parsed, abs, err);
    }
  }
  return parsed.manifest;
}

export function loadManifestSync(file: string): Manifest {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw readError(abs, err);
  }
  return parseManifest(text, abs);
}

/**
 * Parse and validate manifest text read from `abs`, then read its license
 * file: what readManifest (read.ts) falls back to when no precompiled form matches.
 */
export async function parseLoadedManifest(text: string, abs: string): Promise<Manifest> {
  return await withLicense(parseManifestText(text, abs), abs);
}
