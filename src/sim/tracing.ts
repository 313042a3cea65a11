// vLLM's request tracing (`--otlp-traces-endpoint`): one `llm_request` SERVER span
// per generation request, a child of the context in the request's `traceparent`
// (vllm/tracing.py extract_trace_context; the span and its gen_ai.* attributes
// are made in vllm/v1/engine/output_processor.py do_tracing, v0.11 and v0.31 alike).
// vLLM exports with OTLP over gRPC or http/protobuf (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL);
// the simulator always exports OTLP/HTTP JSON to the same URL, which OTLP/HTTP
// receivers accept too (docs/simulator.md lists this difference).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ROOT_CONTEXT, SpanKind, defaultTextMapGetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface SimTracer {
  /** Trace one generation request: the span ends when the response closes. */
  observe(req: IncomingMessage, res: ServerResponse, model: string): void;
  /** Flush buffered spans (on shutdown). */
  close(): Promise<void>;
}

export function createSimTracer(endpoint: string): SimTracer {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME || 'vllm' }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }))],
  });
  const tracer = provider.getTracer('vllm.llm_engine');
  const propagator = new W3CTraceContextPropagator();
  return {
    observe(req, res, model) {
      const arrival = Date.now();
      const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
      let first: number | undefined;
      const write = res.write;
      res.write = function (this: ServerResponse, ...a: unknown[]) {
        first ??= Date.now();
        return (write as (...x: unknown[]) => boolean).apply(this, a);
      } as typeof res.write;
      res.once('close', () => {
        const end = Date.now();
        const span = tracer.startSpan('llm_request', { kind: SpanKind.SERVER, startTime: arrival }, parent);
        span.setAttribute('gen_ai.response.model', model);
        span.setAttribute('gen_ai.latency.time_to_first_token', ((first ?? end) - arrival) / 1000);
        span.setAttribute('gen_ai.latency.e2e', (end - arrival) / 1000);
        span.end(end);
      });
    },
    close: () => provider.shutdown(),
  };
}
