// NIM_PROXY_WORKERS > 1 behaves as one process for tracing and per-LoRA
// counting (the default on 8+ CPUs): real processes, two workers in front of
// the simulator. Tracing: a real OTLP/HTTP receiver gets exactly one SERVER
// span per request, whoever answers it (a worker for inference, the primary for
// the rest), in the client's trace, with the engine's span as its child, and
// with the client's address even where a worker passed the request on. LoRA:
// responses for an adapter served by the workers are counted in /v1/metrics,
// base-model responses are not, on the edge's fast path (tracing off) and on
// node:http (tracing on).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config/env.js';
import { peekResponseModel } from '../src/lora/metrics.js';
import { createSupervisorMetrics } from '../src/metrics/supervisor-metrics.js';
import { createCors } from '../src/server/cors.js';
import type { PrimaryForwarder } from '../src/workers/forward.js';
import { createWorkerRoutes, routePattern } from '../src/workers/worker-routes.js';
import { fixturesDir, sleep, waitFor } from './helpers/process.js';
import { writeAdapter } from './helpers/lora.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './helpers/otlp-receiver.js';
import { startSupervisor, stopCleanly, type Supervisor } from './helpers/supervisor.js';
import { requestOnNewConnection, type Answer } from './helpers/fresh-request.js';

const MANIFEST = path.join(fixturesDir, 'manifests', 'lora.yaml');
const BASE = 'test/tiny-chat';
const ADAPTER = 'sql';

/** One request on a connection of its own (see the helper). */
function request(sup: Supervisor, method: string, target: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  return requestOnNewConnection(sup.port, method, target, { headers, body });
}

function chat(sup: Supervisor, model: string, stream: boolean, headers: Record<string, string> = {}): Promise<Answer> {
  return request(sup, 'POST', '/v1/chat/completions', headers, { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream });
}

