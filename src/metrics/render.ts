// Renders the one `/v1/metrics` scrape: the supervisor's registry (request,
// lifecycle, process and GPU metrics) followed by the engine's own `/metrics`
// (vLLM's `vllm:*` families), fetched at scrape time with a short timeout. If
// the engine cannot answer, the scrape still succeeds and says so.
import http from 'node:http';
import { markOwnAgent } from '../engine/own-requests.js';
import { Counter, Gauge, type Registry } from 'prom-client';
import { deriveCompat1x } from './compat-1x.js';
import { mergeExpositions } from './exposition.js';
import { METRIC_PREFIX } from './supervisor-metrics.js';

export interface MetricsRendererOptions {
  registry: Registry;
  /** The engine's base URL, or undefined while no engine runs. */
  engineUrl: () => URL | undefined;
  timeoutMs: number;
  /** NIM_METRICS_COMPAT: `1x` adds NIM 1.x's unprefixed families derived from the engine's (compat-1x.ts). */
  compat?: MetricsCompat;
  /** Sent as a bearer token when the engine enforces an API key (vLLM leaves /metrics open; later versions may not). */
  apiKey?: string | undefined;
  /** The supervisor's own exposition (default: `registry`'s); with proxy workers, aggregated across them (src/workers/metrics.ts). */
  ownMetrics?: () => Promise<string>;
}

export type MetricsCompat = 'none' | '1x';

export type RenderMetrics = () => Promise<{ contentType: string; body: string }>;

// Scrapes use their own agent, apart from the inference proxy's, and a new
// connection each time: scrapes come seconds apart, longer than the engine keeps
// an idle connection (VLLM_HTTP_TIMEOUT_KEEP_ALIVE), so a pooled one would only race its close.
// Our own requests: their lines in the engine's access log stay out of the INFO log.
const scrapeAgent = markOwnAgent(new http.Agent({ keepAlive: false, maxSockets: 2 }));

function fetchText(url: URL, timeoutMs: number, apiKey: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
    const req = http.get(url, { agent: scrapeAgent, timeout: timeoutMs, headers }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`engine /metrics answered ${res.statusCode}`));
        return;
      }
      res.setEncoding('utf8');
      let body = '';
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`engine /metrics did not answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export function createMetricsRenderer(opts: MetricsRendererOptions): RenderMetrics {
  const { registry } = opts;
  const up = new Gauge({
    name: `${METRIC_PREFIX}engine_metrics_up`,
    help: 'Whether the last scrape of the engine /metrics succeeded (1) or not (0).',
    registers: [registry],
  });
  const failures = new Counter({
    name: `${METRIC_PREFIX}engine_metrics_scrape_failures_total`,
    help: 'Scrapes of the engine /metrics that failed or timed out; the scrape then carries only the supervisor metrics.',
    registers: [registry],
  });
  const duration = new Gauge({
    name: `${METRIC_PREFIX}engine_metrics_scrape_duration_seconds`,
    help: 'How long the last scrape of the engine /metrics took.',
    registers: [registry],
  });
  return async () => {
    const url = opts.engineUrl();
    let engineText = '';
    if (url) {
      const start = performance.now();
      try {
        engineText = await fetchText(new URL('/metrics', url), opts.timeoutMs, opts.apiKey);
        up.set(1);
      } catch {
        up.set(0);
        failures.inc();
      }
      duration.set((performance.now() - start) / 1000);
    } else {
      up.set(0);
    }
    // Render our registry after the engine scrape, so the gauges above are current.
    const own = await (opts.ownMetrics ? opts.ownMetrics() : registry.metrics());
    if (opts.compat === '1x' && engineText !== '') {
      engineText = (engineText.endsWith('\n') ? engineText : `${engineText}\n`) + deriveCompat1x(engineText);
    }
    return { contentType: registry.contentType, body: mergeExpositions(own, engineText).text };
  };
}
