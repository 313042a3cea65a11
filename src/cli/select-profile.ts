// `nim-supervisor select-profile [--json]`: the profile `serve` would run, how
// it was chosen, and the exact engine command line and environment -- without
// starting anything. The engine port is shown as <port>: serve picks a free
// loopback port when it starts the engine. Exit 2 when no profile can be
// selected (or NIM_MODEL_PROFILE is unknown, ambiguous or cannot run here).
import { loadConfig } from '../config/env.js';
import { createLogger } from '../log/logger.js';
import { buildEngineCommand, ENGINE_HOST } from '../engine/argv.js';
import { buildSelectionReport, formatSelectionReport, withPortPlaceholder } from './format-profiles.js';
import { parseReportOptions } from './format-options.js';
import { planLaunch, type PlanDeps } from './plan.js';

export const SELECT_USAGE = `Usage: nim-supervisor select-profile [--json] [--vllm-flag value …]

Print the profile serve would run (id, name, tags, how it was chosen), the
exact vLLM command line and environment, and which layer set each engine
argument (manifest, profile, NIM_* variable, NIM_PASSTHROUGH_ARGS, command
line) and what it overrode -- without starting anything. vLLM flags given
here are the command-line layer, as with \`serve --flag …\`.
`;

/** The engine's bind address: serve keeps vLLM on loopback and fronts it. */

export async function selectProfileCommand(args: string[], deps: PlanDeps = {}): Promise<number> {
  const own: string[] = args.filter((a) => a === '--json' || a === '-h' || a === '--help');
  const opts = parseReportOptions('select-profile', own);
  if (opts.help) {
    process.stdout.write(SELECT_USAGE);
    return 0;
  }
  const config = loadConfig(process.env, args.filter((a) => !own.includes(a)));
  const log = createLogger({ level: config.logLevel, jsonl: config.jsonlLogging, destination: process.stderr });
  for (const w of config.warnings) log.warn(w);
  const plan = await planLaunch(config, deps);
  for (const w of plan.warnings) log.warn(w);
  // With NIM_PEFT_SOURCE, the adapters found now decide the LoRA flags (warnings for skipped ones go to stderr).
  const lora = config.lora.peftSource
    ? await (await import('../lora/index.js')).prepareLora({ config, manifest: plan.manifest, selection: plan.selection, servedModelName: plan.servedModelName, logger: log })
    : undefined;
  const built = buildEngineCommand({ manifest: plan.engineManifest, selection: plan.selection, config, host: ENGINE_HOST, port: 0, lora: lora?.launch });
  const command = withPortPlaceholder({ ...built, env: { ...plan.engineEnv, ...built.env } });
  const report = buildSelectionReport({
    selection: plan.selection,
    servedModelName: plan.servedModelName,
    command,
    modelProfile: config.modelProfile,
  });
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatSelectionReport(report));
  return 0;
}
