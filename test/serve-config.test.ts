// End to end on the simulator: vLLM flags on serve's command line reach the
// engine (nim-serve alias), NIM's JSONL keys for supervisor and engine lines,
// the health port (NIM_HEALTH_PORT) outside the API key, and one warning for
// a misspelt NIM_* variable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, waitFor } from './helpers/process.js';
import { startSupervisor } from './helpers/supervisor.js';
import { vllmLineFields } from '../src/log/vllm-line.js';

test('vllmLineFields: one or two process prefixes; other lines are not split', () => {
  assert.deepEqual(vllmLineFields('(APIServer pid=42) INFO 11-24 12:00:01 [api_server.py:1839] vLLM API server version 0.11.0'), {
    file_name: 'api_server.py',
    line_number: 1839,
    process: 'APIServer pid=42',
    message: 'vLLM API server version 0.11.0',
  });
  assert.equal(vllmLineFields('(EngineCore_DP0 pid=7) (Worker pid=9) ERROR 11-24 12:00:01 [gpu_worker.py:12] CUDA out of memory')!.process, 'EngineCore_DP0 pid=7 Worker pid=9');
  assert.equal(vllmLineFields('WARNING 11-24 12:00:01 [x.py:1] no prefix')!.process, undefined);
  assert.equal(vllmLineFields('(APIServer pid=42) INFO:     127.0.0.1:5 - "GET /health HTTP/1.1" 200 OK'), undefined);
  assert.equal(vllmLineFields('Traceback (most recent call last):'), undefined);
});

test('serve: command-line vLLM flags reach the engine; JSONL keys; the health port answers without the API key', async (t) => {
  const healthPort = await freePort();
  const sup = await startSupervisor(
    { NIM_HEALTH_PORT: String(healthPort), NIM_API_KEY: 'sk-health-test', NIM_SEVER_PORT: '9', NIM_MAX_NUM_SEQS: '16' },
    ['nim-serve', '--max-num-seqs', '3'],
  );
  t.after(() => sup.proc.kill('SIGKILL'));
  const health = `http://127.0.0.1:${healthPort}`;
  // Liveness on the health port at once; readiness 503 until the engine is ready, then 200 -- no key needed.
  const live = await waitFor(async () => await fetch(`${health}/v1/health/live`), { timeoutMs: 15_000, what: 'the health port' });
  assert.equal(live.status, 200);
  assert.deepEqual(await live.json(), { object: 'health.response', message: 'live', status: 'live' });
  await sup.waitReady();
  const ready = await fetch(`${health}/v1/health/ready`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), await (await fetch(`${sup.baseUrl}/v1/health/ready`)).json(), 'the same body as the public port');
  // Nothing else is reachable there; the public port still needs the key.
  const models = await fetch(`${health}/v1/models`);
  assert.equal(models.status, 404);
  await models.arrayBuffer();
  assert.equal((await fetch(`${health}/v1/health/ready`, { method: 'POST' })).status, 404);
  const publicModels = await fetch(`${sup.baseUrl}/v1/models`);
  assert.equal(publicModels.status, 401);
  await publicModels.arrayBuffer();

  const logs = sup.logs();
  // NIM's JSONL keys on every line: level (a name), time, message, source.
  for (const r of logs) {
    assert.match(String(r.level), /^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$/, JSON.stringify(r));
    assert.equal(typeof r.time, 'string');
    assert.equal(typeof r.message, 'string', JSON.stringify(r));
    assert.ok(r.source === 'supervisor' || r.source === 'engine', JSON.stringify(r));
  }
  // Engine lines: vLLM's prefix became file_name / line_number / process; the message is the bare text.
  const nonDefault = logs.find((r) => r.source === 'engine' && String(r.message).startsWith('non-default args:'));
  assert.ok(nonDefault, 'the engine logged its non-default args');
  assert.equal(typeof nonDefault.file_name, 'string');
  assert.equal(typeof nonDefault.line_number, 'number');
  assert.match(String(nonDefault.process), /^APIServer pid=\d+$/);
  // The command line won over NIM_MAX_NUM_SEQS and the profile.
  assert.match(String(nonDefault.message), /'max_num_seqs': 3\b/);
  // The misspelt variable: one warning naming the nearest known one.
  const typo = logs.filter((r) => String(r.message).includes('NIM_SEVER_PORT'));
  assert.equal(typo.length, 1);
  assert.equal(typo[0]!.level, 'WARNING');
  assert.match(String(typo[0]!.message), /did you mean NIM_SERVER_PORT\?/);
  const cmd = logs.find((r) => r.message === 'engine command');
  assert.match(String(cmd?.command), /--max-num-seqs 3/);
});
