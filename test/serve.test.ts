// End-to-end tests of `nim-supervisor serve`: the real supervisor process in
// front of the simulator (bin/vllm), real HTTP on 127.0.0.1, real signals.
// The ready supervisor's main flow, run per vLLM release, is serve-versions.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isAlive, sleep, waitFor } from './helpers/process.js';
import { DEFAULT_MODEL, readSse, startSupervisor, waitGone } from './helpers/supervisor.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (r: Response): Promise<any> => await r.json();

describe('client aborts', () => {
  test('a client that goes away mid-stream aborts the generation in the engine', async () => {
    const sup = await startSupervisor({ VLLM_SIM_TOKEN_MS: '20' });
    await sup.waitReady();
    const { port } = await sup.engine();
    const ac = new AbortController();
    const res = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'long' }], max_tokens: 2000, ignore_eos: true, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    const abortCount = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const m = /vllm:request_success_total\{[^}]*finished_reason="abort"[^}]*\} (\d+(\.\d+)?)/.exec(text);
      return m ? Number(m[1]) : 0;
    };
    let n = 0;
    for (let i = 0; i < 100 && n === 0; i++) {
      n = await abortCount();
      if (n === 0) await sleep(50);
    }
    assert.ok(n >= 1, 'the simulator counted the aborted request');
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });
});

describe('start-up gating', () => {
  test('ready is 503 and inference 503 until the engine can serve, then 200', async () => {
    const sup = await startSupervisor({ VLLM_SIM_STARTUP_MS: '1500' });
    // Liveness answers while the model loads.
    let live: Response | undefined;
    for (let i = 0; i < 100 && !live; i++) {
      live = await fetch(`${sup.baseUrl}/v1/health/live`).catch(() => undefined);
      if (!live) await sleep(20);
    }
    assert.equal(live!.status, 200);
    const ready = await fetch(`${sup.baseUrl}/v1/health/ready`);
    assert.equal(ready.status, 503);
    const body = await json(ready);
    assert.equal(body.object, 'health.response');
    assert.ok(['starting', 'loading'].includes(body.status));

    const inference = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(inference.status, 503);
    assert.ok(inference.headers.get('retry-after'));
    assert.equal((await json(inference)).error.code, 503);
    const models = await fetch(`${sup.baseUrl}/v1/models`);
    assert.equal(models.status, 503);
    await models.arrayBuffer();

    await sup.waitReady();
    const after = await fetch(`${sup.baseUrl}/v1/models`);
    assert.equal(after.status, 200);
    await after.arrayBuffer();
    sup.proc.kill('SIGTERM');
    assert.equal((await sup.proc.exited).code, 0);
  });
});

