// Issue #21: OpenTelemetry spans (a real OTLP/HTTP receiver on loopback gets the
// supervisor's and the engine's spans in the client's trace) and NIM 1.x metric
// names (derived from the engine's vllm: families, scraped by promtool and a real
// Prometheus). Pure parts (settings, engine flags, route templates, the 1.x
// mapping) are table-tested first.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config/env.js';
import { findExecutable } from '../src/process/executable.js';
import { ConfigError } from '../src/errors.js';
import { deriveCompat1x } from '../src/metrics/compat-1x.js';
import { routeTemplate } from '../src/tracing/route.js';
import { engineTracing } from '../src/tracing/settings.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './helpers/otlp-receiver.js';
import { freePort, run, start, waitFor } from './helpers/process.js';
import { DEFAULT_MODEL, startSupervisor, type Supervisor } from './helpers/supervisor.js';

/** The tracing settings loadConfig derives from an environment. */
const readTracingSettings = (env: Record<string, string>) => loadConfig(env).tracing;

describe('tracing settings (NIM_ENABLE_OTEL, OTEL_*)', () => {
  test('off by default; on with NIM_ENABLE_OTEL, the standard endpoint derivation and service names', () => {
    assert.equal(readTracingSettings({}).enabled, false);
    // OTEL_* shared with other software in the pod are not judged while tracing is off.
    assert.equal(readTracingSettings({ OTEL_TRACES_SAMPLER: 'xray', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).enabled, false);
    const on = readTracingSettings({ NIM_ENABLE_OTEL: '1', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' });
    assert.deepEqual(on, {
      enabled: true,
      serviceName: 'nim-supervisor',
      exporter: 'otlp',
      tracesEndpoint: 'http://collector:4318/v1/traces',
      engineTraces: false,
    });
    assert.equal(readTracingSettings({ NIM_ENABLE_OTEL: '1', NIM_OTEL_ENGINE_TRACES: '1' }).engineTraces, true);
    // The signal-specific endpoint is used as is; NIM's service-name variable wins over OTEL's.
    const specific = readTracingSettings({
      NIM_ENABLE_OTEL: 'true',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ignored:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://c.example:4318/custom/path',
      OTEL_SERVICE_NAME: 'otel-name',
      NIM_OTEL_SERVICE_NAME: 'nim-name',
    });
    assert.equal(specific.tracesEndpoint, 'https://c.example:4318/custom/path');
    assert.equal(specific.serviceName, 'nim-name');
    assert.equal(readTracingSettings({ NIM_ENABLE_OTEL: '1', OTEL_SERVICE_NAME: 'otel-name' }).serviceName, 'otel-name');
    assert.equal(readTracingSettings({ NIM_ENABLE_OTEL: '1' }).tracesEndpoint, 'http://localhost:4318/v1/traces');
    assert.equal(readTracingSettings({ NIM_ENABLE_OTEL: '1', OTEL_TRACES_EXPORTER: 'none' }).enabled, false);
    const console_ = readTracingSettings({ NIM_ENABLE_OTEL: '1', OTEL_TRACES_EXPORTER: 'console', NIM_OTEL_ENGINE_TRACES: '1' });
    assert.equal(console_.exporter, 'console');
    assert.equal(console_.engineTraces, false, 'no collector for the engine to send to');
  });

  test('bad values are one ConfigError naming the variable', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ NIM_ENABLE_OTEL: 'maybe' }, /^NIM_ENABLE_OTEL="maybe" is invalid/],
      [{ NIM_ENABLE_OTEL: '1', OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /^OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318" is invalid: expected an http/],
      [{ NIM_ENABLE_OTEL: '1', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://x' }, /^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=/],
      [{ NIM_ENABLE_OTEL: '1', OTEL_TRACES_EXPORTER: 'jaeger' }, /^OTEL_TRACES_EXPORTER="jaeger" is invalid: expected otlp, console or none/],
      [{ NIM_ENABLE_OTEL: '1', OTEL_TRACES_SAMPLER: 'sometimes' }, /^OTEL_TRACES_SAMPLER="sometimes" is invalid/],
      [{ NIM_ENABLE_OTEL: '1', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }, /^OTEL_TRACES_SAMPLER_ARG="2" is invalid/],
      [{ NIM_ENABLE_OTEL: '1', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /^OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not supported/],
      [{ NIM_METRICS_COMPAT: '2x' }, /^NIM_METRICS_COMPAT="2x" is invalid: expected one of none, 1x/],
    ];
    for (const [env, message] of cases) {
      assert.throws(
        () => loadConfig(env),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
        JSON.stringify(env),
      );
    }
  });

  test('asked to, the engine gets --otlp-traces-endpoint and the http/protobuf protocol, unless passed through', () => {
    const on = readTracingSettings({ NIM_ENABLE_OTEL: '1', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', NIM_OTEL_ENGINE_TRACES: 'yes' });
    assert.deepEqual(engineTracing(on, []), {
      args: ['--otlp-traces-endpoint', 'http://c:4318/v1/traces'],
      env: { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf', OTEL_SERVICE_NAME: 'nim-supervisor-engine' },
    });
    assert.deepEqual(engineTracing(on, ['--otlp-traces-endpoint=http://other:4318/v1/traces']), { args: [], env: {} });
    assert.deepEqual(engineTracing(readTracingSettings({ NIM_ENABLE_OTEL: '1' }), []), { args: [], env: {} }, 'opt-in');
    assert.deepEqual(engineTracing(readTracingSettings({}), []), { args: [], env: {} });
  });

  test('span names use route templates, a bounded set', () => {
    assert.equal(routeTemplate('POST', '/v1/chat/completions'), '/v1/chat/completions');
    assert.equal(routeTemplate('GET', '/v1/responses/resp_123'), '/v1/responses/:id');
    assert.equal(routeTemplate('POST', '/v1/responses/resp_123/cancel'), '/v1/responses/:id/cancel');
    assert.equal(routeTemplate('HEAD', '/v1/health/ready'), '/v1/health/ready');
    assert.equal(routeTemplate('GET', '/v1/responses/'), undefined);
    assert.equal(routeTemplate('GET', '/v1/chat/completions'), undefined);
    assert.equal(routeTemplate('GET', '/nope'), undefined);
  });
});

/** A vLLM 0.11-shaped exposition (the deprecated names still there) and a 0.31-shaped one (gone). */
const ENGINE_0_11 = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 2.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{engine="0",model_name="m"} 0.25
# HELP vllm:kv_cache_usage_perc KV-cache usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 5.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 1.0
vllm:request_success_total{engine="0",finished_reason="abort",model_name="m"} 2.0
vllm:request_success_created{engine="0",finished_reason="stop",model_name="m"} 1.7e9
# HELP vllm:time_per_output_token_seconds Histogram of time per output token in seconds.
# TYPE vllm:time_per_output_token_seconds histogram
vllm:time_per_output_token_seconds_bucket{engine="0",le="0.01",model_name="m"} 3.0
vllm:time_per_output_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 4.0
vllm:time_per_output_token_seconds_count{engine="0",model_name="m"} 4.0
vllm:time_per_output_token_seconds_sum{engine="0",model_name="m"} 0.1
# HELP vllm:inter_token_latency_seconds Histogram of inter-token latency in seconds.
# TYPE vllm:inter_token_latency_seconds histogram
vllm:inter_token_latency_seconds_bucket{engine="0",le="0.01",model_name="m"} 7.0
vllm:inter_token_latency_seconds_bucket{engine="0",le="+Inf",model_name="m"} 8.0
vllm:inter_token_latency_seconds_count{engine="0",model_name="m"} 8.0
vllm:inter_token_latency_seconds_sum{engine="0",model_name="m"} 0.2
`;

describe('NIM 1.x metric names (NIM_METRICS_COMPAT=1x), derived from vllm: families', () => {
  test('renames, picks the older family while the engine still has it, and splits outcomes', () => {
    const out = deriveCompat1x(ENGINE_0_11);
    assert.match(out, /^# TYPE num_requests_running gauge\nnum_requests_running\{engine="0",model_name="m"\} 2\.0$/m);
    assert.match(out, /^gpu_cache_usage_perc\{engine="0",model_name="m"\} 0\.25$/m, 'vLLM ≤0.10 name preferred while present');
    assert.match(out, /^time_per_output_token_seconds_count\{engine="0",model_name="m"\} 4\.0$/m);
    assert.match(out, /^request_success_total\{engine="0",finished_reason="stop",model_name="m"\} 5\.0$/m);
    assert.match(out, /^request_success_total\{engine="0",finished_reason="length",model_name="m"\} 1\.0$/m);
    assert.doesNotMatch(out, /^request_success_total\{[^}]*abort/m);
    assert.match(out, /^request_failure_total\{engine="0",finished_reason="abort",model_name="m"\} 2\.0$/m);
    assert.equal(out.match(/^request_finish_total\{/gm)?.length, 3);
    assert.doesNotMatch(out, /_created/, 'optional _created samples are not carried over');
    // Families the engine does not have are omitted, never invented.
    assert.doesNotMatch(out, /prompt_tokens_total|e2e_request_latency_seconds/);
  });

  test('on a vLLM 0.31-shaped scrape the removed names are derived from their successors', () => {
    const v031 = ENGINE_0_11.split('\n# HELP ')
      .filter((block) => !block.startsWith('vllm:gpu_cache_usage_perc') && !block.startsWith('vllm:time_per_output_token_seconds'))
      .join('\n# HELP ');
    const out = deriveCompat1x(v031);
    assert.match(out, /^gpu_cache_usage_perc\{engine="0",model_name="m"\} 0\.5$/m, 'from vllm:kv_cache_usage_perc');
    assert.match(out, /^time_per_output_token_seconds_count\{engine="0",model_name="m"\} 8\.0$/m, 'from vllm:inter_token_latency_seconds');
    assert.equal(deriveCompat1x(''), '');
  });
});

function attr(s: ReceivedSpan, key: string): string | number | boolean | undefined {
  return s.attributes[key];
}

describe('end to end: spans at a real OTLP/HTTP receiver, 1.x names in a real scrape', () => {
  let receiver: OtlpReceiver;
  let sup: Supervisor;
  before(async () => {
    receiver = await startOtlpReceiver();
    sup = await startSupervisor({
      NIM_ENABLE_OTEL: '1',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      NIM_OTEL_SERVICE_NAME: 'nim-test',
      NIM_METRICS_COMPAT: '1x',
      NIM_OTEL_ENGINE_TRACES: '1',
    });
    await sup.waitReady();
  });
  after(async () => {
    sup.proc.kill('SIGTERM');
    await sup.proc.exited;
    await receiver.close();
  });

  const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
  const clientSpan = '1122334455667788';

  test("one server span per request, in the client's trace, with the engine's llm_request span as its child", async () => {
    const r = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${clientSpan}-01` },
      body: JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
    });
    assert.equal(r.status, 200);
    await r.json();
    const server = await waitFor(
      () => receiver.spans.find((s) => s.service === 'nim-test' && s.traceId === traceId && s.name === 'POST /v1/chat/completions'),
      { timeoutMs: 10_000, what: 'the supervisor span' },
    );
    assert.equal(server.parentSpanId, clientSpan, 'continues the incoming traceparent');
    assert.equal(server.kind, 2, 'SERVER');
    assert.equal(attr(server, 'http.route'), '/v1/chat/completions');
    assert.equal(attr(server, 'http.response.status_code'), 200);
    assert.equal(attr(server, 'gen_ai.request.model'), DEFAULT_MODEL);
    assert.equal(attr(server, 'nim.stream'), false);
    assert.equal(attr(server, 'nim.client_abort'), false);
    assert.ok(Number(attr(server, 'http.response.body.size')) > 0);
    assert.ok(Number(attr(server, 'nim.time_to_first_byte_ms')) >= 0);
    const engine = await waitFor(
      () => receiver.spans.find((s) => s.name === 'llm_request' && s.traceId === traceId),
      { timeoutMs: 10_000, what: "the engine's llm_request span" },
    );
    assert.equal(engine.service, 'nim-test-engine');
    assert.equal(engine.parentSpanId, server.spanId, "the engine's span is a child of the supervisor's");
    assert.equal(attr(engine, 'gen_ai.response.model'), DEFAULT_MODEL);
    assert.deepEqual(receiver.rejected, []);
  });

  test('streams, client aborts and requests without a traceparent', async () => {
    const stream = await fetch(`${sup.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEFAULT_MODEL, prompt: 'hi', max_tokens: 3, stream: true }),
    });
    await stream.text();
    const s = await waitFor(() => receiver.spans.find((x) => x.name === 'POST /v1/completions' && attr(x, 'nim.stream') === true), {
      timeoutMs: 10_000,
      what: 'the stream span',
    });
    assert.equal(s.parentSpanId, '', 'a new trace when the client sent none');
    assert.ok(Number(attr(s, 'nim.time_to_first_byte_ms')) >= 0);

    const ac = new AbortController();
    const slow = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      signal: ac.signal,
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId.replace('a1', 'b2')}-${clientSpan}-01` },
      body: JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2000, stream: true }),
    }).catch(() => undefined);
    ac.abort();
    await slow?.body?.cancel().catch(() => undefined);
    const aborted = await waitFor(() => receiver.spans.find((x) => x.traceId === traceId.replace('a1', 'b2') && x.service === 'nim-test'), {
      timeoutMs: 10_000,
      what: 'the aborted request span',
    });
    assert.ok(typeof attr(aborted, 'nim.client_abort') === 'boolean');

    const notFound = await fetch(`${sup.baseUrl}/v1/nothing-here`);
    await notFound.arrayBuffer();
    const nf = await waitFor(() => receiver.spans.find((x) => x.name === 'GET unmatched'), { timeoutMs: 10_000, what: 'the 404 span' });
    assert.equal(attr(nf, 'http.response.status_code'), 404);
  });

  test('the engine lifecycle is a span with an event per transition', async () => {
    const span = await waitFor(() => receiver.spans.find((s) => s.name === 'engine.start'), { timeoutMs: 10_000, what: 'engine.start' });
    assert.equal(attr(span, 'nim.engine.outcome'), 'ready');
    assert.ok(span.events.some((e) => e.name === 'engine.state_change' && e.attributes['nim.engine.to'] === 'ready'));
  });

  test('the scrape carries the 1.x families beside the vllm: ones, and promtool finds nothing but vLLM names', async () => {
    const r = await fetch(`${sup.baseUrl}/v1/metrics`);
    const text = await r.text();
    for (const name of ['num_requests_running', 'num_requests_waiting', 'gpu_cache_usage_perc', 'prompt_tokens_total', 'generation_tokens_total', 'request_success_total']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    for (const name of ['time_to_first_token_seconds', 'time_per_output_token_seconds', 'e2e_request_latency_seconds', 'request_prompt_tokens', 'request_generation_tokens']) {
      assert.match(text, new RegExp(`^# TYPE ${name} histogram$`, 'm'), name);
    }
    assert.match(text, /^# TYPE vllm:num_requests_running gauge$/m, 'the vllm: families stay');
    if (!findExecutable('promtool', process.env.PATH)) return;
    const dir = await mkdtemp(path.join(tmpdir(), 'nim-compat-'));
    await writeFile(path.join(dir, 'scrape.txt'), text);
    const check = await run('sh', ['-c', `promtool check metrics < "${path.join(dir, 'scrape.txt')}"`]);
    const out = (check.stdout + check.stderr).trim();
    assert.ok(check.code === 0 || check.code === 3, out);
    const findings = out.split('\n').filter((l) => l.trim() !== '');
    const accepted = findings.filter(
      (l) =>
        /^vllm:\S+ metric names should not contain ':'$/.test(l) ||
        /^nim_supervisor_nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/.test(l),
    );
    assert.deepEqual(findings, accepted);
  });

  test('a real Prometheus ingests the 1.x names', { skip: findExecutable('prometheus', process.env.PATH) ? false : 'prometheus not installed', timeout: 60_000 }, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nim-compat-prom-'));
    const promPort = await freePort();
    await writeFile(
      path.join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: nim\n    metrics_path: /v1/metrics\n    static_configs:\n      - targets: ['127.0.0.1:${sup.port}']\n`,
    );
    const prom = start('prometheus', [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ]);
    try {
      for (const q of ['generation_tokens_total', 'num_requests_running', 'time_to_first_token_seconds_count']) {
        const result = await waitFor(
          async () => {
            const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
            const body = (await r.json()) as { data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
            return body.data?.result.length ? body.data.result : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 250, what: `${q} in Prometheus` },
        );
        assert.equal(result[0]!.metric.model_name, DEFAULT_MODEL, q);
      }
    } finally {
      prom.kill('SIGTERM');
      await prom.exited;
    }
  });
});
