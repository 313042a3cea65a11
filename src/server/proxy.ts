// The streaming reverse proxy to the engine (http-proxy-3). Requests and
// responses are piped, never buffered or parsed, so SSE chunks and many-MB
// image bodies pass straight through. A client that goes away aborts the
// engine request; an engine that goes away ends the client's response cleanly.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Lifecycle } from '../engine/lifecycle.js';
import type { Logger } from '../log/logger.js';
import type { SupervisorMetrics } from '../metrics/supervisor-metrics.js';
import { openAIError, sendError } from './errors.js';
import type { InflightTracker } from './inflight.js';

/**
 * Keep-alive agent to the engine. uvicorn closes idle connections after 5 s, so
 * idle pooled sockets are dropped after 3 s: reusing one the engine is closing
 * would fail the request with ECONNRESET.
 */
class EngineAgent extends http.Agent {
  static readonly IDLE_MS = 3000;
  constructor() {
    super({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, scheduling: 'lifo' });
  }
  override keepSocketAlive(socket: Socket): boolean {
    const keep = (http.Agent.prototype as unknown as { keepSocketAlive(s: Socket): boolean }).keepSocketAlive.call(this, socket);
    socket.setTimeout(EngineAgent.IDLE_MS);
    return keep;
  }
  override reuseSocket(socket: Socket, req: http.ClientRequest): void {
    socket.setTimeout(0); // an active request may legitimately be silent for minutes (long prefill)
    (http.Agent.prototype as unknown as { reuseSocket(s: Socket, r: http.ClientRequest): void }).reuseSocket.call(this, socket, req);
  }
}

export interface EngineProxyOptions {
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
}

// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and must not be
// forwarded; nor may any header the Connection header names.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade'];

function connectionListed(value: string | string[] | number | undefined): string[] {
  if (typeof value !== 'string') return [];
  return value
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '' && h !== 'close' && h !== 'keep-alive');
}

class BodyTooLargeError extends Error {}

/** Counts a chunked request body as it streams through, failing past `max` bytes. */
function bodyLimiter(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) cb(new BodyTooLargeError(`request body larger than ${max} bytes`));
      else cb(null, chunk);
    },
  });
}

export interface EngineProxy {
  /** A request handler for one allow-listed route (`route` labels metrics). */
  handler(route: string): (req: IncomingMessage, res: ServerResponse) => void;
  close(): void;
}

const SSE = 'text/event-stream';

function notReadyMessage(lifecycle: Lifecycle): string {
  switch (lifecycle.state) {
    case 'stopping':
    case 'stopped':
      return 'The server is shutting down.';
    case 'failed':
      return `The model failed and is not available: ${lifecycle.reason}`;
    case 'unhealthy':
      return `The model is temporarily unavailable: ${lifecycle.reason}`;
    default:
      return `The model is not ready yet (state: ${lifecycle.state}). Retry once /v1/health/ready answers 200.`;
  }
}

