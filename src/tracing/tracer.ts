// OpenTelemetry traces for the supervisor (NIM_ENABLE_OTEL=1): one SERVER span
// per public request, continuing the client's W3C `traceparent` and passing the
// span's own context on to the engine, so vLLM's `llm_request` spans (vLLM reads
// `traceparent` from the request headers: vllm/tracing.py extract_trace_context)
// land in the same trace. Engine lifecycle changes become spans and span events.
//
// This module and the OpenTelemetry SDK are imported only when tracing is on
// (serve.ts loads them lazily): with tracing off nothing here is on the hot path.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { EngineState, Lifecycle } from '../engine/lifecycle.js';
import type { Logger } from '../log/logger.js';
import { routeTemplate } from './route.js';
import type { TracingSettings } from './settings.js';
import { sniffModel } from './sniff.js';

export interface RequestTracing {
  /** The public request listener wrapped: one SERVER span per request. */
  wrap(handler: RequestListener): RequestListener;
  /** Record the engine's lifecycle: a span per start attempt and per unhealthy period, an event per transition. */
  watch(lifecycle: Lifecycle): void;
  /** Graceful: end open lifecycle spans and flush what is buffered to the collector. */
  close(): Promise<void>;
}

export interface TracingOptions {
  settings: TracingSettings;
  logger: Logger;
  /** The supervisor's version (service.version). */
  version: string;
  /** A span exporter to use instead of the one the settings name (tests). */
  exporter?: SpanExporter;
}

/** Span attribute names: OpenTelemetry's HTTP and GenAI semantic conventions where they have one, `nim.*` otherwise. */
const ATTR = {
  method: 'http.request.method',
  route: 'http.route',
  path: 'url.path',
  status: 'http.response.status_code',
  bodySize: 'http.response.body.size',
  clientAddress: 'client.address',
  model: 'gen_ai.request.model',
  stream: 'nim.stream',
  ttfb: 'nim.time_to_first_byte_ms',
  clientAbort: 'nim.client_abort',
} as const;

const propagator = new W3CTraceContextPropagator();

/**
 * Start the tracer provider and exporter.
 * @returns the request and lifecycle tracing hooks.
 */
export function startTracing(opts: TracingOptions): RequestTracing {
  const { settings, logger } = opts;
  const exporter =
    opts.exporter ?? (settings.exporter === 'console' ? new ConsoleSpanExporter() : new OTLPTraceExporter({ url: settings.tracesEndpoint }));
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName, 'service.version': opts.version }),
    // The sampler comes from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (the SDK reads them; settings.ts checks them).
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('nim-supervisor', opts.version);
  logger.info({ exporter: settings.exporter, endpoint: settings.exporter === 'otlp' ? settings.tracesEndpoint : undefined, service: settings.serviceName }, 'tracing on');
  const lifecycleSpans = new LifecycleSpans(tracer);
  return {
    wrap: (handler) => traced(tracer, handler),
    watch: (lifecycle) => lifecycleSpans.watch(lifecycle),
    async close() {
      lifecycleSpans.close();
      try {
        await provider.shutdown();
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'could not flush traces at shutdown');
      }
    },
  };
}

function traced(tracer: Tracer, handler: RequestListener): RequestListener {
  return (req, res) => {
    const start = performance.now();
    const method = req.method ?? 'GET';
    const q = (req.url ?? '/').indexOf('?');
    const path = q < 0 ? (req.url ?? '/') : req.url!.slice(0, q);
    const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
    // With proxy workers, the primary's socket carries the client's address too (workers/client-address.ts).
    const span = tracer.startSpan(
      `${method} ${routeTemplate(method, path) ?? path}`,
      {
        kind: SpanKind.SERVER,
        attributes: { [ATTR.method]: method, [ATTR.path]: path, [ATTR.clientAddress]: req.socket.remoteAddress ?? '' },
      },
      parent,
    );
    // The engine's spans become children of this one: replace the client's context with ours.
    delete req.headers.traceparent;
    delete req.headers.tracestate;
    propagator.inject(trace.setSpan(ROOT_CONTEXT, span), req.headers, defaultTextMapSetter);
    if (method === 'POST') sniffModel(req, (model) => span.setAttribute(ATTR.model, model));
    observeResponse(span, req, res, start);
    handler(req, res);
  };
}

