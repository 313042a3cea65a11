// The public HTTP application: NIM management endpoints served here, the
// allow-listed inference routes proxied to the engine, and a JSON 404 for
// everything else. No body parsing anywhere: proxied bodies stream through.
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../log/logger.js';
import type { SupervisorMetrics } from '../metrics/supervisor-metrics.js';
import { bearerMatcher, requireApiKey } from './auth.js';
import type { Cors } from './cors.js';
import { sendError } from './errors.js';
import { managementRouter, type ManagementDeps } from './management.js';
import type { EngineProxy } from './proxy.js';
import { isSafeRequestTarget } from './request-target.js';
import { PROXIED_ROUTES } from './routes.js';
import { fastRoute } from './fast-route.js';

export interface AppDeps extends ManagementDeps {
  proxy: EngineProxy;
  metrics: SupervisorMetrics;
  logger: Logger;
  /** When set, every route but the health probes needs `Authorization: Bearer <key>`. */
  apiKey?: string | undefined;
  /** With an API key: whether /v1/metrics needs it too. */
  protectMetrics?: boolean;
}

/**
 * Wrap the app with the request-target guard (see request-target.ts): unsafe
 * targets are refused before routing, and the connection is closed. Then CORS
 * (cors.ts): preflights are answered here, before authentication and routing.
 */
export function guardRequestTargets(app: Express, metrics: SupervisorMetrics, cors?: Cors) {
  const fast = fastRoutes.get(app);
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url;
    if (isSafeRequestTarget(url)) {
      if (cors !== undefined && cors.apply(req, res)) {
        metrics.requests.inc({ route: 'cors_preflight', method: 'OPTIONS', status: String(res.statusCode) });
        return;
      }
      // Proxied inference routes skip express (see fastRoute); everything else goes through it.
      if (fast !== undefined) {
        const q = url!.indexOf('?');
        const handle = fast.get(`${req.method} ${q < 0 ? url : url!.slice(0, q)}`);
        if (handle !== undefined) {
          handle(req, res);
          return;
        }
      }
      app(req, res);
      return;
    }
    metrics.requests.inc({ route: 'invalid_target', method: req.method ?? '', status: '400' });
    sendError(res, 400, 'Invalid request target: use an origin-form path without dot segments, doubled or encoded slashes.', {
      connection: 'close',
    });
  };
}

/**
 * Count every answered request by route, method and status, and time it. The
 * route label is the matched route's path (a bounded set), or "unmatched".
 */
function requestMetrics(metrics: SupervisorMetrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const start = performance.now();
    res.once('close', () => {
      const path = (req.route as { path?: unknown } | undefined)?.path;
      const route = typeof path === 'string' ? path : Array.isArray(path) ? req.path : 'unmatched';
      metrics.requests.inc({ route, method: req.method, status: String(res.statusCode) });
      metrics.requestDuration.observe({ route, method: req.method }, (performance.now() - start) / 1000);
    });
    next();
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Per app: `METHOD path` → handler for the proxied routes without parameters (built by createApp). */
const fastRoutes = new WeakMap<Express, Map<string, Handler>>();

export function createApp(deps: AppDeps): Express {
  const { metrics, proxy, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Match paths exactly as the engine would: `/V1/MODELS` and `/v1/models/` are not `/v1/models`.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);

  app.use(requestMetrics(metrics));
  if (deps.apiKey) app.use(requireApiKey({ apiKey: deps.apiKey, protectMetrics: deps.protectMetrics ?? true }));
  app.use(managementRouter(deps));

  const fast = new Map<string, Handler>();
  const matches = deps.apiKey ? bearerMatcher(deps.apiKey) : undefined;
  for (const r of PROXIED_ROUTES) {
    const handle = proxy.handler(r.path);
    const h = (req: Request, res: Response): void => handle(req, res);
    if (r.method === 'GET') app.get(r.path, h);
    else app.post(r.path, h);
    // Exact paths (no `:param`) are also dispatched by guardRequestTargets without express;
    // express routes HEAD to GET handlers, so HEAD goes the same way.
    if (!r.path.includes(':')) {
      for (const m of r.method === 'GET' ? ['GET', 'HEAD'] : [r.method]) fast.set(`${m} ${r.path}`, fastRoute(deps, r.path, m, handle, matches));
    }
  }
  fastRoutes.set(app, fast);

  app.use((req: Request, res: Response) => {
    sendError(res, 404, `Route ${req.method} ${req.path} not found.`);
  });

  // Express's last resort: never leak a stack trace to clients.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    logger.error({ err: err instanceof Error ? err.message : String(err), path: req.path }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status = typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 500;
    sendError(res, status, status >= 500 ? 'Internal server error.' : String((err as Error).message ?? 'error'));
  });
  return app;
}
