// The zod schema of a model manifest file (manifests/*.yaml). It validates the
// structure and the value of every field, and normalises tag values (NIM
// writes them as strings; we accept strings or numbers). Checks that need the
// whole file (duplicate ids and names, license files) live in load.ts.
// The format is documented in docs/manifests.md; keep the two in step.
import * as z from 'zod/mini';
import { transform, type CustomIssue } from '../config/zod-mini.js';
import { PRECISION_NAMES } from './precision.js';

/** How a value looks in an error message. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return JSON.stringify(v);
}

export const PROFILE_ID_RE = /^[0-9a-f]{64}$/;
const PCI_ID_RE = /^[0-9a-f]{4}:[0-9a-f]{4}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:+-]*$/;

/** A scalar written as a YAML string or number. */
function stringOrNumber(expected: string) {
  return z.union([z.string(), z.number()], { error: (iss) => iss.input === undefined ? 'is required' : `expected ${expected}, got ${show(iss.input)}` });
}

function positiveInt(what = 'a positive integer') {
  return z.pipe(
    stringOrNumber(what),
    transform((v: string | number, ctx) => {
      const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < 1) {
        ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${show(v)}` });
        return z.NEVER;
      }
      return n;
    }),
  );
}

function positiveNumber(what: string) {
  return z.pipe(
    stringOrNumber(what),
    transform((v: string | number, ctx) => {
      const n = typeof v === 'number' ? v : /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : Number.NaN;
      if (!Number.isFinite(n) || n <= 0) {
        ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${show(v)}` });
        return z.NEVER;
      }
      return n;
    }),
  );
}

function nonEmptyString(what = 'a non-empty string') {
  return z.pipe(
    z.string({ error: (iss) => iss.input === undefined ? 'is required' : `expected ${what}, got ${show(iss.input)}` }),
    transform((s: string, ctx) => {
      const t = s.trim();
      if (t === '') {
        ctx.addIssue({ code: 'custom', message: `expected ${what}, got an empty string` });
        return z.NEVER;
      }
      return t;
    }),
  );
}

/** A string chosen from a fixed list (case-insensitive), returned lower-case. */
function oneOf<T extends string>(values: readonly T[]) {
  return z.pipe(
    stringOrNumber(`one of ${values.join(', ')}`),
    transform((v: string | number, ctx) => {
      const s = String(v).trim().toLowerCase();
      if (!(values as readonly string[]).includes(s)) {
        ctx.addIssue({ code: 'custom', message: `expected one of ${values.join(', ')}, got ${show(v)}` });
        return z.NEVER;
      }
      return s as T;
    }),
  );
}

const boolLike = z.pipe(
  z.union([z.boolean(), z.string()], { error: (iss) => iss.input === undefined ? 'is required' : `expected true or false, got ${show(iss.input)}` }),
  transform((v: boolean | string, ctx) => {
    if (typeof v === 'boolean') return v;
    const s = v.trim().toLowerCase();
    if (s === 'true') return true;
    if (s === 'false') return false;
    ctx.addIssue({ code: 'custom', message: `expected true or false, got ${show(v)}` });
    return z.NEVER;
  }),
);

export const tagsSchema = z.strictObject({
  llm_engine: z.pipe(
    z.string({ error: (iss) => (iss.input === undefined ? 'is required (llm_engine: vllm)' : `expected "vllm", got ${show(iss.input)}`) }),
    transform((s: string, ctx) => {
      if (s.trim().toLowerCase() !== 'vllm') {
        ctx.addIssue({
          code: 'custom',
          message: `unsupported engine ${show(s)}: this supervisor only runs vLLM (llm_engine: vllm)`,
        });
        return z.NEVER;
      }
      return 'vllm' as const;
    }),
  ),
  precision: z.pipe(
    stringOrNumber(`a precision (${PRECISION_NAMES.join(', ')})`),
    transform((v: string | number, ctx) => {
      const s = String(v).trim().toLowerCase();
      if (!PRECISION_NAMES.includes(s)) {
        ctx.addIssue({ code: 'custom', message: `unknown precision ${show(v)}; expected one of ${PRECISION_NAMES.join(', ')}` });
        return z.NEVER;
      }
      return s;
    }),
  ),
  tp: z.optional(positiveInt('a positive integer (tensor-parallel size)')),
  pp: z.optional(positiveInt('a positive integer (pipeline-parallel size)')),
  nodes: z.optional(positiveInt('a positive integer (nodes of a multi-node group; tp × pp / nodes GPUs each)')),
  device: z.optional(oneOf(['gpu', 'cpu'] as const)),
  gpu: z.optional(nonEmptyString('a GPU family from profiles/gpus.yaml, e.g. "H100"')),
  gpu_device: z.optional(
    z.pipe(
      stringOrNumber('a PCI id "<device>:<vendor>", e.g. "2330:10de"'),
      transform((v: string | number, ctx) => {
        let s = String(v).trim().toLowerCase();
        if (/^[0-9a-f]{4}$/.test(s)) s = `${s}:10de`; // NVIDIA's vendor id, as NIM's operator assumes
        if (!PCI_ID_RE.test(s)) {
          ctx.addIssue({ code: 'custom', message: `expected a PCI id "<device>:<vendor>" in hex, e.g. "2330:10de", got ${show(v)}` });
          return z.NEVER;
        }
        return s;
      }),
    ),
  ),
  min_gpu_memory_gb: z.optional(positiveNumber('a positive number of GiB')),
  profile: z.optional(oneOf(['latency', 'throughput'] as const)),
  feat_lora: z.optional(boolLike),
  feat_lora_max_rank: z.optional(positiveInt()),
});

