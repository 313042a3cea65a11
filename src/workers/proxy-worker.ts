// A proxy worker (NIM_PROXY_WORKERS > 1): one of the processes serving the
// public port. It proxies the inference routes straight to the engine and
// passes everything else to the primary (worker-routes.ts). It mirrors the
// primary's engine lifecycle, so readiness gating and 503 messages are exactly
// a single process's; it never acts on signals (a Ctrl-C reaches the whole
// process group, and the primary orders the drain); it exits when the primary
// says so, or at once when the primary's channel closes (primary gone).
// As in one process: with NIM_ENABLE_OTEL it exports its own SERVER spans for
// the requests it answers itself (inference then goes through node:http, not
// the edge's fast path), and with LoRA on it reports adapter responses to the
// primary, which counts them.
import cluster from 'node:cluster';
import { loadConfig } from '../config/env.js';
import { Lifecycle } from '../engine/lifecycle.js';
import { SupervisorError } from '../errors.js';
import { createLogger } from '../log/logger.js';
import { createSupervisorMetrics } from '../metrics/supervisor-metrics.js';
import { createCors } from '../server/cors.js';
import { InflightTracker } from '../server/inflight.js';
import { createEngineProxy, type EngineProxy } from '../server/proxy.js';
import { supervisorVersion } from '../config/paths.js';
import { listen } from '../server/public-listener.js';
import { createPublicEdge } from '../server/public-port.js';
import { FastProxy } from '../edge/fast-proxy.js';
import type { Edge } from '../edge/edge-server.js';
import { createPrimaryForwarder } from './forward.js';
import { PROXY_WORKER_ENV } from './marker.js';
import { peekIncomingResponses, peekResponseModel, type ModelPeekStart } from '../lora/metrics.js';
import { isMessage, type EngineTarget, type FromWorker, type LifecycleSnapshot, type LoraCounting, type ToWorker } from './messages.js';
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
  // Messages that come while this worker starts (a lifecycle change, the engine, LoRA) are kept
  // and handled in order once it listens: a replaced worker must not mirror a stale state.
  const early: ToWorker[] = [];
  let onMessage = (m: ToWorker): void => void early.push(m);
  process.on('message', (m: unknown) => {
    if (isMessage<ToWorker>(m)) onMessage(m);
  });
  const initMessage = firstMessage('nim:init');
  send({ type: 'nim:hello' });
  const init = await initMessage;

  const lifecycle = new Lifecycle();
  const mirror = (s: LifecycleSnapshot): void => lifecycle.mirror(s.state, s.reason, new Date(s.since));
  mirror(init.lifecycle);
  const metrics = createSupervisorMetrics();
  const inflight = new InflightTracker();
  const forward = createPrimaryForwarder(init.socketPath, config.keepAliveTimeoutMs);
  // NIM_ENABLE_OTEL: this worker's own tracer (the SDK loaded only then); lifecycle spans stay the primary's.
  const tracing = config.tracing.enabled
    ? (await import('../tracing/tracer.js')).startTracing({ settings: config.tracing, logger, version: supervisorVersion() })
    : undefined;
  const routes = createWorkerRoutes({ forward, metrics, cors: createCors(config.cors), wrap: tracing?.wrap });

  // LoRA: each proxied response's `model` (lora/metrics.ts), reported when it is not the base model's.
  // The names come from the primary (`nim:lora`, once it has prepared the adapters); without
  // NIM_PEFT_SOURCE there is no hook at all.
  let loraPeek: ModelPeekStart | undefined;
  const countLora = (lora: LoraCounting | undefined): void => {
    if (lora === undefined) return;
    const base = new Set(lora.baseModels);
    loraPeek = peekResponseModel((model) => {
      if (!base.has(model)) send({ type: 'nim:lora-response', model });
    });
  };
  countLora(init.lora);
  const peekLora: ModelPeekStart | undefined = config.lora.peftSource ? (status) => loraPeek?.(status) : undefined;

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
      maxInflightLabel: `NIM_MAX_INFLIGHT_REQUESTS=${config.maxInflightRequests}, ${init.maxInflight} per proxy worker`,
      sseKeepAliveIntervalMs: config.sseKeepAliveIntervalMs,
      keepAliveTimeoutMs: config.keepAliveTimeoutMs,
      engineKeepAliveMs: engine.keepAliveMs,
    };
    proxy = createEngineProxy({ ...proxying, onEngineResponse: peekLora ? peekIncomingResponses(peekLora) : undefined });
    routes.serveProxied(proxiedRouteTable({ proxy, metrics, logger, apiKey: config.apiKey }));
    // The exact inference routes on the edge's fast path (as in one process); the rest as above.
    // With tracing on, node:http serves them (spans need its request objects).
    if (tracing) return;
    fast = new FastProxy({ ...proxying, apiKey: config.apiKey, cors: config.cors, onEngineResponse: peekLora });
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

  onMessage = (m) => {
    switch (m.type) {
      case 'nim:lifecycle':
        mirror(m.lifecycle);
        break;
      case 'nim:engine':
        useEngine(m.engine);
        break;
      case 'nim:lora':
        countLora(m.lora);
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
          await tracing?.close(); // flush this worker's spans before it exits
          const served = (await metrics.requests.get()).values.reduce((n, v) => n + v.value, 0);
          logger.info({ pid: process.pid, requests: served }, `proxy worker ${id} stopped after answering ${served} requests`);
          process.exit(0);
        })();
        break;
      case 'nim:init':
        break;
    }
  };
  for (const m of early.splice(0)) onMessage(m);
}
