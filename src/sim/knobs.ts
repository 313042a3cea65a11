// Environment knobs read by the simulator only (VLLM_SIM_*), plus the few
// real vLLM environment variables it honours. Validated with zod; a bad value
// is reported naming the variable so the caller can exit 2 at once.
import * as z from 'zod/mini';
import '../config/zod-mini.js'; // zod's English messages
import { NEWEST_RELEASE, RELEASE_IDS, releaseFor, type ReleaseId } from './release.js';

// zod's mini API (src/config/zod-mini.ts): the simulator is an engine, and its start-up counts in every test.
const boolish = z.pipe(
  z.string().check(
    z.trim(),
    z.toLowerCase(),
    z.refine((s) => ['', '0', '1', 'true', 'false', 'yes', 'no', 'on', 'off'].includes(s), {
      message: 'expected 1/0, true/false, yes/no or on/off',
    }),
  ),
  z.transform((s: string) => ['1', 'true', 'yes', 'on'].includes(s)),
);

const nonNegInt = z.pipe(z.string().check(z.trim(), z.regex(/^\d+$/, 'expected a non-negative integer')), z.transform(Number));

const posInt = nonNegInt.check(z.refine((n) => n > 0, 'expected a positive integer'));
const exitCode = nonNegInt.check(z.refine((n) => n <= 255, 'expected an exit code 0-255'));
const positiveNumber = z.pipe(z.string().check(z.trim(), z.regex(/^\d+(\.\d+)?$/, 'expected a non-negative number')), z.transform(Number));

const release = z.pipe(
  z.string().check(
    z.trim(),
    z.refine((s) => releaseFor(s) !== null, { message: `expected one of ${RELEASE_IDS.join(', ')} (e.g. 0.31 or 0.31.0)` }),
  ),
  z.transform((s: string) => releaseFor(s)!.id as ReleaseId),
);

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
  VLLM_SIM_HEALTH_FILE: { schema: z.string().check(z.minLength(1)), default: null },
  VLLM_SIM_HEALTH_DELAY_MS: { schema: nonNegInt, default: 0 },
  VLLM_SIM_ENGINE_CORE_PROCESS: { schema: boolish, default: false },
  VLLM_SIM_HANG_ON_SIGTERM: { schema: boolish, default: false },
  VLLM_SIM_NEVER_LISTEN: { schema: boolish, default: false },
  VLLM_SIM_MODE: { schema: z.enum(['random', 'echo']), default: 'random' },
  VLLM_SIM_FAIL_AT_STARTUP: { schema: exitCode.check(z.refine((n) => n > 0, 'expected an exit code 1-255')), default: null },
  VLLM_SIM_IMAGE_TOKENS: { schema: posInt, default: 256 },
  VLLM_SIM_MAX_MODEL_LEN: { schema: posInt, default: 4096 },
  // Real vLLM variables.
  VLLM_API_KEY: { schema: z.string(), default: null },
  VLLM_LOG_STATS_INTERVAL: { schema: positiveNumber, default: 10 },
  VLLM_HTTP_TIMEOUT_KEEP_ALIVE: { schema: positiveNumber, default: 5 },
  // vllm/envs.py: "1" or "true" (any case) turns the runtime LoRA routes on; anything else is off.
  VLLM_ALLOW_RUNTIME_LORA_UPDATING: { schema: z.pipe(z.string(), z.transform((s: string) => ['1', 'true'].includes(s.trim().toLowerCase()))), default: false },
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
  for (const [name, spec] of Object.entries(SPEC) as Array<[string, { schema: z.ZodMiniType; default: unknown }]>) {
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
