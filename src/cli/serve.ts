// `nim-supervisor serve`: the main job. Detect, select, spawn the engine on a
// private loopback port, serve the public port, and shut everything down in
// order on SIGTERM/SIGINT or when the engine fails.
import type http from 'node:http';
import { loadConfig, type Config } from '../config/env.js';
import { clusterRole } from '../cluster/role.js';
import { buildEngineCommand, ENGINE_HOST, formatCommandLine } from '../engine/argv.js';
import { checkCudaCompatibility, imageCudaVersion } from '../hardware/cuda-compat.js';
import { engineEndpoint } from '../engine/endpoint.js';
import { Lifecycle } from '../engine/lifecycle.js';
import { findFreePort } from '../engine/port.js';
import { EngineSupervisor, type SupervisionOutcome } from '../engine/supervisor.js';
import { detectHardware } from '../hardware/detect.js';
import { proxyWorkerCount } from '../workers/policy.js';
import { planLaunch } from './plan.js';
import { ConfigError, describeError, exitCodeOf } from '../errors.js';
import { createDeferredLogger } from '../log/deferred.js';
import type { Logger } from '../log/source.js';
import { shortId } from '../log/lists.js';
import { createRedactor, secretValues } from '../log/redact.js';
import { findExecutable } from '../process/executable.js';
import { closeServer } from '../server/close-server.js';
import { createCors } from '../server/cors.js';
import { sendError } from '../server/errors.js';
import { InflightTracker } from '../server/inflight.js';
import { engineNotFoundHint } from './hints.js';
import { startApp } from './serve-app.js';
import { openPublicPort } from './serve-port.js';
import { publicUrl, StartupReport } from './startup-report.js';
import type { BootStatus } from '../model-free/download-phase.js';
import type { DownloadProgress } from '../hub/progress.js';

/** Two identical signals this close together are one event delivered twice (see onSignal). */
const DUPLICATE_SIGNAL_MS = 1000;

export const SERVE_USAGE = `Usage: nim-supervisor serve [--dry-run [--json]] [--vllm-flag value …]
       nim-supervisor nim-serve …   (the same; NIM 2.x's name)
       docker run IMAGE [--vllm-flag value …]

Detect the GPUs, select a profile, start vLLM on a private loopback port and
serve the public API on NIM_SERVER_PORT. vLLM flags given here win over the
profile, the NIM_* variables and NIM_PASSTHROUGH_ARGS (NIM 2.x's precedence);
--host, --port and --uds belong to the supervisor and are refused.
--dry-run prints what would run (as select-profile does) and starts nothing.
Configuration: nim-supervisor help env; docs/configuration.md.
`;

export async function serveCommand(args: string[]): Promise<number> {
  if (args.includes('-h') || args.includes('--help')) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  if (args.includes('--dry-run')) {
    const { selectProfileCommand } = await import('./select-profile.js');
    return await selectProfileCommand(args.filter((a) => a !== '--dry-run'));
  }
  const config = loadConfig(process.env, args);
  // pino loads once the engine is spawned; records made before are held until then (log/deferred.ts).
  const log = createDeferredLogger({ level: config.logLevel, jsonl: config.jsonlLogging });
  const logger = log.logger;
  for (const w of config.warnings) logger.warn(w);
  try {
    return await serve(config, logger, log.load);
  } catch (err) {
    await log.load();
    // main() prints the closing `nim-supervisor: error: …` line on stderr. JSON-lines
    // deployments also get it as the last record; a terminal gets it once.
    if (config.jsonlLogging) logger.fatal({ exitCode: exitCodeOf(err) }, describeError(err));
    throw err;
  }
}

/**
 * What the public port answers in the first moments, before the full app is
 * loaded: liveness, readiness (503 with the state) and 503 for the rest.
 */
