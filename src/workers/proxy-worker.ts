// A proxy worker (NIM_PROXY_WORKERS > 1): one of the processes serving the
// public port. It proxies the inference routes straight to the engine and
// passes everything else to the primary (worker-routes.ts). It mirrors the
// primary's engine lifecycle, so readiness gating and 503 messages are exactly
// a single process's; it never acts on signals (a Ctrl-C reaches the whole
// process group, and the primary orders the drain); it exits when the primary
// says so, or at once when the primary's channel closes (primary gone).
import cluster from 'node:cluster';
import { loadConfig } from '../config/env.js';
import { Lifecycle } from '../engine/lifecycle.js';
import { SupervisorError } from '../errors.js';
import { createLogger } from '../log/logger.js';
import { createSupervisorMetrics } from '../metrics/supervisor-metrics.js';
import { createCors } from '../server/cors.js';
import { InflightTracker } from '../server/inflight.js';
import { createEngineProxy, type EngineProxy } from '../server/proxy.js';
import { createPublicEdge, listen } from '../cli/serve.js';
import { FastProxy } from '../edge/fast-proxy.js';
import type { Edge } from '../edge/edge-server.js';
import { createPrimaryForwarder } from './forward.js';
import { PROXY_WORKER_ENV } from './marker.js';
import { isMessage, type EngineTarget, type FromWorker, type LifecycleSnapshot, type ToWorker } from './messages.js';
import { createWorkerRoutes, proxiedRouteTable } from './worker-routes.js';

function send(message: FromWorker): void {
  // The channel may be closing (primary gone): the worker exits on 'disconnect' anyway.
  if (process.connected) process.send!(message, undefined, undefined, () => undefined);
}

function firstMessage<K extends ToWorker['type']>(type: K): Promise<Extract<ToWorker, { type: K }>> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if (isMessage<ToWorker>(m) && m.type === type) {
        process.off('message', on);
        resolve(m as Extract<ToWorker, { type: K }>);
      }
    };
    process.on('message', on);
  });
}

/** Run this process as a proxy worker; it ends with process.exit. */
export async function runProxyWorker(): Promise<void> {
  // Signals are the primary's to act on (see the top of this file).
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  delete process.env[PROXY_WORKER_ENV];
  const id = cluster.worker?.id ?? 0;
  // The same environment as the primary's: its configuration, API key and TLS files included (nothing secret over IPC).
  // The primary has validated it and logged its warnings.
  const config = loadConfig(process.env, []);
  const logger = createLogger({ level: config.logLevel, jsonl: config.jsonlLogging }).child({ worker: id });
  const initMessage = firstMessage('nim:init');
  send({ type: 'nim:hello' });
  const init = await initMessage;

  const lifecycle = new Lifecycle();
  const mirror = (s: LifecycleSnapshot): void => lifecycle.mirror(s.state, s.reason, new Date(s.since));
  mirror(init.lifecycle);
  const metrics = createSupervisorMetrics();
  const inflight = new InflightTracker();
  const forward = createPrimaryForwarder(init.socketPath, config.keepAliveTimeoutMs);
  const routes = createWorkerRoutes({ forward, metrics, cors: createCors(config.cors) });

  let engineUrl: URL | undefined;
  let proxy: EngineProxy | undefined;
  let fast: FastProxy | undefined;
  let edge: Edge | undefined;
  const useEngine = (engine: EngineTarget): void => {
    engineUrl = new URL(engine.url);
    if (proxy) return;
    const proxying = {
      target: () => engineUrl,
      lifecycle,
      inflight,
      metrics,
      logger,
      maxRequestBodyBytes: config.maxRequestBodyBytes,
      maxInflight: init.maxInflight,
      sseKeepAliveIntervalMs: config.sseKeepAliveIntervalMs,
      keepAliveTimeoutMs: config.keepAliveTimeoutMs,
      engineKeepAliveMs: engine.keepAliveMs,
    };
    proxy = createEngineProxy(proxying);
    routes.serveProxied(proxiedRouteTable({ proxy, metrics, logger, apiKey: config.apiKey }));
    // The exact inference routes on the edge's fast path (as in one process); the rest as above.
    fast = new FastProxy({ ...proxying, apiKey: config.apiKey, cors: config.cors });
    edge?.setFast(fast);
  };
  try {
    const made = createPublicEdge({ ...config, maxConnections: init.maxConnections }, routes.handle);
    edge = made.edge;
    made.server.on('upgrade', forward.upgrade);
    if (init.engine) useEngine(init.engine);
    await listen(edge.server, config);
  } catch (err) {
    const e = err instanceof SupervisorError ? err : undefined;
    send({ type: 'nim:listen-failed', message: e?.message ?? String(err), hint: e?.hint, exitCode: e?.exitCode ?? 1 });
    process.exitCode = e?.exitCode ?? 1;
    process.disconnect();
    return;
  }
  send({ type: 'nim:listening' });

  process.on('message', (m: unknown) => {
    if (!isMessage<ToWorker>(m)) return;
    switch (m.type) {
      case 'nim:lifecycle':
        mirror(m.lifecycle);
        break;
      case 'nim:engine':
        useEngine(m.engine);
        break;
      case 'nim:drain':
        void inflight.waitForIdle(m.graceMs).then((idle) => send({ type: 'nim:drained', idle, inFlight: inflight.count }));
        break;
      case 'nim:metrics-request':
        void metrics.registry.getMetricsAsJSON().then((json) => send({ type: 'nim:metrics', id: m.id, metrics: json }));
        break;
      case 'nim:close':
        void (async () => {
          await edge?.close();
          forward.destroy();
          proxy?.destroy();
          fast?.destroy();
          const served = (await metrics.requests.get()).values.reduce((n, v) => n + v.value, 0);
          logger.info({ pid: process.pid, requests: served }, `proxy worker ${id} stopped after answering ${served} requests`);
          process.exit(0);
        })();
        break;
      case 'nim:init':
        break;
    }
  });
}
