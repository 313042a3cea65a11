// The streaming reverse proxy to the engine (http-proxy-3). Requests and
// responses are piped, never buffered or parsed, so SSE chunks and many-MB
// image bodies pass straight through. A client that goes away aborts the
// engine request; an engine that goes away ends the client's response cleanly.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { Lifecycle } from '../engine/lifecycle.js';
import type { Logger } from '../log/logger.js';
import type { SupervisorMetrics } from '../metrics/supervisor-metrics.js';
import { BodyTooLargeError, EngineAgent, isIdleCloseRace, poolIdleMs, RequestBody } from './engine-agent.js';
import { admitProxied, tooLargeMessage } from './admission.js';
import { openAIError, sendError } from './errors.js';
import type { InflightTracker } from './inflight.js';
import { isCorsResponseHeader } from './cors.js';
import { SSE_ANTI_BUFFERING, SseKeepAlive } from './sse-keepalive.js';
import { CLIENT_ADDRESS_HEADER } from './internal-headers.js';
import { HOP_BY_HOP } from './hop-by-hop.js';

/** What both request paths to the engine take: this one (node:http) and the edge's fast path (edge/fast-proxy.ts). */
export interface ProxyingOptions {
  /** The engine's base URL, or undefined while no engine runs. */
  target: () => URL | undefined;
  lifecycle: Lifecycle;
  inflight: InflightTracker;
  metrics: SupervisorMetrics;
  logger: Logger;
  /** Largest request body passed on; larger → 413. */
  maxRequestBodyBytes: number;
  /** Proxied requests in flight at once; beyond it → 429 (0 = no cap). */
  maxInflight: number;
  /** How a 429 names that cap (see admission.ts). */
  maxInflightLabel?: string | undefined;
}

export interface EngineProxyOptions extends ProxyingOptions {
  /** Sees each engine response as it starts (read-only observers, e.g. per-LoRA-adapter counts). */
  onEngineResponse?: ((res: IncomingMessage) => void) | undefined;
  /** Silence on an event stream before a `: keep-alive` comment (ms; 0 = never). */
  sseKeepAliveIntervalMs?: number;
  /** The public server's keep-alive timeout (ms), announced as `Keep-Alive: timeout=N`. */
  keepAliveTimeoutMs?: number;
  /** The engine's idle keep-alive (VLLM_HTTP_TIMEOUT_KEEP_ALIVE, ms): pooled sockets are dropped before it (default 5000). */
  engineKeepAliveMs?: number;
}

// What never goes to the engine from a client's request: the hop-by-hop headers and the supervisor's internal one.
const DROP_REQUEST = [...HOP_BY_HOP, CLIENT_ADDRESS_HEADER];

function connectionListed(value: string | string[] | number | undefined): string[] {
  if (typeof value !== 'string') return [];
  return value
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '' && h !== 'close' && h !== 'keep-alive');
}

export interface EngineProxy {
  /** A request handler for one allow-listed route (`route` labels metrics). */
  handler(route: string): (req: IncomingMessage, res: ServerResponse) => void;
  /** Graceful teardown: pool no more engine connections and drop the idle ones; requests in flight finish. */
  close(): void;
  /** Immediate teardown: cut every engine connection, in flight or idle. */
  destroy(): void;
}

const SSE = 'text/event-stream';

/** Largest body kept in memory for a replay after an idle-close race. */
const REPLAY_MAX_BYTES = 16 * 1024 * 1024;

