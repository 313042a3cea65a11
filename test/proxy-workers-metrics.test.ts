// NIM_PROXY_WORKERS > 1, two things a single process gets for free:
// - the aggregated /v1/metrics never goes backwards (Prometheus would read a
//   counter reset): a stopped worker counts with its last metrics, a dead one's
//   counters and histograms stay in (pure parts, then real processes with
//   SIGSTOP, SIGCONT and SIGKILL of the workers this test started);
// - what a worker forwards to the primary keeps the client's address (the
//   X-Forwarded-For the engine gets), and a client cannot choose it: the
//   internal header is stripped, and ignored on a connection the client's bytes
//   reach raw (an upgrade request served as plain HTTP). The spans' side is in
//   proxy-workers-parity.test.ts (its OTLP fixture).
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CLIENT_ADDRESS_HEADER, createClientAddressAdopter, takeClientAddressHeader } from '../src/workers/client-address.js';
import { requestHead } from '../src/workers/forward.js';
import type { MetricsJson } from '../src/workers/messages.js';
import { foldCumulative, isCumulative, WorkerMetricSnapshots } from '../src/workers/metric-snapshots.js';
import { fakeNvidiaSmiDir, waitFor } from './helpers/process.js';
import { rawRequest } from './helpers/raw-http.js';
import { DEFAULT_MODEL, startSupervisor, stopCleanly, type Supervisor } from './helpers/supervisor.js';
import { requestOnNewConnection, type Answer } from './helpers/fresh-request.js';

const ECHO_ENGINE = path.join(fakeNvidiaSmiDir, 'echo-engine');

function family(name: string, type: string, aggregator: string, values: Array<{ value: number; labels: Record<string, string>; metricName?: string }>): MetricsJson[number] {
  return { name, help: name, type, aggregator, values } as unknown as MetricsJson[number];
}

const requests = (n: number, status = '200'): MetricsJson[number] => family('requests_total', 'counter', 'sum', [{ value: n, labels: { route: '/v1/completions', status } }]);
const latency = (bucket: number, count: number): MetricsJson[number] =>
  family('latency_seconds', 'histogram', 'sum', [
    { value: bucket, labels: { le: '0.1' }, metricName: 'latency_seconds_bucket' },
    { value: count, labels: { le: '+Inf' }, metricName: 'latency_seconds_bucket' },
    { value: count / 10, labels: {}, metricName: 'latency_seconds_sum' },
    { value: count, labels: {}, metricName: 'latency_seconds_count' },
  ]);
const inFlight = (n: number): MetricsJson[number] => family('in_flight', 'gauge', 'sum', [{ value: n, labels: {} }]);

function valueOf(snapshot: MetricsJson, name: string, metricName?: string, labels: Record<string, string> = {}): number | undefined {
  const f = snapshot.find((m) => m.name === name);
  const v = (f?.values as Array<{ value: number; labels: Record<string, string>; metricName?: string }> | undefined)?.find(
    (x) => x.metricName === metricName && Object.entries(labels).every(([k, l]) => x.labels[k] === l),
  );
  return v?.value;
}

describe('the workers\' metric snapshots (pure)', () => {
  test('only counters and histograms that are summed are cumulative', () => {
    assert.ok(isCumulative(requests(1)));
    assert.ok(isCumulative(latency(1, 1)));
    assert.ok(!isCumulative(inFlight(1)));
    assert.ok(!isCumulative(family('x', 'counter', 'first', [])));
    assert.ok(!isCumulative(family('x', 'summary', 'sum', [])));
  });

  test('a fold sums each series (name and labels) of counters and histograms and drops gauges; its inputs are untouched', () => {
    const a: MetricsJson = [requests(3), latency(2, 3), inFlight(2)];
    const b: MetricsJson = [requests(4), requests(1, '503'), latency(1, 5), inFlight(7)];
    const folded = foldCumulative(a, b);
    assert.equal(valueOf(folded, 'requests_total', undefined, { status: '200' }), 7);
    assert.equal(valueOf(folded, 'requests_total', undefined, { status: '503' }), 1);
    assert.equal(valueOf(folded, 'latency_seconds', 'latency_seconds_bucket', { le: '0.1' }), 3);
    assert.equal(valueOf(folded, 'latency_seconds', 'latency_seconds_bucket', { le: '+Inf' }), 8);
    assert.equal(valueOf(folded, 'latency_seconds', 'latency_seconds_count'), 8);
    assert.equal(folded.find((m) => m.name === 'in_flight'), undefined, 'gauges describe the present');
    assert.equal(valueOf(a, 'requests_total', undefined, { status: '200' }), 3);
    assert.equal(folded.find((m) => m.name === 'requests_total')?.aggregator, 'sum');
  });

  test('snapshots: the newest answer stands for each worker; an exited one joins the one retired snapshot', () => {
    const s = new WorkerMetricSnapshots();
    assert.equal(s.retired.length, 0);
    s.record(1, [requests(2), inFlight(1)]);
    s.record(1, [requests(5), inFlight(3)]);
    s.record(2, [requests(4)]);
    assert.equal(valueOf(s.last(1)!, 'requests_total', undefined, { status: '200' }), 5);
    s.retire(1);
    s.retire(2);
    s.retire(3); // never answered: nothing to keep
    assert.equal(s.last(1), undefined);
    assert.equal(s.retired.length, 1, 'one family, not one snapshot per dead worker');
    assert.equal(valueOf(s.retired, 'requests_total', undefined, { status: '200' }), 9);
    for (let w = 10; w < 110; w++) {
      s.record(w, [requests(1)]);
      s.retire(w);
    }
    assert.equal(s.retired[0]!.values.length, 1, 'bounded: one series however many workers died');
    assert.equal(valueOf(s.retired, 'requests_total', undefined, { status: '200' }), 109);
  });
});

