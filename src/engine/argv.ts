// The vLLM command line and environment for a selected profile. Pure: the same
// manifest, selection, configuration, host and port always give the same
// command. Order of the arguments, from first to last:
//
//   vllm serve <model> --host H --port P --served-model-name NAME
//     --tensor-parallel-size N --pipeline-parallel-size N
//     [--distributed-executor-backend ray]          (multi-node profiles)
//     [--max-model-len N] [--dtype … | --quantization …]
//     [--gpu-memory-utilization U]                  (GPU profiles: the value selection checked)
//     [--limit-mm-per-prompt {"image":N}] [--enable-lora [--max-lora-rank R]
//     [--max-loras G --max-cpu-loras C [--lora-modules …]]]    (NIM_PEFT_SOURCE: src/lora/flags.ts)
//     <profile engine_args> <NIM_PASSTHROUGH_ARGS>
//
// vLLM's argparse keeps the last occurrence of a flag, so NIM_PASSTHROUGH_ARGS,
// appended last, overrides anything before it (NIM's precedence: passthrough
// args over NIM_* variables over profile tags). Where a NIM_* variable and the
// profile's engine_args set the same flag, the profile's occurrence is dropped
// so the variable wins. See docs/selection.md.
import type { Config } from '../config/env.js';
import { hasFlag, lastFlagValue, withoutFlag } from '../manifest/flags.js';
import { precisionFlags } from '../manifest/precision.js';
import { profileNodes, type Manifest } from '../manifest/types.js';
import { LORA_FLAGS, loraEngineArgs, loraEngineEnv, type LoraLaunch } from '../lora/flags.js';
import type { EngineCommand, Selection } from '../selection/types.js';
import { engineTracing } from '../tracing/settings.js';

/** The engine always listens on loopback: only the supervisor's public port is exposed. */
export const ENGINE_HOST = '127.0.0.1';

export type ArgvConfig = Pick<
  Config,
  'engineCommand' | 'servedModelName' | 'maxModelLen' | 'maxImagesPerPrompt' | 'passthroughArgs'
> &
  Partial<Pick<Config, 'tracing'>>;

export interface EngineCommandInput {
  manifest: Manifest;
  selection: Selection;
  config: ArgvConfig;
  host: string;
  port: number;
  /** LoRA adapters to serve (NIM_PEFT_SOURCE); undefined = LoRA only as the profile's flag. */
  lora?: LoraLaunch | undefined;
}

/** The name clients use in `model`: NIM_SERVED_MODEL_NAME, else the manifest's served_model_name. */
export function servedModelNameFor(manifest: Manifest, config: Pick<Config, 'servedModelName'>): string {
  return config.servedModelName ?? manifest.model.servedModelName;
}

/** vLLM's model argument: a Hugging Face repo id (hf:// stripped) or a local path, as given. */
export function engineModelArg(source: string): string {
  return source.startsWith('hf://') ? source.slice('hf://'.length) : source;
}

/** --limit-mm-per-prompt with the image count from NIM_MAX_IMAGES_PER_PROMPT, keeping the profile's other modalities. */
function limitMmPerPrompt(profileValue: string | undefined, images: number): string {
  let base: Record<string, unknown> = {};
  if (profileValue !== undefined) {
    try {
      const parsed: unknown = JSON.parse(profileValue);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) base = parsed as Record<string, unknown>;
    } catch {
      /* not JSON: replaced entirely */
    }
  }
  return JSON.stringify({ ...base, image: images });
}

