// vLLM's Prometheus metrics (names, types, buckets and labels of v0.11) on a
// private prom-client Registry. The hot path only bumps plain numbers; the
// registry reads them when /metrics is scraped, so a zero-latency request
// pays no label hashing.
import { readFileSync, readdirSync } from 'node:fs';
import { Counter, Gauge, Registry, type Metric } from 'prom-client';

type Labels = Record<string, string>;

/** Python's float formatting for `le` labels: 1 -> "1.0". */
function goFloat(v: number): string {
  if (v === Infinity) return '+Inf';
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

interface Cell {
  counts: Float64Array;
  sum: number;
  count: number;
  labels: Labels;
}

/** A histogram that keeps raw bucket counts and exposes them through prom-client's Registry. */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly cells = new Map<string, Cell>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
    private readonly baseLabels: Labels,
  ) {}

  /** A cell for a label set (extra labels beyond the base ones), created on first use. */
  cell(key = '', extra?: Labels): Cell {
    let c = this.cells.get(key);
    if (!c) {
      c = { counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0, labels: { ...extra, ...this.baseLabels } };
      this.cells.set(key, c);
    }
    return c;
  }

  observe(v: number, c: Cell = this.cell()): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    c.counts[i]!++;
    c.sum += v;
    c.count++;
  }

  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Array<{ labels: Labels; value: number; metricName: string }> }> {
    const values: Array<{ labels: Labels; value: number; metricName: string }> = [];
    if (this.cells.size === 0) this.cell();
    for (const c of this.cells.values()) {
      let acc = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        acc += c.counts[i]!;
        const le = i < this.buckets.length ? goFloat(this.buckets[i]!) : '+Inf';
        values.push({ labels: { ...c.labels, le }, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: c.labels, value: c.count, metricName: `${this.name}_count` });
      values.push({ labels: c.labels, value: c.sum, metricName: `${this.name}_sum` });
    }
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }
}

/** vLLM's build_1_2_5_buckets(max): 1, 2, 5, 10, 20, 50, ... <= max. */
export function buckets125(max: number): number[] {
  const out: number[] = [];
  for (let exp = 1; ; exp *= 10) {
    for (const m of [1, 2, 5]) {
      const v = m * exp;
      if (v > max) return out;
      out.push(v);
    }
  }
}

const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const REQUEST_LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
// prometheus-fastapi-instrumentator defaults.
const HTTP_LOWR_BUCKETS = [0.1, 0.5, 1];

export type FinishedReason = 'stop' | 'length' | 'abort';

export interface MetricsOptions {
  modelName: string;
  maxModelLen: number;
  cacheConfig: Record<string, string>;
  /** Instant values read at scrape time. */
  gauges: () => { running: number; waiting: number; kvUsage: number };
  /** Families the simulated release no longer has (Release.removedMetrics); still observed, never registered. */
  removed?: readonly string[];
}

/** One finished (or aborted) engine request, in seconds and tokens. */
export interface RequestRecord {
  reason: FinishedReason;
  promptTokens: number;
  generationTokens: number;
  maxTokens: number;
  n: number;
  queue: number;
  prefill: number;
  decode: number;
  e2e: number;
  ttft: number | null;
  /** Gaps between consecutive tokens. */
  itl: number[];
}

const HTTP_EXCLUDED = new Set(['/metrics', '/health', '/load', '/ping', '/version', '/server_info']);

export class SimMetrics {
  readonly registry = new Registry();
  private promptTokens = 0;
  private generationTokens = 0;
  private success: Record<FinishedReason, number> = { stop: 0, length: 0, abort: 0 };
  private prefixQueries = 0;
  private prefixHits = 0;
  private readonly httpCounts = new Map<string, { handler: string; method: string; status: string; n: number }>();
  private readonly h: Record<string, FastHistogram> = {};
  private readonly httpLatency: FastHistogram;

