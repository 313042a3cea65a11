// Limits and bad input: body size, slow clients, in-flight cap, malformed
// requests, and every kind of bad configuration. Real processes only.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fakeNvidiaSmiDir, fixturesDir, freePort } from './helpers/process.js';
import { rawRequest } from './helpers/raw-http.js';
import { DEFAULT_MODEL, startSupervisor } from './helpers/supervisor.js';

const ECHO_ENGINE = path.join(fakeNvidiaSmiDir, 'echo-engine');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (r: Response): Promise<any> => await r.json();

/** The backlog in force on a listening TCP port: `ss -ltn`'s Send-Q for a listener. */
function listenBacklog(baseUrl: string): number {
  const r = spawnSync('ss', ['-Hltn', `sport = :${new URL(baseUrl).port}`], { encoding: 'utf8' });
  return Number(r.stdout.trim().split(/\s+/)[2]);
}
const SOMAXCONN = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());

describe('request size and slow clients', () => {
  test('bodies over NIM_MAX_REQUEST_BODY get 413 (declared or chunked); smaller ones pass; serving goes on', async () => {
    const sup = await startSupervisor({ NIM_ENGINE_COMMAND: ECHO_ENGINE, NIM_MAX_REQUEST_BODY: '1MiB' });
    await sup.waitReady();
    assert.equal(listenBacklog(sup.baseUrl), SOMAXCONN, 'NIM_LISTEN_BACKLOG by default: as many as the kernel allows');
    const big = Buffer.alloc(2 * 1024 * 1024, 0x61);
    const declared = await fetch(`${sup.baseUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    assert.equal(declared.status, 413);
    assert.match((await json(declared)).error.message, /limit is 1048576 bytes \(NIM_MAX_REQUEST_BODY\)/);

    // A chunked body has no Content-Length: it is counted on the way through.
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 8; i++) c.enqueue(new Uint8Array(256 * 1024));
        c.close();
      },
    });
    const chunked = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 413);
    await chunked.arrayBuffer();

    const small = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.alloc(512 * 1024, 0x61),
    });
    assert.equal(small.status, 200);
    assert.equal((await json(small)).bodyBytes, 512 * 1024);
    const metrics = await (await fetch(`${sup.baseUrl}/v1/metrics`)).text();
    assert.match(metrics, /nim_supervisor_requests_rejected_too_large_total\{route="\/v1\/chat\/completions"\} 2/);
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });

  test('a slowloris client that never finishes its headers is cut off', async () => {
    const sup = await startSupervisor({ NIM_ENGINE_COMMAND: ECHO_ENGINE, NIM_HEADERS_TIMEOUT: '1', NIM_REQUEST_TIMEOUT: '2' });
    await sup.waitReady();
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const t0 = Date.now();
      const socket = connect(sup.port, '127.0.0.1');
      socket.write('GET /v1/models HTTP/1.1\r\nHost: x\r\n');
      // One header line every 300 ms, never the blank line that ends them.
      const drip = setInterval(() => socket.write(`X-Drip: ${Date.now()}\r\n`), 300);
      const giveUp = setTimeout(() => {
        clearInterval(drip);
        socket.destroy();
        reject(new Error('the server kept the slow connection open for 10 s'));
      }, 10_000);
      socket.resume();
      socket.on('close', () => {
        clearInterval(drip);
        clearTimeout(giveUp);
        resolve(Date.now() - t0);
      });
      socket.on('error', () => undefined);
    });
    assert.ok(closedAfter < 10_000, `closed after ${closedAfter} ms`);
    // Everyone else is still served.
    assert.equal((await fetch(`${sup.baseUrl}/v1/health/live`)).status, 200);
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });

  test('beyond NIM_MAX_INFLIGHT_REQUESTS new requests get 429 with Retry-After', async () => {
    const sup = await startSupervisor({ NIM_MAX_INFLIGHT_REQUESTS: '2', VLLM_SIM_TOKEN_MS: '20', NIM_LISTEN_BACKLOG: '100' });
    await sup.waitReady();
    assert.equal(listenBacklog(sup.baseUrl), 100, 'NIM_LISTEN_BACKLOG=100');
    const body = JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 60, ignore_eos: true, stream: true });
    const opts = { method: 'POST', headers: { 'content-type': 'application/json' }, body };
    const open = [await fetch(`${sup.baseUrl}/v1/chat/completions`, opts), await fetch(`${sup.baseUrl}/v1/chat/completions`, opts)];
    const third = await fetch(`${sup.baseUrl}/v1/chat/completions`, opts);
    assert.equal(third.status, 429);
    assert.equal(third.headers.get('retry-after'), '1');
    assert.equal((await json(third)).error.code, 429);
    for (const r of open) {
      assert.equal(r.status, 200);
      assert.match(await r.text(), /\[DONE\]/);
    }
    const after = await fetch(`${sup.baseUrl}/v1/chat/completions`, opts);
    assert.equal(after.status, 200);
    await after.text();
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });
});

describe('malformed requests', () => {
  test('bad JSON, wrong content type and empty bodies get the engine 400; others keep being served', async () => {
    const sup = await startSupervisor();
    await sup.waitReady();
    const post = (body: string | undefined, type = 'application/json'): Promise<Response> =>
      fetch(`${sup.baseUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': type }, ...(body === undefined ? {} : { body }) });
    for (const [body, type] of [
      ['{"model": ', 'application/json'],
      ['model=x', 'application/x-www-form-urlencoded'],
      [undefined, 'application/json'],
      ['[]', 'application/json'],
      ['{"messages": "not a list"}', 'application/json'],
    ] as const) {
      const r = await post(body, type);
      assert.equal(r.status, 400, `${type} ${body}`);
      const err = await json(r);
      assert.equal(err.error.code, 400);
    }
    const unknownModel = await post(JSON.stringify({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }));
    assert.equal(unknownModel.status, 404);
    await unknownModel.arrayBuffer();
    const ok = await post(JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 3 }));
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
    // A garbage request line gets a 400 from the HTTP parser and does not disturb anyone.
    const garbage = await rawRequest(sup.port, 'HELLO THERE\r\n\r\n');
    assert.equal(garbage.status, 400);
    assert.equal((await fetch(`${sup.baseUrl}/v1/health/ready`)).status, 200);
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });
});

