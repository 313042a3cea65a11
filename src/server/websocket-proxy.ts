// The WebSocket pass-through to the engine (see upgrade.ts for which upgrade
// requests get here): the handshake and then the raw frames are piped both
// ways by http-proxy-3, after the same API key check, readiness gating,
// in-flight cap and accounting as a proxied HTTP request. An open session is a
// request in flight, so drain waits for it (up to NIM_SHUTDOWN_GRACE_PERIOD).
import type http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { CorsSettings } from '../config/env.js';
import type { Lifecycle } from '../engine/lifecycle.js';
import type { Logger } from '../log/logger.js';
import type { SupervisorMetrics } from '../metrics/supervisor-metrics.js';
import { bearerMatcher } from './auth.js';
import type { InflightTracker } from './inflight.js';
import { decideUpgrade, refuseUpgrade, serveAsPlainHttp, type UpgradeHandler } from './upgrade.js';
import { CLIENT_ADDRESS_HEADER } from './internal-headers.js';

export interface UpgradeDeps {
  /** The public server (plain-HTTP requests go back to its parser). */
  server: http.Server;
  /** The engine's base URL, or undefined while no engine runs. */
  target: () => URL | undefined;
  lifecycle: Lifecycle;
  inflight: InflightTracker;
  metrics: SupervisorMetrics;
  logger: Logger;
  apiKey?: string | undefined;
  /** Proxied requests and sessions in flight at once; beyond it → 429 (0 = no cap). */
  maxInflight: number;
  /** With a list of origins, a browser handshake from any other origin is refused (cross-site WebSocket hijacking). */
  cors?: CorsSettings;
}

interface SessionCtx {
  route: string;
  counted: boolean;
}

/** The full upgrade handler (see the top of this file). */
export function createUpgradeHandler(deps: UpgradeDeps): UpgradeHandler & { destroy(): void } {
  const { lifecycle, inflight, metrics, logger } = deps;
  const matches = deps.apiKey ? bearerMatcher(deps.apiKey) : undefined;
  const proxy = createProxyServer({ xfwd: true });
  // http-proxy re-emits a session's socket errors (a client reset, an engine gone) on the proxy and
  // throws when nothing listens: each session's own callback and socket listeners handle them.
  proxy.on('error', () => undefined);
  const sessions = new WeakMap<IncomingMessage, SessionCtx>();
  const open = new Set<Duplex>();
  const count = (route: string, status: number): void => {
    metrics.requests.inc({ route, method: 'GET', status: String(status) });
  };

  proxy.on('proxyReqWs', (proxyReq, req) => {
    const ctx = sessions.get(req);
    if (!ctx) return;
    proxyReq.once('upgrade', () => {
      ctx.counted = true;
      count(ctx.route, 101);
    });
    proxyReq.once('response', (res) => {
      ctx.counted = true;
      count(ctx.route, res.statusCode ?? 502);
    });
  });

  const refuse = (route: string, socket: Duplex, status: number, message: string, headers?: Record<string, string>): void => {
    count(route, status);
    refuseUpgrade(socket, status, message, headers);
  };

  const handler = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const d = decideUpgrade(req.method, req.url, req.headers.upgrade);
    if (d.kind === 'plain-http') {
      serveAsPlainHttp(deps.server, req, socket, head);
      return;
    }
    if (d.kind === 'refuse') {
      refuse(d.status === 400 ? 'invalid_target' : 'unmatched', socket, d.status, d.message, d.headers);
      return;
    }
    const route = d.route;
    if (matches !== undefined && !matches(req.headers.authorization)) {
      refuse(route, socket, 401, "Invalid or missing API key: send it as 'Authorization: Bearer <key>'.", { 'www-authenticate': 'Bearer' });
      return;
    }
    const origin = req.headers.origin;
    const origins = deps.cors?.allowOrigins;
    if (origin !== undefined && Array.isArray(origins) && !origins.includes(origin.toLowerCase())) {
      refuse(route, socket, 403, `Origin ${origin} is not in NIM_CORS_ALLOW_ORIGINS.`);
      return;
    }
    const target = deps.target();
    if (!lifecycle.isReady || target === undefined) {
      metrics.rejectedNotReady.inc({ route });
      const msg = lifecycle.state === 'stopping' || lifecycle.state === 'stopped' ? 'The server is shutting down.' : `The model is not ready (state: ${lifecycle.state}).`;
      refuse(route, socket, 503, msg, { 'retry-after': lifecycle.isTerminal ? '30' : '5' });
      return;
    }
    if (deps.maxInflight > 0 && inflight.count >= deps.maxInflight) {
      metrics.rejectedOverloaded.inc({ route });
      refuse(route, socket, 429, `Too many requests in flight (NIM_MAX_INFLIGHT_REQUESTS=${deps.maxInflight}); retry shortly.`, { 'retry-after': '1' });
      return;
    }
    // An open session is a request in flight: drain waits for it, the cap counts it.
    const ctx: SessionCtx = { route, counted: false };
    sessions.set(req, ctx);
    inflight.enter();
    metrics.inFlight.inc({ route });
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      inflight.leave();
      metrics.inFlight.dec({ route });
    });
    delete req.headers[CLIENT_ADDRESS_HEADER]; // internal to the supervisor: never the engine's
    proxy.ws(req, socket, head, { target }, (err) => {
      const code = (err as NodeJS.ErrnoException).code ?? 'ERR';
      metrics.upstreamErrors.inc({ route, kind: code === 'ECONNREFUSED' ? 'refused' : 'error' });
      logger.warn({ route, code, msg: err.message }, 'engine WebSocket request failed');
      if (!ctx.counted) {
        ctx.counted = true;
        refuse(route, socket, 502, `The model engine could not be reached (${code}).`);
      }
    });
  };
  return Object.assign(handler, {
    /** Cut every open session now (at the end of a shutdown, after the engine stopped). */
    destroy(): void {
      for (const s of open) s.destroy();
      proxy.close();
    },
  });
}
