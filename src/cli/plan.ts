// The launch plan: everything `serve`, `select-profile` and
// `list-model-profiles` decide before anything is started -- the manifest, the
// detected hardware, each profile's evaluation and the selected profile.
import type { Config } from '../config/env.js';
import { SelectionError } from '../errors.js';
import type { HardwareInventory } from '../hardware/types.js';
import { readManifest as loadManifest } from '../manifest/read.js';
import type { Manifest } from '../manifest/types.js';
import { evaluateProfiles } from '../selection/evaluate.js';
import { rankEvaluations, selectProfile } from '../selection/select.js';
import type { ProfileEvaluation, Selection } from '../selection/types.js';
import { servedModelNameFor } from '../engine/argv.js';
import type { PreparedModel } from '../model-free/prepare.js';

export interface LaunchPlan {
  config: Config;
  inventory: HardwareInventory;
  manifest: Manifest;
  selection: Selection;
  /** NIM_SERVED_MODEL_NAME, else the manifest's served_model_name. */
  servedModelName: string;
  /** Detection warnings, then selection warnings: for the caller to log (stderr), not to print in a report. */
  warnings: string[];
  /** Model-free (NIM_MODEL_PATH): the cached model and its files; undefined with a written manifest. */
  prepared: PreparedModel | undefined;
  /** The manifest the engine command is built from: model-free models load from the cached snapshot. */
  engineManifest: Manifest;
  /** Environment the engine needs on top of the profile's: HF_HUB_OFFLINE=1 on a cached snapshot or with NIM_DISABLE_MODEL_DOWNLOAD. */
  engineEnv: Record<string, string>;
}

export interface PlanDeps {
  /** Hardware detection (default: detectHardware with the configuration's visible-device variables). */
  detect?: () => Promise<HardwareInventory>;
}

/** What list-model-profiles shows: like a LaunchPlan, but selection may have failed. */
export interface ProfileSurvey {
  config: Config;
  inventory: HardwareInventory;
  manifest: Manifest;
  /** Compatible ones best first, then the incompatible ones in manifest order. */
  evaluations: ProfileEvaluation[];
  selection: Selection | undefined;
  selectionError: SelectionError | undefined;
  warnings: string[];
}

async function defaultDetect(config: Config): Promise<HardwareInventory> {
  const { detectHardware } = await import('../hardware/index.js');
  return await detectHardware({
    cudaVisibleDevices: config.cudaVisibleDevices,
    nvidiaVisibleDevices: config.nvidiaVisibleDevices,
    env: process.env,
    driver: true,
  });
}

/**
 * The manifest: NIM_MANIFEST_PATH's, or with NIM_MODEL_PATH one generated from
 * the model's files (src/model-free; from the cache when it holds the model).
 */
async function planManifest(config: Config): Promise<{ manifest: Manifest; prepared: PreparedModel | undefined; warnings: string[] }> {
  if (!config.model.location) return { manifest: await loadManifest(config.manifestPath), prepared: undefined, warnings: [] };
  const [{ prepareModel }, { modelFreeSettings, modelWarnings }] = await Promise.all([import('../model-free/prepare.js'), import('../model-free/settings.js')]);
  const prepared = await prepareModel(modelFreeSettings(config));
  return { manifest: prepared.manifest, prepared, warnings: modelWarnings(config, prepared) };
}

/** Load the manifest (first, so a bad path fails fast), detect the hardware, evaluate and select. */
export async function surveyProfiles(config: Config, deps: PlanDeps = {}): Promise<ProfileSurvey> {
  const { manifest, warnings: modelWarnings } = await planManifest(config);
  const inventory = await (deps.detect ? deps.detect() : defaultDetect(config));
  const all = evaluateProfiles(manifest, inventory, config);
  const evaluations = [...rankEvaluations(all), ...all.filter((e) => !e.compatible)];
  let selection: Selection | undefined;
  let selectionError: SelectionError | undefined;
  try {
    selection = selectProfile(manifest, inventory, config);
  } catch (err) {
    if (!(err instanceof SelectionError)) throw err;
    selectionError = err;
  }
  return {
    config,
    inventory,
    manifest,
    evaluations,
    selection,
    selectionError,
    warnings: [...modelWarnings, ...inventory.warnings, ...(selection?.warnings ?? [])],
  };
}

/** The plan `serve` and `select-profile` act on. Throws ManifestError / SelectionError. */
export async function planLaunch(config: Config, deps: PlanDeps = {}): Promise<LaunchPlan> {
  const { manifest, prepared, warnings: modelWarnings } = await planManifest(config);
  const inventory = await (deps.detect ? deps.detect() : defaultDetect(config));
  const selection = selectProfile(manifest, inventory, config);
  return {
    config,
    inventory,
    manifest,
    selection,
    servedModelName: servedModelNameFor(manifest, config),
    warnings: [...modelWarnings, ...inventory.warnings, ...selection.warnings],
    prepared,
    engineManifest: prepared ? { ...manifest, model: { ...manifest.model, source: prepared.engineModelDir } } : manifest,
    engineEnv: prepared?.engineEnv ?? (config.model.disableDownload ? { HF_HUB_OFFLINE: '1' } : {}),
  };
}
