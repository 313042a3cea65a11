// `nim-supervisor list-model-profiles [--json]`: the system info and every
// profile of the manifest -- runnable, low on free memory, or incompatible
// with the reasons -- in the shape of NIM's utility. Exit 0 whenever the report
// could be made (even when no profile can run); warnings go to stderr.
import { loadConfig } from '../config/env.js';
import { createLogger } from '../log/logger.js';
import { buildProfilesReport, formatProfilesReport } from './format-profiles.js';
import { parseReportOptions } from './format-options.js';
import { surveyProfiles, type PlanDeps } from './plan.js';

export const LIST_USAGE = `Usage: nim-supervisor list-model-profiles [--json]

Print the detected system and every profile of the manifest (NIM_MANIFEST_PATH):
compatible and runnable (the selected one marked), compatible but short of free
GPU memory, and incompatible with the reasons. --json prints the same as JSON.
`;

export async function listModelProfilesCommand(args: string[], deps: PlanDeps = {}): Promise<number> {
  const opts = parseReportOptions('list-model-profiles', args);
  if (opts.help) {
    process.stdout.write(LIST_USAGE);
    return 0;
  }
  const config = loadConfig(process.env);
  const log = createLogger({ level: config.logLevel, jsonl: config.jsonlLogging, destination: process.stderr });
  for (const w of config.warnings) log.warn(w);
  const survey = await surveyProfiles(config, deps);
  for (const w of survey.warnings) log.warn(w);
  if (survey.selectionError) log.warn(`no profile selected: ${survey.selectionError.message}`);
  const report = buildProfilesReport({
    inventory: survey.inventory,
    manifest: survey.manifest,
    evaluations: survey.evaluations,
    selection: survey.selection,
    selectionError: survey.selectionError?.message,
    imageEnv: process.env,
  });
  // Say it on stderr too: the image's CUDA needs a newer driver than the host has.
  const cuda = report.system.cudaCompatibility;
  if (cuda) log[cuda.level === 'error' ? 'error' : 'warn']({ code: cuda.code, hint: cuda.hint }, cuda.message);
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatProfilesReport(report));
  return 0;
}