export function createEngineProxy(opts: EngineProxyOptions): EngineProxy {
  const { lifecycle, inflight, metrics, logger } = opts;
  const sseKeepAliveMs = opts.sseKeepAliveIntervalMs ?? 0;
  // Node announces its keep-alive timeout on its own responses only; proxied ones set Connection themselves.
  const keepAliveHint = opts.keepAliveTimeoutMs ? `timeout=${Math.floor(opts.keepAliveTimeoutMs / 1000)}` : undefined;
  const agent = new EngineAgent(poolIdleMs(opts.engineKeepAliveMs ?? 5000));
  // A body is kept for one replay up to this size (larger ones are not replayed).
  const keepUpTo = Math.min(opts.maxRequestBodyBytes, REPLAY_MAX_BYTES);
  const proxy = createProxyServer({
    agent,
    xfwd: true,
    // No proxyTimeout: a generation may legitimately stream (or prefill silently) for minutes.
  });

  proxy.on('proxyReq', (proxyReq, _req, res) => {
    const ctx = (res as WithCtx)[CTX];
    if (ctx) ctx.proxyReq = proxyReq;
  });

  proxy.on('proxyRes', (proxyRes, _req, res) => {
    const headers = proxyRes.headers;
    if (headers.connection !== undefined) {
      for (const h of connectionListed(headers.connection)) delete headers[h];
    }
    for (const h of HOP_BY_HOP) if (h in headers) delete headers[h];
    // The engine's connection is not the client's: answer as the client's connection allows.
    const keepAlive = (res as ServerResponse).shouldKeepAlive;
    headers.connection = keepAlive ? 'keep-alive' : 'close';
    if (keepAlive && keepAliveHint !== undefined) headers['keep-alive'] = keepAliveHint;
    // CORS headers are the supervisor's (cors.ts set them on `res` already): drop the engine's.
    for (const h in headers) if (isCorsResponseHeader(h)) delete headers[h];
    const vary = (res as ServerResponse).getHeader('vary');
    if (vary !== undefined && headers.vary !== undefined) headers.vary = `${String(vary)}, ${headers.vary}`;
    const ctx = (res as WithCtx)[CTX];
    if (!ctx) return;
    opts.onEngineResponse?.(proxyRes);
    ctx.sse = String(headers['content-type'] ?? '').startsWith(SSE);
    if (ctx.sse) {
      proxyRes.once('data', () => ctx.route.ttfb.observe((performance.now() - ctx.start) / 1000));
      for (const [k, v] of Object.entries(SSE_ANTI_BUFFERING)) if (headers[k] === undefined || k === 'x-accel-buffering') headers[k] = v;
      startStream(proxyRes, res as ServerResponse, sseKeepAliveMs);
    }
    // The engine may break the connection after the response began (it crashed or was
    // stopped): end the client's response in a way the client can tell apart from success.
    proxyRes.on('error', ignore);
    proxyRes.once('close', () => {
      if (proxyRes.complete || res.writableEnded || res.destroyed) return;
      if (ctx.sse) {
        // vLLM's own mid-stream error shape, then the terminator: clients stop cleanly.
        const err = openAIError(502, 'The model engine stopped while streaming this response.');
        res.end(`data: ${JSON.stringify(err)}\n\ndata: [DONE]\n\n`);
      } else {
        // A truncated body must not look complete: drop the connection.
        res.destroy();
      }
      ctx.route.brokenStreams.inc();
    });
  });

  // Failures before the engine answered: nothing reached the client yet.
  proxy.on('error', (err, req, res) => {
    const code = (err as NodeJS.ErrnoException).code ?? 'ERR';
    const ctx = (res as WithCtx | undefined)?.[CTX];
    const route = ctx?.route.name ?? 'unknown';
    // The engine closed an idle pooled socket just as this request went out on it: replay once.
    if (ctx && !ctx.replayed && isIdleCloseRace(err as NodeJS.ErrnoException, ctx.proxyReq) && lifecycle.isReady && !(res as ServerResponse).headersSent) {
      ctx.replayed = true;
      metrics.upstreamErrors.inc({ route, kind: 'idle_close_replayed' });
      logger.debug({ route, code }, 'engine closed a reused connection; replaying the request on a new one');
      void replay(req as IncomingMessage, res as ServerResponse, ctx).then((sent) => {
        if (!sent) failBeforeResponse(res as ServerResponse, code);
      });
      return;
    }
    metrics.upstreamErrors.inc({ route, kind: code === 'ECONNREFUSED' ? 'refused' : 'error' });
    logger.warn({ route, code, msg: err.message }, 'engine request failed');
    if (res && 'writeHead' in res) failBeforeResponse(res as ServerResponse, code);
  });

  function failBeforeResponse(r: ServerResponse, code: string): void {
    if (r.writableEnded) return; // already answered (e.g. 413): nothing left to fail
    if (r.headersSent) r.destroy();
    // While the engine is not ready (killed as unresponsive, restarting), say so.
    else sendError(r, 502, `The model engine could not be reached (${code})${lifecycle.isReady ? '' : `: ${lifecycle.reason}`}.`);
  }

  /** Send the request again on a new connection; false when its body cannot be replayed. */
  async function replay(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<boolean> {
    const body = ctx.body ? await ctx.body.whole() : Buffer.alloc(0);
    const target = opts.target();
    if (body === undefined || !target || res.destroyed || res.headersSent) return false;
    req.headers = { ...ctx.headers }; // as first sent (http-proxy appends X-Forwarded-* on each pass)
    ctx.proxyReq = undefined;
    proxy.web(req, res, { target, buffer: Readable.from(body.length > 0 ? [body] : []) });
    return true;
  }

  return {
    handler(name) {
      // Metric children bound once per route: no label hashing per request.
      const route = bindRouteMetrics(metrics, name);
      return (req, res) => {
        const headers = req.headers;
        const declared = headers['content-length'];
        const target = opts.target();
        const refusal = admitProxied({
          state: lifecycle.state,
          reason: lifecycle.reason,
          hasTarget: target !== undefined,
          inflight: inflight.count,
          maxInflight: opts.maxInflight,
          maxInflightLabel: opts.maxInflightLabel,
          declaredLength: declared === undefined ? undefined : Number(declared),
          maxBodyBytes: opts.maxRequestBodyBytes,
        });
        if (refusal !== undefined) {
          if (refusal.kind === 'not_ready') route.rejectedNotReady.inc();
          else if (refusal.kind === 'overloaded') route.rejectedOverloaded.inc();
          else route.rejectedTooLarge.inc();
          if (refusal.kind === 'too_large') refuseBody(req, res, opts.maxRequestBodyBytes);
          else sendError(res, refusal.status, refusal.message, refusal.headers);
          return;
        }
        const ctx: RequestContext = { route, start: performance.now(), proxyReq: undefined, sse: false, replayed: false, body: undefined, headers };
        (res as WithCtx)[CTX] = ctx;
        // A body goes through RequestBody: counted (a chunked body has no declared length) and kept for one replay.
        let buffer: RequestBody | undefined;
        if ((declared !== undefined && declared !== '0') || headers['transfer-encoding'] !== undefined) {
          buffer = new RequestBody(opts.maxRequestBodyBytes, keepUpTo);
          ctx.body = buffer;
          buffer.on('error', (err) => {
            if (!(err instanceof BodyTooLargeError)) return;
            route.rejectedTooLarge.inc();
            req.unpipe(buffer);
            refuseBody(req, res, opts.maxRequestBodyBytes);
            ctx.proxyReq?.destroy();
          });
          req.pipe(buffer);
        }
        inflight.enter();
        route.inFlight.inc();
        res.once('close', () => {
          inflight.leave();
          route.inFlight.dec();
          if (!res.writableFinished) route.clientAborts.inc();
          if (ctx.sse) route.streamDuration.observe((performance.now() - ctx.start) / 1000);
        });
        // http-proxy copies the client's headers to the engine request: drop the hop-by-hop ones first.
        if (headers.connection !== undefined) {
          for (const h of connectionListed(headers.connection)) delete headers[h];
        }
        for (const h of DROP_REQUEST) if (h in headers) delete headers[h];
        ctx.headers = { ...headers };
        proxy.web(req, res, buffer ? { target, buffer } : { target });
      };
    },
    close() {
      agent.closeIdle();
    },
    destroy() {
      proxy.close();
      agent.destroy();
    },
  };
}

/** Per-route metric children, bound once (shared with the edge's fast path, src/edge/fast-proxy.ts). */
export interface RouteMetrics {
  name: string;
  inFlight: Gauge.Internal<'route'>;
  clientAborts: Counter.Internal;
  rejectedNotReady: Counter.Internal;
  rejectedOverloaded: Counter.Internal;
  rejectedTooLarge: Counter.Internal;
  brokenStreams: Counter.Internal;
  ttfb: Histogram.Internal<'route'>;
  streamDuration: Histogram.Internal<'route'>;
}

/** The metric children of route `name`. */
export function bindRouteMetrics(metrics: SupervisorMetrics, name: string): RouteMetrics {
  return {
    name,
    inFlight: metrics.inFlight.labels(name),
    clientAborts: metrics.clientAborts.labels(name),
    rejectedNotReady: metrics.rejectedNotReady.labels(name),
    rejectedOverloaded: metrics.rejectedOverloaded.labels(name),
    rejectedTooLarge: metrics.rejectedTooLarge.labels(name),
    brokenStreams: metrics.upstreamErrors.labels(name, 'broken_stream'),
    ttfb: metrics.streamTimeToFirstByte.labels(name),
    streamDuration: metrics.streamDuration.labels(name),
  };
}

/** What one proxied request carries between the proxy's events (one property on the response). */
interface RequestContext {
  route: RouteMetrics;
  start: number;
  proxyReq: http.ClientRequest | undefined;
  sse: boolean;
  /** The request was already sent a second time (after an idle-close race). */
  replayed: boolean;
  /** The body on its way (kept for a replay); undefined for a request without one. */
  body: RequestBody | undefined;
  /** The headers as first sent to the engine. */
  headers: http.IncomingHttpHeaders;
}

const CTX = Symbol('nim-supervisor.proxy-context');
type WithCtx = ServerResponse & { [CTX]?: RequestContext };

function ignore(): void {
  /* errors are handled through 'close' */
}

/**
 * An event stream starts: its status and headers go to the client now (not
 * with the first event, which may be a long prefill away), and silences get
 * keep-alive comments (sse-keepalive.ts).
 */
function startStream(proxyRes: IncomingMessage, res: ServerResponse, keepAliveMs: number): void {
  // http-proxy applies the status and headers right after 'proxyRes', then pipes.
  process.nextTick(() => {
    if (!res.headersSent && !res.destroyed) res.flushHeaders();
  });
  if (keepAliveMs <= 0) return;
  const keepAlive = new SseKeepAlive(res, { intervalMs: keepAliveMs });
  proxyRes.on('data', (chunk: Buffer) => keepAlive.observe(chunk));
  proxyRes.once('end', () => keepAlive.stop());
  res.once('close', () => keepAlive.stop());
}



/**
 * Answer 413 without forwarding the body. The rest of the body is read and
 * discarded (up to a bound) so the client, still uploading, gets to read the
 * answer instead of a reset connection; past the bound the connection is cut.
 */
function refuseBody(req: IncomingMessage, res: ServerResponse, max: number): void {
  sendError(res, 413, tooLargeMessage(max));
  const bound = Math.max(max, 16 * 1024 * 1024);
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > bound) req.destroy();
  });
  req.resume();
}
