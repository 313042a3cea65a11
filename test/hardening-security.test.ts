// Security: API key, TLS/mTLS, secret redaction, the route allow-list against
// path tricks, hop-by-hop headers and request smuggling. Real processes only.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { binDir, fakeNvidiaSmiDir, pathWith, run } from './helpers/process.js';
import { rawRequest } from './helpers/raw-http.js';
import { DEFAULT_MODEL, startSupervisor, type Supervisor } from './helpers/supervisor.js';

const ECHO_ENGINE = path.join(fakeNvidiaSmiDir, 'echo-engine');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (r: Response): Promise<any> => await r.json();

describe('API key', () => {
  const KEY = 'sk-test-0123456789abcdef';
  let sup: Supervisor;
  const bodies: string[] = [];

  before(async () => {
    sup = await startSupervisor({ NIM_API_KEY: KEY });
    await sup.waitReady();
  });
  after(async () => {
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
    // The key never appears in any log line or response body.
    assert.ok(!sup.proc.output().includes(KEY), 'key in the logs');
    for (const b of bodies) assert.ok(!b.includes(KEY), 'key in a response');
  });

  const get = async (p: string, auth?: string): Promise<Response> => {
    const r = await fetch(`${sup.baseUrl}${p}`, auth === undefined ? {} : { headers: { authorization: auth } });
    bodies.push(await r.clone().text());
    return r;
  };

  test('probes are open; everything else needs the bearer key, compared exactly', async () => {
    assert.equal((await get('/v1/health/live')).status, 200);
    assert.equal((await get('/v1/health/ready')).status, 200);
    for (const p of ['/v1/models', '/v1/metadata', '/v1/version', '/v1/license', '/v1/manifest', '/v1/metrics', '/docs', '/nope']) {
      const none = await get(p);
      assert.equal(none.status, 401, p);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer');
      const body = await json(none);
      assert.equal(body.error.type, 'AuthenticationError');
      assert.equal((await get(p, `Bearer ${KEY}x`)).status, 401, `${p} with a longer key`);
      assert.equal((await get(p, `Bearer ${KEY.slice(0, -1)}`)).status, 401, `${p} with a shorter key`);
      assert.equal((await get(p, KEY)).status, 401, `${p} without the Bearer scheme`);
    }
    assert.equal((await get('/v1/metadata', `Bearer ${KEY}`)).status, 200);
    assert.equal((await get('/v1/metrics', `bearer ${KEY}`)).status, 200);
  });

  test('the openai client with the key works; without it gets AuthenticationError', async () => {
    const good = new OpenAI({ baseURL: `${sup.baseUrl}/v1`, apiKey: KEY, maxRetries: 0 });
    const r = await good.chat.completions.create({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
    assert.equal(r.object, 'chat.completion');
    const bad = new OpenAI({ baseURL: `${sup.baseUrl}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);
  });
});

describe('API key from a file, with metrics left open', () => {
  test('NIM_API_KEY_FILE is read; NIM_METRICS_REQUIRE_AUTH=0 opens /v1/metrics only', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nim-key-'));
    const file = path.join(dir, 'api-key');
    await writeFile(file, 'file-key-abcdef123456\n');
    const sup = await startSupervisor({ NIM_API_KEY_FILE: file, NIM_METRICS_REQUIRE_AUTH: '0' });
    await sup.waitReady();
    assert.equal((await fetch(`${sup.baseUrl}/v1/metrics`)).status, 200);
    assert.equal((await fetch(`${sup.baseUrl}/v1/models`)).status, 401);
    const ok = await fetch(`${sup.baseUrl}/v1/models`, { headers: { authorization: 'Bearer file-key-abcdef123456' } });
    assert.equal(ok.status, 200);
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });

  test('an unreadable key file stops the supervisor with exit 2 naming the variable', async () => {
    const sup = await startSupervisor({ NIM_API_KEY_FILE: '/nonexistent/api-key' });
    const exit = await sup.proc.exited;
    assert.equal(exit.code, 2);
    assert.match(sup.proc.stderr(), /NIM_API_KEY_FILE="\/nonexistent\/api-key" cannot be read: ENOENT/);
    assert.doesNotMatch(sup.proc.stderr(), /\n\s+at /, 'no stack trace');
  });
});

describe('secret redaction', () => {
  test('secret-looking env values are masked in engine output, the engine command line and responses', async () => {
    const HF = 'hf_redaction_test_value_42';
    const sup = await startSupervisor({
      HF_TOKEN: HF,
      MY_SERVICE_PASSWORD: 'p4ssw0rd-value',
      // The simulator logs its non-default args, so this secret value shows up in engine output.
      NIM_PASSTHROUGH_ARGS: `--chat-template ${HF} --api-key engine-key-value-99`,
    });
    // The engine enforces --api-key on /v1, so it never becomes ready: that is fine for this test.
    await sup.engine();
    // Wait for the engine's own start-up lines (no fixed sleep: a loaded machine starts slowly).
    for (let i = 0; i < 300 && !/chat_template/.test(sup.proc.output()); i++) await new Promise((r) => setTimeout(r, 100));
    const ready = await (await fetch(`${sup.baseUrl}/v1/health/ready`)).text();
    sup.proc.kill('SIGTERM');
    await sup.proc.exited;
    const out = sup.proc.output();
    assert.match(out, /chat_template/, 'the engine did log its args');
    for (const secret of [HF, 'p4ssw0rd-value', 'engine-key-value-99']) {
      assert.ok(!out.includes(secret), `${secret} leaked into the logs`);
      assert.ok(!ready.includes(secret), `${secret} leaked into /v1/health/ready`);
    }
  });

  test('select-profile masks --api-key and secret env in the command it prints', async () => {
    const r = await run(process.execPath, ['dist/src/cli/main.js', 'select-profile'], {
      env: { ...process.env, PATH: pathWith(binDir), NIM_PASSTHROUGH_ARGS: '--api-key very-secret-engine-key' },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /--api-key/);
    assert.ok(!r.stdout.includes('very-secret-engine-key'));
  });
});

describe('TLS', () => {
  let dir: string;
  const pem = async (name: string): Promise<Buffer> => await readFile(path.join(dir, name));

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nim-tls-'));
    const sh = async (cmd: string): Promise<void> => {
      const r = await run('sh', ['-c', cmd], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
    };
    // A throw-away CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated key.
    await sh('openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=test-ca" 2>/dev/null');
    await sh('openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null');
    await writeFile(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    await sh('openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 -extfile san.ext 2>/dev/null');
    await sh('openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=client" 2>/dev/null');
    await sh('openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 1 2>/dev/null');
    await sh('openssl genrsa -out other.key 2048 2>/dev/null');
  });

  const httpsGet = (port: number, p: string, opts: https.RequestOptions): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: p, agent: false, ...opts }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });

  test('TLS: HTTPS with the CA works; plain HTTP does not', async () => {
    const sup = await startSupervisor({
      NIM_SSL_MODE: 'TLS',
      NIM_SSL_KEY_PATH: path.join(dir, 'server.key'),
      NIM_SSL_CERTS_PATH: path.join(dir, 'server.crt'),
    });
    await sup.engine();
    const ca = await pem('ca.crt');
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = await httpsGet(sup.port, '/v1/health/ready', { ca }).catch(() => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200);
    await assert.rejects(fetch(`http://127.0.0.1:${sup.port}/v1/health/live`));
    await assert.rejects(httpsGet(sup.port, '/v1/health/live', {}), /self-signed|unable to verify|certificate/i);
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });

  test('MTLS: a client certificate from the CA is required', async () => {
    const sup = await startSupervisor({
      NIM_SSL_MODE: 'MTLS',
      NIM_SSL_KEY_PATH: path.join(dir, 'server.key'),
      NIM_SSL_CERTS_PATH: path.join(dir, 'server.crt'),
      NIM_SSL_CA_CERTS_PATH: path.join(dir, 'ca.crt'),
    });
    await sup.engine();
    const ca = await pem('ca.crt');
    const withCert = { ca, cert: await pem('client.crt'), key: await pem('client.key') };
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = await httpsGet(sup.port, '/v1/health/live', withCert).catch(() => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200);
    await assert.rejects(httpsGet(sup.port, '/v1/health/live', { ca }));
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });

  test('a key that does not match the certificate, or a missing file, fails fast with exit 2', async () => {
    const mismatch = await startSupervisor({
      NIM_SSL_MODE: 'TLS',
      NIM_SSL_KEY_PATH: path.join(dir, 'other.key'),
      NIM_SSL_CERTS_PATH: path.join(dir, 'server.crt'),
    });
    assert.equal((await mismatch.proc.exited).code, 2);
    assert.match(mismatch.proc.stderr(), /NIM_SSL_KEY_PATH .* does not match the certificate in NIM_SSL_CERTS_PATH/);

    const missing = await startSupervisor({ NIM_SSL_MODE: 'MTLS', NIM_SSL_KEY_PATH: path.join(dir, 'server.key'), NIM_SSL_CERTS_PATH: '/nope.crt' });
    assert.equal((await missing.proc.exited).code, 2);
    assert.match(missing.proc.stderr(), /NIM_SSL_CERTS_PATH="\/nope.crt" cannot be read/);

    const bad = await startSupervisor({ NIM_SSL_MODE: 'SOMETIMES' });
    assert.equal((await bad.proc.exited).code, 2);
    assert.match(bad.proc.stderr(), /NIM_SSL_MODE="SOMETIMES" is invalid: expected DISABLED, TLS or MTLS/);
  });
});

describe('the proxy boundary (echo engine)', () => {
  let sup: Supervisor;
  let enginePort: number;

  before(async () => {
    sup = await startSupervisor({ NIM_ENGINE_COMMAND: ECHO_ENGINE });
    await sup.waitReady();
    enginePort = (await sup.engine()).port;
  });
  after(async () => {
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });

  // What clients' requests brought to the engine: the supervisor's own read of the
  // engine's /version (once it is ready, #15) may land at any moment and is left out.
  const engineSaw = async (): Promise<Array<{ method: string; url: string; headers: Record<string, string> }>> =>
    ((await json(await fetch(`http://127.0.0.1:${enginePort}/__received`))) as Array<{ method: string; url: string; headers: Record<string, string> }>).filter(
      (r) => r.url !== '/version',
    );

  test('path tricks never reach engine-internal routes', async () => {
    const before = (await engineSaw()).length;
    const targets = [
      '/v1/../metrics',
      '/v1/../health',
      '//health',
      '/v1//models',
      '/v1%2fmodels',
      '/%2e%2e/health',
      '/v1/./models',
      '/v1\\..\\health',
      `http://127.0.0.1:${enginePort}/health`,
      `http://127.0.0.1:${enginePort}/v1/chat/completions`,
      '*',
      '/health',
      '/metrics/../health',
      '/sleep',
      '/V1/MODELS',
      '/v1/models/',
    ];
    for (const t of targets) {
      const r = await rawRequest(sup.port, `GET ${t} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      assert.ok(r.status === 400 || r.status === 404 || r.status === 401, `${t} → ${r.status}`);
      if (t !== '/metrics/../health') assert.doesNotMatch(r.text, /echo-engine|"bodyBytes"/, t);
    }
    assert.equal((await engineSaw()).length, before, 'the engine received none of them');
  });

  test('hop-by-hop headers are dropped both ways; end-to-end headers pass', async () => {
    const r = await rawRequest(
      sup.port,
      [
        'POST /v1/completions HTTP/1.1',
        'Host: 127.0.0.1',
        'Content-Type: application/json',
        'Content-Length: 2',
        'Connection: close, x-client-hop',
        'X-Client-Hop: should-not-pass',
        'Keep-Alive: timeout=99',
        'TE: trailers',
        'Proxy-Authorization: Basic Zm9vOmJhcg==',
        'X-Request-Id: end-to-end-123',
        'Nim-Supervisor-Client-Address: 6.6.6.6',
        '',
        '{}',
      ].join('\r\n'),
    );
    assert.equal(r.status, 200, r.text);
    const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4));
    // The supervisor's internal header (workers → primary) is never the engine's, whoever sends it.
    for (const h of ['x-client-hop', 'keep-alive', 'te', 'proxy-authorization', 'nim-supervisor-client-address']) assert.equal(body.headers[h], undefined, h);
    assert.equal(body.headers['x-request-id'], 'end-to-end-123');
    assert.equal(body.headers['x-forwarded-for'], '127.0.0.1');
    const head = r.text.slice(0, r.text.indexOf('\r\n\r\n')).toLowerCase();
    assert.doesNotMatch(head, /x-engine-hop|keep-alive: timeout=5/);
  });

  test('a WebSocket client that resets its connection after the handshake does not take the supervisor down', async () => {
    // http-proxy re-emits the session socket's ECONNRESET on the proxy: unhandled, it was an internal error (exit 1).
    for (let i = 0; i < 3; i++) {
      const socket = connect({ host: '127.0.0.1', port: sup.port });
      socket.on('error', () => undefined);
      let got = '';
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () =>
          socket.write(
            [
              'GET /v1/realtime HTTP/1.1',
              'Host: 127.0.0.1',
              'Upgrade: websocket',
              'Connection: Upgrade',
              'Sec-WebSocket-Version: 13',
              'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
              'Nim-Supervisor-Client-Address: 6.6.6.6',
              '',
              '',
            ].join('\r\n'),
          ),
        );
        socket.on('data', (d: Buffer) => {
          got += d.toString('latin1');
          if (got.includes('\r\n\r\n')) resolve();
        });
        socket.once('close', () => (got.includes('\r\n\r\n') ? resolve() : reject(new Error(`closed before a response: ${got}`))));
      });
      assert.match(got, /^HTTP\/1\.1 101 /, got);
      socket.resetAndDestroy();
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await fetch(`${sup.baseUrl}/v1/health/live`)).status, 200, 'still serving');
    const upgrades = (await engineSaw()).filter((r) => r.url === '/v1/realtime');
    assert.ok(upgrades.length >= 3);
    for (const u of upgrades) assert.equal(u.headers['nim-supervisor-client-address'], undefined, 'the internal header never reaches the engine');
  });

  test('request smuggling attempts are refused before they reach the engine', async () => {
    const before = (await engineSaw()).length;
    const both = await rawRequest(
      sup.port,
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    assert.equal(both.status, 400);
    assert.ok(both.closed);
    const twoLengths = await rawRequest(sup.port, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\n{}');
    assert.equal(twoLengths.status, 400);
    const badChunk = await rawRequest(sup.port, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n');
    assert.equal(badChunk.status, 400);
    assert.equal((await engineSaw()).length, before);
    // Connection naming a framing header: hop-by-hop, but the body must still reach the engine as
    // the body (re-framed), never as a second request on the engine's connection.
    for (const listed of ['content-length', 'transfer-encoding', 'keep-alive, Content-Length']) {
      const smuggled = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';
      const framing = listed.includes('transfer') ? `Transfer-Encoding: chunked\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n` : `Content-Length: ${smuggled.length}\r\n\r\n${smuggled}`;
      const r = await rawRequest(sup.port, `POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: ${listed}\r\nContent-Type: application/json\r\n${framing}`);
      assert.equal(r.status, 200, r.text);
      assert.match(r.text, new RegExp(`"bodyBytes":${smuggled.length}`), listed);
    }
    const seen = (await engineSaw()).slice(before);
    assert.deepEqual(
      seen.map((x) => `${x.method} ${x.url}`),
      ['POST /v1/completions', 'POST /v1/completions', 'POST /v1/completions'],
      'the engine saw the three requests and nothing smuggled',
    );
  });
});
