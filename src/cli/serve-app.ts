// serve's HTTP app, started once the engine is spawned (while it loads its
// model): metrics, the node:http app (management endpoints, the http-proxy-3
// path), the edge's fast path, WebSocket pass-through, GPU sampling and, with
// NIM_ENABLE_OTEL, tracing. Nothing here is on the start-up path.
import type http from 'node:http';
import type { Config } from '../config/env.js';
import type { Edge } from '../edge/edge-server.js';
import type { EngineEndpoint } from '../engine/endpoint.js';
import { EngineVersion } from '../engine/engine-version.js';
import type { Lifecycle } from '../engine/lifecycle.js';
import type { EngineSupervisor } from '../engine/supervisor.js';
import { supervisorVersion } from '../config/paths.js';
import type { DownloadProgress } from '../hub/progress.js';
import type { Logger } from '../log/source.js';
import type { PreparedLora } from '../lora/index.js';
import type { Cors } from '../server/cors.js';
import type { InflightTracker } from '../server/inflight.js';
import type { UpgradeHandler } from '../server/upgrade.js';
import type { ProxyWorkers } from '../workers/primary.js';
import type { LaunchPlan } from './plan.js';

/** What the app is made of, loaded in parallel (each its own chunk). */
function loadRuntime() {
  return Promise.all([
    import('../metrics/gpu-sampler.js'),
    import('../metrics/render.js'),
    import('../metrics/supervisor-metrics.js'),
    import('../server/app.js'),
    import('../server/proxy.js'),
    import('../server/websocket-proxy.js'),
    import('../edge/fast-proxy.js'),
  ]);
}

export interface AppDeps {
  config: Config;
  logger: Logger;
  lifecycle: Lifecycle;
  supervisor: EngineSupervisor;
  /** How the engine is reached (its served names, API key, keep-alive). */
  endpoint: EngineEndpoint;
  /** The engine's base URL while it runs, else undefined. */
  engineUrl: () => URL | undefined;
  plan: LaunchPlan;
  workers: ProxyWorkers | undefined;
  lora: PreparedLora | undefined;
  download: DownloadProgress | undefined;
  inflight: InflightTracker;
  cors: Cors;
  /** The public port (one process; undefined with proxy workers) and the node:http server behind it. */
  edge: Edge | undefined;
  server: http.Server;
}

export interface ServedApp {
  /** Every request node:http serves from now on. */
  handler: http.RequestListener;
  /** Upgrade requests (the WebSocket pass-through); `destroy()` cuts the upgraded sockets. */
  websockets: UpgradeHandler & { destroy(): void };
  /** Stop the proxy, the fast path, GPU sampling and tracing (after the public port is closed). */
  close(): Promise<void>;
}

