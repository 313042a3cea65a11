// /v1/metrics: one scrape with the supervisor's, the engine's and the GPUs'
// metrics, valid for Prometheus, with values that move with traffic.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mergeExpositions } from '../src/metrics/exposition.js';
import { parseGpuStats } from '../src/metrics/gpu-sampler.js';
import { findExecutable } from '../src/process/executable.js';
import { freePort, run, sleep, start, waitFor } from './helpers/process.js';
import { DEFAULT_MODEL, startSupervisor, type Supervisor } from './helpers/supervisor.js';

interface Family {
  type: string;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

/** A strict exposition-format parser: throws on duplicate HELP/TYPE, bad lines or samples of undeclared families. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const helpSeen = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP (\S+) .*$/.exec(line);
    if (m) {
      assert.ok(!helpSeen.has(m[1]!), `duplicate # HELP for ${m[1]}`);
      helpSeen.add(m[1]!);
      continue;
    }
    m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      assert.ok(!families.has(m[1]!), `duplicate # TYPE for ${m[1]}`);
      families.set(m[1]!, { type: m[2]!, samples: [] });
      continue;
    }
    assert.ok(!line.startsWith('#'), `unexpected comment: ${line}`);
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?$/.exec(line);
    assert.ok(m, `bad sample line: ${line}`);
    const name = m[1]!;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const value = Number(m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : m[4]);
    const family =
      families.get(name) ??
      families.get(name.replace(/_(bucket|sum|count|total|created)$/, '')) ??
      assert.fail(`sample ${name} has no # TYPE`);
    family.samples.push({ name, labels, value });
  }
  return families;
}

function value(fams: Map<string, Family>, family: string, sample: string, labels: Record<string, string> = {}): number {
  const f = fams.get(family);
  assert.ok(f, `family ${family} present`);
  const s = f.samples.find((x) => x.name === sample && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  assert.ok(s, `sample ${sample} ${JSON.stringify(labels)} present`);
  return s.value;
}

describe('exposition merging (unit)', () => {
  test('engine families that clash with the supervisor are dropped, others kept unchanged', () => {
    const own = '# HELP a_total A.\n# TYPE a_total counter\na_total 1\n';
    const engine =
      '# HELP a_total Engine A.\n# TYPE a_total counter\na_total 5\n# HELP vllm:x X.\n# TYPE vllm:x histogram\nvllm:x_bucket{le="1"} 1\nvllm:x_sum 1\nvllm:x_count 1\n';
    const { text, dropped } = mergeExpositions(own, engine);
    assert.deepEqual(dropped, ['a_total']);
    const fams = parseExposition(text);
    assert.equal(value(fams, 'a_total', 'a_total'), 1);
    assert.equal(value(fams, 'vllm:x', 'vllm:x_count'), 1);
  });

  test('GPU stats parsing keeps [N/A] as absent and skips garbage', () => {
    const s = parseGpuStats('0, GPU-a, 37, 100, 200, 41, [N/A]\nnot a line\n1, GPU-b, [Not Supported], 5, 10, 30, 70.5\n');
    assert.equal(s.length, 2);
    assert.equal(s[0]!.powerW, null);
    assert.equal(s[1]!.utilizationPct, null);
    assert.equal(s[1]!.powerW, 70.5);
  });
});

describe('a scrape of a serving supervisor', () => {
  let sup: Supervisor;
  let counterFile: string;

  before(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nim-metrics-'));
    counterFile = path.join(dir, 'nvidia-smi-calls');
    sup = await startSupervisor({
      FAKE_NVIDIA_SMI: 'h100-sxm-x1',
      FAKE_NVIDIA_SMI_VARY: '1',
      FAKE_NVIDIA_SMI_COUNTER: counterFile,
      NIM_GPU_METRICS_INTERVAL: '0.2',
      VLLM_SIM_TOKEN_MS: '1',
    });
    await sup.waitReady();
    // The GPU sampler's first nvidia-smi run may finish after readiness on a slow machine: wait for its samples.
    await waitFor(async () => /^nim_supervisor_gpu_memory_total_bytes\{gpu="0"[,}]/m.test(await (await fetch(`${sup.baseUrl}/v1/metrics`)).text()), {
      timeoutMs: 30_000,
      what: 'the first GPU sample',
    }).catch((err: Error) => {
      throw new Error(`${err.message}; supervisor output:\n${sup.proc.output().split('\n').filter((l) => /"source":"supervisor"/.test(l)).slice(-12).join('\n')}`);
    });
  });

  after(async () => {
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });

  const scrape = async (): Promise<{ text: string; contentType: string }> => {
    const r = await fetch(`${sup.baseUrl}/v1/metrics`);
    assert.equal(r.status, 200);
    return { text: await r.text(), contentType: r.headers.get('content-type') ?? '' };
  };

  const chat = async (stream: boolean): Promise<void> => {
    const r = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'count' }], max_tokens: 12, stream }),
    });
    assert.equal(r.status, 200);
    await r.text();
  };

  test('carries every family, and the values move with traffic', async () => {
    const first = await scrape();
    assert.equal(first.contentType, 'text/plain; version=0.0.4; charset=utf-8');
    const before = parseExposition(first.text);
    for (const f of [
      'nim_supervisor_http_requests_total',
      'nim_supervisor_http_request_duration_seconds',
      'nim_supervisor_http_requests_in_flight',
      'nim_supervisor_stream_time_to_first_byte_seconds',
      'nim_supervisor_stream_duration_seconds',
      'nim_supervisor_requests_rejected_not_ready_total',
      'nim_supervisor_client_aborts_total',
      'nim_supervisor_upstream_errors_total',
      'nim_supervisor_engine_state',
      'nim_supervisor_engine_restarts_total',
      'nim_supervisor_engine_startup_seconds',
      'nim_supervisor_profile_info',
      'nim_supervisor_process_cpu_seconds_total',
      'nim_supervisor_process_resident_memory_bytes',
      'nim_supervisor_gpu_utilization_ratio',
      'nim_supervisor_gpu_memory_used_bytes',
      'nim_supervisor_gpu_memory_total_bytes',
      'nim_supervisor_gpu_temperature_celsius',
      'nim_supervisor_gpu_power_watts',
      'nim_supervisor_engine_metrics_up',
      'vllm:num_requests_running',
      'vllm:num_requests_waiting',
      'vllm:kv_cache_usage_perc',
      'vllm:prompt_tokens_total',
      'vllm:generation_tokens_total',
      'vllm:request_success_total',
      'vllm:time_to_first_token_seconds',
      'vllm:e2e_request_latency_seconds',
    ]) {
      assert.ok(before.has(f), `family ${f} in the scrape`);
    }
    assert.equal(value(before, 'nim_supervisor_engine_state', 'nim_supervisor_engine_state', { state: 'ready' }), 1);
    assert.equal(value(before, 'nim_supervisor_engine_metrics_up', 'nim_supervisor_engine_metrics_up'), 1);
    const profile = before.get('nim_supervisor_profile_info')!.samples[0]!;
    assert.equal(profile.labels.gpu, 'H100');
    assert.ok(value(before, 'nim_supervisor_engine_startup_seconds', 'nim_supervisor_engine_startup_seconds') > 0);
    const gpuTotal = value(before, 'nim_supervisor_gpu_memory_total_bytes', 'nim_supervisor_gpu_memory_total_bytes', { gpu: '0' });
    assert.equal(gpuTotal, 81559 * 1024 * 1024);

    const chatRoute = { route: '/v1/chat/completions', method: 'POST', status: '200' };
    const count = (f: Map<string, Family>): number =>
      f.get('nim_supervisor_http_requests_total')!.samples.find((s) =>
        Object.entries(chatRoute).every(([k, v]) => s.labels[k] === v),
      )?.value ?? 0;
    const genTokens = (f: Map<string, Family>): number => value(f, 'vllm:generation_tokens_total', 'vllm:generation_tokens_total');
    const streams = (f: Map<string, Family>): number =>
      f.get('nim_supervisor_stream_duration_seconds')!.samples.find((s) => s.name.endsWith('_count'))?.value ?? 0;
    const gpuUtil = (f: Map<string, Family>): number =>
      value(f, 'nim_supervisor_gpu_utilization_ratio', 'nim_supervisor_gpu_utilization_ratio', { gpu: '0' });

    await chat(false);
    await chat(true);
    await sleep(500); // at least two more GPU samples
    const afterTraffic = parseExposition((await scrape()).text);
    assert.equal(count(afterTraffic) - count(before), 2);
    assert.ok(genTokens(afterTraffic) - genTokens(before) >= 2, 'engine generation tokens moved');
    assert.equal(streams(afterTraffic) - streams(before), 1);
    // GPU utilisation is re-sampled (every 0.2 s here; the fake varies it from call to call, and may repeat a value).
    await waitFor(async () => gpuUtil(parseExposition((await scrape()).text)) !== gpuUtil(before), { timeoutMs: 10_000, what: 'a new GPU utilisation sample' });
  });

  test('promtool accepts a real scrape', { skip: findExecutable('promtool', process.env.PATH) ? false : 'promtool not installed (CI installs Debian prometheus)' }, async () => {
    const { text } = await scrape();
    const dir = await mkdtemp(path.join(tmpdir(), 'nim-promtool-'));
    const file = path.join(dir, 'scrape.txt');
    await writeFile(file, text);
    const r = await run('sh', ['-c', `promtool check metrics < "${file}"`]);
    // A parse error (invalid exposition) is fatal. promtool's lint findings (exit 3) are
    // acceptable only for names we do not choose: vLLM's own `vllm:` names (colons are
    // legal, just conventionally kept for recording rules) and prom-client's nodejs_* gauges.
    const out = (r.stdout + r.stderr).trim();
    assert.doesNotMatch(out, /error while linting|parsing error/i);
    assert.ok(r.code === 0 || r.code === 3, `promtool exit ${r.code}: ${out}`);
    const findings = out.split('\n').filter((l) => l.trim() !== '');
    const accepted = findings.filter(
      (l) =>
        /^vllm:\S+ metric names should not contain ':'$/.test(l) ||
        /^nim_supervisor_nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/.test(l),
    );
    assert.deepEqual(findings, accepted, 'no lint findings about the supervisor\'s own metrics');
  });

  test('a real Prometheus server scrapes it and answers queries for supervisor and vllm: metrics', { skip: findExecutable('prometheus', process.env.PATH) ? false : 'prometheus not installed (CI installs Debian prometheus)', timeout: 60_000 }, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nim-prometheus-'));
    const promPort = await freePort();
    await writeFile(
      path.join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: nim',
        '    metrics_path: /v1/metrics',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${sup.port}']`,
        '',
      ].join('\n'),
    );
    const prom = start('prometheus', [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ]);
    const query = async (q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
      const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await r.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      return body.status === 'success' ? body.data.result : [];
    };
    try {
      await chat(false);
      const ready = await waitFor(async () => {
        const r = await query('nim_supervisor_engine_state{state="ready"}');
        return r.length > 0 ? r : undefined;
      }, { timeoutMs: 30_000, intervalMs: 250, what: 'Prometheus to scrape the supervisor' });
      assert.equal(ready[0]!.value[1], '1');
      const tokens = await waitFor(async () => {
        const r = await query('vllm:generation_tokens_total');
        return r.length > 0 ? r : undefined;
      }, { timeoutMs: 10_000, intervalMs: 250, what: 'a vllm: metric in Prometheus' });
      assert.equal(tokens[0]!.metric.model_name, DEFAULT_MODEL);
      assert.ok(Number(tokens[0]!.value[1]) > 0);
      const up = await query('up{job="nim"}');
      assert.equal(up[0]!.value[1], '1');
    } finally {
      prom.kill('SIGTERM');
      await prom.exited;
    }
  });
});

describe('a scrape while the engine cannot answer', () => {
  test('still succeeds with the supervisor metrics and says the engine scrape failed', async () => {
    const sup = await startSupervisor({ VLLM_SIM_STARTUP_MS: '4000' });
    await sup.engine();
    // The full app (metrics included) loads while the engine loads; until then the port answers 503.
    const r = await waitFor(
      async () => {
        const res = await fetch(`${sup.baseUrl}/v1/metrics`);
        if (res.status === 200) return res;
        await res.arrayBuffer();
        return undefined;
      },
      { timeoutMs: 3000, what: 'metrics to be served' },
    );
    const fams = parseExposition(await r.text());
    assert.equal(value(fams, 'nim_supervisor_engine_metrics_up', 'nim_supervisor_engine_metrics_up'), 0);
    assert.ok(value(fams, 'nim_supervisor_engine_metrics_scrape_failures_total', 'nim_supervisor_engine_metrics_scrape_failures_total') >= 1);
    assert.equal(value(fams, 'nim_supervisor_engine_state', 'nim_supervisor_engine_state', { state: 'loading' }), 1);
    assert.ok(![...fams.keys()].some((k) => k.startsWith('vllm:')));
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });
});
