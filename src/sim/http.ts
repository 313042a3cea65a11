// Request/response plumbing shared by the handlers: body collection, JSON
// replies with uvicorn's headers, and the per-request context.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimConfig } from './config.js';
import type { Engine } from './engine.js';
import type { SimLogger } from './log.js';
import type { SimLora } from './lora.js';
import type { SimMetrics } from './metrics.js';
import type { Tokenizer } from './tokenizer.js';
import type { Json } from './validate.js';

/** Shared, per-server (not global) state the handlers work with. */
export interface SimState {
  config: SimConfig;
  tokenizer: Tokenizer;
  engine: Engine;
  metrics: SimMetrics;
  logger: SimLogger;
  /** Served LoRA adapters (OpenAIServingModels.lora_requests). */
  lora: SimLora;
  /** True while /health should answer 503 (knob, health file or dead engine). */
  unhealthy(): boolean;
  /** How long /health waits before answering (VLLM_SIM_HEALTH_DELAY_MS): vLLM's /health shares the busy API event loop. */
  healthDelayMs(): number;
  /** Requests in flight, for /load with --enable-server-load-tracking. */
  load: { n: number };
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  /** Parsed JSON body (JSON routes only). */
  body: Json;
  state: SimState;
}

export type Handler = (ctx: Ctx) => void | Promise<void>;

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      size += c.length;
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: string, extra?: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    server: 'uvicorn',
    'content-length': Buffer.byteLength(body),
    'content-type': 'application/json',
    ...extra,
  });
  res.end(body);
}

/**
 * Start an event stream: status line and headers go out now, before the first
 * token. vLLM returns `StreamingResponse(content=generator, media_type="text/event-stream")`
 * once the request is validated (openai/api_server.py create_chat_completion /
 * create_completion), and Starlette sends `http.response.start` before it
 * iterates the generator, which uvicorn writes to the socket at once
 * (uvicorn/protocols/http/httptools_impl.py, RequestResponseCycle.send). So a
 * client sees 200 and the headers during a long prefill or a queue.
 */
export function startEventStream(ctx: Ctx): void {
  const res = ctx.res;
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, { server: 'uvicorn', 'content-type': 'text/event-stream; charset=utf-8', ...idHeaders(ctx) });
  res.flushHeaders();
}

export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, { server: 'uvicorn', 'content-length': 0 });
  res.end();
}

/** uuid4().hex, as vLLM's random_uuid(). */
export function randomHex(): string {
  return randomUUID().replace(/-/g, '');
}

/** vLLM request ids: the X-Request-Id header if given, else a random uuid hex. */
export function requestId(ctx: Ctx, prefix: string): string {
  const h = ctx.req.headers['x-request-id'];
  const fromBody = ctx.body.request_id;
  const base = typeof h === 'string' && h ? h : typeof fromBody === 'string' && fromBody ? fromBody : randomHex();
  return `${prefix}${base}`;
}

export function idHeaders(ctx: Ctx): Record<string, string> | undefined {
  if (!ctx.state.config.enableRequestIdHeaders) return undefined;
  const h = ctx.req.headers['x-request-id'];
  return { 'x-request-id': typeof h === 'string' && h ? h : randomHex() };
}
