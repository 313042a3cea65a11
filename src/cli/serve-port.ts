// serve's public port, from the first moments to the full app. One process:
// the port is bound before the engine is spawned, with node:net alone (a port
// in use is exit 2 before any engine exists), and its HTTP stack
// (server/public-port.ts: the edge, node:http, TLS) is loaded once the engine
// is spawned, or sooner when start-up waits on something first; connections
// wait, unread, meanwhile. NIM_PROXY_WORKERS > 1: the worker processes open
// the port (src/workers) and this process serves what they pass on.
import type http from 'node:http';
import type https from 'node:https';
import type { Config } from '../config/env.js';
import type { Edge } from '../edge/edge-server.js';
import type { Lifecycle } from '../engine/lifecycle.js';
import type { Logger } from '../log/source.js';
import { bindPublicPort, checkPublicTimeouts, type PublicListener } from '../server/public-listener.js';
import type { UpgradeHandler } from '../server/upgrade.js';
import type { WorkerCount } from '../workers/policy.js';
import type { ProxyWorkers } from '../workers/primary.js';

/**
 * How long start-up may take before the engine is spawned, ms, before the
 * public port's HTTP stack and pino are loaded anyway: until then connections
 * wait and records are held.
 */
export const PUBLIC_STACK_WAIT_MS = 100;

/** The public port's HTTP stack: the edge (one process) and the node:http server behind it. */
export interface PublicStack {
  edge: Edge | undefined;
  server: http.Server;
}

export interface PublicPortOptions {
  config: Config;
  logger: Logger;
  lifecycle: Lifecycle;
  proxyWorkers: WorkerCount;
  /** Answers every request node:http serves (the boot routes, then the app): called through, never captured. */
  handle: http.RequestListener;
  /** Loads pino for `logger` (log/deferred.ts). */
  loadLogger: () => Promise<void>;
}

export interface PublicPort {
  /** The proxy workers (NIM_PROXY_WORKERS > 1), started and listening once `workersListening` resolves. */
  readonly workers: ProxyWorkers | undefined;
  readonly workersListening: Promise<void> | undefined;
  /** NIM_HEALTH_PORT's server, when set. */
  readonly healthServer: http.Server | undefined;
  /** Log the `serving on …` line (with workers: once they listen). */
  servingOn(): void;
  /** The HTTP stack and pino, loaded now (once; later calls get the same). Start-up calls it when it waits, and after the spawn. */
  serve(): Promise<PublicStack>;
  /** Upgrade requests go to `handler` from now on (the WebSocket pass-through, once the app is loaded). */
  setUpgrade(handler: UpgradeHandler): void;
}

/**
 * Bind the public port (or fork the proxy workers) and, with NIM_HEALTH_PORT,
 * open the health port. Throws a ConfigError (exit 2) for a port in use, bad
 * TLS files or timeouts, before anything is spawned.
 */
export async function openPublicPort(o: PublicPortOptions): Promise<PublicPort> {
  const { config, logger, proxyWorkers } = o;
  const scheme = config.tls.mode === 'DISABLED' ? 'http' : 'https';
  const host = config.serverHost.includes(':') ? `[${config.serverHost}]` : config.serverHost; // an IPv6 address in a URL
  const handle: http.RequestListener = (req, res) => o.handle(req, res);
  let workers: ProxyWorkers | undefined;
  let listener: PublicListener | undefined;
  let tls: https.ServerOptions | undefined;
  if (proxyWorkers.count > 1) {
    const [{ checkPublicServer }, { ProxyWorkers }] = await Promise.all([import('../server/public-port.js'), import('../workers/primary.js')]);
    checkPublicServer(config); // the workers open the port: fail here, before any is forked
    workers = new ProxyWorkers({ config, logger, count: proxyWorkers.count, lifecycle: o.lifecycle });
  } else {
    checkPublicTimeouts(config);
    tls = config.tls.mode === 'DISABLED' ? undefined : (await import('../server/tls.js')).loadTlsOptions(config.tls);
    listener = await bindPublicPort(config);
  }
  const servingOn = (): void =>
    logger.info(
      {
        host: config.serverHost,
        port: config.serverPort,
        tls: config.tls.mode,
        auth: config.apiKey ? 'api-key' : 'none',
        ...(workers ? { proxyWorkers: workers.count, pids: workers.pids } : {}),
      },
      `serving on ${scheme}://${host}:${config.serverPort}${workers ? ` with ${workers.count} proxy workers (${proxyWorkers.why})` : ''}`,
    );
  if (listener) servingOn();

  // Every request with an Upgrade header comes to `upgrade` (server/upgrade.ts decides what it gets).
  let upgrade: UpgradeHandler | undefined;
  let stack: Promise<PublicStack> | undefined;
  const loadStack = (): Promise<PublicStack> =>
    (stack ??= (async () => {
      const [{ createPublicEdge }, { bootUpgradeHandler }] = await Promise.all([import('../server/public-port.js'), import('../server/upgrade.js')]);
      // One process: the edge on the bound port (inference on its fast path, the rest on `server`).
      const publicEdge = workers ? undefined : createPublicEdge(config, handle, { listener: listener!, tls });
      const server = workers ? workers.createServer(handle) : publicEdge!.server;
      upgrade = bootUpgradeHandler(server);
      server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => upgrade!(req, socket, head));
      return { edge: publicEdge?.edge, server };
    })());
  let early: NodeJS.Timeout | undefined;
  const serve = async (): Promise<PublicStack> => {
    clearTimeout(early);
    const [loaded] = await Promise.all([loadStack(), o.loadLogger()]);
    return loaded;
  };
  // Whatever start-up waits on before the spawn (a slow nvidia-smi, a model download), the port is
  // served and records are written as they come meanwhile.
  early = setTimeout(() => serve().catch(() => undefined), PUBLIC_STACK_WAIT_MS);
  early.unref();

  let workersListening: Promise<void> | undefined;
  if (workers) {
    // The workers start while planning runs; the engine is spawned only once they all listen.
    workersListening = workers.start((await serve()).server);
    workersListening.catch(() => undefined); // the caller awaits it
  }
  // NIM_HEALTH_PORT: live/ready also on a plain-HTTP port, answered by the same handler as the public
  // port's; the public port is then served from the same moment.
  if (config.healthPort !== undefined) await serve();
  const healthServer =
    config.healthPort === undefined
      ? undefined
      : await (await import('../server/health-port.js')).startHealthPort({
          host: config.serverHost,
          port: config.healthPort,
          health: workers ? ((gated) => () => gated)(workers.gate(handle)) : () => handle,
        });
  if (healthServer) logger.info({ port: config.healthPort }, `health endpoints also on http://${host}:${config.healthPort}`);

  return {
    workers,
    workersListening,
    healthServer,
    servingOn,
    serve,
    setUpgrade: (h) => (upgrade = h),
  };
}
