// A proxy worker's one decision per request: a proxied inference route
// (routes.ts, the same handlers as app.ts's fast dispatch) is served here,
// straight to the engine; everything else goes to the primary. Kept in one
// small module so the public port's front end can be swapped (a raw-socket
// edge whose fallback pipes to the primary's listener) without touching the rest.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.js';
import type { SupervisorMetrics } from '../metrics/supervisor-metrics.js';
import { fastRoute } from '../server/fast-route.js';
import { bearerMatcher } from '../server/auth.js';
import type { Cors } from '../server/cors.js';
import { sendError } from '../server/errors.js';
import type { EngineProxy } from '../server/proxy.js';
import { isSafeRequestTarget } from '../server/request-target.js';
import { PROXIED_ROUTES } from '../server/routes.js';
import type { PrimaryForwarder } from './forward.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The proxied routes a worker serves: exact paths, and the few with a parameter (`/v1/responses/:id`). */
export interface ProxiedRouteTable {
  /** `METHOD path` → handler. */
  exact: Map<string, Handler>;
  /** Checked in order when no exact path matched. */
  patterns: Array<{ method: string; re: RegExp; handle: Handler }>;
}

/** An express path with `:name` segments as a regex over the request path (one segment each, as express 5 matches). */
export function routePattern(expressPath: string): RegExp {
  const parts = expressPath.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('/')}$`);
}

/**
 * Every proxied route (routes.ts) with the API-key check, request metrics
 * (the same route labels: the express path) and error handling of app.ts's
 * fast dispatch. GET routes answer HEAD too, as express routes them.
 */
export function proxiedRouteTable(deps: { proxy: EngineProxy; metrics: SupervisorMetrics; logger: Logger; apiKey: string | undefined }): ProxiedRouteTable {
  const table: ProxiedRouteTable = { exact: new Map(), patterns: [] };
  const matches = deps.apiKey ? bearerMatcher(deps.apiKey) : undefined;
  for (const r of PROXIED_ROUTES) {
    const handle = deps.proxy.handler(r.path);
    for (const m of r.method === 'GET' ? ['GET', 'HEAD'] : [r.method]) {
      const h = fastRoute(deps, r.path, m, handle, matches);
      if (r.path.includes(':')) table.patterns.push({ method: m, re: routePattern(r.path), handle: h });
      else table.exact.set(`${m} ${r.path}`, h);
    }
  }
  return table;
}

/** The handler for a request's method and path, or undefined (not a proxied route). */
export function lookupProxied(table: ProxiedRouteTable, method: string | undefined, path: string): Handler | undefined {
  const exact = table.exact.get(`${method} ${path}`);
  if (exact !== undefined) return exact;
  for (const p of table.patterns) if (p.method === method && p.re.test(path)) return p.handle;
  return undefined;
}

export interface WorkerRoutes {
  /** The worker's request handler. */
  handle: Handler;
  /** Serve the proxied routes here from now on (until then they go to the primary too). */
  serveProxied(table: ProxiedRouteTable): void;
}

export interface WorkerRoutesDeps {
  forward: PrimaryForwarder;
  metrics: SupervisorMetrics;
  cors: Cors;
  /**
   * Wraps what the worker answers itself (proxied routes, refused request
   * targets), never what it forwards: the primary traces those (NIM_ENABLE_OTEL,
   * tracing/tracer.ts wrap), so each request gets one SERVER span.
   */
  wrap?: ((handler: Handler) => Handler) | undefined;
}

/**
 * The split. Unsafe request targets are refused here as guardRequestTargets
 * does (400, connection closed); CORS headers are set here for the routes
 * served here, while preflights (OPTIONS, never a proxied route) go to the primary.
 */
export function createWorkerRoutes(deps: WorkerRoutesDeps): WorkerRoutes {
  let table: ProxiedRouteTable | undefined;
  const { forward, metrics, cors } = deps;
  const wrap = deps.wrap ?? ((h: Handler) => h);
  const refuse = wrap((req, res) => {
    metrics.requests.inc({ route: 'invalid_target', method: req.method ?? '', status: '400' });
    sendError(res, 400, 'Invalid request target: use an origin-form path without dot segments, doubled or encoded slashes.', {
      connection: 'close',
    });
  });
  // Sets the CORS headers; a preflight never reaches a proxied route.
  const serve = (handle: Handler): Handler =>
    wrap((req, res) => {
      cors.apply(req, res);
      handle(req, res);
    });
  return {
    handle(req, res) {
      const url = req.url;
      if (!isSafeRequestTarget(url)) {
        refuse(req, res);
        return;
      }
      if (table !== undefined) {
        const q = url!.indexOf('?');
        const handle = lookupProxied(table, req.method, q < 0 ? url! : url!.slice(0, q));
        if (handle !== undefined) {
          handle(req, res);
          return;
        }
      }
      forward.request(req, res);
    },
    serveProxied(t) {
      table = {
        exact: new Map([...t.exact].map(([k, h]) => [k, serve(h)])),
        patterns: t.patterns.map((p) => ({ ...p, handle: serve(p.handle) })),
      };
    },
  };
}
