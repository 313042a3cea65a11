// The simulator's HTTP server on plain node:http (it is the backend of proxy
// benchmarks, so no framework sits on the hot path). Routing, vLLM's auth
// middleware (the release's prefixes), CORS, JSON body checks, error mapping, access log
// and the instrumentator's http_* metrics live here; routes live in handlers/.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SimConfig } from './config.js';
import { Engine } from './engine.js';
import { ApiError, BODY_METHOD_NOT_ALLOWED, ENGINE_DEAD_BODY, BODY_NOT_FOUND, BODY_UNAUTHORIZED, UNSUPPORTED_MEDIA_TYPE, validationError } from './errors.js';
import { batchChatCompletions, chatCompletions } from './handlers/chat.js';
import { completions } from './handlers/completions.js';
import { health, load, metrics, modelsHandler, tokenizerInfo, unsupported, version } from './handlers/info.js';
import { detokenize, renderChat, renderCompletion, tokenize } from './handlers/tokenize.js';
import { readBody, sendEmpty, sendJson, type Ctx, type Handler, type SimState } from './http.js';
import type { SimLogger } from './log.js';
import { SimLora, loraRequestsInfo } from './lora.js';
import { SimMetrics } from './metrics.js';
import { docsPage, openapiDocument, redocPage, type RouteDoc } from './openapi.js';
import { attachRealtime, hasRealtimeTask } from './realtime.js';
import { closeIdleLikeUvicorn } from './keep-alive.js';
import { Tokenizer } from './tokenizer.js';
import type { SimTracer } from './tracing.js';
import { isObject, type Json } from './validate.js';

export interface SimServerDeps {
  config: SimConfig;
  logger: SimLogger;
  /** VLLM_SIM_HEALTH=fail. */
  healthFail?: boolean;
  /** VLLM_SIM_HEALTH_FILE: health fails while this file holds "fail", is slow while it holds "slow" (read on every /health). */
  healthFile?: string | null;
  /** --otlp-traces-endpoint: vLLM's per-request spans (tracing.ts). */
  tracer?: SimTracer;
  /** VLLM_SIM_HEALTH_DELAY_MS: /health answers after this delay (only while the health file holds "slow", when one is set). */
  healthDelayMs?: number;
}

export interface SimServer {
  readonly server: Server;
  readonly state: SimState;
  readonly routes: readonly RouteDoc[];
  listen(host: string, port: number): Promise<AddressInfo>;
  /** The engine died: /health turns 503 and generation routes fail. */
  markDead(): void;
  close(): Promise<void>;
}

interface Route extends RouteDoc {
  handler: Handler;
  /** Generation routes: 500 once the engine is dead. */
  engine?: boolean;
}

const GENERATION = new Set(['/v1/chat/completions', '/v1/chat/completions/batch', '/v1/completions', '/invocations']);

