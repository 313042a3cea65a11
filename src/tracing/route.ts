// The route template of a public request (`/v1/responses/:id`, not the id), for
// span names and the `http.route` attribute: a bounded set, as OpenTelemetry's
// HTTP conventions ask. Proxied routes come from the allow-list; the supervisor's
// own routes are fixed paths.
import { PROXIED_ROUTES } from '../server/routes.js';

interface Template {
  method: string;
  path: string;
  parts: string[];
}

const OWN_PATHS = ['/v1/health/live', '/v1/health/ready', '/v1/metadata', '/v1/version', '/v1/license', '/v1/manifest', '/v1/metrics', '/metrics'];

const TEMPLATES: Template[] = [
  ...PROXIED_ROUTES.map((r) => ({ method: r.method, path: r.path, parts: r.path.split('/') })),
  ...OWN_PATHS.map((p) => ({ method: 'GET', path: p, parts: p.split('/') })),
];

/** The template `path` matches for `method` (HEAD counts as GET), or undefined. */
export function routeTemplate(method: string, path: string): string | undefined {
  const m = method === 'HEAD' ? 'GET' : method;
  const parts = path.split('/');
  for (const t of TEMPLATES) {
    if (t.method !== m || t.parts.length !== parts.length) continue;
    if (t.parts.every((p, i) => (p.startsWith(':') ? parts[i] !== '' : p === parts[i]))) return t.path;
  }
  return undefined;
}