function fakeRequest(rawHeaders: string[]): http.IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!.toLowerCase()] = rawHeaders[i + 1]!;
  return { method: 'GET', url: '/v1/metadata', httpVersion: '1.1', headers, rawHeaders: [...rawHeaders], socket: new net.Socket() } as unknown as http.IncomingMessage;
}

describe('the client\'s address across the worker → primary hop (pure)', () => {
  test('the worker replaces a client\'s copy of the internal header in a raw upgrade head', () => {
    const req = fakeRequest(['Host', 'x', 'Nim-Supervisor-Client-Address', '10.6.6.6', 'Upgrade', 'websocket']);
    Object.defineProperty(req.socket, 'remoteAddress', { value: '127.0.0.1' });
    const head = requestHead(req);
    assert.equal(head.match(new RegExp(CLIENT_ADDRESS_HEADER, 'gi'))?.length, 1);
    assert.match(head, new RegExp(`\\r\\n${CLIENT_ADDRESS_HEADER}: 127\\.0\\.0\\.1\\r\\n\\r\\n$`));
    assert.doesNotMatch(head, /10\.6\.6\.6/);
  });

  test('the primary takes the header out of headers and rawHeaders and gives the socket that address', () => {
    const adopt = createClientAddressAdopter();
    const req = fakeRequest(['Host', 'x', 'nim-supervisor-client-address', '127.0.0.1']);
    assert.equal(req.socket.remoteAddress, undefined);
    adopt(req, false);
    assert.equal(req.socket.remoteAddress, '127.0.0.1');
    assert.equal(req.headers[CLIENT_ADDRESS_HEADER], undefined);
    assert.deepEqual(req.rawHeaders, ['Host', 'x']);
    // The next request on the same (pooled) connection without a usable value: no address, never the previous client's.
    const next = fakeRequest(['nim-supervisor-client-address', 'not-an-ip']);
    Object.defineProperty(next, 'socket', { value: req.socket });
    adopt(next, false);
    assert.equal(next.socket.remoteAddress, undefined);
    assert.equal(takeClientAddressHeader(fakeRequest(['Host', 'x'])), undefined);
  });

  test('after an upgrade the address is pinned: later requests on that raw connection cannot change it', () => {
    const adopt = createClientAddressAdopter();
    const up = fakeRequest(['nim-supervisor-client-address', '::1']);
    adopt(up, true);
    const later = fakeRequest(['nim-supervisor-client-address', '10.6.6.6']);
    Object.defineProperty(later, 'socket', { value: up.socket });
    adopt(later, false);
    assert.equal(later.socket.remoteAddress, '::1');
    assert.equal(later.headers[CLIENT_ADDRESS_HEADER], undefined, 'stripped all the same');
  });
});

/** One request on a connection of its own (see the helper). */
function request(sup: Supervisor, method: string, target: string, body?: unknown): Promise<Answer> {
  return requestOnNewConnection(sup.port, method, target, { body });
}

function workerPids(sup: Supervisor): number[] {
  return (sup.logs().find((r) => Array.isArray(r.pids))?.pids as number[] | undefined) ?? [];
}

