// /metrics: vLLM's families, types and labels, counters that follow traffic,
// client aborts and the waiting queue of VLLM_SIM_MAX_CONCURRENCY.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from './helpers/process.js';
import { parsePrometheus, postJson, sampleValue, scrape, startSim, startSimVersion, type RunningSim } from './helpers/sim.js';

const MODEL = 'sim-model';
const L = { engine: '0', model_name: MODEL };

describe('metrics exposition', () => {
  let sim: RunningSim;
  before(async () => {
    sim = await startSim(['--served-model-name', MODEL, 'other-name']);
  });
  after(() => sim.proc.kill('SIGKILL'));

  test('content type and vLLM families with their types and labels', async () => {
    const res = await fetch(`${sim.base}/metrics`);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const fams = parsePrometheus(await res.text());
    const expect: Record<string, string> = {
      'vllm:num_requests_running': 'gauge',
      'vllm:num_requests_waiting': 'gauge',
      'vllm:kv_cache_usage_perc': 'gauge',
      'vllm:cache_config_info': 'gauge',
      'vllm:prompt_tokens_total': 'counter',
      'vllm:generation_tokens_total': 'counter',
      'vllm:request_success_total': 'counter',
      'vllm:num_preemptions_total': 'counter',
      'vllm:prefix_cache_queries_total': 'counter',
      'vllm:prefix_cache_hits_total': 'counter',
      'vllm:time_to_first_token_seconds': 'histogram',
      'vllm:inter_token_latency_seconds': 'histogram',
      'vllm:e2e_request_latency_seconds': 'histogram',
      'vllm:request_queue_time_seconds': 'histogram',
      'vllm:request_prefill_time_seconds': 'histogram',
      'vllm:request_decode_time_seconds': 'histogram',
      'vllm:request_inference_time_seconds': 'histogram',
      'vllm:request_prompt_tokens': 'histogram',
      'vllm:request_generation_tokens': 'histogram',
      'vllm:request_params_n': 'histogram',
      'vllm:request_params_max_tokens': 'histogram',
      http_requests_total: 'counter',
      process_resident_memory_bytes: 'gauge',
      process_cpu_seconds_total: 'counter',
      process_start_time_seconds: 'gauge',
    };
    for (const [name, type] of Object.entries(expect)) {
      assert.equal(fams.get(name)?.type, type, `${name} should be a ${type}`);
    }
    // Every vllm: sample carries engine="0" and the first served name.
    for (const f of fams.values()) {
      if (!f.name.startsWith('vllm:')) continue;
      for (const s of f.samples) {
        assert.equal(s.labels.engine, '0', `${s.name} engine label`);
        if (f.name !== 'vllm:cache_config_info') assert.equal(s.labels.model_name, MODEL, `${s.name} model_name label`);
      }
    }
    const ttft = fams.get('vllm:time_to_first_token_seconds')!;
    const le = (s: { labels: Record<string, string> }) => (s.labels.le === '+Inf' ? Infinity : Number(s.labels.le));
    const les = ttft.samples.filter((s) => s.name.endsWith('_bucket')).map(le);
    assert.deepEqual(les, [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560, Infinity]);
    const e2e = fams.get('vllm:e2e_request_latency_seconds')!.samples.filter((s) => s.name.endsWith('_bucket')).map(le);
    assert.equal(e2e[0], 0.3);
    assert.equal(e2e[e2e.length - 2], 7680);
    for (const reason of ['stop', 'length', 'abort']) assert.equal(sampleValue(fams, 'vllm:request_success_total', { ...L, finished_reason: reason }), 0);
    assert.equal(sampleValue(fams, 'vllm:cache_config_info', { block_size: '16' }), 1);
  });

  test('per release: time_per_output_token_seconds only in 0.11 (removed by PR #32661); the gpu_memory_utilization default', async () => {
    const fams = await scrape(sim.base); // the default release, 0.31
    assert.equal(fams.get('vllm:time_per_output_token_seconds'), undefined);
    assert.equal(fams.get('vllm:request_time_per_output_token_seconds')?.type, 'histogram');
    assert.equal(sampleValue(fams, 'vllm:cache_config_info', { gpu_memory_utilization: '0.92' }), 1);
    assert.equal(fams.get('vllm:cache_config_info')!.samples[0]!.labels.swap_space, undefined);
    const old = await startSimVersion('0.11', ['--served-model-name', MODEL]);
    try {
      const f11 = await scrape(old.base);
      assert.equal(f11.get('vllm:time_per_output_token_seconds')?.type, 'histogram');
      assert.equal(sampleValue(f11, 'vllm:cache_config_info', { gpu_memory_utilization: '0.9', swap_space: '4' }), 1);
    } finally {
      old.proc.kill('SIGKILL');
    }
  });

  test('the strict parser rejects malformed expositions', () => {
    assert.throws(() => parsePrometheus('foo 1\n'), /without TYPE/);
    assert.throws(() => parsePrometheus('# TYPE foo counter\nfoo{a="1} 1\n'), /unterminated|bad labels/);
    assert.throws(() => parsePrometheus('# TYPE foo gauge\nfoo one\n'), /bad sample value/);
    assert.throws(() => parsePrometheus('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 1\n'), /cumulative/);
    assert.throws(() => parsePrometheus('# TYPE g gauge\ng 1\ng 2\n'), /duplicate series/);
  });

  test('counters and histograms move with traffic by exactly the usage reported', async () => {
    const before = await scrape(sim.base);
    const auth = {};
    const a = await postJson(sim.base, '/v1/chat/completions', { model: 'other-name', messages: [{ role: 'user', content: 'count me' }], max_tokens: 7, ignore_eos: true }, auth);
    const b = await postJson(sim.base, '/v1/completions', { prompt: 'and me too', max_tokens: 200 }, auth);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(b.json.choices[0].finish_reason, 'stop');
    const now = await scrape(sim.base);
    const d = (name: string, labels: Record<string, string> = L) => sampleValue(now, name, labels) - sampleValue(before, name, labels);
    assert.equal(d('vllm:prompt_tokens_total'), a.json.usage.prompt_tokens + b.json.usage.prompt_tokens);
    assert.equal(d('vllm:generation_tokens_total'), a.json.usage.completion_tokens + b.json.usage.completion_tokens);
    assert.equal(d('vllm:request_success_total', { ...L, finished_reason: 'length' }), 1);
    assert.equal(d('vllm:request_success_total', { ...L, finished_reason: 'stop' }), 1);
    assert.equal(d('vllm:e2e_request_latency_seconds_count'), 2);
    assert.equal(d('vllm:request_params_max_tokens_count'), 2);
    assert.equal(d('vllm:request_prompt_tokens_sum'), a.json.usage.prompt_tokens + b.json.usage.prompt_tokens);
    assert.equal(d('vllm:prefix_cache_queries_total'), a.json.usage.prompt_tokens + b.json.usage.prompt_tokens);
    const http = (m: typeof now) =>
      m.get('http_requests_total')!.samples.find((s) => s.labels.handler === '/v1/chat/completions' && s.labels.method === 'POST' && s.labels.status === '2xx')?.value ?? 0;
    assert.equal(http(now) - http(before), 1);
    // The same long prompt twice: the second one hits the prefix cache.
    const long = { messages: [{ role: 'user', content: 'the same words again and again '.repeat(20) }], max_tokens: 1 };
    await postJson(sim.base, '/v1/chat/completions', long);
    const mid = await scrape(sim.base);
    await postJson(sim.base, '/v1/chat/completions', long);
    const end = await scrape(sim.base);
    assert.ok(sampleValue(end, 'vllm:prefix_cache_hits_total', L) - sampleValue(mid, 'vllm:prefix_cache_hits_total', L) >= 16);
  });

  test('promtool check metrics accepts a scrape', async (t) => {
    const which = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
    if (which.status !== 0) {
      t.skip('promtool is not on PATH');
      return;
    }
    const text = await (await fetch(`${sim.base}/metrics`)).text();
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'sim-metrics-')), 'scrape.txt');
    writeFileSync(file, text);
    const r = spawnSync('sh', ['-c', `promtool check metrics < "${file}"`], { encoding: 'utf8' });
    // Exit 3 = lint findings only. vLLM's own "vllm:" names draw one finding each
    // (promtool dislikes ':' in names); anything else, or a parse error, fails.
    const problems = (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '');
    assert.ok(r.status === 0 || r.status === 3, `promtool exit ${r.status}: ${problems.join('\n')}`);
    const other = problems.filter((l) => !/^vllm:\S+ metric names should not contain ':'$/.test(l));
    assert.deepEqual(other, []);
  });
});