describe('engine failures', () => {
  test('an engine that crashes turns the supervisor unready at once and it exits with the engine code', async () => {
    const sup = await startSupervisor({ VLLM_SIM_CRASH_AFTER_MS: '700', VLLM_SIM_EXIT_CODE: '3' });
    await sup.waitReady();
    const { pid } = await sup.engine();
    await waitGone(pid, 5000);
    // The supervisor notices the exit from the process event, not a poll.
    const exit = await sup.proc.exited;
    assert.equal(exit.code, 3, sup.proc.output().slice(-2000));
    const failed = sup.logs().find((r) => r.to === 'failed');
    assert.ok(failed, 'the lifecycle went to failed');
    assert.match(String(sup.proc.stdout() + sup.proc.stderr()), /engine exited with code 3 while serving/);
  });

  test('with NIM_ENGINE_MAX_RESTARTS the engine is restarted after a crash, then the supervisor gives up', async () => {
    const sup = await startSupervisor({
      VLLM_SIM_CRASH_AFTER_MS: '800',
      VLLM_SIM_EXIT_CODE: '4',
      NIM_ENGINE_MAX_RESTARTS: '1',
      NIM_ENGINE_RESTART_BACKOFF: '0.1',
    });
    await sup.waitReady();
    const first = await sup.engine();
    // Ready again on a new engine process after the first crash.
    const second = await waitFor(
      () => {
        const spawned = sup.logs().filter((r) => r.phase === 'spawned');
        return spawned.length >= 2 ? Number(spawned[1]!.pid) : undefined;
      },
      { timeoutMs: 10_000, what: 'a restarted engine' },
    );
    assert.notEqual(second, first.pid);
    await sup.waitReady();
    const metrics = await (await fetch(`${sup.baseUrl}/v1/metrics`)).text();
    assert.match(metrics, /nim_supervisor_engine_restarts_total 1/);
    const exit = await sup.proc.exited;
    assert.equal(exit.code, 4);
    await waitGone(first.pid);
    await waitGone(second);
  });

  test('a stream in flight when the engine dies ends with an error event, not a hang', async () => {
    const sup = await startSupervisor({ VLLM_SIM_CRASH_AFTER_MS: '900', VLLM_SIM_TOKEN_MS: '20' });
    await sup.waitReady();
    const res = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'long' }], max_tokens: 5000, ignore_eos: true, stream: true }),
    });
    assert.equal(res.status, 200);
    const events = await readSse(res);
    assert.equal(events.at(-1), '[DONE]');
    const err = JSON.parse(events.at(-2)!);
    assert.equal(err.error.code, 502);
    assert.notEqual((await sup.proc.exited).code, 0);
  });

  test('an engine that never becomes ready hits the start-up timeout', async () => {
    const sup = await startSupervisor({ VLLM_SIM_NEVER_LISTEN: '1', NIM_STARTUP_TIMEOUT: '1' });
    const { pid } = await sup.engine();
    const exit = await sup.proc.exited;
    assert.equal(exit.code, 1);
    assert.match(sup.proc.stdout(), /did not become ready within 1 s/);
    await waitGone(pid);
  });
});

describe('shutdown', () => {
  test('SIGTERM lets streams in flight finish within the grace period, refuses new work, then exits 0', async () => {
    const sup = await startSupervisor({ VLLM_SIM_TOKEN_MS: '25', NIM_SHUTDOWN_GRACE_PERIOD: '20' });
    await sup.waitReady();
    const { pid } = await sup.engine();
    const streams = [1, 2, 3].map(() =>
      fetch(`${sup.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 40, ignore_eos: true, stream: true }),
      }).then(readSse),
    );
    await sleep(200);
    sup.proc.kill('SIGTERM');
    await sleep(100);
    const ready = await fetch(`${sup.baseUrl}/v1/health/ready`);
    assert.equal(ready.status, 503);
    assert.equal((await json(ready)).status, 'stopping');
    const refused = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'late' }] }),
    });
    assert.equal(refused.status, 503);
    assert.match((await json(refused)).error.message, /shutting down/);
    for (const events of await Promise.all(streams)) {
      assert.equal(events.at(-1), '[DONE]');
      const last = JSON.parse(events.at(-2)!);
      assert.equal(last.choices[0].finish_reason, 'length');
    }
    const exit = await sup.proc.exited;
    assert.equal(exit.code, 0, sup.proc.output().slice(-2000));
    await waitGone(pid);
  });

  test('an engine that ignores SIGTERM is killed with SIGKILL', async () => {
    const sup = await startSupervisor({ VLLM_SIM_HANG_ON_SIGTERM: '1', NIM_ENGINE_STOP_TIMEOUT: '0.5' });
    await sup.waitReady();
    const { pid } = await sup.engine();
    sup.proc.kill('SIGTERM');
    const exit = await sup.proc.exited;
    assert.equal(exit.code, 1);
    assert.match(sup.proc.stdout(), /SIGKILL/);
    await waitGone(pid, 2000);
  });

  test('a supervisor killed with SIGKILL takes the engine with it', async () => {
    const sup = await startSupervisor();
    await sup.waitReady();
    const { pid } = await sup.engine();
    assert.ok(isAlive(pid));
    process.kill(sup.proc.pid, 'SIGKILL');
    await sup.proc.exited;
    const t0 = Date.now();
    await waitGone(pid, 1000);
    assert.ok(Date.now() - t0 < 1000);
  });
});