  constructor(opts: MetricsOptions) {
    const labels = { engine: '0', model_name: opts.modelName };
    const reg = this.registry;
    const self = this;
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['engine', 'model_name'],
        registers: [reg],
        collect() {
          this.set(labels, read());
        },
      });
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        labelNames: ['engine', 'model_name'],
        registers: [reg],
        collect() {
          this.reset();
          this.inc(labels, read());
        },
      });
    gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', () => opts.gauges().running);
    gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', () => opts.gauges().waiting);
    gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', () => opts.gauges().kvUsage);
    counter('vllm:num_preemptions_total', 'Cumulative number of preemption from the engine.', () => 0);
    counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.', () => self.promptTokens);
    counter('vllm:generation_tokens_total', 'Number of generation tokens processed.', () => self.generationTokens);
    counter('vllm:prefix_cache_queries_total', 'Prefix cache queries, in terms of number of queried tokens.', () => self.prefixQueries);
    counter('vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.', () => self.prefixHits);
    new Counter({
      name: 'vllm:request_success_total',
      help: 'Count of successfully processed requests.',
      labelNames: ['engine', 'finished_reason', 'model_name'],
      registers: [reg],
      collect() {
        this.reset();
        for (const r of ['stop', 'length', 'abort'] as const) {
          this.inc({ engine: '0', finished_reason: r, model_name: opts.modelName }, self.success[r]);
        }
      },
    });
    const cacheInfo = new Gauge({
      name: 'vllm:cache_config_info',
      help: 'Information of the LLMEngine CacheConfig',
      labelNames: Object.keys(opts.cacheConfig),
      registers: [reg],
    });
    cacheInfo.set(opts.cacheConfig, 1);

    const hist = (key: string, name: string, help: string, buckets: readonly number[]) => {
      const m = new FastHistogram(name, help, buckets, labels);
      if (!opts.removed?.includes(name)) reg.registerMetric(m as unknown as Metric);
      this.h[key] = m;
    };
    const tokenBuckets = buckets125(opts.maxModelLen);
    hist('ttft', 'vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', TTFT_BUCKETS);
    hist('itl', 'vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', ITL_BUCKETS);
    hist('tpot', 'vllm:time_per_output_token_seconds', 'Histogram of time per output token in seconds.DEPRECATED: Use vllm:inter_token_latency_seconds instead.', ITL_BUCKETS);
    hist('rtpot', 'vllm:request_time_per_output_token_seconds', 'Histogram of time_per_output_token_seconds per request.', ITL_BUCKETS);
    hist('e2e', 'vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', REQUEST_LATENCY_BUCKETS);
    hist('queue', 'vllm:request_queue_time_seconds', 'Histogram of time spent in WAITING phase for request.', REQUEST_LATENCY_BUCKETS);
    hist('inference', 'vllm:request_inference_time_seconds', 'Histogram of time spent in RUNNING phase for request.', REQUEST_LATENCY_BUCKETS);
    hist('prefill', 'vllm:request_prefill_time_seconds', 'Histogram of time spent in PREFILL phase for request.', REQUEST_LATENCY_BUCKETS);
    hist('decode', 'vllm:request_decode_time_seconds', 'Histogram of time spent in DECODE phase for request.', REQUEST_LATENCY_BUCKETS);
    hist('promptTokens', 'vllm:request_prompt_tokens', 'Number of prefill tokens processed.', tokenBuckets);
    hist('genTokens', 'vllm:request_generation_tokens', 'Number of generation tokens processed.', tokenBuckets);
    hist('maxGen', 'vllm:request_max_num_generation_tokens', 'Histogram of maximum number of requested generation tokens.', tokenBuckets);
    hist('paramsN', 'vllm:request_params_n', 'Histogram of the n request parameter.', [1, 2, 5, 10, 20]);
    hist('paramsMaxTokens', 'vllm:request_params_max_tokens', 'Histogram of the max_tokens request parameter.', tokenBuckets);

    new Counter({
      name: 'http_requests_total',
      help: 'Total number of requests by method, status and handler.',
      labelNames: ['handler', 'method', 'status'],
      registers: [reg],
      collect() {
        this.reset();
        for (const r of self.httpCounts.values()) this.inc({ handler: r.handler, method: r.method, status: r.status }, r.n);
      },
    });
    this.httpLatency = new FastHistogram(
      'http_request_duration_seconds',
      'Latency with only few buckets by handler. Made to be only used if aggregation by handler is important.',
      HTTP_LOWR_BUCKETS,
      {},
    );
    reg.registerMetric(this.httpLatency as unknown as Metric);
    registerProcessMetrics(reg);
  }

  prefixCache(queries: number, hits: number): void {
    this.prefixQueries += queries;
    this.prefixHits += hits;
  }

  record(r: RequestRecord): void {
    const h = this.h;
    this.promptTokens += r.promptTokens;
    this.generationTokens += r.generationTokens;
    this.success[r.reason]++;
    h.e2e!.observe(r.e2e);
    h.queue!.observe(r.queue);
    h.prefill!.observe(r.prefill);
    h.decode!.observe(r.decode);
    h.inference!.observe(r.prefill + r.decode);
    h.promptTokens!.observe(r.promptTokens);
    h.genTokens!.observe(r.generationTokens);
    h.maxGen!.observe(r.maxTokens);
    h.paramsN!.observe(r.n);
    h.paramsMaxTokens!.observe(r.maxTokens);
    if (r.ttft !== null) h.ttft!.observe(r.ttft);
    for (const gap of r.itl) {
      h.itl!.observe(gap);
      h.tpot!.observe(gap);
    }
    if (r.generationTokens > 1) h.rtpot!.observe(r.decode / (r.generationTokens - 1));
  }

  /** Like prometheus-fastapi-instrumentator: status grouped as "2xx", some handlers left out. */
  http(handler: string, method: string, status: number, seconds: number): void {
    if (HTTP_EXCLUDED.has(handler)) return;
    const group = `${Math.floor(status / 100)}xx`;
    const key = `${handler} ${method} ${group}`;
    let r = this.httpCounts.get(key);
    if (!r) {
      r = { handler, method, status: group, n: 0 };
      this.httpCounts.set(key, r);
    }
    r.n++;
    this.httpLatency.observe(seconds, this.httpLatency.cell(`${handler} ${method}`, { handler, method }));
  }

  async scrape(): Promise<string> {
    return await this.registry.metrics();
  }
}

/** process_* metrics with the names Python's prometheus_client uses. */
function registerProcessMetrics(reg: Registry): void {
  const startTime = Date.now() / 1000 - process.uptime();
  let maxFds = -1;
  try {
    const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) maxFds = Number(m[1]);
  } catch {
    /* not Linux */
  }
  const g = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [reg],
      collect() {
        this.set(read());
      },
    });
  g('process_virtual_memory_bytes', 'Virtual memory size in bytes.', () => {
    try {
      const stat = readFileSync('/proc/self/stat', 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[20]);
    } catch {
      return 0;
    }
  });
  g('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss());
  g('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', () => startTime);
  new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers: [reg],
    collect() {
      const u = process.cpuUsage();
      this.reset();
      this.inc((u.user + u.system) / 1e6);
    },
  });
  g('process_open_fds', 'Number of open file descriptors.', () => {
    try {
      return readdirSync('/proc/self/fd').length;
    } catch {
      return 0;
    }
  });
  g('process_max_fds', 'Maximum number of open file descriptors.', () => maxFds);
}