export type RawTags = z.output<typeof tagsSchema>;

/** Flags a profile must not set: the supervisor derives them from the model, the tags or the configuration. */
export const RESERVED_FLAGS: Readonly<Record<string, string>> = {
  '--host': 'the supervisor binds the engine to loopback itself',
  '--port': 'the supervisor picks the engine port itself',
  '--model': 'the model comes from model.source',
  '--served-model-name': 'set model.served_model_name (or NIM_SERVED_MODEL_NAME)',
  '--tensor-parallel-size': 'set tags.tp',
  '-tp': 'set tags.tp',
  '--pipeline-parallel-size': 'set tags.pp',
  '-pp': 'set tags.pp',
  '--dtype': 'set tags.precision',
  '--quantization': 'set tags.precision',
  '-q': 'set tags.precision',
  '--enable-lora': 'set tags.feat_lora: true',
  '--max-lora-rank': 'set tags.feat_lora_max_rank',
  '--api-key': 'API keys are not part of a manifest',
};

function flagName(token: string): string {
  const eq = token.indexOf('=');
  return eq > 0 ? token.slice(0, eq) : token;
}

function checkReserved(flag: string, ctx: { addIssue(issue: CustomIssue): void }, path: (string | number)[]): void {
  const why = RESERVED_FLAGS[flagName(flag)];
  if (why) ctx.addIssue({ code: 'custom', path, message: `${flagName(flag)} must not be set in a profile: ${why}` });
}

/** A value in the map form of engine_args. */
const argValue = z.union(
  [z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()])), z.record(z.string(), z.unknown())],
  { error: (iss) => iss.input === undefined ? 'is required' : `expected a string, number, boolean, list or map, got ${show(iss.input)}` },
);

const engineArgsForms = z.union([z.array(stringOrNumber('a command-line token (string or number)')), z.record(z.string(), argValue)], {
  error: (iss) => iss.input === undefined ? 'is required' : `expected a list of vLLM flags or a map of flag: value, got ${show(iss.input)}`,
});

/**
 * engine_args: either a list of raw vLLM tokens (`["--max-num-seqs", "8"]`) or
 * a map flag → value (`{max-num-seqs: 8, enforce-eager: true}`). Both become a
 * token list; map keys are sorted so the result does not depend on key order.
 */
export const engineArgsSchema = z.pipe(
  engineArgsForms,
  transform((v: z.output<typeof engineArgsForms>, ctx): string[] => {
    if (Array.isArray(v)) {
      const tokens = v.map(String);
      tokens.forEach((t, i) => {
        if (t.startsWith('-')) {
          checkReserved(t, ctx, [i]);
          const name = flagName(t);
          if (/\s/.test(name)) {
            ctx.addIssue({
              code: 'custom',
              path: [i],
              message: `${show(t)} holds a flag and its value in one token; write them as two list items (or use the map form)`,
            });
          }
        }
      });
      return tokens;
    }
    const out: string[] = [];
    for (const key of Object.keys(v).sort()) {
      const flag = key.startsWith('-') ? key : `--${key}`;
      if (!/^--?[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(flag)) {
        ctx.addIssue({ code: 'custom', path: [key], message: `${show(key)} is not a flag name` });
        continue;
      }
      checkReserved(flag, ctx, [key]);
      const value = v[key];
      if (value === true) out.push(flag);
      else if (value === false) continue; // documented: false leaves the flag out
      else if (Array.isArray(value)) out.push(flag, ...value.map(String));
      else if (typeof value === 'object' && value !== null) out.push(flag, JSON.stringify(value));
      else out.push(flag, String(value));
    }
    return out;
  }),
);

export const envSchema = z.pipe(
  z.record(z.string(), z.union([z.string(), z.number(), z.boolean()], { error: (iss) => iss.input === undefined ? 'is required' : `expected a string, number or boolean, got ${show(iss.input)}` }), {
    error: (iss) => iss.input === undefined ? 'is required' : `expected a map of NAME: value, got ${show(iss.input)}`,
  }),
  transform((env: Record<string, string | number | boolean>, ctx) => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) {
      if (!ENV_NAME_RE.test(k)) {
        ctx.addIssue({ code: 'custom', path: [k], message: `${show(k)} is not a valid environment variable name` });
      } else if (k === 'CUDA_VISIBLE_DEVICES' || k === 'CUDA_DEVICE_ORDER') {
        ctx.addIssue({ code: 'custom', path: [k], message: `${k} is set by the supervisor from the GPUs it selects` });
      }
      out[k] = String(v);
    }
    return out;
  }),
);

