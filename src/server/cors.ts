// CORS at the edge (NIM 2.x's NIM_CORS_* variables). The supervisor is the one
// source of truth: it answers preflights itself, before authentication (a
// browser never sends credentials on a preflight), and sets the CORS headers
// of every response; the engine's own (vLLM's CORSMiddleware answers
// `access-control-allow-origin: *`) are dropped on the way through.
// Semantics follow the Fetch standard's CORS protocol and Starlette's
// CORSMiddleware, which vLLM uses (starlette/middleware/cors.py).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CorsSettings } from '../config/env.js';

/** What `*` allows as methods: Starlette's ALL_METHODS, as vLLM answers with `--allowed-methods '["*"]'`. */
const ALL_METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'];
/** Request headers a page may always send (Fetch: CORS-safelisted request headers). */
const SAFELISTED = ['accept', 'accept-language', 'content-language', 'content-type'];

export type CorsHeaders = Record<string, string>;

/** The answer to one preflight: allowed (with its headers) or refused with the reason. */
export type PreflightDecision = { allowed: true; headers: CorsHeaders } | { allowed: false; reason: string; headers: CorsHeaders };

function originAllowed(cfg: CorsSettings, origin: string): boolean {
  return cfg.allowOrigins === '*' || cfg.allowOrigins.includes(origin.toLowerCase());
}

/** `Vary: Origin` whenever the answer depends on the origin, so caches keep answers apart. */
function originHeaders(cfg: CorsSettings, origin: string): CorsHeaders {
  return cfg.allowOrigins === '*' ? { 'access-control-allow-origin': '*' } : { 'access-control-allow-origin': origin, vary: 'Origin' };
}

/**
 * Decide a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`).
 * `requestHeaders` is the raw `Access-Control-Request-Headers` value. Pure.
 */
export function decidePreflight(cfg: CorsSettings, origin: string, method: string, requestHeaders: string | undefined): PreflightDecision {
  const vary: CorsHeaders = cfg.allowOrigins === '*' ? {} : { vary: 'Origin' };
  if (!originAllowed(cfg, origin)) return { allowed: false, reason: `origin ${origin} is not in NIM_CORS_ALLOW_ORIGINS`, headers: vary };
  const methods = cfg.allowMethods === '*' ? ALL_METHODS : cfg.allowMethods;
  if (!methods.includes(method.toUpperCase())) {
    return { allowed: false, reason: `method ${method} is not in NIM_CORS_ALLOW_METHODS`, headers: vary };
  }
  const asked = (requestHeaders ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  let allowHeaders: string[];
  if (cfg.allowHeaders === '*') {
    // A literal `*` would not cover Authorization (Fetch standard): name what was asked for.
    allowHeaders = asked;
  } else {
    const allowed = new Set([...SAFELISTED, ...cfg.allowHeaders]);
    const refused = asked.filter((h) => !allowed.has(h));
    if (refused.length > 0) return { allowed: false, reason: `header(s) ${refused.join(', ')} not in NIM_CORS_ALLOW_HEADERS`, headers: vary };
    allowHeaders = [...allowed];
  }
  const headers: CorsHeaders = {
    ...originHeaders(cfg, origin),
    'access-control-allow-methods': methods.join(', '),
    'access-control-max-age': String(cfg.maxAgeSeconds),
  };
  if (allowHeaders.length > 0) headers['access-control-allow-headers'] = allowHeaders.join(', ');
  // The answer echoes the asked-for headers: a cache must keep answers to different asks apart.
  if (cfg.allowHeaders === '*') headers.vary = cfg.allowOrigins === '*' ? 'Access-Control-Request-Headers' : 'Origin, Access-Control-Request-Headers';
  return { allowed: true, headers };
}

/** CORS headers for an actual (non-preflight) response to `origin`; none when the origin is not allowed. Pure. */
export function responseCorsHeaders(cfg: CorsSettings, origin: string | undefined): CorsHeaders | undefined {
  if (origin === undefined) return cfg.allowOrigins === '*' ? undefined : { vary: 'Origin' };
  if (!originAllowed(cfg, origin)) return cfg.allowOrigins === '*' ? undefined : { vary: 'Origin' };
  const headers = originHeaders(cfg, origin);
  if (cfg.exposeHeaders === '*' || cfg.exposeHeaders.length > 0) {
    headers['access-control-expose-headers'] = cfg.exposeHeaders === '*' ? '*' : cfg.exposeHeaders.join(', ');
  }
  return headers;
}

/** True for the headers this module owns (the engine's are dropped). */
export function isCorsResponseHeader(name: string): boolean {
  return name.startsWith('access-control-');
}

/** A request is a preflight when it is OPTIONS with an Origin and Access-Control-Request-Method. */
export function isPreflight(req: IncomingMessage): boolean {
  return req.method === 'OPTIONS' && req.headers.origin !== undefined && req.headers['access-control-request-method'] !== undefined;
}

/**
 * The edge's CORS step, first thing for every request: answers a preflight
 * (returns true: handled), or sets the response's CORS headers and returns
 * false so routing goes on. Preflights are answered for any path: the actual
 * request then gets its answer (a 404 too) with headers the page can read.
 */
export function createCors(cfg: CorsSettings) {
  return {
    /** Handle `req` if it is a preflight; else put this response's CORS headers on `res`. */
    apply(req: IncomingMessage, res: ServerResponse): boolean {
      const origin = req.headers.origin;
      if (isPreflight(req)) {
        const d = decidePreflight(cfg, origin!, String(req.headers['access-control-request-method']), req.headers['access-control-request-headers']);
        if (d.allowed) {
          res.writeHead(204, d.headers);
          res.end();
        } else {
          const body = `Disallowed CORS request: ${d.reason}.`;
          res.writeHead(400, { ...d.headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        }
        return true;
      }
      const headers = responseCorsHeaders(cfg, origin);
      if (headers) for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      return false;
    },
  };
}

export type Cors = ReturnType<typeof createCors>;
