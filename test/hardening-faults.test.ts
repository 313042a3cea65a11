// Faults, each against real processes: an engine that dies while loading, an
// engine whose health flips, many streams with random client aborts, and a
// request storm while not ready; clients that stop reading and vanish. (Crash mid-stream, hang on SIGTERM, a port
// that never opens and a SIGKILLed supervisor are in serve.test.ts.)
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { sleep, waitFor } from './helpers/process.js';
import { DEFAULT_MODEL, startSupervisor, waitGone } from './helpers/supervisor.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (r: Response): Promise<any> => await r.json();

/** One sample value from a Prometheus text, or 0 when absent. */
function sample(text: string, re: RegExp): number {
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('engine faults', () => {
  test('an engine that crashes while loading: the supervisor exits with its code and quotes its last line', async () => {
    const sup = await startSupervisor({ VLLM_SIM_FAIL_AT_STARTUP: '7', VLLM_SIM_STARTUP_MS: '300' });
    const { pid } = await sup.engine();
    const exit = await sup.proc.exited;
    assert.equal(exit.code, 7);
    const out = sup.proc.output();
    assert.match(out, /engine exited with code 7 while loading the model; root cause: torch\.OutOfMemoryError: CUDA out of memory/);
    await waitGone(pid);
  });

  test('/health turning 503 makes the supervisor unready; it is ready again when the engine recovers', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nim-health-'));
    const healthFile = path.join(dir, 'health');
    await writeFile(healthFile, 'ok');
    const sup = await startSupervisor({ VLLM_SIM_HEALTH_FILE: healthFile, NIM_HEALTH_CHECK_INTERVAL: '0.1' });
    await sup.waitReady();

    await writeFile(healthFile, 'fail');
    const unready = await waitFor(
      async () => {
        const r = await fetch(`${sup.baseUrl}/v1/health/ready`);
        const body = await json(r);
        return r.status === 503 ? body : undefined;
      },
      { timeoutMs: 5000, what: 'unready' },
    );
    assert.equal(unready.status, 'unhealthy');
    assert.match(unready.message, /\/health answered 503/);
    const refused = await fetch(`${sup.baseUrl}/v1/models`);
    assert.equal(refused.status, 503);
    await refused.arrayBuffer();

    await writeFile(healthFile, 'ok');
    await sup.waitReady(5000);
    const models = await fetch(`${sup.baseUrl}/v1/models`);
    assert.equal(models.status, 200);
    await models.arrayBuffer();
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
    const states = sup.logs().filter((r) => typeof r.to === 'string').map((r) => r.to);
    // Loading and ready are start-up phase records (phase "spawned", "ready"); the later changes are state records.
    assert.deepEqual(states.slice(0, 3), ['unhealthy', 'ready', 'stopping']);
    const phases = sup.logs().filter((r) => typeof r.phase === 'string').map((r) => r.phase);
    assert.deepEqual(phases.filter((p) => p === 'spawned' || p === 'ready'), ['spawned', 'ready']);
  });
});

describe('many streams with random client aborts', () => {
  test('200 concurrent streams: every abort reaches the engine; no leaked sockets; memory back to baseline', { timeout: 90_000 }, async () => {
    const sup = await startSupervisor({ VLLM_SIM_TOKEN_MS: '5' });
    await sup.waitReady();
    const { port: enginePort } = await sup.engine();
    const scrape = async (): Promise<string> => await (await fetch(`${sup.baseUrl}/v1/metrics`)).text();
    const engineMetrics = async (): Promise<string> => await (await fetch(`http://127.0.0.1:${enginePort}/metrics`)).text();
    const ABORTS = /vllm:request_success_total\{[^}]*finished_reason="abort"[^}]*\} (\d+)/;
    const handles = (t: string): number => sample(t, /^nim_supervisor_nodejs_active_handles_total (\d+)/m);
    const rss = (t: string): number => sample(t, /^nim_supervisor_process_resident_memory_bytes (\d+)/m);

    // Warm up once so lazily created state is part of the baseline.
    await streamOnce(sup.port, false);
    await sleep(3500); // let pooled engine connections idle out (3 s)
    const base = await scrape();
    const abortsBefore = sample(await engineMetrics(), ABORTS);

    // Deterministic "random" choice: a simple LCG, so a failure can be replayed.
    let seed = 12345;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const plan = Array.from({ length: 200 }, () => rand() < 0.5);
    const results = await Promise.all(plan.map((abort) => streamOnce(sup.port, abort, rand() * 150)));
    const aborted = results.filter((r) => r === 'aborted').length;
    const completed = results.filter((r) => r === 'completed').length;
    assert.equal(aborted, plan.filter(Boolean).length, 'each planned abort happened mid-stream');
    assert.equal(completed, 200 - aborted);

    // Every abort reached the engine.
    await waitFor(async () => sample(await engineMetrics(), ABORTS) - abortsBefore === aborted, {
      // Generous: on a loaded 2-core machine the engine counts the last aborts seconds later.
      timeoutMs: 30_000,
      what: `${aborted} aborts counted by the engine`,
    });
    await sleep(3500);
    const after = await scrape();
    assert.match(after, /nim_supervisor_http_requests_in_flight\{route="\/v1\/chat\/completions"\} 0/);
    assert.equal(sample(after, /nim_supervisor_client_aborts_total\{route="\/v1\/chat\/completions"\} (\d+)/), aborted);
    // No leaked sockets: handles back to the baseline (a few timers may come and go).
    assert.ok(handles(after) <= handles(base) + 4, `handles ${handles(base)} -> ${handles(after)}`);
    // Memory back near the baseline (generous: the heap may have grown its pools).
    assert.ok(rss(after) < rss(base) + 64 * 1024 * 1024, `rss ${rss(base)} -> ${rss(after)}`);
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });
});