/** Time to first byte, bytes and outcome of the response, recorded on the span when it closes. */
function observeResponse(span: Span, req: IncomingMessage, res: ServerResponse, start: number): void {
  let firstByteMs: number | undefined;
  let bytes = 0;
  const write = res.write;
  const end = res.end;
  const count = (chunk: unknown): void => {
    firstByteMs ??= performance.now() - start;
    if (typeof chunk === 'string') bytes += Buffer.byteLength(chunk);
    else if (chunk instanceof Uint8Array) bytes += chunk.byteLength;
  };
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    count(chunk);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof res.write;
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (chunk !== undefined && typeof chunk !== 'function') count(chunk);
    return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as typeof res.end;
  res.once('close', () => {
    const status = res.statusCode;
    const method = req.method ?? 'GET';
    const q = (req.url ?? '/').indexOf('?');
    const route = status === 404 ? 'unmatched' : (routeTemplate(method, q < 0 ? (req.url ?? '/') : req.url!.slice(0, q)) ?? 'unmatched');
    span.updateName(`${method} ${route}`);
    span.setAttribute(ATTR.route, route);
    span.setAttribute(ATTR.status, status);
    span.setAttribute(ATTR.stream, String(res.getHeader('content-type') ?? '').startsWith('text/event-stream'));
    span.setAttribute(ATTR.bodySize, bytes);
    if (firstByteMs !== undefined) span.setAttribute(ATTR.ttfb, Math.round(firstByteMs * 1000) / 1000);
    const aborted = !res.writableFinished;
    span.setAttribute(ATTR.clientAbort, aborted);
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${status}` });
    else if (aborted) span.setStatus({ code: SpanStatusCode.ERROR, message: 'client closed the connection before the response ended' });
    span.end();
  });
}

/**
 * Lifecycle spans: `engine.start` from each spawn (`starting`) to `ready` or
 * failure, `engine.unhealthy` for each unhealthy period; every transition is
 * an event (`engine.state_change`) on the span open at the time.
 */
/** States on the way from spawn to ready: the `engine.start` span stays open through them. */
const STILL_STARTING: ReadonlySet<string> = new Set(['loading', 'downloading']);

class LifecycleSpans {
  #start: Span | undefined;
  #unhealthy: Span | undefined;
  #starts = 0;

  constructor(private readonly tracer: Tracer) {}

  watch(lifecycle: Lifecycle): void {
    // Watching may begin after the engine was spawned (tracing loads off the start-up path): date the first span back.
    this.#open(lifecycle.state, lifecycle.reason, lifecycle.since);
    lifecycle.on('change', (c) => {
      const span = this.#unhealthy ?? this.#start;
      span?.addEvent('engine.state_change', { 'nim.engine.from': c.from, 'nim.engine.to': c.to, 'nim.engine.reason': c.reason }, c.at);
      if (c.to === 'ready' || c.to === 'failed' || c.to === 'stopping' || c.to === 'stopped' || c.to === 'starting') {
        this.#end(this.#unhealthy, c.to, c.reason);
        this.#unhealthy = undefined;
      }
      if (!STILL_STARTING.has(c.to) && c.to !== 'unhealthy') {
        this.#end(this.#start, c.to, c.reason);
        this.#start = undefined;
      }
      this.#open(c.to, c.reason, c.at);
    });
  }

  #open(state: EngineState, reason: string, at: Date): void {
    if ((state === 'starting' || STILL_STARTING.has(state)) && this.#start === undefined) {
      this.#start = this.tracer.startSpan('engine.start', { startTime: at, attributes: { 'nim.engine.attempt': ++this.#starts, 'nim.engine.reason': reason } });
    } else if (state === 'unhealthy' && this.#unhealthy === undefined) {
      this.#unhealthy = this.tracer.startSpan('engine.unhealthy', { startTime: at, attributes: { 'nim.engine.reason': reason } });
    }
  }

  #end(span: Span | undefined, to: EngineState, reason: string): void {
    if (span === undefined) return;
    span.setAttribute('nim.engine.outcome', to);
    if (to === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
    span.end();
  }

  close(): void {
    this.#end(this.#unhealthy, 'stopped', 'supervisor stopped');
    this.#end(this.#start, 'stopped', 'supervisor stopped');
    this.#unhealthy = this.#start = undefined;
  }
}
