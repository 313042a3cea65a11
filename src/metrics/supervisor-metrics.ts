// The supervisor's own Prometheus metrics, in a registry of its own (no
// prom-client globals), all under one prefix. docs/metrics.md lists them.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineState, Lifecycle } from '../engine/lifecycle.js';

export const METRIC_PREFIX = 'nim_supervisor_';
const STATES: EngineState[] = ['starting', 'downloading', 'loading', 'ready', 'unhealthy', 'stopping', 'stopped', 'failed'];

export interface SupervisorMetrics {
  registry: Registry;
  requests: Counter<'route' | 'method' | 'status'>;
  requestDuration: Histogram<'route' | 'method'>;
  inFlight: Gauge<'route'>;
  streamTimeToFirstByte: Histogram<'route'>;
  streamDuration: Histogram<'route'>;
  rejectedNotReady: Counter<'route'>;
  rejectedOverloaded: Counter<'route'>;
  rejectedTooLarge: Counter<'route'>;
  clientAborts: Counter<'route'>;
  upstreamErrors: Counter<'route' | 'kind'>;
  engineRestarts: Counter;
  engineStartupSeconds: Gauge;
  profileInfo: Gauge<'profile_id' | 'profile_name' | 'model' | 'served_model_name' | 'precision' | 'tp' | 'pp' | 'gpu'>;
}

/** How often the event-loop delay behind `nodejs_eventloop_lag_*` is sampled, ms. */
const EVENT_LOOP_SAMPLE_MS = 100;

export function createSupervisorMetrics(opts: { collectProcessMetrics?: boolean } = {}): SupervisorMetrics {
  const registry = new Registry();
  const p = METRIC_PREFIX;
  // Event-loop delay sampled every 100 ms (prom-client's default is 10): each sample wakes the process, which cost
  // ~1 % of a core per idle process here and ~3 % of the CPU per SSE event with proxy workers (docs/metrics.md).
  if (opts.collectProcessMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: p, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({
      name: `${p}http_requests_total`,
      help: 'HTTP requests answered by the supervisor, by route, method and status code.',
      labelNames: ['route', 'method', 'status'],
      registers,
    }),
    requestDuration: new Histogram({
      name: `${p}http_request_duration_seconds`,
      help: 'Time from request arrival to the end of the response (whole stream for SSE), by route.',
      labelNames: ['route', 'method'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    inFlight: new Gauge({
      name: `${p}http_requests_in_flight`,
      help: 'Requests being proxied to the engine right now, by route.',
      labelNames: ['route'],
      aggregator: 'sum', // across proxy workers: all of them in flight
      registers,
    }),
    streamTimeToFirstByte: new Histogram({
      name: `${p}stream_time_to_first_byte_seconds`,
      help: 'For streamed (SSE) responses: time from request arrival to the first body bytes from the engine.',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    streamDuration: new Histogram({
      name: `${p}stream_duration_seconds`,
      help: 'For streamed (SSE) responses: time from request arrival until the stream ended (or the client left).',
      labelNames: ['route'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
    rejectedNotReady: new Counter({
      name: `${p}requests_rejected_not_ready_total`,
      help: 'Inference requests answered 503 because the engine was not ready (loading, unhealthy or stopping).',
      labelNames: ['route'],
      registers,
    }),
    rejectedOverloaded: new Counter({
      name: `${p}requests_rejected_overloaded_total`,
      help: 'Inference requests answered 429 because NIM_MAX_INFLIGHT_REQUESTS were already in flight.',
      labelNames: ['route'],
      registers,
    }),
    rejectedTooLarge: new Counter({
      name: `${p}requests_rejected_too_large_total`,
      help: 'Requests answered 413 because their body exceeded NIM_MAX_REQUEST_BODY.',
      labelNames: ['route'],
      registers,
    }),
    clientAborts: new Counter({
      name: `${p}client_aborts_total`,
      help: 'Proxied requests whose client went away before the response ended (the engine request is aborted too).',
      labelNames: ['route'],
      registers,
    }),
    upstreamErrors: new Counter({
      name: `${p}upstream_errors_total`,
      help: 'Proxied requests that failed because the engine could not be reached or broke the connection.',
      labelNames: ['route', 'kind'],
      registers,
    }),
    engineRestarts: new Counter({
      name: `${p}engine_restarts_total`,
      help: 'Times the engine was restarted after exiting on its own (NIM_ENGINE_MAX_RESTARTS).',
      registers,
    }),
    engineStartupSeconds: new Gauge({
      name: `${p}engine_startup_seconds`,
      help: 'Seconds from spawning the engine to it being ready, for the latest start.',
      // Set by the primary only; with proxy workers (their registries hold 0) the aggregate keeps it.
      aggregator: 'max',
      registers,
    }),
    profileInfo: new Gauge({
      name: `${p}profile_info`,
      help: 'The selected model profile (value is always 1).',
      labelNames: ['profile_id', 'profile_name', 'model', 'served_model_name', 'precision', 'tp', 'pp', 'gpu'],
      aggregator: 'max', // an info gauge stays 1 across proxy workers
      registers,
    }),
  };
}

/** Export the lifecycle as one gauge per state (1 = current), updated on every transition. */
export function trackEngineState(registry: Registry, lifecycle: Lifecycle): void {
  new Gauge({
    name: `${METRIC_PREFIX}engine_state`,
    help: 'Engine lifecycle state: 1 for the current state, 0 for the others.',
    labelNames: ['state'],
    aggregator: 'max', // 0/1 per state, kept by the primary
    registers: [registry],
    collect() {
      for (const s of STATES) this.set({ state: s }, s === lifecycle.state ? 1 : 0);
    },
  });
}