describe('NIM_PROXY_WORKERS=2: /v1/metrics counters never go backwards', () => {
  test('a stopped worker counts with its last metrics; a killed one\'s requests stay in after its replacement', async () => {
    const sup = await startSupervisor({ NIM_PROXY_WORKERS: '2' });
    const stopped = new Set<number>();
    try {
      await sup.waitReady(30_000);
      const pids = workerPids(sup);
      assert.equal(pids.length, 2);
      const N = 10;
      for (let i = 0; i < N; i++) {
        const r = await request(sup, 'POST', '/v1/completions', { model: DEFAULT_MODEL, prompt: 'hi', max_tokens: 2 });
        assert.equal(r.status, 200, r.body);
      }
      const completions = async (): Promise<number> => {
        const r = await request(sup, 'GET', '/v1/metrics');
        assert.equal(r.status, 200);
        const m = /^nim_supervisor_http_requests_total\{route="\/v1\/completions",method="POST",status="200"\} (\d+)$/m.exec(r.body);
        return m ? Number(m[1]) : 0;
      };
      assert.equal(await completions(), N);

      // Each worker in turn (the kernel decides who served what; at least one served some).
      for (const pid of pids) {
        process.kill(pid, 'SIGSTOP');
        stopped.add(pid);
        const t0 = performance.now();
        assert.equal(await completions(), N, `while worker ${pid} is stopped`);
        // The scrape waits out the workers' answer timeout (2 s), not the stopped worker.
        assert.ok(performance.now() - t0 < 15_000);
        process.kill(pid, 'SIGCONT');
        stopped.delete(pid);
        assert.ok((await completions()) >= N, `after worker ${pid} continued`);
      }

      // Both original workers killed in turn; each is replaced.
      for (const [i, pid] of pids.entries()) {
        process.kill(pid, 'SIGKILL');
        await waitFor(() => sup.logs().filter((r) => /exited unexpectedly/.test(String(r.msg))).length > i, { what: `worker ${pid} replaced` });
        await waitFor(async () => (await request(sup, 'GET', '/v1/health/ready')).status === 200, { timeoutMs: 15_000, what: 'ready again' });
        assert.equal(await completions(), N, `after worker ${pid} was killed and replaced`);
      }
      const r = await request(sup, 'POST', '/v1/completions', { model: DEFAULT_MODEL, prompt: 'hi', max_tokens: 2 });
      assert.equal(r.status, 200);
      assert.equal(await completions(), N + 1, 'the replacements count on top');
    } finally {
      for (const pid of stopped) process.kill(pid, 'SIGCONT');
    }
    await stopCleanly(sup);
  });
});

describe('NIM_PROXY_WORKERS=2: the engine sees the client\'s address on what the primary proxies (echo engine)', () => {
  test('a forwarded WebSocket handshake and requests on a raw-piped connection: X-Forwarded-For is the client\'s, a spoofed header is ignored', async () => {
    const sup = await startSupervisor({ NIM_PROXY_WORKERS: '2', NIM_ENGINE_COMMAND: ECHO_ENGINE });
    try {
      await sup.waitReady(30_000);
      const enginePort = (await sup.engine()).port;
      const engineSaw = async (): Promise<Array<{ method: string; url: string; headers: Record<string, string> }>> =>
        (await (await fetch(`http://127.0.0.1:${enginePort}/__received`)).json()) as Array<{ method: string; url: string; headers: Record<string, string> }>;

      // A WebSocket handshake: the worker pipes it to the primary, whose http-proxy passes it to the engine.
      const ws = await rawRequest(
        sup.port,
        [
          'GET /v1/realtime HTTP/1.1',
          'Host: 127.0.0.1',
          'Connection: Upgrade',
          'Upgrade: websocket',
          'Sec-WebSocket-Version: 13',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          `${CLIENT_ADDRESS_HEADER}: 10.6.6.6`,
          '',
          '',
        ].join('\r\n'),
      );
      assert.equal(ws.status, 101, ws.text);
      const handshake = (await engineSaw()).find((r) => r.url === '/v1/realtime');
      assert.ok(handshake, 'the engine got the handshake');
      assert.equal(handshake.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(handshake.headers[CLIENT_ADDRESS_HEADER], undefined);

      // An upgrade to another protocol is served as plain HTTP on that raw pipe; the next request
      // on it comes from the client's own bytes, spoofed header and all.
      const body = '{}';
      const post = (id: string, extra: string[]): string =>
        ['POST /v1/completions HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', `Content-Length: ${body.length}`, `X-Request-Id: ${id}`, ...extra, '', body].join('\r\n');
      const pair = await rawRequest(
        sup.port,
        post('first', ['Connection: Upgrade', 'Upgrade: h2c', `${CLIENT_ADDRESS_HEADER}: 10.6.6.6`]) + post('second', [`${CLIENT_ADDRESS_HEADER}: 10.7.7.7`, 'Connection: close']),
        3000,
      );
      assert.equal(pair.text.match(/HTTP\/1\.1 200 /g)?.length, 2, pair.text);
      const seen = await engineSaw();
      for (const id of ['first', 'second']) {
        const r = seen.find((x) => x.headers['x-request-id'] === id);
        assert.ok(r, `the engine got the ${id} request`);
        assert.equal(r.headers['x-forwarded-for'], '127.0.0.1', id);
        assert.equal(r.headers[CLIENT_ADDRESS_HEADER], undefined, id);
      }
    } finally {
      await stopCleanly(sup);
    }
  });
});
