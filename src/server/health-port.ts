// NIM_HEALTH_PORT (NIM 2.x): liveness and readiness also on a second,
// plain-HTTP port, for probes that cannot present the API key or a TLS client
// certificate. It answers exactly what the public port answers for
// /v1/health/live and /v1/health/ready (it calls the same handler), and 404
// for everything else: nothing but health is reachable there.
import http from 'node:http';
import { ConfigError } from '../errors.js';

export const HEALTH_PATHS: ReadonlySet<string> = new Set(['/v1/health/live', '/v1/health/ready']);

/** The handler of the health port: health paths go to `health` (the public port's current handler), the rest get 404. */
export function healthPortHandler(health: () => http.RequestListener): http.RequestListener {
  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if ((req.method === 'GET' || req.method === 'HEAD') && HEALTH_PATHS.has(path)) {
      health()(req, res);
      return;
    }
    const body = JSON.stringify({
      object: 'error',
      message: `Not Found: the health port (NIM_HEALTH_PORT) serves only GET ${[...HEALTH_PATHS].join(' and ')}`,
      type: 'NotFoundError',
      code: 404,
    });
    res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/** Start the health port on host:port; a port in use or not allowed is a ConfigError naming NIM_HEALTH_PORT. */
export async function startHealthPort(opts: { host: string; port: number; health: () => http.RequestListener }): Promise<http.Server> {
  const server = http.createServer({ keepAliveTimeout: 5_000, headersTimeout: 10_000, requestTimeout: 10_000 }, healthPortHandler(opts.health));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'is already in use' : err.code === 'EACCES' ? 'is not allowed' : `cannot be opened (${err.message})`;
      reject(new ConfigError(`NIM_HEALTH_PORT=${opts.port} on ${opts.host} ${why}`, { hint: 'choose a free port for the health endpoints, or unset NIM_HEALTH_PORT' }));
    });
    server.listen(opts.port, opts.host, () => resolve());
  });
  return server;
}
