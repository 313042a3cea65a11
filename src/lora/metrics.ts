// The supervisor's LoRA metrics (on its own registry, next to
// supervisor-metrics.ts), and the per-adapter request count: vLLM's own
// metrics carry no adapter label (vllm:lora_requests_info only lists the
// adapters of the current batch), so the supervisor reads the `model` field
// vLLM puts at the start of every completion and chunk (id, object, created,
// model: the order of vLLM's pydantic response models) as the response passes.
import type { IncomingMessage } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../metrics/supervisor-metrics.js';
import type { LoraAdapters } from './manager.js';

export interface LoraMetrics {
  requests: Counter<'adapter'>;
  operations: Counter<'operation' | 'result'>;
}

export function registerLoraMetrics(registry: Registry, adapters: LoraAdapters): LoraMetrics {
  const p = METRIC_PREFIX;
  new Gauge({
    name: `${p}lora_adapters`,
    help: 'LoRA adapters of NIM_PEFT_SOURCE by state: loaded in the engine, skipped (invalid or refused), pending (still being written).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const s = adapters.summary();
      this.set({ state: 'loaded' }, s.loaded.length);
      this.set({ state: 'skipped' }, s.skipped.length);
      this.set({ state: 'pending' }, s.pending.length);
    },
  });
  const requests = new Counter({
    name: `${p}lora_requests_total`,
    help: 'Responses the engine produced for a LoRA adapter (its `model`), by adapter.',
    labelNames: ['adapter'],
    registers: [registry],
  });
  const operations = new Counter({
    name: `${p}lora_operations_total`,
    help: "Runtime loads and unloads of LoRA adapters through vLLM's API (NIM_PEFT_REFRESH_INTERVAL), by result.",
    labelNames: ['operation', 'result'],
    registers: [registry],
  });
  adapters.onEvent = (e) => operations.inc({ operation: e.kind, result: e.ok ? 'ok' : 'error' });
  return { requests, operations };
}

/** How much of a response is searched for `"model"` (vLLM writes it within the first ~100 bytes). */
const PEEK_BYTES = 1024;
const MODEL_FIELD = /"model"\s*:\s*"((?:[^"\\]|\\.)*)"/;

/** Reads one engine response's first body chunks; true once it has seen enough (the edge's ResponsePeek). */
export type ModelPeek = (chunk: Buffer) => boolean;
/** Per engine response (its status): a peek, or undefined to leave the response alone. */
export type ModelPeekStart = (status: number) => ModelPeek | undefined;

/**
 * Per engine response: undefined for an error status, else a peek that reads
 * the first body bytes (at most a kilobyte) and calls `onModel` once with the
 * response's `model` (a completion's or the first chunk's); it returns true
 * once it has seen enough. Never alters the stream. The one parser of the
 * in-process counting and the proxy workers' (src/workers).
 */
export function peekResponseModel(onModel: (name: string) => void): ModelPeekStart {
  return (status) => {
    if (status >= 400) return undefined;
    let seen = '';
    return (chunk) => {
      seen += chunk.toString('utf8', 0, Math.min(chunk.length, PEEK_BYTES));
      const m = MODEL_FIELD.exec(seen);
      if (m) {
        let name: string;
        try {
          name = JSON.parse(`"${m[1]}"`) as string;
        } catch {
          return true;
        }
        onModel(name);
        return true;
      }
      return seen.length >= PEEK_BYTES;
    };
  };
}

/** The same peek for the node:http path (server/proxy.ts's onEngineResponse): reads the engine response's first data events. */
export function peekIncomingResponses(start: ModelPeekStart): (res: IncomingMessage) => void {
  return (res) => {
    const peek = start(res.statusCode ?? 0);
    if (peek === undefined) return;
    const onData = (chunk: Buffer): void => {
      if (peek(chunk)) res.off('data', onData);
    };
    res.on('data', onData);
  };
}

/** Count a response under its `model` when that is one of the adapters served (the base model and unknown names are not counted). */
export function adapterCounter(adapters: LoraAdapters, metrics: LoraMetrics): (name: string) => void {
  return (name) => {
    if (adapters.isAdapter(name)) metrics.requests.inc({ adapter: name });
  };
}

/** Per-adapter counting on the edge's fast path. */
export function peekAdapterResponses(adapters: LoraAdapters, metrics: LoraMetrics): ModelPeekStart {
  return peekResponseModel(adapterCounter(adapters, metrics));
}

/** Per-adapter counting on the node:http path (server/proxy.ts). */
export function countAdapterResponses(adapters: LoraAdapters, metrics: LoraMetrics): (res: IncomingMessage) => void {
  return peekIncomingResponses(peekAdapterResponses(adapters, metrics));
}