function bootHandler(lifecycle: Lifecycle, boot: BootStatus): http.RequestListener {
  return (req, res) => {
    const q = (req.url ?? '').indexOf('?');
    const path = q < 0 ? req.url : req.url!.slice(0, q);
    if (path === '/v1/health/live') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'health.response', message: 'live', status: 'live' }));
    } else if (path === '/v1/health/ready') {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'health.response', message: lifecycle.reason, status: lifecycle.state, ...boot.readiness?.() }));
    } else if ((path === '/v1/metrics' || path === '/metrics') && boot.metrics) {
      // While the model downloads: the download metrics (the full set once the engine is spawned).
      boot.metrics().then(
        (m) => {
          res.writeHead(200, { 'content-type': m.contentType });
          res.end(m.body);
        },
        () => sendError(res, 503, 'metrics unavailable while starting'),
      );
    } else {
      sendError(res, 503, 'The server is starting. Retry once /v1/health/ready answers 200.', { 'retry-after': '5' });
    }
  };
}

/**
 * Everything `serve` does, in order. `loadLogger` loads pino for `logger`
 * (log/deferred.ts): called once the engine is spawned, records wait till then.
 */
async function serve(config: Config, logger: Logger, loadLogger: () => Promise<void>): Promise<number> {
  // Secrets from the environment are masked in everything the engine prints.
  const redact = createRedactor(secretValues(process.env, [config.apiKey]));
  // Multi-node (LWS_GROUP_SIZE > 1): a worker only runs its Ray node and the health probes (src/cluster).
  const role = clusterRole(config.cluster);
  if (role.kind === 'worker') {
    await loadLogger();
    const [{ serveWorker }, { createPublicServer }, { listen }] = await Promise.all([
      import('../cluster/worker.js'),
      import('../server/public-port.js'),
      import('../server/public-listener.js'),
    ]);
    return await serveWorker({ config, logger, role, redact, createServer: createPublicServer, listen });
  }
  // Start-up order keeps "launch → engine spawned" short: nvidia-smi starts first and runs while
  // the public port is bound and the manifest is read; pino, the port's HTTP stack and the app load
  // once the engine is spawned (docs/architecture.md, "Start-up").
  const detection = detectHardware({
    cudaVisibleDevices: config.cudaVisibleDevices,
    nvidiaVisibleDevices: config.nvidiaVisibleDevices,
    env: process.env,
    host: 'os',
    driver: true,
  });

  const lifecycle = new Lifecycle();
  lifecycle.on('change', (c) => {
    // Loading and ready have their own start-up lines; a failure's reason is the closing error line.
    if (c.to === 'failed') logger.info({ from: c.from, to: c.to }, `engine state ${c.from} -> ${c.to}`);
    else {
      const startupPhase = (c.from === 'starting' && c.to === 'loading') || (c.from === 'loading' && c.to === 'ready');
      logger[startupPhase ? 'debug' : 'info']({ from: c.from, to: c.to, reason: c.reason }, `engine state ${c.from} -> ${c.to}`);
    }
  });
  let engineLastLine = (): string | undefined => undefined;
  const report = new StartupReport({
    logger,
    progressIntervalMs: config.progressIntervalMs,
    progress: () => ({ state: lifecycle.state, reason: lifecycle.reason, lastLine: engineLastLine() }),
  });
  const cors = createCors(config.cors);
  const boot: BootStatus = {};
  const bootRoutes = bootHandler(lifecycle, boot);
  let handler: http.RequestListener = (req, res) => {
    if (!cors.apply(req, res)) bootRoutes(req, res);
  };
  // NIM_PROXY_WORKERS > 1: worker processes serve the public port; this process serves the app
  // below on a private Unix socket for what they pass on, and supervises the engine (src/workers).
  const publicPort = await openPublicPort({
    config,
    logger,
    lifecycle,
    proxyWorkers: proxyWorkerCount(config.proxyWorkers),
    handle: (req, res) => handler(req, res),
    loadLogger,
  });
  const { workers, healthServer } = publicPort;

  const plan = await planLaunch(config, {
    detect: async () => {
      const inventory = await detection;
      report.hardware(inventory);
      return inventory;
    },
  });
  const { manifest, selection, servedModelName } = plan;
  for (const w of plan.warnings) logger.warn(w);
  const profile = selection.profile;
  report.profile(
    `${shortId(profile.id)} (${profile.name})`,
    selection.how,
    { profileId: profile.id, profileName: profile.name, how: selection.how, gpus: selection.gpus.map((g) => g.index) },
  );
  report.serving(publicUrl(config.tls.mode === 'DISABLED' ? 'http' : 'https', config.serverHost, config.serverPort), servedModelName);

  // Before spawning: the image's CUDA against what the host driver supports (vLLM v0.30+ images are CUDA 13).
  if (profile.tags.device !== 'cpu') {
    const cuda = checkCudaCompatibility(imageCudaVersion(process.env), plan.inventory.driver);
    if (cuda) logger[cuda.level]({ code: cuda.code, hint: cuda.hint, imageCuda: cuda.image, driverCuda: cuda.driver }, cuda.message);
  }

  // Model-free: fetch what the cache lacks before the engine starts (readiness shows `downloading`).
  let download: DownloadProgress | undefined;
  if (plan.prepared) {
    await publicPort.serve(); // readiness, metrics and the log show the download's progress
    const { runDownloadPhase } = await import('../model-free/download-phase.js');
    download = await runDownloadPhase({ config, prepared: plan.prepared, lifecycle, logger, boot });
  }

  // LoRA adapters (NIM_PEFT_SOURCE): scanned twice, held to the profile's rank limit (src/lora).
  const lora = config.lora.peftSource
    ? await (await import('../lora/index.js')).prepareLora({ config, manifest, selection, servedModelName, logger })
    : undefined;

  if (publicPort.workersListening) {
    await publicPort.workersListening;
    publicPort.servingOn();
  }
  const port = await findFreePort(ENGINE_HOST);
  const built = buildEngineCommand({ manifest: plan.engineManifest, selection, config, host: ENGINE_HOST, port, lora: lora?.launch });
  const command = { ...built, env: { ...plan.engineEnv, ...built.env } };
  const executable = findExecutable(command.command, process.env.PATH);
  if (!executable) {
    throw new ConfigError(`engine executable "${command.command}" not found${command.command.includes('/') ? '' : ' on PATH'}`, {
      hint: engineNotFoundHint(command.command),
    });
  }
  const resolved = { ...command, command: executable };
  // Probes and scrapes follow what the engine really runs with (passthrough included); exit 2 if it would move.
  const endpoint = engineEndpoint(command, process.env, { host: ENGINE_HOST, port });
  // Multi-node leader: the Ray head, and vLLM only once every worker has joined (src/cluster/leader.ts).
  const leader =
    role.kind === 'leader'
      ? new (await import('../cluster/leader.js')).ClusterLeader({ config, logger, redact, env: command.env })
      : undefined;
  logger.info({ command: redact(formatCommandLine(command)) }, 'engine command');

  const supervisor = new EngineSupervisor({
    command: resolved,
    host: ENGINE_HOST,
    port,
    servedModelNames: endpoint.servedModelNames.length > 0 ? endpoint.servedModelNames : [servedModelName],
    engineApiKey: endpoint.apiKeys[0],
    baseEnv: process.env,
    lifecycle,
    logger,
    redact,
    startupTimeoutMs: config.startupTimeoutMs,
    stopTimeoutMs: config.engineStopTimeoutMs,
    healthIntervalMs: config.healthIntervalMs,
    probeTimeoutMs: config.healthTimeoutMs,
    failureThreshold: config.healthFailureThreshold,
    unhealthyTimeoutMs: config.engineUnhealthyTimeoutMs,
    maxRestarts: config.engineMaxRestarts,
    restartBackoffMs: config.engineRestartBackoffMs,
  });
  engineLastLine = () => supervisor.log.lastLine;
  workers?.setEngine(supervisor.baseUrl, endpoint.keepAliveMs);
  // Proxy workers that keep dying end the supervisor (exit 1), the engine stopped first.
  let workerFailure: Error | undefined;
  void workers?.failed.then((err) => {
    workerFailure = err;
    void supervisor.close();
  });
  supervisor.on('spawned', (engine) => report.spawned(engine.pid, port, supervisor.restarts, config.engineMaxRestarts));
  supervisor.on('ready', () => report.engineReady());
  // Last resort: whatever happens to this process, the engine goes with it.
  process.once('exit', () => supervisor.destroy());
  if (leader) process.once('exit', () => leader.destroy());
  process.once('uncaughtException', (err) => {
    logger.fatal({ err: err.message, stack: err.stack }, 'internal error; stopping the engine and exiting');
    supervisor.destroy();
    process.exit(1);
  });

  const engineUrl = (): URL | undefined => (supervisor.engine?.running ? supervisor.baseUrl : undefined);
  const inflight = new InflightTracker();
  if (lora) {
    // Refresh through vLLM's runtime LoRA API on the private port; the command's
    // --lora-modules follow the adapters served, for an engine restart.
    const { engineLoraApi } = await import('../lora/index.js');
    lora.adapters.startRefresh(engineLoraApi(engineUrl, config.lora.apiTimeoutMs), resolved.args, () => lifecycle.isReady);
  }

  // Shutdown on SIGTERM/SIGINT: stop taking work, let in-flight requests finish
  // within the grace period, then stop the engine. A second signal skips the wait.
  let shuttingDown: Promise<SupervisionOutcome> | undefined;
  let firstSignal: { signal: NodeJS.Signals; at: number } | undefined;
  let cutShort: () => void = () => undefined;
  const shutdown = async (signal: NodeJS.Signals): Promise<SupervisionOutcome> => {
    report.close();
    // With proxy workers this process counts only what it serves itself: the workers report when they are drained.
    const inFlight = (): Record<string, number> => (workers ? { proxyWorkers: workers.count } : { inFlight: inflight.count });
    logger.info({ signal, ...inFlight(), graceMs: config.shutdownGraceMs }, `received ${signal}; draining requests`);
    // Keep listening while draining: new requests get a clear 503 (with Retry-After)
    // instead of a refused connection, and readiness reports `stopping`.
    lifecycle.transition('stopping', `received ${signal}`);
    const drained = await Promise.race([
      Promise.all([inflight.waitForIdle(config.shutdownGraceMs), workers?.drain(config.shutdownGraceMs) ?? true]).then(([own, theirs]) => own && theirs),
      new Promise<boolean>((resolve) => (cutShort = () => resolve(false))),
    ]);
    if (!drained) logger.warn(inFlight(), 'grace period over (or second signal); cutting remaining requests');
    return await supervisor.close();
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      // Ctrl-C under `npm start` arrives twice: from the terminal (the supervisor is in
      // its foreground process group) and forwarded by npm. One key press is one signal.
      if (signal === firstSignal?.signal && performance.now() - firstSignal.at < DUPLICATE_SIGNAL_MS) return;
      logger.warn(`received ${signal} again; stopping now`);
      cutShort();
      return;
    }
    firstSignal = { signal, at: performance.now() };
    shuttingDown = shutdown(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Only now: a signal's listener count must never drop to 0 in between, or Node closes the signal
  // handle and a signal already caught but not yet delivered is lost.
  workers?.handOverSignals();

  if (leader) {
    leader.start({
      lifecycle,
      onFormed: () => {
        if (!lifecycle.isTerminal) supervisor.start();
      },
      onFailed: (err) => void supervisor.close(err),
    });
  } else {
    supervisor.start();
  }
  // Spawned (or waiting on the Ray cluster): now the public port's HTTP stack and pino.
  const { edge, server } = await publicPort.serve();

  // The full HTTP app, loaded while the engine loads the model.
  const app = await startApp({
    config,
    logger,
    lifecycle,
    supervisor,
    endpoint,
    engineUrl,
    plan,
    workers,
    lora,
    download,
    inflight,
    cors,
    edge,
    server,
  });
  handler = app.handler;
  publicPort.setUpgrade(app.websockets);
  report.appReady();

  // stop() settles `done` too, so this covers both a shutdown and an engine failure.
  const outcome = await supervisor.done;
  report.close();
  await shuttingDown;
  await leader?.close(); // the Ray head goes after vLLM

  // Let error responses already written reach their clients, then close everything.
  await workers?.close(); // the public port first
  if (edge) await edge.close();
  else await closeServer(server);
  app.websockets.destroy(); // upgraded sockets are no longer the server's to close
  if (healthServer) await closeServer(healthServer);
  lora?.adapters.close();
  await app.close();
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);

  // A failure ends as the one closing error line (main prints it), with the engine's exit code.
  if (outcome.error) throw outcome.error;
  if (workerFailure) throw workerFailure;
  logger.info('supervisor stopped cleanly');
  return outcome.exitCode;
}