export const profileSchema = z.strictObject({
  id: z.optional(
    z
      .string({ error: (iss) => iss.input === undefined ? 'is required' : `expected 64 lower-case hex digits, got ${show(iss.input)}` })
      .check(
        z.refine((s) => PROFILE_ID_RE.test(s), {
          error: (iss) => iss.input === undefined ? 'is required' : `expected 64 lower-case hex digits (a sha256), got ${show(iss.input)}; or leave id out to have it computed`,
        }),
      ),
  ),
  name: z.optional(
    nonEmptyString().check(
      z.refine((s) => NAME_RE.test(s), { error: 'a profile name may only hold letters, digits and _ . : + -' }),
      z.refine((s) => s.toLowerCase() !== 'default', { error: '"default" is reserved: NIM_MODEL_PROFILE=default means automatic selection' }),
    ),
  ),
  description: z.optional(z.string({ error: (iss) => iss.input === undefined ? 'is required' : `expected a string, got ${show(iss.input)}` })),
  tags: tagsSchema,
  engine_args: z.optional(engineArgsSchema),
  env: z.optional(envSchema),
});

export type RawProfile = z.output<typeof profileSchema>;

const licenseSchema = z
  .strictObject({
    name: nonEmptyString(),
    text: z.optional(z.string({ error: (iss) => iss.input === undefined ? 'is required' : `expected a string, got ${show(iss.input)}` })),
    path: z.optional(nonEmptyString('a file path relative to the manifest')),
    url: z.optional(nonEmptyString('a URL').check(z.refine((s) => /^https?:\/\//.test(s), { error: 'expected an http(s) URL' }))),
  })
  .check(
    z.superRefine((v, ctx) => {
      if ((v.text === undefined) === (v.path === undefined)) {
        ctx.addIssue({
          code: 'custom',
          message: 'give exactly one of text (the license inline) or path (a file relative to the manifest)',
        });
      }
    }),
  );

export const modelSchema = z.strictObject({
  name: nonEmptyString('a model name, e.g. "nvidia/nemotron-3-content-safety"'),
  served_model_name: z.optional(nonEmptyString()),
  source: nonEmptyString('"hf://<org>/<repo>" or a local path').check(
    z.refine((s) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(s) || /^hf:\/\/[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(s), {
      error: 'expected "hf://<org>/<repo>" or a local path (vLLM cannot load other URI schemes directly)',
    }),
  ),
  modality: oneOf(['vlm', 'llm'] as const),
  release: z.pipe(stringOrNumber('a release string, e.g. "1.0.0"'), transform((v: string | number) => String(v))),
  license: licenseSchema,
  max_model_len: z.optional(positiveInt()),
  description: z.optional(z.string({ error: (iss) => iss.input === undefined ? 'is required' : `expected a string, got ${show(iss.input)}` })),
});

export const manifestSchema = z.strictObject({
  schema_version: z.pipe(stringOrNumber('a version string, e.g. "1.0"'), transform((v: string | number) => String(v))),
  model: modelSchema,
  profiles: z
    .array(profileSchema, { error: (iss) => iss.input === undefined ? 'is required' : `expected a list of profiles, got ${show(iss.input)}` })
    .check(z.minLength(1, { error: 'a manifest needs at least one profile' })),
});

export type RawManifest = z.output<typeof manifestSchema>;

/** Keys allowed at each level, for "did you mean" suggestions. */
export const KNOWN_KEYS: Record<string, readonly string[]> = {
  root: Object.keys(manifestSchema.shape),
  model: Object.keys(modelSchema.shape),
  license: ['name', 'text', 'path', 'url'],
  profile: Object.keys(profileSchema.shape),
  tags: Object.keys(tagsSchema.shape),
};
