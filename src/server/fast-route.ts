// One proxied route dispatched without express (app.ts's fast path, also a
// proxy worker's, src/workers): no express on the way, so a worker need not load it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.js';
import type { SupervisorMetrics } from '../metrics/supervisor-metrics.js';
import { sendError } from './errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * One proxied route dispatched without express: the same API-key check,
 * request metrics (route/method/status labels, duration) and last-resort error
 * handling as the express stack gives it, with the metric children bound once.
 */
export function fastRoute(deps: { metrics: SupervisorMetrics; logger: Logger }, route: string, method: string, handle: Handler, matches: ((auth: string | undefined) => boolean) | undefined): Handler {
  const { metrics, logger } = deps;
  const duration = metrics.requestDuration.labels(route, method);
  const byStatus = new Map<number, ReturnType<typeof metrics.requests.labels>>();
  const count = (status: number): void => {
    let c = byStatus.get(status);
    if (c === undefined) {
      c = metrics.requests.labels(route, method, String(status));
      byStatus.set(status, c);
    }
    c.inc();
  };
  return (req, res) => {
    const start = performance.now();
    if (matches !== undefined && !matches(req.headers.authorization)) {
      // As in express, where the key check runs before routing: counted as `unmatched`.
      res.once('close', () => {
        metrics.requests.inc({ route: 'unmatched', method, status: String(res.statusCode) });
        metrics.requestDuration.observe({ route: 'unmatched', method }, (performance.now() - start) / 1000);
      });
      sendError(res, 401, "Invalid or missing API key: send it as 'Authorization: Bearer <key>'.", { 'www-authenticate': 'Bearer' });
      return;
    }
    res.once('close', () => {
      count(res.statusCode);
      duration.observe((performance.now() - start) / 1000);
    });
    try {
      handle(req, res);
    } catch (err) {
      const q = req.url!.indexOf('?');
      logger.error({ err: err instanceof Error ? err.message : String(err), path: q < 0 ? req.url : req.url!.slice(0, q) }, 'request failed');
      if (res.headersSent) res.destroy();
      else sendError(res, 500, 'Internal server error.');
    }
  };
}