describe('clients that stop reading, then vanish', () => {
  // Found by a fresh user's attack: a client too slow for the chunk that completed its response left the engine
  // connection paused when it went back to the pool; when the client then vanished, nothing resumed it, and the next
  // request taken on it hung with its answer unread. Echoes of swept sizes make some responses end exactly where the
  // client's socket buffers fill up (not every run: test/edge-engine-pool.test.ts pins the cause deterministically;
  // this replays the reported input end to end).
  test('150 non-reading streams of swept sizes, cut after 3 s: the next 100 requests are all answered', { timeout: 120_000 }, async () => {
    const sup = await startSupervisor({ VLLM_SIM_MODE: 'echo', VLLM_SIM_TOKEN_MS: '0', NIM_MAX_MODEL_LEN: '1000000', VLLM_SIM_MAX_CONCURRENCY: '5000' });
    await sup.waitReady();
    const chat = (content: string): string => JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content }], max_tokens: 100_000, stream: true });
    const words = (i: number, n: number): string => Array.from({ length: n }, (_, k) => `w${i}x${k}`).join(' ');
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 150; i++) {
      const s = net.connect({ host: '127.0.0.1', port: sup.port });
      s.on('error', () => undefined);
      s.pause(); // never read
      const body = chat(words(i, 300 + 25 * i));
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      sockets.push(s);
    }
    await sleep(3000);
    for (const s of sockets) s.destroy();
    await sleep(500);
    // All at once, so that they take every idle engine connection from the pool (one after another would reuse
    // the connection the previous request just gave back). The timeout only detects a hang; it measures nothing.
    const answers = await Promise.all(
      Array.from({ length: 100 }, async (_, i) =>
        await fetch(`${sup.baseUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: chat(`fresh ${i}`), signal: AbortSignal.timeout(15_000) })
          .then(async (r) => await r.text())
          .catch(() => undefined),
      ),
    );
    assert.deepEqual(answers.flatMap((t, i) => (t === undefined ? [i] : [])), [], 'requests with no answer');
    for (const [i, t] of answers.entries()) assert.ok(t!.includes('data: [DONE]'), `request ${i} got a whole stream`);
    const metrics = await (await fetch(`${sup.baseUrl}/v1/metrics`)).text();
    assert.match(metrics, /nim_supervisor_http_requests_in_flight\{route="\/v1\/chat\/completions"\} 0/);
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });
});

/** One streamed chat completion of 60 tokens; when `abort`, the client leaves after the first chunk plus `delayMs`. */
function streamOnce(port: number, abort: boolean, delayMs = 0): Promise<'completed' | 'aborted'> {
  const body = JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'go' }], max_tokens: 60, ignore_eos: true, stream: true });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        let scheduled = false;
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
          if (abort && !scheduled) {
            scheduled = true;
            setTimeout(() => {
              if (text.includes('[DONE]')) reject(new Error('stream finished before the planned abort'));
              else {
                req.destroy();
                resolve('aborted');
              }
            }, delayMs);
          }
        });
        res.on('end', () => {
          if (!abort) resolve(text.includes('[DONE]') ? 'completed' : (reject(new Error('stream ended without [DONE]')) as never));
        });
        res.on('error', () => undefined);
      },
    );
    req.on('error', (err) => {
      if (!abort) reject(err);
    });
    req.end(body);
  });
}

describe('a request storm while not ready', () => {
  test('1,000 requests during loading all get a fast 503; nothing queues or reaches the engine', { timeout: 60_000 }, async () => {
    const sup = await startSupervisor({ VLLM_SIM_STARTUP_MS: '8000' });
    await sup.engine();
    // The full app is loaded (before it, the boot handler answers 503 to everything but the probes, uncounted).
    await waitFor(async () => (await fetch(`${sup.baseUrl}/v1/version`)).status === 200, { what: 'the app loaded' });
    const body = JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'x' }] });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    const statuses = new Map<number, number>();
    const one = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: sup.port, path: '/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (res) => {
            statuses.set(res.statusCode!, (statuses.get(res.statusCode!) ?? 0) + 1);
            res.resume();
            res.on('end', resolve);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    await Promise.all(Array.from({ length: 1000 }, one));
    agent.destroy();
    assert.deepEqual([...statuses.entries()], [[503, 1000]]);
    const metrics = await (await fetch(`${sup.baseUrl}/v1/metrics`)).text();
    assert.equal(sample(metrics, /nim_supervisor_requests_rejected_not_ready_total\{route="\/v1\/chat\/completions"\} (\d+)/), 1000);
    assert.doesNotMatch(metrics, /nim_supervisor_http_requests_in_flight\{route="\/v1\/chat\/completions"\} [1-9]/);
    const ready = await fetch(`${sup.baseUrl}/v1/health/ready`);
    assert.equal(ready.status, 503);
    assert.equal((await json(ready)).status, 'loading');
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });
});
