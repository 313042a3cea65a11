// The proxy against an engine that closes a reused keep-alive connection just
// as a request arrives on it (uvicorn's idle close racing the pool): the
// request is replayed once on a new connection, and the client never sees the
// reset. Pure Node on 127.0.0.1, no supervisor process.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { Lifecycle } from '../src/engine/lifecycle.js';
import { createSupervisorMetrics } from '../src/metrics/supervisor-metrics.js';
import { poolIdleMs } from '../src/server/engine-agent.js';
import { InflightTracker } from '../src/server/inflight.js';
import { createEngineProxy, type EngineProxy } from '../src/server/proxy.js';

describe('pool idle time from VLLM_HTTP_TIMEOUT_KEEP_ALIVE', () => {
  for (const [keepAlive, idle] of [[5000, 4000], [10_000, 9000], [2000, 1000], [1000, 500], [500, 250]] as const) {
    test(`${keepAlive} ms → ${idle} ms`, () => assert.equal(poolIdleMs(keepAlive), idle));
  }
});

describe('a request that meets the engine closing its reused connection', () => {
  let engine: http.Server;
  let front: http.Server;
  let proxy: EngineProxy;
  let frontPort: number;
  const seen: Array<{ method: string; body: string; reused: boolean; cut: boolean }> = [];
  const metrics = createSupervisorMetrics({ collectProcessMetrics: false });

  before(async () => {
    // The engine answers the first request of each connection, and drops the
    // connection without a byte when a second request comes on it.
    const perSocket = new WeakMap<object, number>();
    engine = http.createServer((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        const cut = n > 1;
        seen.push({ method: req.method ?? '', body, reused: n > 1, cut });
        if (cut) {
          req.socket.destroy();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ echo: body, method: req.method }));
      });
    });
    engine.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => engine.listen(0, '127.0.0.1', r));
    const target = new URL(`http://127.0.0.1:${(engine.address() as AddressInfo).port}`);
    const lifecycle = new Lifecycle();
    lifecycle.transition('loading', 'test');
    lifecycle.transition('ready', 'test');
    proxy = createEngineProxy({
      target: () => target,
      lifecycle,
      inflight: new InflightTracker(),
      metrics,
      logger: pino({ level: 'silent' }),
      maxRequestBodyBytes: 1024 * 1024,
      maxInflight: 0,
      engineKeepAliveMs: 60_000,
    });
    const chat = proxy.handler('/v1/chat/completions');
    front = http.createServer((req, res) => chat(req, res));
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    frontPort = (front.address() as AddressInfo).port;
  });

  after(async () => {
    proxy.destroy();
    front.closeAllConnections();
    engine.closeAllConnections();
    await new Promise((r) => front.close(r));
    await new Promise((r) => engine.close(r));
  });

  function send(method: string, body?: string, chunked = false): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
      if (body !== undefined && !chunked) headers['content-length'] = Buffer.byteLength(body);
      const req = http.request({ host: '127.0.0.1', port: frontPort, path: '/v1/chat/completions', method, agent: false, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      if (body !== undefined && chunked) {
        req.write(body.slice(0, 5));
        setTimeout(() => req.end(body.slice(5)), 20);
      } else req.end(body);
    });
  }

  const cases: Array<[string, string, string | undefined, boolean]> = [
    ['POST with a declared length', 'POST', '{"messages":[{"role":"user","content":"one"}]}', false],
    ['POST with a chunked body', 'POST', '{"messages":[{"role":"user","content":"two"}]}', true],
    ['GET without a body', 'GET', undefined, false],
  ];
  for (const [name, method, body, chunked] of cases) {
    test(`${name}: replayed once on a new connection, the client gets 200 with the same body`, async () => {
      // First request opens a pooled connection; the second reuses it and is cut.
      const first = await send(method, body, chunked);
      assert.equal(first.status, 200);
      const before = seen.length;
      const second = await send(method, body, chunked);
      assert.equal(second.status, 200, second.text);
      const tail = seen.slice(before);
      assert.deepEqual(
        tail.map((s) => [s.reused, s.cut]),
        [
          [true, true],
          [false, false],
        ],
        'cut on the reused connection, then answered on a new one',
      );
      assert.equal(tail[1]!.body, body ?? '', 'the replay carries the whole body');
      assert.equal(JSON.parse(second.text).echo, body ?? '');
    });
  }

  test('the replays are counted', async () => {
    const text = await metrics.registry.metrics();
    const m = /nim_supervisor_upstream_errors_total\{route="\/v1\/chat\/completions",kind="idle_close_replayed"\} (\d+)/.exec(text);
    assert.equal(Number(m?.[1]), seen.filter((s) => s.cut).length, 'one count per cut request');
  });
});