describe('bad configuration: one clear line, the right exit code, no stack trace', () => {
  const cases: Array<{ name: string; env: Record<string, string>; code: number; message: RegExp }> = [
    { name: 'bad port', env: { NIM_SERVER_PORT: 'abc' }, code: 2, message: /NIM_SERVER_PORT="abc" is invalid: expected an integer from 1 to 65535/ },
    { name: 'bad log level', env: { NIM_LOG_LEVEL: 'LOUD' }, code: 2, message: /NIM_LOG_LEVEL="LOUD" is invalid/ },
    // listen(2) takes an int: 2^32 would silently become a backlog of 0.
    { name: 'listen backlog past 65535', env: { NIM_LISTEN_BACKLOG: '4294967296' }, code: 2, message: /NIM_LISTEN_BACKLOG="4294967296" is invalid: expected an integer from 1 to 65535/ },
    { name: 'missing manifest', env: { NIM_MANIFEST_PATH: '/nonexistent/manifest.yaml' }, code: 2, message: /\/nonexistent\/manifest.yaml/ },
    {
      name: 'invalid manifest',
      env: { NIM_MANIFEST_PATH: path.join(fixturesDir, 'manifests', 'bad-tp.yaml') },
      code: 2,
      message: /bad-tp\.yaml.*tp/,
    },
    { name: 'unknown profile', env: { NIM_MODEL_PROFILE: 'no-such-profile' }, code: 2, message: /no-such-profile/ },
    {
      name: 'no compatible profile',
      env: { NIM_MANIFEST_PATH: path.join(fixturesDir, 'manifests', 'minimal.yaml') },
      code: 2,
      message: /no profile of test\/tiny-vlm can run on this system/,
    },
    { name: 'incompatible explicit profile', env: { NIM_MODEL_PROFILE: 'vllm-bf16-tp1-pp1-h100-latency' }, code: 2, message: /cannot run|incompatible/i },
    { name: 'missing engine executable', env: { NIM_ENGINE_COMMAND: '/nonexistent/bin/vllm' }, code: 2, message: /engine executable "\/nonexistent\/bin\/vllm" not found.*NIM_ENGINE_COMMAND/ },
    { name: 'headers timeout above request timeout', env: { NIM_HEADERS_TIMEOUT: '10', NIM_REQUEST_TIMEOUT: '5' }, code: 2, message: /NIM_HEADERS_TIMEOUT/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const sup = await startSupervisor(c.env);
      const exit = await sup.proc.exited;
      assert.equal(exit.code, c.code, sup.proc.output());
      const lines = sup.proc.stderr().trim().split('\n');
      assert.equal(lines.length, 1, `one line on stderr, got:\n${sup.proc.stderr()}`);
      assert.match(lines[0]!, /^nim-supervisor: error: /);
      assert.match(lines[0]!, c.message);
    });
  }

  test('port in use', async () => {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    try {
      const sup = await startSupervisor({ NIM_SERVER_PORT: String(port) });
      const exit = await sup.proc.exited;
      assert.equal(exit.code, 2);
      assert.match(sup.proc.stderr(), new RegExp(`port ${port} on 127.0.0.1 is already in use.*NIM_SERVER_PORT`));
      assert.doesNotMatch(sup.proc.stderr(), /\n\s+at /);
    } finally {
      blocker.close();
    }
  });

  test('NIM_LOG_LEVEL=DEBUG adds the stack trace', async () => {
    const sup = await startSupervisor({ NIM_LOG_LEVEL: 'DEBUG', NIM_MODEL_PROFILE: 'no-such-profile' });
    assert.equal((await sup.proc.exited).code, 2);
    assert.match(sup.proc.stderr(), /\n\s+at /);
  });
});

