// Environment knobs read by the simulator only (VLLM_SIM_*), plus the few
// real vLLM environment variables it honours. Validated with zod; a bad value
// is reported naming the variable so the caller can exit 2 at once.
import { z } from 'zod';
import { NEWEST_RELEASE, RELEASE_IDS, releaseFor, type ReleaseId } from './release.js';

const boolish = z
  .string()
  .trim()
  .toLowerCase()
  .refine((s) => ['', '0', '1', 'true', 'false', 'yes', 'no', 'on', 'off'].includes(s), {
    message: 'expected 1/0, true/false, yes/no or on/off',
  })
  .transform((s) => ['1', 'true', 'yes', 'on'].includes(s));

const nonNegInt = z
  .string()
  .trim()
  .regex(/^\d+$/, 'expected a non-negative integer')
  .transform(Number);

const posInt = nonNegInt.refine((n) => n > 0, 'expected a positive integer');
const exitCode = nonNegInt.refine((n) => n <= 255, 'expected an exit code 0-255');
const positiveNumber = z
  .string()
  .trim()
  .regex(/^\d+(\.\d+)?$/, 'expected a non-negative number')
  .transform(Number);

const release = z
  .string()
  .trim()
  .refine((s) => releaseFor(s) !== null, { message: `expected one of ${RELEASE_IDS.join(', ')} (e.g. 0.31 or 0.31.0)` })
  .transform((s) => releaseFor(s)!.id as ReleaseId);

const SPEC = {
  /** The vLLM release to behave as (src/sim/release.ts). */
  VLLM_SIM_VERSION: { schema: release, default: NEWEST_RELEASE as ReleaseId },
  VLLM_SIM_STARTUP_MS: { schema: nonNegInt, default: 200 },
  VLLM_SIM_TTFT_MS: { schema: nonNegInt, default: 0 },
  VLLM_SIM_TOKEN_MS: { schema: nonNegInt, default: 2 },
  VLLM_SIM_MAX_CONCURRENCY: { schema: posInt, default: null },
  VLLM_SIM_CRASH_AFTER_MS: { schema: nonNegInt, default: null },
  VLLM_SIM_EXIT_CODE: { schema: exitCode, default: 1 },
  VLLM_SIM_HEALTH: { schema: z.enum(['ok', 'fail']), default: 'ok' },
  VLLM_SIM_HEALTH_FILE: { schema: z.string().min(1), default: null },
  VLLM_SIM_HEALTH_DELAY_MS: { schema: nonNegInt, default: 0 },
  VLLM_SIM_ENGINE_CORE_PROCESS: { schema: boolish, default: false },
  VLLM_SIM_HANG_ON_SIGTERM: { schema: boolish, default: false },
  VLLM_SIM_NEVER_LISTEN: { schema: boolish, default: false },
  VLLM_SIM_MODE: { schema: z.enum(['random', 'echo']), default: 'random' },
  VLLM_SIM_FAIL_AT_STARTUP: { schema: exitCode.refine((n) => n > 0, 'expected an exit code 1-255'), default: null },
  VLLM_SIM_IMAGE_TOKENS: { schema: posInt, default: 256 },
  VLLM_SIM_MAX_MODEL_LEN: { schema: posInt, default: 4096 },
  // Real vLLM variables.
  VLLM_API_KEY: { schema: z.string(), default: null },
  VLLM_LOG_STATS_INTERVAL: { schema: positiveNumber, default: 10 },
  VLLM_HTTP_TIMEOUT_KEEP_ALIVE: { schema: positiveNumber, default: 5 },
  // vllm/envs.py: "1" or "true" (any case) turns the runtime LoRA routes on; anything else is off.
  VLLM_ALLOW_RUNTIME_LORA_UPDATING: { schema: z.string().transform((s) => ['1', 'true'].includes(s.trim().toLowerCase())), default: false },
  /** 0.31: the plain `vLLM server version …` line instead of the logo (serve/utils/api_utils.py@M:311-333). */
  VLLM_DISABLE_LOG_LOGO: { schema: boolish, default: false },
} as const;

type Spec = typeof SPEC;
export type Knobs = {
  -readonly [K in keyof Spec]: z.output<Spec[K]['schema']> | Spec[K]['default'];
};

export class KnobError extends Error {}

/** Read and validate the knobs from an environment. Unset or empty = default. */
export function readKnobs(env: NodeJS.ProcessEnv): Knobs {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(SPEC) as Array<[string, { schema: z.ZodType; default: unknown }]>) {
    const raw = env[name];
    if (raw === undefined || (raw === '' && name !== 'VLLM_API_KEY')) {
      out[name] = spec.default;
      continue;
    }
    const res = spec.schema.safeParse(raw);
    if (!res.success) {
      const why = res.error.issues.map((i) => i.message).join('; ');
      throw new KnobError(`invalid value for ${name}: ${JSON.stringify(raw)} (${why})`);
    }
    out[name] = res.data;
  }
  return out as Knobs;
}

export const KNOB_NAMES = Object.keys(SPEC);