describe('aborts and queueing', () => {
  let sim: RunningSim;
  before(async () => {
    sim = await startSim(['--served-model-name', MODEL], { VLLM_SIM_TOKEN_MS: '20', VLLM_SIM_MAX_CONCURRENCY: '2' });
  });
  after(() => sim.proc.kill('SIGKILL'));

  test('a client that disconnects mid-stream aborts its generation', async () => {
    const before = await scrape(sim.base);
    const ac = new AbortController();
    const res = await fetch(`${sim.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'abort-me' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'long one' }], max_tokens: 200, ignore_eos: true, stream: true }),
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(Buffer.from(first.value!).toString(), /^data: /);
    ac.abort();
    await sim.proc.waitForOutput(/Request chatcmpl-abort-me aborted\./, 5000);
    const now = await waitFor(async () => {
      const m = await scrape(sim.base);
      return sampleValue(m, 'vllm:request_success_total', { ...L, finished_reason: 'abort' }) === 1 ? m : null;
    }, { what: 'abort counted' });
    assert.equal(sampleValue(now, 'vllm:num_requests_running', L), 0);
    const made = sampleValue(now, 'vllm:generation_tokens_total', L) - sampleValue(before, 'vllm:generation_tokens_total', L);
    assert.ok(made > 0 && made < 200, `generation stopped early (${made} tokens)`);
  });

  test('requests beyond VLLM_SIM_MAX_CONCURRENCY wait in a FIFO queue', async () => {
    const body = { messages: [{ role: 'user', content: 'queue' }], max_tokens: 10, ignore_eos: true };
    const inflight = Array.from({ length: 6 }, () => postJson(sim.base, '/v1/chat/completions', body));
    const seen = await waitFor(async () => {
      const m = await scrape(sim.base);
      return sampleValue(m, 'vllm:num_requests_waiting', L) > 0 ? m : null;
    }, { what: 'waiting > 0', intervalMs: 10 });
    assert.equal(sampleValue(seen, 'vllm:num_requests_running', L), 2);
    assert.ok(sampleValue(seen, 'vllm:kv_cache_usage_perc', L) > 0);
    const done = await Promise.all(inflight);
    for (const r of done) assert.equal(r.json.usage.completion_tokens, 10);
    const end = await scrape(sim.base);
    assert.equal(sampleValue(end, 'vllm:num_requests_waiting', L), 0);
    assert.equal(sampleValue(end, 'vllm:num_requests_running', L), 0);
    // Queued requests spent measurable time waiting.
    assert.ok(sampleValue(end, 'vllm:request_queue_time_seconds_sum', L) > 0.1);
  });

  test('a non-streaming client that goes away while queued is aborted too', async () => {
    const before = sampleValue(await scrape(sim.base), 'vllm:request_success_total', { ...L, finished_reason: 'abort' });
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 20, ignore_eos: true });
    const ac = new AbortController();
    const p = fetch(`${sim.base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 60));
    ac.abort();
    await assert.rejects(p);
    await waitFor(async () => sampleValue(await scrape(sim.base), 'vllm:request_success_total', { ...L, finished_reason: 'abort' }) === before + 1, {
      what: 'second abort counted',
    });
  });
});
