// A proxy worker's one decision per request: a plain proxied inference route
// (exact path, the same table as app.ts's fast dispatch) is served here,
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

/**
 * `METHOD path` → handler for the proxied routes without parameters, with the
 * API-key check, request metrics and error handling of app.ts's fast dispatch.
 * (Routes with a parameter, like GET /v1/responses/{id}, are few and rare: the primary serves them.)
 */
export function proxiedRouteTable(deps: { proxy: EngineProxy; metrics: SupervisorMetrics; logger: Logger; apiKey: string | undefined }): Map<string, Handler> {
  const table = new Map<string, Handler>();
  const matches = deps.apiKey ? bearerMatcher(deps.apiKey) : undefined;
  for (const r of PROXIED_ROUTES) {
    if (r.path.includes(':')) continue;
    const handle = deps.proxy.handler(r.path);
    for (const m of r.method === 'GET' ? ['GET', 'HEAD'] : [r.method]) table.set(`${m} ${r.path}`, fastRoute(deps, r.path, m, handle, matches));
  }
  return table;
}

export interface WorkerRoutes {
  /** The worker's request handler. */
  handle: Handler;
  /** Serve the proxied routes here from now on (until then they go to the primary too). */
  serveProxied(table: Map<string, Handler>): void;
}

/**
 * The split. Unsafe request targets are refused here as guardRequestTargets
 * does (400, connection closed); CORS headers are set here for the routes
 * served here, while preflights (OPTIONS, never a proxied route) go to the primary.
 */
export function createWorkerRoutes(deps: { forward: PrimaryForwarder; metrics: SupervisorMetrics; cors: Cors }): WorkerRoutes {
  let table: Map<string, Handler> | undefined;
  const { forward, metrics, cors } = deps;
  return {
    handle(req, res) {
      const url = req.url;
      if (!isSafeRequestTarget(url)) {
        metrics.requests.inc({ route: 'invalid_target', method: req.method ?? '', status: '400' });
        sendError(res, 400, 'Invalid request target: use an origin-form path without dot segments, doubled or encoded slashes.', {
          connection: 'close',
        });
        return;
      }
      if (table !== undefined) {
        const q = url!.indexOf('?');
        const handle = table.get(`${req.method} ${q < 0 ? url : url!.slice(0, q)}`);
        if (handle !== undefined) {
          cors.apply(req, res); // sets the CORS headers; a preflight never reaches a proxied route
          handle(req, res);
          return;
        }
      }
      forward.request(req, res);
    },
    serveProxied(t) {
      table = t;
    },
  };
}
