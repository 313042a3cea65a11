// vLLM's LoRA flags for the served adapters, and the limits they imply. Pure.
//
//   --enable-lora --max-lora-rank R --max-loras G --max-cpu-loras C
//   [--lora-modules name=path … | '{"name":…,"path":…}']
//
// Sources (vLLM v0.11): vllm/engine/arg_utils.py (the LoRA group; --max-lora-rank
// takes one of MaxLoRARanks), vllm/config/lora.py (max_cpu_loras >= max_loras),
// vllm/entrypoints/openai/cli_args.py LoRAParserAction (`name=path` when the item
// has "=" and no ",", otherwise a JSON object {"name","path","base_model_name"}).
import type { LoraConfig } from '../config/env.js';
import { lastFlagValue } from '../manifest/flags.js';
import type { Profile } from '../manifest/types.js';
import { VLLM_LORA_RANKS, vllmRankFor, type LoraAdapter } from './adapter.js';

/** NIM's documented defaults for NIM_MAX_GPU_LORAS and NIM_MAX_CPU_LORAS (NIM 1.x PEFT docs). */
export const DEFAULT_MAX_GPU_LORAS = 8;
export const DEFAULT_MAX_CPU_LORAS = 16;

/** The flags this module owns: a profile's own occurrences are replaced. */
export const LORA_FLAGS = ['--enable-lora', '--max-lora-rank', '--max-loras', '--max-cpu-loras', '--lora-modules'] as const;

/** What the engine is started with, and the rank limit adapters are held to. */
export interface LoraLaunch {
  /** --max-lora-rank: one of vLLM's accepted ranks. */
  maxLoraRank: number;
  /** --max-loras */
  maxLoras: number;
  /** --max-cpu-loras */
  maxCpuLoras: number;
  /** Adapters loaded at start-up through --lora-modules. */
  modules: LoraAdapter[];
  /** VLLM_ALLOW_RUNTIME_LORA_UPDATING: the runtime load/unload routes are needed for refresh. */
  runtimeUpdates: boolean;
  /** Adapters above this rank are skipped (NIM_MAX_LORA_RANK, the profile's feat_lora_max_rank, or --max-lora-rank). */
  rankLimit: number;
  /** Where rankLimit comes from, for messages. */
  rankLimitSource: string;
}

/** One --lora-modules item: `name=path` when vLLM would split it back exactly, else the JSON form. */
export function loraModuleArg(a: Pick<LoraAdapter, 'name' | 'path'>): string {
  const plain = `${a.name}=${a.path}`;
  const ok = !a.name.includes('=') && !a.path.includes('=') && !plain.includes(',') && !a.name.startsWith('-') && a.name !== '';
  return ok ? plain : JSON.stringify({ name: a.name, path: a.path });
}

