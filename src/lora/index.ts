// LoRA adapters from NIM_PEFT_SOURCE, from start-up to the engine command:
// check the source, scan it twice, hold the adapters to the rank limit of the
// selected profile, and fix the engine's LoRA flags. See docs/lora.md.
import type { Config } from '../config/env.js';
import type { Logger } from '../log/logger.js';
import type { Manifest } from '../manifest/types.js';
import type { Selection } from '../selection/types.js';
import { engineModelArg } from '../engine/argv.js';
import type { BaseModelNames } from './adapter.js';
import { planLoraLaunch, rankLimitFor, type LoraLaunch } from './flags.js';
import { LoraAdapters } from './manager.js';
import { assertPeftSource } from './scan.js';

export { engineLoraApi, LoraAdapters } from './manager.js';
export { adapterCounter, countAdapterResponses, peekAdapterResponses, registerLoraMetrics } from './metrics.js';
export type { LoraLaunch } from './flags.js';

export interface PreparedLora {
  adapters: LoraAdapters;
  launch: LoraLaunch;
}

/** The names the served model goes by, for the base-model check. */
export function baseModelNames(manifest: Manifest, servedModelName: string): BaseModelNames {
  return { servedModelName, modelName: manifest.model.name, source: engineModelArg(manifest.model.source) };
}

/**
 * Discover the adapters and decide the LoRA launch for the selected profile.
 * Throws a ConfigError (exit 2) when NIM_PEFT_SOURCE is not a readable directory.
 */
export async function prepareLora(input: {
  config: Config;
  manifest: Manifest;
  selection: Selection;
  servedModelName: string;
  logger: Logger;
  /** Injected for tests: time between the two start-up scans. */
  settleMs?: number;
}): Promise<PreparedLora> {
  const { config, manifest, selection, servedModelName, logger } = input;
  const source = config.lora.peftSource!;
  await assertPeftSource(source);
  const adapters = new LoraAdapters({
    lora: config.lora,
    names: baseModelNames(manifest, servedModelName),
    logger,
    ...(input.settleMs !== undefined ? { settleMs: input.settleMs } : {}),
  });
  await adapters.discover();
  const { limit } = rankLimitFor(config.lora, selection.profile, config.passthroughArgs);
  const launch = planLoraLaunch({
    lora: config.lora,
    profile: selection.profile,
    passthroughArgs: config.passthroughArgs,
    adapters: adapters.candidates().filter((a) => a.rank <= limit),
  });
  adapters.launchWith(launch);
  return { adapters, launch };
}
