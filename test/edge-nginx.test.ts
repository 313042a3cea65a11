// Event streams and keep-alive through Debian's nginx (a real ingress) in
// front of the real supervisor and simulator (issue #13, faults 2 and 3).
// Timings are reported with t.diagnostic, never asserted: the assertions are
// on what arrived (separate reads, comments, status, [DONE]).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { haveNginx, startNginx, timedStream, type TimedStream } from './helpers/nginx.js';
import { sleep } from './helpers/process.js';
import { DEFAULT_MODEL, startSupervisor, type Supervisor } from './helpers/supervisor.js';

const skip = haveNginx() ? false : 'nginx is not installed (.ci/run installs it)';

const body = (maxTokens: number) => ({
  model: DEFAULT_MODEL,
  messages: [{ role: 'user' as const, content: 'Tell me a story.' }],
  stream: true,
  max_tokens: maxTokens,
  ignore_eos: true,
});

/** Distinct moments at which data events arrived: 1 when an intermediary buffered the whole stream. */
function arrivals(s: TimedStream): number {
  return new Set(s.events.map((e) => e.ms)).size;
}

const fmt = (s: TimedStream): string => `status ${s.status}, headers at ${Math.round(s.headersMs)} ms, events at ${s.events.map((e) => Math.round(e.ms)).join(',')} ms, ${s.comments.length} comments, done at ${Math.round(s.totalMs)} ms`;

describe('the HTTP edge behind nginx', { skip, concurrency: true }, () => {
  // 8 tokens at 300 ms: the input. A 2 s headers timeout, below the 6 s idle of the
  // keep-alive test: it counts from a request's first byte, not from the idle time before it.
  let paced: Supervisor;
  // The first token 8 s away (a long prefill), keep-alive comments every 2 s.
  let slow: Supervisor;
  before(async () => {
    [paced, slow] = await Promise.all([
      startSupervisor({ VLLM_SIM_TOKEN_MS: '300', VLLM_SIM_TTFT_MS: '0', NIM_HEADERS_TIMEOUT: '2' }),
      startSupervisor({ VLLM_SIM_TOKEN_MS: '50', VLLM_SIM_TTFT_MS: '8000', NIM_SSE_KEEPALIVE_INTERVAL: '2' }),
    ]);
    await Promise.all([paced.waitReady(30_000), slow.waitReady(30_000)]);
  });
  after(() => {
    paced?.proc.kill('SIGKILL');
    slow?.proc.kill('SIGKILL');
  });

  it('events arrive live through `location / { proxy_pass … }` (no buffering)', async (t) => {
    const nginx = await startNginx(paced.port);
    const s = await timedStream(`${nginx.base}/v1/chat/completions`, body(8));
    t.diagnostic(`through nginx: ${fmt(s)}`);
    assert.equal(s.status, 200);
    assert.equal(s.events.at(-1)?.data, '[DONE]');
    assert.equal(s.events.length, 10, 'role chunk, 8 tokens, [DONE]');
    // Buffered, every event arrives in one read at the end; live, they arrive token by token.
    assert.ok(arrivals(s) >= 4, `events arrived at only ${arrivals(s)} distinct moments: nginx buffered the stream`);
    // nginx consumes X-Accel-Buffering; Cache-Control reaches the client.
    assert.equal(s.headers.get('cache-control'), 'no-cache');
  });

  it('the supervisor sends the anti-buffering headers on every proxied event stream', async () => {
    const res = await fetch(`${paced.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEFAULT_MODEL, prompt: 'x', stream: true, max_tokens: 2 }),
    });
    await res.text();
    assert.equal(res.headers.get('x-accel-buffering'), 'no');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  });

  it('a stream whose first token takes 8 s completes through proxy_read_timeout 5s', async (t) => {
    const nginx = await startNginx(slow.port, 'proxy_read_timeout 5s;');
    const client = new OpenAI({ baseURL: `${nginx.base}/v1`, apiKey: 'unused', maxRetries: 0 });
    // The raw stream (to see the comments) and the openai client (which must skip them) at once.
    const [s, text] = await Promise.all([
      timedStream(`${nginx.base}/v1/chat/completions`, body(4)),
      (async () => {
        const stream = await client.chat.completions.create({ ...body(4), stream: true });
        let out = '';
        let chunks = 0;
        for await (const chunk of stream) {
          chunks += 1;
          out += chunk.choices[0]?.delta.content ?? '';
        }
        return { out, chunks };
      })(),
    ]);
    t.diagnostic(`through nginx (proxy_read_timeout 5s): ${fmt(s)}`);
    assert.equal(s.status, 200);
    // The status line and headers come at once (the engine sends them before the first token) …
    assert.ok(s.headersMs < s.events[0]!.ms, 'headers arrived before the first event');
    // … and the silence is filled with comments between events.
    assert.ok(s.comments.length >= 2, `expected keep-alive comments, got ${s.comments.length}`);
    assert.ok(s.comments.every((c) => c.text === ': keep-alive'));
    assert.equal(s.events.at(-1)?.data, '[DONE]');
    assert.equal(s.events.length, 6, 'role chunk, 4 tokens, [DONE]');
    // The openai client parses a stream with comments: every chunk, no error.
    assert.equal(text.chunks, 5);
    assert.ok(text.out.length > 0);
  });

  it('keep-alive: proxied responses announce the timeout, and a pool reusing connections after 6 s idle (longer than the headers timeout) gets no reset', async (t) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const one = (): Promise<{ status: number; keepAlive: string | undefined; reused: boolean }> =>
      new Promise((resolve, reject) => {
        const req = http.request(`${paced.baseUrl}/v1/models`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, keepAlive: res.headers['keep-alive'] as string | undefined, reused: req.reusedSocket }));
        });
        req.on('error', reject);
        req.end();
      });
    const first = await Promise.all(Array.from({ length: 16 }, one));
    assert.ok(first.every((r) => r.status === 200));
    // The default (75 s) is above the 60 s idle timeout of ingress-nginx's upstream pool and of cloud load balancers.
    assert.equal(first[0]!.keepAlive, 'timeout=75');
    await sleep(6000);
    const settled = await Promise.allSettled(Array.from({ length: 16 }, one));
    const failed = settled.filter((r) => r.status === 'rejected').length;
    const reused = settled.filter((r) => r.status === 'fulfilled' && r.value.reused).length;
    t.diagnostic(`after 6 s idle: ${16 - failed}/16 ok, ${reused} on reused connections, ${failed} failed`);
    agent.destroy();
    assert.equal(failed, 0);
    assert.equal(reused, 16, 'every request reused an idle connection');
  });
});