export function buildEngineCommand(input: EngineCommandInput): EngineCommand {
  const { manifest, selection, config, host, port } = input;
  const profile = selection.profile;
  const evaluation = selection.evaluation;
  let profileArgs = [...profile.engineArgs];

  const args: string[] = [
    'serve',
    engineModelArg(manifest.model.source),
    '--host',
    host,
    '--port',
    String(port),
    '--served-model-name',
    servedModelNameFor(manifest, config),
    '--tensor-parallel-size',
    String(evaluation.tp),
    '--pipeline-parallel-size',
    String(evaluation.pp),
  ];
  // Multi-node: vLLM spreads tp × pp over the Ray cluster the leader formed (see docs/multi-node.md).
  if (profileNodes(profile.tags) > 1) args.push('--distributed-executor-backend', 'ray');

  // Context length: NIM_MAX_MODEL_LEN, else the profile's own flag (left in its args), else the manifest's default.
  if (config.maxModelLen !== undefined) {
    args.push('--max-model-len', String(config.maxModelLen));
    profileArgs = withoutFlag(profileArgs, '--max-model-len');
  } else if (manifest.model.maxModelLen !== undefined && !hasFlag(profileArgs, '--max-model-len')) {
    args.push('--max-model-len', String(manifest.model.maxModelLen));
  }

  args.push(...precisionFlags(profile.tags.precision));

  // Always the share selection checked free memory against (evaluation.gpuMemoryUtilization),
  // never vLLM's own default, which moved from 0.90 to 0.92 (vLLM PR #38284).
  if (profile.tags.device !== 'cpu') {
    args.push('--gpu-memory-utilization', String(evaluation.gpuMemoryUtilization));
    profileArgs = withoutFlag(profileArgs, '--gpu-memory-utilization');
  }

  if (manifest.model.modality === 'vlm' && config.maxImagesPerPrompt !== undefined) {
    const fromProfile = lastFlagValue(profileArgs, '--limit-mm-per-prompt');
    args.push('--limit-mm-per-prompt', limitMmPerPrompt(fromProfile, config.maxImagesPerPrompt));
    profileArgs = withoutFlag(profileArgs, '--limit-mm-per-prompt');
  }

  if (input.lora) {
    // Adapters are served: the LoRA flags follow them (src/lora/flags.ts), not the profile's own.
    args.push(...loraEngineArgs(input.lora));
    profileArgs = withoutFlag(profileArgs, ...LORA_FLAGS.filter((f) => f !== '--enable-lora' && f !== '--lora-modules'));
    profileArgs = withoutLoraModules(profileArgs.filter((a) => a !== '--enable-lora' && a !== '--no-enable-lora'));
  } else if (profile.tags.lora) {
    args.push('--enable-lora');
    const rank = profile.displayTags.feat_lora_max_rank;
    if (rank !== undefined) args.push('--max-lora-rank', rank);
  }

  // NIM_ENABLE_OTEL: vLLM exports its own spans to the same collector (unless the flag is passed through).
  const tracing = engineTracing(config.tracing, [...profileArgs, ...config.passthroughArgs]);
  args.push(...tracing.args);

  args.push(...profileArgs, ...config.passthroughArgs);

  const env: Record<string, string> = { ...tracing.env, ...profile.engineEnv, ...(input.lora ? loraEngineEnv(input.lora) : {}) };
  if (profile.tags.device !== 'cpu' && selection.cudaVisibleDevices !== undefined) {
    env.CUDA_VISIBLE_DEVICES = selection.cudaVisibleDevices;
    // Index form only makes sense in nvidia-smi's (PCI bus) order; harmless with UUIDs.
    env.CUDA_DEVICE_ORDER = 'PCI_BUS_ID';
  }
  return { command: config.engineCommand, args, env };
}

/** `args` without --lora-modules and its one-or-more values (argparse nargs='+'). */
function withoutLoraModules(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--lora-modules') {
      while (i + 1 < args.length && !args[i + 1]!.startsWith('-')) i++;
    } else if (!args[i]!.startsWith('--lora-modules=')) {
      out.push(args[i]!);
    }
  }
  return out;
}

export const MASK = '***';

/** Environment variable names whose values are secrets. */
export function isSecretEnvName(name: string): boolean {
  return /(_KEY|_TOKEN|_SECRET)$/i.test(name) || /PASSWORD/i.test(name) || /^(API_KEY|TOKEN|SECRET)$/i.test(name);
}

const SAFE_TOKEN = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX shell quoting: bare when safe, else single quotes. */
export function shellQuote(token: string): string {
  if (token !== '' && SAFE_TOKEN.test(token)) return token;
  return `'${token.replace(/'/g, `'\\''`)}'`;
}

/** Flags whose values are secrets (vLLM accepts several keys after --api-key). */
const SECRET_FLAGS = ['--api-key'];

/** The argument list with secret values replaced by ***. */
export function maskArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const t = args[i]!;
    const flag = SECRET_FLAGS.find((f) => t === f || t.startsWith(`${f}=`));
    if (!flag) {
      out.push(t);
    } else if (t !== flag) {
      out.push(`${flag}=${MASK}`);
    } else {
      out.push(t);
      while (i + 1 < args.length && !args[i + 1]!.startsWith('-')) {
        out.push(MASK);
        i++;
      }
    }
  }
  return out;
}

/** The environment with secret values replaced by ***. */
export function maskEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, isSecretEnvName(k) ? MASK : v]));
}

/**
 * One shell-quoted line, `NAME=value … command args…`, for logs and
 * `select-profile`: secrets show as ***, everything else can be pasted into a shell.
 */
export function formatCommandLine(cmd: EngineCommand): string {
  const env = Object.entries(cmd.env)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${isSecretEnvName(k) ? MASK : shellQuote(v)}`);
  const args = maskArgs(cmd.args).map((a) => (a === MASK || a.endsWith(`=${MASK}`) ? a : shellQuote(a)));
  return [...env, shellQuote(cmd.command), ...args].join(' ');
}