export function createEngineProxy(opts: EngineProxyOptions): EngineProxy {
  const { lifecycle, inflight, metrics, logger } = opts;
  const agent = new EngineAgent();
  const proxy = createProxyServer({
    agent,
    xfwd: true,
    // No proxyTimeout: a generation may legitimately stream (or prefill silently) for minutes.
  });

  proxy.on('proxyReq', (proxyReq, _req, res) => {
    (res as ResWithRoute).__proxyReq = proxyReq;
  });

  // The engine broke the connection after the response began (it crashed or was
  // stopped): end the client's response in a way the client can tell apart from success.
  proxy.on('proxyRes', (proxyRes, _req, res) => {
    for (const h of connectionListed(proxyRes.headers.connection)) delete proxyRes.headers[h];
    for (const h of HOP_BY_HOP) delete proxyRes.headers[h];
    // The engine's connection is not the client's: answer as the client's connection allows.
    proxyRes.headers.connection = (res as ServerResponse).shouldKeepAlive ? 'keep-alive' : 'close';
    const tagged = res as ResWithRoute;
    if (String(proxyRes.headers['content-type'] ?? '').startsWith(SSE) && tagged.__start !== undefined) {
      const labels = { route: tagged.__route ?? 'unknown' };
      const start = tagged.__start;
      proxyRes.once('data', () => metrics.streamTimeToFirstByte.observe(labels, (performance.now() - start) / 1000));
      res.once('close', () => metrics.streamDuration.observe(labels, (performance.now() - start) / 1000));
    }
    const onBroken = (): void => {
      if (proxyRes.complete || res.writableEnded || res.destroyed) return;
      const type = String(proxyRes.headers['content-type'] ?? '');
      if (type.startsWith(SSE)) {
        // vLLM's own mid-stream error shape, then the terminator: clients stop cleanly.
        const err = openAIError(502, 'The model engine stopped while streaming this response.');
        res.end(`data: ${JSON.stringify(err)}\n\ndata: [DONE]\n\n`);
      } else {
        // A truncated body must not look complete: drop the connection.
        res.destroy();
      }
      metrics.upstreamErrors.inc({ route: (res as ResWithRoute).__route ?? 'unknown', kind: 'broken_stream' });
    };
    proxyRes.once('aborted', onBroken);
    proxyRes.once('error', onBroken);
    proxyRes.once('close', onBroken);
  });

  // Failures before the engine answered: nothing reached the client yet.
  proxy.on('error', (err, _req, res) => {
    const code = (err as NodeJS.ErrnoException).code ?? 'ERR';
    const route = (res as ResWithRoute).__route ?? 'unknown';
    metrics.upstreamErrors.inc({ route, kind: code === 'ECONNREFUSED' ? 'refused' : 'error' });
    logger.warn({ route, code, msg: err.message }, 'engine request failed');
    if (res && 'writeHead' in res) {
      const r = res as ServerResponse;
      if (r.writableEnded) return; // already answered (e.g. 413): nothing left to fail
      if (r.headersSent) r.destroy();
      else sendError(r, 502, `The model engine could not be reached (${code}).`);
    }
  });

  return {
    handler(route) {
      const routeLabels = { route };
      return (req, res) => {
        if (!lifecycle.isReady) {
          metrics.rejectedNotReady.inc(routeLabels);
          sendError(res, 503, notReadyMessage(lifecycle), { 'retry-after': lifecycle.isTerminal ? '30' : '5' });
          return;
        }
        const target = opts.target();
        if (!target) {
          sendError(res, 503, notReadyMessage(lifecycle), { 'retry-after': '5' });
          return;
        }
        if (opts.maxInflight > 0 && inflight.count >= opts.maxInflight) {
          metrics.rejectedOverloaded.inc(routeLabels);
          sendError(res, 429, `Too many requests in flight (NIM_MAX_INFLIGHT_REQUESTS=${opts.maxInflight}); retry shortly.`, {
            'retry-after': '1',
          });
          return;
        }
        const declared = req.headers['content-length'];
        if (declared !== undefined && Number(declared) > opts.maxRequestBodyBytes) {
          metrics.rejectedTooLarge.inc(routeLabels);
          refuseBody(req, res, opts.maxRequestBodyBytes);
          return;
        }
        // A chunked body has no declared length: count it on the way through.
        let buffer: Transform | undefined;
        if (declared === undefined && req.headers['transfer-encoding'] !== undefined) {
          buffer = bodyLimiter(opts.maxRequestBodyBytes);
          buffer.on('error', (err) => {
            if (!(err instanceof BodyTooLargeError)) return;
            metrics.rejectedTooLarge.inc(routeLabels);
            req.unpipe(buffer);
            refuseBody(req, res, opts.maxRequestBodyBytes);
            (res as ResWithRoute).__proxyReq?.destroy();
          });
          req.pipe(buffer);
        }
        (res as ResWithRoute).__route = route;
        (res as ResWithRoute).__start = performance.now();
        inflight.enter();
        metrics.inFlight.inc(routeLabels);
        res.once('close', () => {
          inflight.leave();
          metrics.inFlight.dec(routeLabels);
          if (!res.writableFinished) metrics.clientAborts.inc(routeLabels);
        });
        // http-proxy copies the client's headers to the engine request: drop the hop-by-hop ones first.
        const listed = connectionListed(req.headers.connection);
        for (const h of HOP_BY_HOP) delete req.headers[h];
        for (const h of listed) delete req.headers[h];
        proxy.web(req, res, buffer ? { target, buffer } : { target });
      };
    },
    close() {
      proxy.close();
      agent.destroy();
    },
  };
}

type ResWithRoute = ServerResponse & { __route?: string; __start?: number; __proxyReq?: http.ClientRequest };

/**
 * Answer 413 without forwarding the body. The rest of the body is read and
 * discarded (up to a bound) so the client, still uploading, gets to read the
 * answer instead of a reset connection; past the bound the connection is cut.
 */
function refuseBody(req: IncomingMessage, res: ServerResponse, max: number): void {
  sendError(res, 413, `Request body too large: the limit is ${max} bytes (NIM_MAX_REQUEST_BODY).`);
  const bound = Math.max(max, 16 * 1024 * 1024);
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > bound) req.destroy();
  });
  req.resume();
}