/** Load and start the app; the edge serves the fast path from the moment this resolves. */
export async function startApp(d: AppDeps): Promise<ServedApp> {
  const { config, logger, lifecycle, supervisor, endpoint, engineUrl, workers, lora, download, inflight, cors, edge, server } = d;
  const { manifest, selection, servedModelName } = d.plan;
  const profile = selection.profile;
  const [
    { GpuSampler },
    { createMetricsRenderer },
    { createSupervisorMetrics, trackEngineState },
    { createApp, guardRequestTargets },
    { createEngineProxy },
    { createUpgradeHandler },
    { FastProxy },
  ] = await loadRuntime();
  const metrics = createSupervisorMetrics();
  const aggregate = workers ? (await import('../workers/metrics.js')).aggregateMetrics : undefined;
  trackEngineState(metrics.registry, lifecycle);
  const loraHooks = lora ? await import('../lora/index.js') : undefined;
  const loraMetrics = lora && loraHooks ? loraHooks.registerLoraMetrics(metrics.registry, lora.adapters) : undefined;
  // Proxy workers report the responses they serve for other names than the base model's; adapters are counted here.
  if (workers && lora && loraHooks && loraMetrics) {
    const baseModels = endpoint.servedModelNames.length > 0 ? endpoint.servedModelNames : [servedModelName];
    workers.countLoraResponses(baseModels, loraHooks.adapterCounter(lora.adapters, loraMetrics));
  }
  if (download) (await import('../model-free/metrics.js')).registerDownloadMetrics(metrics.registry, download);
  metrics.profileInfo.set(
    {
      profile_id: profile.id,
      profile_name: profile.name,
      model: manifest.model.name,
      served_model_name: servedModelName,
      precision: profile.tags.precision,
      tp: String(selection.evaluation.tp),
      pp: String(selection.evaluation.pp),
      gpu: profile.tags.gpu ?? (profile.tags.device === 'cpu' ? 'cpu' : 'generic'),
    },
    1,
  );
  const recordStartup = (): void => {
    if (supervisor.spawnedAt !== undefined && supervisor.readyAt !== undefined) {
      metrics.engineStartupSeconds.set((supervisor.readyAt - supervisor.spawnedAt) / 1000);
    }
  };
  recordStartup(); // in case the engine was ready before the app was loaded
  supervisor.on('ready', recordStartup);
  supervisor.on('spawned', () => {
    if (supervisor.restarts > 0) metrics.engineRestarts.inc();
  });
  // What both request paths need: the edge's fast path (src/edge) and node:http's (server/proxy.ts).
  const proxying = {
    target: () => engineUrl(),
    lifecycle,
    inflight,
    metrics,
    logger,
    maxRequestBodyBytes: config.maxRequestBodyBytes,
    maxInflight: config.maxInflightRequests,
    sseKeepAliveIntervalMs: config.sseKeepAliveIntervalMs,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    engineKeepAliveMs: endpoint.keepAliveMs,
  };
  const proxy = createEngineProxy({
    ...proxying,
    onEngineResponse: lora && loraHooks && loraMetrics ? loraHooks.countAdapterResponses(lora.adapters, loraMetrics) : undefined,
  });
  const gpuSampler = new GpuSampler({
    registry: metrics.registry,
    gpuIndices: [...new Set(selection.gpus.map((g) => g.index))],
    intervalMs: config.gpuMetricsIntervalMs,
    logger,
  });
  gpuSampler.start();
  const engineVersion = new EngineVersion({ lifecycle, engineUrl, logger });
  const app = createApp({
    engine: () => engineVersion.identity,
    renderMetrics: createMetricsRenderer({
      registry: metrics.registry,
      engineUrl,
      timeoutMs: config.engineMetricsTimeoutMs,
      compat: config.metricsCompat,
      apiKey: endpoint.apiKeys[0],
      ownMetrics: workers && aggregate ? () => aggregate(metrics.registry, () => workers.collectMetrics()) : undefined,
    }),
    lifecycle,
    engineLog: supervisor.log,
    manifest,
    selection,
    servedModelName,
    supervisorVersion: supervisorVersion(),
    metrics,
    proxy,
    logger,
    apiKey: config.apiKey,
    protectMetrics: config.metricsRequireAuth,
    lora: lora?.adapters,
  });
  // NIM_ENABLE_OTEL: the SDK is loaded only then, so with tracing off nothing of it is on the request path.
  const tracing = config.tracing.enabled
    ? (await import('../tracing/tracer.js')).startTracing({ settings: config.tracing, logger, version: supervisorVersion() })
    : undefined;
  tracing?.watch(lifecycle);
  const guarded = guardRequestTargets(app, metrics, cors);
  // Inference routes on the edge's fast path; with tracing on, node:http serves them (spans need its request objects).
  const fast = tracing
    ? undefined
    : new FastProxy({
        ...proxying,
        apiKey: config.apiKey,
        cors: config.cors,
        onEngineResponse: lora && loraHooks && loraMetrics ? loraHooks.peekAdapterResponses(lora.adapters, loraMetrics) : undefined,
      });
  edge?.setFast(fast);
  const websockets = createUpgradeHandler({
    server,
    target: () => engineUrl(),
    lifecycle,
    inflight,
    metrics,
    logger,
    apiKey: config.apiKey,
    maxInflight: config.maxInflightRequests,
    cors: config.cors,
  });
  return {
    handler: tracing ? tracing.wrap(guarded) : guarded,
    websockets,
    async close() {
      proxy.destroy();
      fast?.destroy();
      gpuSampler.stop();
      await tracing?.close();
    },
  };
}
