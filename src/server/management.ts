// NIM's management endpoints, served by the supervisor itself (never proxied):
// health, metadata, version, license, manifest and metrics.
import { createHash } from 'node:crypto';
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { EngineIdentity } from '../engine/engine-version.js';
import type { Lifecycle } from '../engine/lifecycle.js';
import type { Manifest, Profile } from '../manifest/types.js';
import type { SupervisorMetrics } from '../metrics/supervisor-metrics.js';
import type { LoraAdapters } from '../lora/manager.js';
import type { OutputLog } from '../process/output-log.js';
import type { Selection } from '../selection/types.js';

/** The NIM API version these endpoints follow (reported by /v1/version). */
export const NIM_API_VERSION = '1.0.0';

export interface ManagementDeps {
  lifecycle: Lifecycle;
  engineLog: OutputLog;
  manifest: Manifest;
  selection: Selection;
  servedModelName: string;
  supervisorVersion: string;
  metrics: SupervisorMetrics;
  /** The engine behind the supervisor (vLLM's /version, read once it is ready); absent = not known. */
  engine?: () => EngineIdentity;
  /** Renders the /v1/metrics body (the supervisor's registry; later enriched with engine and GPU metrics). */
  renderMetrics?: () => Promise<{ contentType: string; body: string }>;
  /** LoRA adapters served next to the base model (NIM_PEFT_SOURCE), listed in /v1/metadata. */
  lora?: LoraAdapters | undefined;
}

function profileSummary(p: Profile): { id: string; name: string; tags: Record<string, string> } {
  return { id: p.id, name: p.name, tags: p.displayTags };
}

function licenseInfo(manifest: Manifest): Record<string, unknown> {
  const lic = manifest.model.license;
  return {
    name: lic.name,
    path: lic.path ?? null,
    sha: createHash('sha1').update(lic.text).digest('hex'),
    size: lic.text.length,
    url: lic.url ?? null,
    type: 'file',
    content: lic.text,
  };
}

function loraMetadata(lora: LoraAdapters) {
  return lora.summary().loaded.map((a) => ({ name: a.name, path: a.path, rank: a.rank, baseModel: a.baseModel }));
}

/** Where the adapters come from and what was not loaded (and why). */
function peftMetadata(lora: LoraAdapters) {
  const s = lora.summary();
  return { source: s.source, refreshIntervalSeconds: s.refreshIntervalSeconds, skipped: s.skipped, pending: s.pending };
}

function engineOf(deps: ManagementDeps): EngineIdentity {
  return deps.engine?.() ?? { name: 'vllm', version: null };
}

export function managementRouter(deps: ManagementDeps): Router {
  const { lifecycle, manifest, selection } = deps;
  const router = express.Router();
  const selected = selection.profile;

  router.get('/v1/health/live', (_req: Request, res: Response) => {
    // Live while the process runs, also while the model loads: only a dead process fails liveness.
    res.json({ object: 'health.response', message: 'live', status: 'live' });
  });

  router.get('/v1/health/ready', (_req: Request, res: Response) => {
    if (lifecycle.isReady) {
      res.json({ object: 'health.response', message: 'ready', status: 'ready' });
      return;
    }
    res.status(503).json({
      object: 'health.response',
      message: lifecycle.reason,
      status: lifecycle.state,
      engine: {
        state: lifecycle.state,
        since: lifecycle.since.toISOString(),
        reason: lifecycle.reason,
        last_log: deps.engineLog.lastLine ?? null,
      },
    });
  });

  router.get('/v1/metadata', (_req: Request, res: Response) => {
    res.json({
      version: manifest.model.release,
      assetInfo: [manifest.model.source],
      licenseInfo: licenseInfo(manifest),
      modelInfo: [{ shortName: `${manifest.model.name}:${manifest.model.release}`, modelUrl: manifest.model.source }],
      repository_override: '',
      selectedModelProfileId: selected.id,
      selectedModelProfile: profileSummary(selected),
      servedModelName: deps.servedModelName,
      modality: manifest.model.modality,
      // The adapters clients can name in `model` (each also in /v1/models with parent = the base model).
      loraAdapters: deps.lora ? loraMetadata(deps.lora) : [],
      ...(deps.lora ? { peft: peftMetadata(deps.lora) } : {}),
      engine: engineOf(deps),
    });
  });

  router.get('/v1/version', (_req: Request, res: Response) => {
    // NIM's {release, api}, plus the supervisor and the engine it fronts (vLLM's /version, folded in here).
    res.json({ release: manifest.model.release, api: NIM_API_VERSION, supervisor: deps.supervisorVersion, engine: engineOf(deps) });
  });

  router.get('/v1/license', (_req: Request, res: Response) => {
    res.json(licenseInfo(manifest));
  });

  router.get('/v1/manifest', (_req: Request, res: Response) => {
    const evaluations = new Map([...selection.compatible, ...selection.incompatible].map((e) => [e.profile.id, e]));
    res.json({
      schema_version: manifest.schemaVersion,
      model: {
        name: manifest.model.name,
        served_model_name: deps.servedModelName,
        source: manifest.model.source,
        modality: manifest.model.modality,
        release: manifest.model.release,
        license: manifest.model.license.name,
      },
      selected_profile_id: selected.id,
      profiles: manifest.profiles.map((p) => {
        const e = evaluations.get(p.id);
        return {
          ...profileSummary(p),
          selected: p.id === selected.id,
          compatible: e?.compatible ?? false,
          reasons: e?.reasons ?? [],
        };
      }),
    });
  });

  router.get(['/v1/metrics', '/metrics'], async (_req: Request, res: Response) => {
    const { contentType, body } = deps.renderMetrics
      ? await deps.renderMetrics()
      : { contentType: deps.metrics.registry.contentType, body: await deps.metrics.registry.metrics() };
    res.setHeader('content-type', contentType);
    res.send(body);
  });

  return router;
}
