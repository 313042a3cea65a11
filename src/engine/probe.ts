// Readiness of the engine, as vLLM defines it: `/health` answers 200 and
// `/v1/models` lists a model we asked it to serve (any of its served names:
// vLLM's --served-model-name takes several and lists each).
import type http from 'node:http';
import { markOwnAgent } from './own-requests.js';

export interface ProbeResult {
  ok: boolean;
  /** Why not ready, in an operator's words (undefined when ok). */
  reason?: string;
  /** True when the connection itself failed (the port is not open yet, or the engine is gone). */
  unreachable?: boolean;
}

// Probes use their own agent without keep-alive so they never compete with the
// proxy's pooled connections and never hold a socket the engine wants to close.
// Marked as our own: the engine's access-log lines for probes stay out of the INFO log.
// node:http is loaded by the first probe, after the engine is spawned: serve's
// start-up path (launch → engine spawned) does not wait for it.
let client: Promise<{ get: typeof http.get; agent: http.Agent }> | undefined;
function httpClient(): Promise<{ get: typeof http.get; agent: http.Agent }> {
  return (client ??= import('node:http').then((h) => ({ get: h.get, agent: markOwnAgent(new h.Agent({ keepAlive: false })) })));
}

class ProbeTimeout extends Error {}

async function get(url: URL, timeoutMs: number, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const { get: httpGet, agent } = await httpClient();
  return await new Promise((resolve, reject) => {
    const req = httpGet(url, { agent, timeout: timeoutMs, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new ProbeTimeout(`engine ${url.pathname} gave no answer within ${timeoutMs} ms (NIM_HEALTH_CHECK_TIMEOUT)`)));
    req.on('error', reject);
  });
}

export interface ProbeOptions {
  baseUrl: URL;
  /** The engine's served names (from its final command line); ready once it lists any of them. */
  servedModelNames: readonly string[];
  /** Limit for each of the two requests. */
  timeoutMs: number;
  /** Sent as a bearer token when the engine was started with --api-key. */
  apiKey?: string;
}

export async function probeEngine(opts: ProbeOptions): Promise<ProbeResult> {
  const headers: Record<string, string> = opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {};
  try {
    const health = await get(new URL('/health', opts.baseUrl), opts.timeoutMs, headers);
    if (health.status !== 200) return { ok: false, reason: `engine /health answered ${health.status}` };
    const models = await get(new URL('/v1/models', opts.baseUrl), opts.timeoutMs, headers);
    if (models.status === 401) return { ok: false, reason: 'engine /v1/models answered 401: the engine enforces an API key the supervisor does not know' };
    if (models.status !== 200) return { ok: false, reason: `engine /v1/models answered ${models.status}` };
    const ids = listedModelIds(models.body);
    if (!opts.servedModelNames.some((n) => ids.includes(n))) {
      const wanted = opts.servedModelNames.map((n) => `"${n}"`).join(' or ');
      return { ok: false, reason: `engine does not list model ${wanted} (lists: ${ids.join(', ') || 'none'})` };
    }
    return { ok: true };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof ProbeTimeout) return { ok: false, reason: err.message };
    return { ok: false, unreachable: true, reason: code === 'ECONNREFUSED' ? 'engine port not open' : `engine unreachable: ${(err as Error).message}` };
  }
}

function listedModelIds(body: string): string[] {
  try {
    const parsed = JSON.parse(body) as { data?: Array<{ id?: unknown }> };
    return (parsed.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
  } catch {
    return [];
  }
}
