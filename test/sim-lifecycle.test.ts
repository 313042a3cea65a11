// Process lifecycle of the simulator: late bind, start-up logs, health knobs,
// crashes, signals, argparse-style CLI errors and knob validation.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { binDir, freePort, isAlive, run, sleep, waitFor } from './helpers/process.js';
import { SIM_VERSIONS, postJson, simEnv, startSim, startSimVersion, type SimVersion } from './helpers/sim.js';

const vllm = path.join(binDir, 'vllm');

async function connectError(base: string): Promise<string | null> {
  try {
    await fetch(`${base}/health`);
    return null;
  } catch (e) {
    return String((e as { cause?: { code?: string } }).cause?.code ?? e);
  }
}

/** The start-up story of each release, in order (the wording changed between them). */
const STARTUP_LINES: Record<SimVersion, RegExp[]> = {
  '0.11': [
    /\(APIServer pid=\d+\) INFO \d\d-\d\d \d\d:\d\d:\d\d \[api_server\.py:\d+\] vLLM API server version 0\.11\.0\n/,
    /non-default args: \{'model_tag': 'meta\/llama-3\.1-8b-instruct', .*'api_key': \['\*\*\*'\]/,
    /Model loading took [\d.]+ GiB and [\d.]+ seconds/,
    /GPU KV cache size: [\d,]+ tokens\n.*Maximum concurrency for [\d,]+ tokens per request: [\d.]+x/,
    /Supported_tasks: \['generate'\]/,
    /Starting vLLM API server 0 on http:\/\/127\.0\.0\.1:\d+/,
  ],
  '0.31': [
    // The logo, monochrome when piped; each line carries the prefix and ends in \r (NewLineFormatter).
    /\(APIServer pid=\d+\) INFO \d\d-\d\d \d\d:\d\d:\d\d \[api_utils\.py:\d+\] \r\n/,
    /\(APIServer pid=\d+\) INFO [^\n]*\[api_utils\.py:\d+\] {3}█▄█▀ █ .* model {3}meta\/llama-3\.1-8b-instruct\r\n/,
    /non-default args: \{'model_tag': 'meta\/llama-3\.1-8b-instruct', .*'api_key': \['\*\*\*'\]/,
    /Model loading took [\d.]+ GiB memory and [\d.]+ seconds/,
    /GPU KV cache size: [\d,]+ tokens, Maximum concurrency for [\d,]+ tokens per request: [\d.]+x/,
    /Supported tasks: \['generate'\]/,
    /Starting vLLM server on http:\/\/127\.0\.0\.1:\d+/,
  ],
};

describe('start-up', () => {
  for (const version of SIM_VERSIONS) test(`vLLM ${version}: connections are refused while loading, then health is 200 and the start-up lines are printed`, async () => {
    const t0 = Date.now();
    const sim = await startSimVersion(version, ['--api-key', 'top-secret'], { VLLM_SIM_STARTUP_MS: '700' }, { wait: false });
    await sim.proc.waitForOutput(/Starting to load model/);
    assert.equal(await connectError(sim.base), 'ECONNREFUSED');
    await waitFor(async () => (await fetch(`${sim.base}/health`)).status === 200, { what: 'health 200', timeoutMs: 10_000 });
    assert.ok(Date.now() - t0 >= 650, 'the port opened only after the start-up delay');
    const out = sim.proc.output();
    const order = [
      ...STARTUP_LINES[version],
      /Available routes are:/,
      /Route: \/v1\/chat\/completions, Methods: POST/,
      /INFO: {5}Started server process \[\d+\]/,
      /INFO: {5}Waiting for application startup\./,
      /INFO: {5}Application startup complete\./,
    ];
    let at = 0;
    for (const re of order) {
      const m = re.exec(out.slice(at));
      assert.ok(m, `missing (in order): ${re}`);
      at += m.index + m[0].length;
    }
    assert.ok(!out.includes('top-secret'), 'the api key is masked in the logs');
    sim.proc.kill('SIGKILL');
  });

  test('0.31 with VLLM_DISABLE_LOG_LOGO: one plain version line', async () => {
    const sim = await startSimVersion('0.31', [], { VLLM_DISABLE_LOG_LOGO: '1' });
    assert.match(sim.proc.output(), /\[api_utils\.py:\d+\] vLLM server version 0\.31\.0, serving model meta\/llama-3\.1-8b-instruct\n/);
    sim.proc.kill('SIGKILL');
  });

  test('VLLM_SIM_NEVER_LISTEN keeps loading forever; SIGTERM still ends it', async () => {
    const sim = await startSim([], { VLLM_SIM_STARTUP_MS: '50', VLLM_SIM_NEVER_LISTEN: '1' }, { wait: false });
    await sim.proc.waitForOutput(/Model loading took/);
    await sleep(300);
    assert.equal(await connectError(sim.base), 'ECONNREFUSED');
    assert.ok(isAlive(sim.proc.pid));
    sim.proc.kill('SIGTERM');
    assert.deepEqual(await sim.proc.exited, { code: 0, signal: null });
  });

  test('VLLM_SIM_FAIL_AT_STARTUP prints a CUDA OOM traceback and exits with that code', async () => {
    const port = await freePort();
    const r = await run(vllm, ['serve', 'm', '--host', '127.0.0.1', '--port', String(port)], { env: simEnv({ VLLM_SIM_STARTUP_MS: '50', VLLM_SIM_FAIL_AT_STARTUP: '7' }) });
    assert.equal(r.code, 7);
    assert.match(r.stderr, /torch\.OutOfMemoryError: CUDA out of memory/);
    assert.match(r.stderr, /RuntimeError: Engine core initialization failed/);
    assert.doesNotMatch(r.stdout + r.stderr, /Application startup complete/);
  });

  test('a busy port fails at once with Address already in use', async () => {
    const blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
    try {
      const r = await run(vllm, ['serve', 'm', '--host', '127.0.0.1', '--port', String(port)], { env: simEnv({ VLLM_SIM_STARTUP_MS: '5000' }), timeoutMs: 4000 });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Address already in use/);
    } finally {
      blocker.close();
    }
  });
});

describe('health and crashes', () => {
  test('VLLM_SIM_HEALTH=fail: /health 503 with an empty body, other routes still answer', async () => {
    const sim = await startSim([], { VLLM_SIM_HEALTH: 'fail' });
    const h = await fetch(`${sim.base}/health`);
    assert.equal(h.status, 503);
    assert.equal(await h.text(), '');
    assert.equal((await fetch(`${sim.base}/v1/models`)).status, 200);
    sim.proc.kill('SIGKILL');
  });

  test('VLLM_SIM_HEALTH_FILE flips health at run time', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sim-health-'));
    const file = path.join(dir, 'health');
    try {
      const sim = await startSim([], { VLLM_SIM_HEALTH_FILE: file });
      const status = async () => (await fetch(`${sim.base}/health`)).status;
      assert.equal(await status(), 200, 'no file: healthy');
      writeFileSync(file, 'fail\n');
      assert.equal(await status(), 503);
      writeFileSync(file, 'ok');
      assert.equal(await status(), 200);
      writeFileSync(file, 'fail');
      assert.equal(await status(), 503);
      rmSync(file);
      assert.equal(await status(), 200);
      sim.proc.kill('SIGKILL');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const DEATH: Record<SimVersion, RegExp> = {
    '0.11': /ERROR .*Engine core proc EngineCore_DP0 died unexpectedly, shutting down client\./,
    '0.31': /WARNING .*\[core_client\.py:\d+\] \[shutdown\] MPClient: engine core exited unexpectedly; starting cleanup/,
  };
  for (const version of SIM_VERSIONS) test(`vLLM ${version}: VLLM_SIM_CRASH_AFTER_MS serves, then logs the engine death and exits with VLLM_SIM_EXIT_CODE`, async () => {
    const sim = await startSimVersion(version, [], { VLLM_SIM_CRASH_AFTER_MS: '400', VLLM_SIM_EXIT_CODE: '3' });
    assert.equal((await fetch(`${sim.base}/health`)).status, 200);
    const exit = await sim.proc.exited;
    assert.deepEqual(exit, { code: 3, signal: null });
    assert.match(sim.proc.output(), DEATH[version]);
  });
});

const SHUTDOWN: Record<SimVersion, RegExp[]> = {
  '0.11': [/Shutting down FastAPI HTTP server\./],
  '0.31': [
    /\[shutdown\] API server: shutdown triggered/,
    /\[shutdown\] API server: stopping engine client mode=abort timeout=0s/,
    /\[shutdown\] API server: engine client stopped/,
    /\[shutdown\] API server: signalling HTTP server shutdown/,
    /\[shutdown\] API server: shutting down FastAPI HTTP server/,
  ],
};

describe('signals', () => {
  for (const version of SIM_VERSIONS) test(`vLLM ${version}: SIGTERM shuts down promptly with exit 0 and cuts in-flight streams`, async () => {
    const sim = await startSimVersion(version, [], { VLLM_SIM_TOKEN_MS: '50' });
    const res = await fetch(`${sim.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 100, ignore_eos: true, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    const t0 = Date.now();
    sim.proc.kill('SIGTERM');
    assert.deepEqual(await sim.proc.exited, { code: 0, signal: null });
    assert.ok(Date.now() - t0 < 2000);
    let text = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
    } catch {
      /* connection cut */
    }
    assert.ok(!text.includes('[DONE]'), 'the stream was cut, not finished');
    let at = 0;
    const out = sim.proc.output();
    for (const re of SHUTDOWN[version]) {
      const m = re.exec(out.slice(at));
      assert.ok(m, `missing (in order): ${re}`);
      at += m.index + m[0].length;
    }
  });

  test('vLLM 0.31 --shutdown-timeout N drains in-flight requests before exiting', async () => {
    const sim = await startSimVersion('0.31', ['--shutdown-timeout', '30'], { VLLM_SIM_TOKEN_MS: '20' });
    const res = await fetch(`${sim.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 15, ignore_eos: true, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read(); // in flight
    sim.proc.kill('SIGTERM');
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    assert.ok(text.endsWith('data: [DONE]\n\n'), 'the stream ran to its end');
    assert.deepEqual(await sim.proc.exited, { code: 0, signal: null });
    assert.match(sim.proc.output(), /stopping engine client mode=drain timeout=30s/);
  });

  test('VLLM_SIM_HANG_ON_SIGTERM ignores SIGTERM; SIGKILL still ends it', async () => {
    const sim = await startSim([], { VLLM_SIM_HANG_ON_SIGTERM: '1' });
    sim.proc.kill('SIGTERM');
    await sleep(400);
    assert.ok(isAlive(sim.proc.pid));
    assert.equal((await fetch(`${sim.base}/health`)).status, 200);
    sim.proc.kill('SIGKILL');
    assert.deepEqual(await sim.proc.exited, { code: null, signal: 'SIGKILL' });
  });
});

describe('command line', () => {
  const env = simEnv();
  test('unknown flag: argparse usage + error on stderr, exit 2', async () => {
    const r = await run(vllm, ['serve', 'm', '--foo'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^usage: vllm /m);
    assert.match(r.stderr, /^vllm: error: unrecognized arguments: --foo$/m);
  });

  test('bad value: argparse message naming the flag, exit 2', async () => {
    const r = await run(vllm, ['serve', 'm', '--port', 'abc'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /error: argument --port: invalid int value: 'abc'/);
    const d = await run(vllm, ['serve', 'm', '--dtype=int3'], { env });
    assert.equal(d.code, 2);
    assert.match(d.stderr, /argument --dtype: invalid choice: 'int3'/);
    const m = await run(vllm, ['serve', 'm', '--max-model-len', 'lots'], { env });
    assert.equal(m.code, 2);
    assert.match(m.stderr, /argument --max-model-len: invalid/);
  });

  test('flags a release no longer has: argparse exit 2 (0.31), accepted by 0.11', async () => {
    for (const flag of [['--disable-log-requests'], ['--swap-space', '4']]) {
      const r = await run(vllm, ['serve', 'm', '--port', '1', ...flag], { env: simEnv({ VLLM_SIM_VERSION: '0.31' }) });
      assert.equal(r.code, 2, flag.join(' '));
      assert.match(r.stderr, /^usage: vllm \[-h\] \[-v\] \{chat,complete,serve,launch,bench,collect-env,run-batch\} \.\.\.$/m);
      assert.match(r.stderr, new RegExp(`^vllm: error: unrecognized arguments: ${flag.join(' ')}$`, 'm'));
    }
    const old = await startSimVersion('0.11', ['--disable-log-requests', '--swap-space', '8']);
    assert.match(old.proc.output(), /non-default args: .*'swap_space': 8(\.0)?[,}]/);
    old.proc.kill('SIGKILL');
    // --device was removed in v0.10.0: 0.11 rejects it; 0.31's argparse takes it as
    // an abbreviation of --device-ids, and NVML then finds no GPU called "cuda".
    const d11 = await run(vllm, ['serve', 'm', '--port', '1', '--device', 'cuda'], { env: simEnv({ VLLM_SIM_VERSION: '0.11' }) });
    assert.equal(d11.code, 2);
    assert.match(d11.stderr, /unrecognized arguments: --device cuda/);
    const d31 = await run(vllm, ['serve', 'm', '--port', '1', '--device', 'cuda'], { env: simEnv({ VLLM_SIM_VERSION: '0.31' }) });
    assert.equal(d31.code, 1);
    assert.match(d31.stdout, /'device_ids': 'cuda'/);
    assert.match(d31.stderr, /pynvml\.NVMLError_NotFound: Not Found/);
    const bad = await run(vllm, ['--version'], { env: simEnv({ VLLM_SIM_VERSION: '0.20' }) });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /VLLM_SIM_VERSION/);
  });

  test('--version prints the vLLM version', async () => {
    const r = await run(vllm, ['--version'], { env });
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), '0.31.0', 'the newest release by default');
    for (const [v, out] of [['0.11', '0.11.0'], ['0.31.0', '0.31.0']]) {
      assert.equal((await run(vllm, ['--version'], { env: simEnv({ VLLM_SIM_VERSION: v! }) })).stdout.trim(), out);
    }
  });

  test('invalid knob values fail fast naming the variable', async () => {
    const r = await run(vllm, ['serve', 'm', '--port', '1'], { env: simEnv({ VLLM_SIM_TTFT_MS: 'soon' }) });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /VLLM_SIM_TTFT_MS/);
    const h = await run(vllm, ['serve', 'm', '--port', '1'], { env: simEnv({ VLLM_SIM_HEALTH: 'meh' }) });
    assert.equal(h.code, 2);
    assert.match(h.stderr, /VLLM_SIM_HEALTH/);
  });

  test('--flag=value forms, 32k lengths and repeated names reach the server', async () => {
    const sim = await startSim(['--max-model-len=32k', '--served-model-name=a', '-tp', '2', '--dtype', 'bfloat16', '--no-enable-prefix-caching']);
    const models = (await (await fetch(`${sim.base}/v1/models`)).json()) as { data: Array<{ id: string; max_model_len: number }> };
    assert.deepEqual(models.data.map((m) => [m.id, m.max_model_len]), [['a', 32000]]);
    const r = await postJson(sim.base, '/tokenize', { prompt: 'x' });
    assert.equal(r.json.max_model_len, 32000);
    sim.proc.kill('SIGKILL');
  });
});
