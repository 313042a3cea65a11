// Table-driven tests of the HTTP edge's pure parts: CORS decisions, SSE event
// boundaries and keep-alive comments, and the new variables' parsing.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { loadConfig, type CorsSettings } from '../src/config/env.js';
import { ConfigError } from '../src/errors.js';
import { decidePreflight, responseCorsHeaders } from '../src/server/cors.js';
import { EventBoundary, KEEP_ALIVE_COMMENT, SseKeepAlive } from '../src/server/sse-keepalive.js';

const ANY: CorsSettings = { allowOrigins: '*', allowMethods: '*', allowHeaders: '*', exposeHeaders: [], maxAgeSeconds: 600 };
const LISTED: CorsSettings = {
  allowOrigins: ['https://app.example.com'],
  allowMethods: ['GET', 'POST'],
  allowHeaders: ['authorization'],
  exposeHeaders: ['x-request-id'],
  maxAgeSeconds: 60,
};

test('CORS preflight decisions', () => {
  const cases: Array<{ cfg: CorsSettings; origin: string; method: string; headers?: string; allowed: boolean; expect?: Record<string, string> }> = [
    {
      cfg: ANY,
      origin: 'http://127.0.0.1:3000',
      method: 'POST',
      headers: 'Authorization, Content-Type',
      allowed: true,
      // `*` for headers names what was asked: a literal `*` would not cover Authorization.
      expect: { 'access-control-allow-origin': '*', 'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '600' },
    },
    { cfg: ANY, origin: 'null', method: 'GET', allowed: true, expect: { 'access-control-allow-origin': '*' } },
    { cfg: LISTED, origin: 'https://app.example.com', method: 'POST', headers: 'authorization,content-type', allowed: true, expect: { 'access-control-allow-origin': 'https://app.example.com', vary: 'Origin', 'access-control-allow-methods': 'GET, POST' } },
    { cfg: LISTED, origin: 'https://APP.example.com', method: 'post', allowed: true },
    { cfg: LISTED, origin: 'https://evil.example.com', method: 'POST', allowed: false, expect: { vary: 'Origin' } },
    { cfg: LISTED, origin: 'https://app.example.com', method: 'DELETE', allowed: false },
    { cfg: LISTED, origin: 'https://app.example.com', method: 'POST', headers: 'authorization, x-custom', allowed: false },
  ];
  for (const c of cases) {
    const d = decidePreflight(c.cfg, c.origin, c.method, c.headers);
    assert.equal(d.allowed, c.allowed, `${c.origin} ${c.method} ${c.headers ?? ''}`);
    for (const [k, v] of Object.entries(c.expect ?? {})) assert.equal(d.headers[k], v, `${k} for ${c.origin}`);
    if (!d.allowed) assert.equal(d.headers['access-control-allow-origin'], undefined);
  }
});

test('CORS headers of actual responses', () => {
  assert.deepEqual(responseCorsHeaders(ANY, 'http://x.test'), { 'access-control-allow-origin': '*' });
  assert.equal(responseCorsHeaders(ANY, undefined), undefined);
  assert.deepEqual(responseCorsHeaders(LISTED, 'https://app.example.com'), {
    'access-control-allow-origin': 'https://app.example.com',
    vary: 'Origin',
    'access-control-expose-headers': 'x-request-id',
  });
  assert.deepEqual(responseCorsHeaders(LISTED, 'https://evil.example.com'), { vary: 'Origin' });
});

test('SSE event boundaries: a comment may only go between events', () => {
  const cases: Array<{ chunks: string[]; at: boolean }> = [
    { chunks: [], at: true },
    { chunks: ['data: {"a":1}\n\n'], at: true },
    { chunks: ['data: {"a":1}\n'], at: false },
    { chunks: ['data: {"a":', '1}\n', '\n'], at: true },
    { chunks: ['data: x\r\n\r\n'], at: true },
    { chunks: ['data: x\r\n'], at: false },
    { chunks: ['data: x\r\r'], at: true },
    { chunks: ['event: done\ndata: x'], at: false },
    { chunks: ['data: x\n\ndata: y'], at: false },
  ];
  for (const c of cases) {
    const b = new EventBoundary();
    for (const ch of c.chunks) b.observe(Buffer.from(ch));
    assert.equal(b.atBoundary, c.at, JSON.stringify(c.chunks));
  }
});

/** A stand-in for a ServerResponse: records writes. */
function fakeRes(): ServerResponse & { written: string[] } {
  const res = new EventEmitter() as unknown as ServerResponse & { written: string[] };
  res.written = [];
  Object.assign(res, { writableEnded: false, destroyed: false, write: (s: string) => (res.written.push(s), true) });
  return res;
}

/** A manual clock and timer queue: advance(ms) runs what falls due, in order. */
function fakeTime() {
  let now = 0;
  let timers: Array<{ at: number; fn: () => void }> = [];
  return {
    now: () => now,
    timers: {
      set: (fn: () => void, ms: number) => {
        const t = { at: now + ms, fn };
        timers.push(t);
        return t;
      },
      clear: (h: unknown) => {
        timers = timers.filter((t) => t !== h);
      },
    },
    advance(ms: number): void {
      const end = now + ms;
      for (;;) {
        const due = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers = timers.filter((t) => t !== due);
        now = due.at;
        due.fn();
      }
      now = end;
    },
    pending: () => timers.length,
  };
}

test('keep-alive comments: after the interval of silence, only at event boundaries, never while data flows', () => {
  const res = fakeRes();
  const time = fakeTime();
  const ka = new SseKeepAlive(res, { intervalMs: 1000, now: time.now, timers: time.timers });
  time.advance(999);
  assert.equal(res.written.length, 0);
  time.advance(2001);
  assert.deepEqual(res.written, [KEEP_ALIVE_COMMENT, KEEP_ALIVE_COMMENT, KEEP_ALIVE_COMMENT]);
  // Half an event, then silence: no comment may land inside it.
  ka.observe(Buffer.from('data: {"partial":'));
  time.advance(5000);
  assert.equal(res.written.length, 3);
  ka.observe(Buffer.from('true}\n\n'));
  time.advance(1000);
  assert.equal(res.written.length, 4);
  // Data more often than the interval: no comments.
  for (let i = 0; i < 10; i++) {
    ka.observe(Buffer.from('data: x\n\n'));
    time.advance(500);
  }
  assert.equal(res.written.length, 4);
  // Once the response is finished, the timer stops by itself.
  Object.assign(res, { writableEnded: true });
  time.advance(5000);
  assert.equal(res.written.length, 4);
  assert.equal(time.pending(), 0);
  ka.stop();
});

test('new variables: defaults and clear errors', () => {
  const c = loadConfig({});
  assert.equal(c.keepAliveTimeoutMs, 75_000);
  assert.equal(c.sseKeepAliveIntervalMs, 15_000);
  assert.deepEqual(c.cors, ANY);
  assert.equal(loadConfig({ NIM_SSE_KEEPALIVE_INTERVAL: '0' }).sseKeepAliveIntervalMs, 0);
  assert.deepEqual(loadConfig({ NIM_CORS_ALLOW_ORIGINS: 'https://a.example.com, http://127.0.0.1:3000' }).cors.allowOrigins, ['https://a.example.com', 'http://127.0.0.1:3000']);
  assert.deepEqual(loadConfig({ NIM_CORS_ALLOW_METHODS: 'get,post' }).cors.allowMethods, ['GET', 'POST']);
  assert.deepEqual(loadConfig({ NIM_CORS_EXPOSE_HEADERS: 'X-Request-Id' }).cors.exposeHeaders, ['x-request-id']);
  const bad: Array<[string, string]> = [
    ['NIM_CORS_ALLOW_ORIGINS', 'https://a.example.com/'],
    ['NIM_CORS_ALLOW_ORIGINS', 'a.example.com'],
    ['NIM_CORS_ALLOW_ORIGINS', '*,https://a.example.com'],
    ['NIM_CORS_ALLOW_METHODS', 'GET POST'],
    ['NIM_CORS_ALLOW_HEADERS', 'x:y'],
    ['NIM_CORS_MAX_AGE', '-1'],
    ['NIM_SSE_KEEPALIVE_INTERVAL', '0.01'],
    ['NIM_SSE_KEEPALIVE_INTERVAL', 'soon'],
    ['NIM_KEEP_ALIVE_TIMEOUT', '0'],
  ];
  for (const [name, value] of bad) {
    assert.throws(
      () => loadConfig({ [name]: value }),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${name}=`),
      `${name}=${value}`,
    );
  }
});