async function loraCount(sup: Supervisor): Promise<number> {
  const text = await (await fetch(`${sup.baseUrl}/v1/metrics`)).text();
  const m = new RegExp(`^nim_supervisor_lora_requests_total\\{adapter="${ADAPTER}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** Adapter and base-model chats, streamed and not, each on a new connection, all at once; then the count must be exactly the adapter's. */
async function checkLoraCounting(sup: Supervisor): Promise<void> {
  const before = await loraCount(sup);
  const answers = await Promise.all([
    ...Array.from({ length: 4 }, (_, i) => chat(sup, ADAPTER, i % 2 === 0)),
    ...Array.from({ length: 4 }, (_, i) => chat(sup, BASE, i % 2 === 0)),
  ]);
  for (const a of answers) assert.equal(a.status, 200, a.body);
  assert.match(answers[1]!.body, /"model":\s*"sql"/);
  // The workers' reports reach the primary over IPC, a moment after the responses.
  await waitFor(async () => (await loraCount(sup)) >= before + 4, { timeoutMs: 5000, what: 'the adapter count' });
  await sleep(300);
  assert.equal(await loraCount(sup), before + 4, 'four adapter responses, base-model ones not counted');
}

describe('pure parts', () => {
  test('a worker wraps (traces) only what it answers itself, never what it forwards to the primary', () => {
    const seen: string[] = [];
    const forward: PrimaryForwarder = { request: (req) => void seen.push(`forwarded ${req.url}`), upgrade: () => undefined, destroy: () => undefined };
    const routes = createWorkerRoutes({
      forward,
      metrics: createSupervisorMetrics(),
      cors: createCors(loadConfig({}).cors),
      wrap: (h) => (req, res) => {
        seen.push(`span ${req.url}`);
        h(req, res);
      },
    });
    const res = { setHeader: () => undefined, writeHead: () => res, end: () => res, headersSent: false } as unknown as http.ServerResponse;
    const req = (method: string, url: string) => ({ method, url, headers: {} }) as http.IncomingMessage;
    routes.handle(req('POST', '/v1/chat/completions'), res); // before the engine is known: the primary's
    routes.serveProxied({
      exact: new Map([['POST /v1/chat/completions', (r) => void seen.push(`served ${r.url}`)]]),
      patterns: [{ method: 'GET', re: routePattern('/v1/responses/:id'), handle: (r) => void seen.push(`served ${r.url}`) }],
    });
    routes.handle(req('POST', '/v1/chat/completions'), res);
    routes.handle(req('GET', '/v1/responses/r1?x=1'), res);
    routes.handle(req('GET', '/v1/metadata'), res);
    routes.handle(req('GET', '/v1/../etc'), res); // refused here: traced here
    assert.deepEqual(seen, [
      'forwarded /v1/chat/completions',
      'span /v1/chat/completions',
      'served /v1/chat/completions',
      'span /v1/responses/r1?x=1',
      'served /v1/responses/r1?x=1',
      'forwarded /v1/metadata',
      'span /v1/../etc',
    ]);
  });

  test("one parser of a response's model for both paths: once per response, never for errors", () => {
    const names: string[] = [];
    const start = peekResponseModel((n) => names.push(n));
    assert.equal(start(500), undefined);
    const peek = start(200)!;
    assert.equal(peek(Buffer.from('data: {"id":"c1","object":"chat.completion.chunk","created":1,"mo')), false);
    assert.equal(peek(Buffer.from('del":"sql\\u0031"}')), true);
    assert.deepEqual(names, ['sql1'], 'a JSON escape in the name is decoded');
  });
});

function workerPids(sup: Supervisor): number[] {
  return (sup.logs().find((r) => Array.isArray(r.pids))?.pids as number[] | undefined) ?? [];
}

describe('NIM_PROXY_WORKERS=2 with NIM_ENABLE_OTEL=1 and LoRA', () => {
  const peft = mkdtempSync(path.join(tmpdir(), 'peft-workers-'));
  let receiver: OtlpReceiver;
  let sup: Supervisor;
  const ours = (traceId: string): ReceivedSpan[] => receiver.spans.filter((s) => s.service === 'nim-workers' && s.traceId === traceId && s.kind === 2);

  before(async () => {
    writeAdapter(peft, ADAPTER, { rank: 8, baseModel: 'test/Tiny-Chat' });
    receiver = await startOtlpReceiver();
    sup = await startSupervisor({
      NIM_PROXY_WORKERS: '2',
      NIM_MANIFEST_PATH: MANIFEST,
      NIM_PEFT_SOURCE: peft,
      NIM_ENABLE_OTEL: '1',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '50',
      NIM_OTEL_SERVICE_NAME: 'nim-workers',
      NIM_OTEL_ENGINE_TRACES: '1',
    });
    await sup.waitReady(40_000);
    assert.equal(workerPids(sup).length, 2);
  });

  after(async () => {
    await stopCleanly(sup);
    await receiver.close();
    rmSync(peft, { recursive: true, force: true });
  });

  test('chat completions served by the workers: one SERVER span each, in the client\'s trace, parent of the engine\'s span', async () => {
    const cases = [
      { stream: false, traceId: 'c0ffee00000000000000000000000001', parent: 'aaaaaaaaaaaaaaa1' },
      { stream: true, traceId: 'c0ffee00000000000000000000000002', parent: 'aaaaaaaaaaaaaaa2' },
    ];
    const answers = await Promise.all(cases.map((c) => chat(sup, BASE, c.stream, { traceparent: `00-${c.traceId}-${c.parent}-01` })));
    for (const a of answers) assert.equal(a.status, 200, a.body);
    for (const c of cases) {
      const engine = await waitFor(() => receiver.spans.find((s) => s.name === 'llm_request' && s.traceId === c.traceId), {
        timeoutMs: 10_000,
        what: `the engine's span (stream: ${c.stream})`,
      });
      const server = await waitFor(() => ours(c.traceId)[0], { timeoutMs: 10_000, what: `the supervisor's span (stream: ${c.stream})` });
      assert.equal(server.name, 'POST /v1/chat/completions');
      assert.equal(server.parentSpanId, c.parent, 'continues the client\'s traceparent');
      assert.equal(server.attributes['nim.stream'], c.stream);
      assert.equal(server.attributes['http.response.status_code'], 200);
      assert.equal(server.attributes['gen_ai.request.model'], BASE);
      assert.equal(engine.parentSpanId, server.spanId, 'the engine received the worker span\'s context');
    }
    await sleep(300); // past the exporters' batch delay: a second span would be here by now
    for (const c of cases) assert.equal(ours(c.traceId).length, 1, `exactly one SERVER span (stream: ${c.stream})`);
  });

  test('management routes (the primary\'s) and proxied /v1/models: exactly one span each', async () => {
    const cases = [
      { target: '/v1/metadata', name: 'GET /v1/metadata', traceId: 'c0ffee00000000000000000000000003' },
      { target: '/v1/health/ready', name: 'GET /v1/health/ready', traceId: 'c0ffee00000000000000000000000004' },
      { target: '/v1/models', name: 'GET /v1/models', traceId: 'c0ffee00000000000000000000000005' },
      // Refused by the worker itself (guardRequestTargets' rule): still one span.
      { target: '/v1/../v1/models', name: 'GET unmatched', traceId: 'c0ffee00000000000000000000000006', status: 400 },
    ];
    for (const c of cases) {
      const a = await request(sup, 'GET', c.target, { traceparent: `00-${c.traceId}-bbbbbbbbbbbbbbb1-01` });
      assert.equal(a.status, c.status ?? 200, `${c.target}: ${a.body}`);
    }
    for (const c of cases) {
      const span = await waitFor(() => ours(c.traceId)[0], { timeoutMs: 10_000, what: `the span of ${c.target}` });
      assert.equal(span.name, c.name);
      assert.equal(span.parentSpanId, 'bbbbbbbbbbbbbbb1');
    }
    await sleep(300);
    for (const c of cases) assert.equal(ours(c.traceId).length, 1, `exactly one SERVER span for ${c.target}`);
    // Lifecycle spans are the primary's alone: one engine.start.
    assert.equal(receiver.spans.filter((s) => s.name === 'engine.start').length, 1);
    assert.deepEqual(receiver.rejected, []);
  });

  test("a forwarded request's span has the client's address, as with one process; a client's copy of the internal header is ignored", async () => {
    const cases: Array<{ traceId: string; headers: Record<string, string> }> = [
      { traceId: 'c0ffee00000000000000000000000007', headers: {} },
      { traceId: 'c0ffee00000000000000000000000008', headers: { 'nim-supervisor-client-address': '10.6.6.6' } },
      { traceId: 'c0ffee00000000000000000000000009', headers: { 'Nim-Supervisor-Client-Address': '::1' } },
    ];
    for (const c of cases) {
      const a = await request(sup, 'GET', '/v1/metadata', { ...c.headers, traceparent: `00-${c.traceId}-bbbbbbbbbbbbbbb2-01` });
      assert.equal(a.status, 200, a.body);
    }
    for (const c of cases) {
      const span = await waitFor(() => ours(c.traceId)[0], { timeoutMs: 10_000, what: `the span of ${c.traceId}` });
      assert.equal(span.name, 'GET /v1/metadata');
      assert.equal(span.attributes['client.address'], '127.0.0.1', JSON.stringify(c.headers));
    }
  });

  test('adapter responses served by the workers are counted (node:http path, as tracing is on)', async () => {
    await checkLoraCounting(sup);
  });
});

describe('NIM_PROXY_WORKERS=2 with LoRA, tracing off (the edge\'s fast path)', () => {
  const peft = mkdtempSync(path.join(tmpdir(), 'peft-workers-'));
  let sup: Supervisor;

  before(async () => {
    writeAdapter(peft, ADAPTER, { rank: 8, baseModel: 'test/Tiny-Chat' });
    sup = await startSupervisor({ NIM_PROXY_WORKERS: '2', NIM_MANIFEST_PATH: MANIFEST, NIM_PEFT_SOURCE: peft });
    await sup.waitReady(40_000);
  });

  after(async () => {
    await stopCleanly(sup);
    rmSync(peft, { recursive: true, force: true });
  });

  test('nim_supervisor_lora_requests_total sums the workers\' adapter responses; base-model ones do not count', async () => {
    await checkLoraCounting(sup);
  });

  test('a replaced worker counts too (it learns of LoRA in its nim:init)', async () => {
    const [victim] = workerPids(sup);
    process.kill(victim!, 'SIGKILL');
    await sup.proc.waitForOutput(/exited unexpectedly .*starting a new one/);
    await sup.waitReady(10_000); // 503 until the new worker listens
    await checkLoraCounting(sup);
    await checkLoraCounting(sup);
  });
});