function intFlag(args: readonly string[], flag: string): number | undefined {
  const v = lastFlagValue(args, flag);
  const n = v === undefined ? Number.NaN : Number(v);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * The rank limit: NIM_MAX_LORA_RANK, else --max-lora-rank in NIM_PASSTHROUGH_ARGS,
 * else the profile's feat_lora_max_rank, else the largest rank vLLM accepts.
 */
export function rankLimitFor(
  lora: Pick<LoraConfig, 'maxLoraRank'>,
  profile: Profile,
  passthroughArgs: readonly string[],
): { limit: number; source: string } {
  const passthrough = intFlag(passthroughArgs, '--max-lora-rank');
  if (passthrough !== undefined) return { limit: passthrough, source: '--max-lora-rank in NIM_PASSTHROUGH_ARGS' };
  if (lora.maxLoraRank !== undefined) return { limit: lora.maxLoraRank, source: 'NIM_MAX_LORA_RANK' };
  const tag = Number(profile.displayTags.feat_lora_max_rank);
  if (Number.isInteger(tag) && tag > 0) return { limit: tag, source: `feat_lora_max_rank of profile ${profile.name}` };
  const max: number = VLLM_LORA_RANKS[VLLM_LORA_RANKS.length - 1]!;
  return { limit: max, source: "vLLM's largest --max-lora-rank" };
}

/**
 * The launch settings for the adapters that passed every check (`adapters`, of
 * rank <= the limit). --max-lora-rank is the smallest rank vLLM accepts that
 * holds the largest adapter; with refresh on, it also holds an explicit limit
 * (NIM_MAX_LORA_RANK or the profile's), so adapters added later up to it load.
 * NIM_MAX_GPU_LORAS / NIM_MAX_CPU_LORAS win over the profile's --max-loras /
 * --max-cpu-loras, which win over NIM's defaults; NIM_PASSTHROUGH_ARGS wins over all.
 */
export function planLoraLaunch(input: {
  lora: LoraConfig;
  profile: Profile;
  passthroughArgs: readonly string[];
  adapters: readonly LoraAdapter[];
}): LoraLaunch {
  const { lora, profile, passthroughArgs, adapters } = input;
  const { limit, source } = rankLimitFor(lora, profile, passthroughArgs);
  const refresh = lora.refreshIntervalMs !== undefined;
  const largest = adapters.reduce((m, a) => Math.max(m, a.rank), 0);
  const explicitLimit = source === "vLLM's largest --max-lora-rank" ? 0 : limit;
  const wanted = Math.max(largest, refresh ? explicitLimit : 0, largest === 0 ? 16 : 0);
  const maxLoraRank = intFlag(passthroughArgs, '--max-lora-rank') ?? vllmRankFor(Math.min(wanted, 512)) ?? 512;
  const profileArgs = profile.engineArgs;
  const maxLoras =
    intFlag(passthroughArgs, '--max-loras') ?? lora.maxGpuLoras ?? intFlag(profileArgs, '--max-loras') ?? DEFAULT_MAX_GPU_LORAS;
  const cpu = intFlag(passthroughArgs, '--max-cpu-loras') ?? lora.maxCpuLoras ?? intFlag(profileArgs, '--max-cpu-loras') ?? DEFAULT_MAX_CPU_LORAS;
  return {
    maxLoraRank,
    maxLoras,
    // vLLM refuses max_cpu_loras < max_loras; only an explicit pair (checked in env.ts) can ask for that.
    maxCpuLoras: Math.max(cpu, maxLoras),
    modules: [...adapters],
    runtimeUpdates: refresh,
    // Adapters added later (refresh) must also fit the engine's --max-lora-rank.
    rankLimit: refresh ? Math.min(limit, maxLoraRank) : limit,
    rankLimitSource: !refresh || limit <= maxLoraRank ? source : `--max-lora-rank ${maxLoraRank} the engine runs with`,
  };
}

/** The flags, in order: --enable-lora --max-lora-rank R --max-loras G --max-cpu-loras C [--lora-modules …]. */
export function loraEngineArgs(l: LoraLaunch): string[] {
  const args = ['--enable-lora', '--max-lora-rank', String(l.maxLoraRank), '--max-loras', String(l.maxLoras), '--max-cpu-loras', String(l.maxCpuLoras)];
  if (l.modules.length > 0) args.push('--lora-modules', ...l.modules.map(loraModuleArg));
  return args;
}

/** The engine environment LoRA needs: the runtime load/unload routes only when adapters are refreshed. */
export function loraEngineEnv(l: LoraLaunch): Record<string, string> {
  return l.runtimeUpdates ? { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' } : {};
}

/**
 * Replace the values of the first --lora-modules in `args` (in place) with
 * `modules`, or add the flag after --max-cpu-loras: a restarted engine then
 * starts with the adapters served now rather than those of the first start.
 */
export function setLoraModules(args: string[], modules: readonly Pick<LoraAdapter, 'name' | 'path'>[]): void {
  const at = args.indexOf('--lora-modules');
  if (at >= 0) {
    let end = at + 1;
    while (end < args.length && !args[end]!.startsWith('-')) end++;
    args.splice(at, end - at);
  }
  if (modules.length === 0) return;
  const cpu = args.indexOf('--max-cpu-loras');
  const insertAt = at >= 0 ? at : cpu >= 0 ? cpu + 2 : args.length;
  args.splice(insertAt, 0, '--lora-modules', ...modules.map(loraModuleArg));
}