export function createSimServer(deps: SimServerDeps): SimServer {
  const { config, logger } = deps;
  const tokenizer = new Tokenizer();
  let dead = false;
  let engine: Engine | null = null;
  const sim = new SimMetrics({
    modelName: config.servedNames[0]!,
    maxModelLen: config.maxModelLen,
    cacheConfig: cacheConfigLabels(config),
    removed: config.release.removedMetrics,
    gauges: () => ({ running: engine!.numRunning, waiting: engine!.numWaiting, kvUsage: engine!.kvUsage }),
  });
  const lora = new SimLora(config.lora, config.servedNames);
  const loraInfo = config.lora.enabled ? loraRequestsInfo(sim.registry, config.lora.maxLoras) : undefined;
  engine = new Engine({
    onLoraStats: loraInfo,
    ttftMs: config.ttftMs,
    tokenMs: config.tokenMs,
    maxConcurrency: config.maxConcurrency,
    kvTokens: config.kvTokens,
    blockSize: config.blockSize,
    prefixCaching: config.prefixCaching,
    metrics: sim,
    logger,
  });
  const state: SimState = {
    config,
    tokenizer,
    engine,
    metrics: sim,
    logger,
    lora,
    load: { n: 0 },
    unhealthy() {
      if (dead || deps.healthFail) return true;
      if (deps.healthFile) {
        try {
          return readFileSync(deps.healthFile, 'utf8').trim() === 'fail';
        } catch {
          return false;
        }
      }
      return false;
    },
    healthDelayMs() {
      const delay = deps.healthDelayMs ?? 0;
      if (delay <= 0 || !deps.healthFile) return delay;
      try {
        return readFileSync(deps.healthFile, 'utf8').trim() === 'slow' ? delay : 0;
      } catch {
        return 0;
      }
    },
  };

  const routes: Route[] = [];
  const add = (path: string, methods: string[], name: string, handler: Handler, json = false) => routes.push({ path, methods, name, handler, json });
  if (!config.disableFastapiDocs) {
    let openapiBody = '';
    add('/openapi.json', ['GET', 'HEAD'], 'openapi', (ctx) => {
      openapiBody ||= JSON.stringify(openapiDocument(routes, config.version));
      sendJson(ctx.res, 200, openapiBody);
    });
    const html = (page: string) => (ctx: Ctx) => {
      ctx.res.writeHead(200, { server: 'uvicorn', 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(page) });
      ctx.res.end(page);
    };
    add('/docs', ['GET', 'HEAD'], 'swagger_ui_html', html(docsPage(`${config.rootPath}/openapi.json`)));
    add('/docs/oauth2-redirect', ['GET', 'HEAD'], 'swagger_ui_redirect', html('<!doctype html><html lang="en-US"><body></body></html>\n'));
    add('/redoc', ['GET', 'HEAD'], 'redoc_html', html(redocPage(`${config.rootPath}/openapi.json`)));
  }
  add('/health', ['GET'], 'health', health);
  add('/load', ['GET'], 'get_server_load_metrics', load);
  add('/ping', ['GET', 'POST'], 'ping', health);
  add('/tokenize', ['POST'], 'tokenize', tokenize, true);
  add('/detokenize', ['POST'], 'detokenize', detokenize, true);
  if (config.enableTokenizerInfoEndpoint) add('/tokenizer_info', ['GET'], 'get_tokenizer_info', tokenizerInfo);
  add('/v1/models', ['GET'], 'show_available_models', modelsHandler(state));
  add('/version', ['GET'], 'show_version', version);
  add('/v1/chat/completions', ['POST'], 'create_chat_completion', chatCompletions, true);
  add('/v1/completions', ['POST'], 'create_completion', completions, true);
  if (config.release.chatBatchRoute) add('/v1/chat/completions/batch', ['POST'], 'create_batch_chat_completion', batchChatCompletions, true);
  // The simulated model only generates. 0.11 registers every task route and
  // answers 400; later releases register only the model's tasks (404 otherwise).
  if (config.release.unsupportedTaskRoutes === 'bad-request') {
    add('/v1/embeddings', ['POST'], 'create_embedding', unsupported('Embeddings'), true);
    add('/pooling', ['POST'], 'create_pooling', unsupported('Pooling'), true);
    add('/classify', ['POST'], 'create_classify', unsupported('Classification'), true);
    add('/score', ['POST'], 'create_score', unsupported('Score'), true);
    add('/v1/score', ['POST'], 'create_score_v1', unsupported('Score'), true);
    add('/v1/audio/transcriptions', ['POST'], 'create_transcriptions', unsupported('Transcriptions'));
    add('/v1/audio/translations', ['POST'], 'create_translations', unsupported('Translations'));
    add('/rerank', ['POST'], 'do_rerank', unsupported('Rerank (Score)'), true);
    add('/v1/rerank', ['POST'], 'do_rerank_v1', unsupported('Rerank (Score)'), true);
    add('/v2/rerank', ['POST'], 'do_rerank_v2', unsupported('Rerank (Score)'), true);
  }
  add('/invocations', ['POST'], 'invocations', invocations, true);
  add('/v1/chat/completions/render', ['POST'], 'render_chat_completion', renderChat, true);
  add('/v1/completions/render', ['POST'], 'render_completion', renderCompletion, true);
  add('/metrics', ['GET'], 'metrics', metrics);
  if (config.lora.runtimeUpdates) {
    // api_server.py registers these only with VLLM_ALLOW_RUNTIME_LORA_UPDATING; success is 200 with a plain-text body.
    add('/v1/load_lora_adapter', ['POST'], 'load_lora_adapter', (ctx) => {
      const name = loraField(ctx.body, 'lora_name');
      const p = loraField(ctx.body, 'lora_path');
      sendText(ctx.res, lora.load(name, p));
      logger.log('INFO', 'serving_models.py:191', `Loaded new LoRA adapter: name '${name}', path '${p}'`);
    }, true);
    add('/v1/unload_lora_adapter', ['POST'], 'unload_lora_adapter', (ctx) => {
      const name = loraField(ctx.body, 'lora_name');
      sendText(ctx.res, lora.unload(name));
      logger.log('INFO', 'serving_models.py:214', `Removed LoRA adapter: name '${name}'`);
    }, true);
  }

  const table = new Map<string, Route>();
  for (const r of routes) table.set(r.path, r);
  // Mount("/metrics") also answers /metrics/.
  table.set('/metrics/', table.get('/metrics')!);

  // vLLM hashes both sides and compares in constant time; several keys may be valid.
  const authPrefixes = config.release.authPrefixes;
  const keyDigests = config.apiKeys.map((k) => createHash('sha256').update(`Bearer ${k}`).digest());
  const authorized = (req: IncomingMessage): boolean => {
    const given = createHash('sha256').update(req.headers.authorization ?? '').digest();
    let ok = false;
    for (const k of keyDigests) if (timingSafeEqual(given, k)) ok = true;
    return ok;
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const t0 = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let path = q >= 0 ? url.slice(0, q) : url;
    if (config.rootPath && path.startsWith(config.rootPath)) path = path.slice(config.rootPath.length) || '/';
    const method = req.method ?? 'GET';
    const route = table.get(path);
    res.once('close', () => {
      const status = res.statusCode;
      sim.http(route ? route.path : 'none', method, status, (performance.now() - t0) / 1000);
      if (config.accessLog) {
        const addr = `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? ''}`;
        logger.raw(`INFO:     ${addr} - "${method} ${url} HTTP/${req.httpVersion}" ${status} ${STATUS_CODES[status] ?? ''}`);
      }
    });
    const origin = req.headers.origin;
    if (origin !== undefined) {
      res.setHeader('access-control-allow-origin', '*');
      if (method === 'OPTIONS' && req.headers['access-control-request-method']) {
        res.writeHead(200, {
          server: 'uvicorn',
          'access-control-allow-methods': 'DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT',
          'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? '*'),
          'access-control-max-age': '600',
          'content-type': 'text/plain; charset=utf-8',
          'content-length': 2,
        });
        res.end('OK');
        return;
      }
    }
    if (keyDigests.length && method !== 'OPTIONS' && authPrefixes.some((p) => path.startsWith(p)) && !authorized(req)) {
      sendJson(res, 401, BODY_UNAUTHORIZED);
      return;
    }
    if (!route) {
      sendJson(res, 404, BODY_NOT_FOUND);
      return;
    }
    if (!route.methods.includes(method)) {
      sendJson(res, 405, BODY_METHOD_NOT_ALLOWED, { allow: route.methods.join(', ') });
      return;
    }
    if (dead && GENERATION.has(path)) {
      if (config.release.deadEngineBody === 'empty') sendEmpty(res, 500);
      else sendJson(res, 500, ENGINE_DEAD_BODY);
      return;
    }
    if (deps.tracer && GENERATION.has(path)) deps.tracer.observe(req, res, config.servedNames[0]!);
    const ctx: Ctx = { req, res, path, body: EMPTY, state };
    if (config.enableServerLoadTracking) {
      state.load.n++;
      res.once('close', () => state.load.n--);
    }
    if (!route.json) {
      run(route.handler, ctx);
      return;
    }
    const ct = (req.headers['content-type'] ?? '').toLowerCase();
    if (ct.split(';', 1)[0] !== 'application/json') {
      req.resume();
      fail(res, validationError([UNSUPPORTED_MEDIA_TYPE]));
      return;
    }
    readBody(req).then(
      (buf) => {
        let parsed: unknown;
        try {
          parsed = buf.length === 0 ? undefined : JSON.parse(buf.toString('utf8'));
        } catch (e) {
          const pos = /position (\d+)/.exec(String((e as Error).message))?.[1];
          fail(res, validationError([{ type: 'json_invalid', loc: ['body', Number(pos ?? 0)], msg: 'JSON decode error', input: {}, ctx: { error: 'Expecting value' } }]));
          return;
        }
        if (parsed === undefined) {
          fail(res, validationError([{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }]));
          return;
        }
        if (!isObject(parsed)) {
          fail(res, validationError([{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: parsed }]));
          return;
        }
        ctx.body = parsed;
        run(route.handler, ctx);
      },
      () => res.destroy(),
    );
  };

  const run = (handler: Handler, ctx: Ctx): void => {
    try {
      const p = handler(ctx);
      if (p) p.catch((e: unknown) => fail(ctx.res, e));
    } catch (e) {
      fail(ctx.res, e);
    }
  };

  const fail = (res: ServerResponse, e: unknown): void => {
    if (e instanceof ApiError) {
      sendJson(res, e.status, e.body());
      return;
    }
    logger.log('ERROR', 'api_server.py:1052', `Error in request handler: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    sendJson(res, 500, new ApiError(500, 'InternalServerError', e instanceof Error ? e.message : String(e)).body());
  };

  function invocations(ctx: Ctx): void | Promise<void> {
    const b = ctx.body;
    if (Array.isArray(b.messages)) return chatCompletions(ctx);
    if (b.prompt !== undefined) return completions(ctx);
    throw new ApiError(400, 'BadRequestError', "Cannot find suitable handler for request. Expected one of: ['ChatCompletionRequest', 'CompletionRequest']");
  }

  const server = createServer({ keepAlive: true }, onRequest);
  closeIdleLikeUvicorn(server, config.keepAliveMs);
  // Large uploads (base64 images) may take a while; Node's default 300 s cap is not vLLM's.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  // WebSocket handshakes (realtime.ts): /v1/realtime exists, as in vLLM, only for a model with the realtime task.
  const realtime = attachRealtime(server, state, { enabled: hasRealtimeTask(config.model), authorized, needsAuth: keyDigests.length > 0 });

  return {
    server,
    state,
    routes,
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, backlog: 2048 }, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    markDead() {
      dead = true;
    },
    close() {
      engine.abortAll();
      realtime.close();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

const EMPTY: Json = Object.freeze({}) as Json;

/** A required `str` field of LoadLoRAAdapterRequest / UnloadLoRAAdapterRequest (pydantic: 400 when missing or not a string). */
function loraField(body: Json, field: string): string {
  const v = body[field];
  if (v === undefined) throw validationError([{ type: 'missing', loc: ['body', field], msg: 'Field required', input: body }]);
  if (typeof v !== 'string') throw validationError([{ type: 'string_type', loc: ['body', field], msg: 'Input should be a valid string', input: v }]);
  return v;
}

/** Starlette's Response(content=str): no media type, so no content-type header. */
function sendText(res: ServerResponse, text: string): void {
  res.writeHead(200, { server: 'uvicorn', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Labels of vllm:cache_config_info, stringified like Python would. */
function cacheConfigLabels(c: SimConfig): Record<string, string> {
  const blocks = Math.floor(c.kvTokens / c.blockSize);
  return {
    block_size: String(c.blockSize),
    cache_dtype: c.cacheDtype,
    calculate_kv_scales: 'False',
    cpu_offload_gb: '0',
    enable_prefix_caching: c.prefixCaching ? 'True' : 'False',
    engine: '0',
    gpu_memory_utilization: String(c.gpuMemoryUtilization),
    is_attention_free: 'False',
    num_cpu_blocks: 'None',
    num_gpu_blocks: String(blocks),
    num_gpu_blocks_override: 'None',
    prefix_caching_hash_algo: 'sha256',
    sliding_window: 'None',
    // CacheConfig lost swap_space with the flag (config/cache.py@M).
    ...(c.swapSpaceGiB === null ? {} : { swap_space: String(c.swapSpaceGiB), swap_space_bytes: String(Math.round(c.swapSpaceGiB * 1024 ** 3)) }),
  };
}
