// Optional API key: `Authorization: Bearer <key>` on every route except the
// health probes (and, if configured, metrics). Compared in constant time on
// fixed-length digests, so neither timing nor length leaks the key.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { sendError } from './errors.js';

/** Routes that never need the key: Kubernetes probes cannot send one. */
const OPEN_PATHS = new Set(['/v1/health/live', '/v1/health/ready']);
const METRICS_PATHS = new Set(['/v1/metrics', '/metrics']);

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A predicate that tells whether an Authorization header carries the key. */
export function bearerMatcher(apiKey: string): (authorization: string | undefined) => boolean {
  const expected = digest(apiKey);
  return (authorization) => {
    if (authorization === undefined) return false;
    const m = /^Bearer[ \t]+(.+?)[ \t]*$/i.exec(authorization);
    return m !== null && timingSafeEqual(digest(m[1]!), expected);
  };
}

export function requireApiKey(opts: { apiKey: string; protectMetrics: boolean }) {
  const matches = bearerMatcher(opts.apiKey);
  return (req: Request, res: Response, next: NextFunction): void => {
    const path = req.path;
    if (OPEN_PATHS.has(path) || (!opts.protectMetrics && METRICS_PATHS.has(path)) || matches(req.headers.authorization)) {
      next();
      return;
    }
    sendError(res, 401, "Invalid or missing API key: send it as 'Authorization: Bearer <key>'.", {
      'www-authenticate': 'Bearer',
    });
  };
}
