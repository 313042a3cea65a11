// NIM_PROXY_WORKERS: the CPU-quota default (pure, with cgroup fixtures), the
// worker policy, and real processes: two workers in front of the simulator
// serving the API with the API key, one aggregated /v1/metrics, readiness, a
// drain on SIGTERM with a stream in flight, and no process left behind when
// the primary is SIGKILLed.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { cpuBudget, defaultProxyWorkers, parseCgroupV1Quota, parseCgroupV2CpuMax, type CpuFiles } from '../src/hardware/cpu-quota.js';
import { findExecutable } from '../src/process/executable.js';
import { admitProxied } from '../src/server/admission.js';
import { decideRespawn, proxyWorkerCount, shareOf } from '../src/workers/policy.js';
import { lookupProxied, routePattern, type ProxiedRouteTable } from '../src/workers/worker-routes.js';
import { isAlive, run, waitFor } from './helpers/process.js';
import { DEFAULT_MODEL, readSse, startSupervisor, waitGone, type Supervisor } from './helpers/supervisor.js';

function files(map: Record<string, string>, available: number): CpuFiles {
  return { read: (f) => map[f], availableParallelism: () => available };
}

describe('CPU quota and the default number of proxy workers', () => {
  test('cgroup v2 cpu.max', () => {
    assert.equal(parseCgroupV2CpuMax('max 100000\n'), undefined);
    assert.equal(parseCgroupV2CpuMax('200000 100000\n'), 2);
    assert.equal(parseCgroupV2CpuMax('150000 100000'), 1.5);
    assert.equal(parseCgroupV2CpuMax('800000'), 8); // period omitted: the kernel's 100 ms
    assert.equal(parseCgroupV2CpuMax('garbage'), undefined);
    assert.equal(parseCgroupV2CpuMax('0 100000'), undefined);
  });
  test('cgroup v1 cfs quota', () => {
    assert.equal(parseCgroupV1Quota('-1\n', '100000\n'), undefined);
    assert.equal(parseCgroupV1Quota('400000\n', '100000\n'), 4);
    assert.equal(parseCgroupV1Quota('x', '100000'), undefined);
  });
  test('the budget: v2, else v1, else the CPUs available; never more than available', () => {
    assert.deepEqual(cpuBudget(files({ '/sys/fs/cgroup/cpu.max': '1600000 100000' }, 64)), { cpus: 16, source: 'cgroup v2 cpu.max' });
    assert.deepEqual(cpuBudget(files({ '/sys/fs/cgroup/cpu.max': 'max 100000' }, 12)), { cpus: 12, source: 'available parallelism' });
    assert.deepEqual(
      cpuBudget(files({ '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '800000', '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000' }, 32)),
      { cpus: 8, source: 'cgroup v1 cfs quota' },
    );
    assert.deepEqual(cpuBudget(files({ '/sys/fs/cgroup/cpu.max': '1600000 100000' }, 2)), { cpus: 2, source: 'cgroup v2 cpu.max' });
    assert.deepEqual(cpuBudget(files({}, 6)), { cpus: 6, source: 'available parallelism' });
  });
  test('default: a quarter of the CPUs, from 1 to 4', () => {
    for (const [cpus, n] of [[0.5, 1], [1, 1], [2, 1], [7.9, 1], [8, 2], [12, 3], [16, 4], [128, 4]] as const) {
      assert.equal(defaultProxyWorkers(cpus), n, `${cpus} CPUs`);
    }
    assert.deepEqual(proxyWorkerCount(3, () => ({ cpus: 64, source: 'cgroup v2 cpu.max' })), { count: 3, why: 'NIM_PROXY_WORKERS' });
    assert.equal(proxyWorkerCount(undefined, () => ({ cpus: 8, source: 'cgroup v2 cpu.max' })).count, 2);
  });
  test('limits are shared out; dead workers are replaced until they keep dying', () => {
    assert.equal(shareOf(10_000, 3), 3334);
    assert.equal(shareOf(0, 4), 0);
    assert.equal(shareOf(1, 4), 1);
    assert.deepEqual(decideRespawn([], 1000), { respawn: true, recent: 1 });
    const deaths = [1000, 2000, 3000, 4000, 5000];
    const d = decideRespawn(deaths, 6000);
    assert.equal(d.respawn, false);
    assert.equal(decideRespawn(deaths, 70_000).respawn, true); // the old deaths are out of the window
  });

  test("a worker's 429 names the configured limit and its share, not the share as if it were the setting", () => {
    const base = { state: 'ready' as const, reason: '', hasTarget: true, inflight: 2, maxInflight: 2, declaredLength: undefined, maxBodyBytes: 1 };
    assert.match(admitProxied(base)!.message, /\(NIM_MAX_INFLIGHT_REQUESTS=2\)/);
    const worker = admitProxied({ ...base, maxInflightLabel: 'NIM_MAX_INFLIGHT_REQUESTS=3, 2 per proxy worker' })!;
    assert.equal(worker.status, 429);
    assert.match(worker.message, /\(NIM_MAX_INFLIGHT_REQUESTS=3, 2 per proxy worker\)/);
  });
});

describe('the worker\'s route split', () => {
  test('parameterised routes match one segment, as express does', () => {
    const re = routePattern('/v1/responses/:id/cancel');
    assert.ok(re.test('/v1/responses/resp_1/cancel'));
    assert.ok(!re.test('/v1/responses//cancel'));
    assert.ok(!re.test('/v1/responses/a/b/cancel'));
    assert.ok(!re.test('/v1/responses/a/cancel/'));
    const h = (): void => undefined;
    const table: ProxiedRouteTable = { exact: new Map([['POST /v1/completions', h]]), patterns: [{ method: 'GET', re: routePattern('/v1/responses/:id'), handle: h }] };
    assert.equal(lookupProxied(table, 'POST', '/v1/completions'), h);
    assert.equal(lookupProxied(table, 'GET', '/v1/completions'), undefined);
    assert.equal(lookupProxied(table, 'GET', '/v1/responses/r1'), h);
    assert.equal(lookupProxied(table, 'POST', '/v1/responses/r1'), undefined);
    assert.equal(lookupProxied(table, 'GET', '/v1/metadata'), undefined);
  });
});

const KEY = 'sk-workers-test-key';
const auth = { authorization: `Bearer ${KEY}` };

/** One request on a connection of its own (round-robin deals connections, not requests). */
function getOnNewConnection(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

function chat(sup: Supervisor, maxTokens: number): Promise<Response> {
  return fetch(`${sup.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ model: DEFAULT_MODEL, messages: [{ role: 'user', content: 'Hello' }], stream: true, max_tokens: maxTokens }),
  });
}

function workerPids(sup: Supervisor): number[] {
  const rec = sup.logs().find((r) => Array.isArray(r.pids));
  return (rec?.pids as number[] | undefined) ?? [];
}

describe('NIM_PROXY_WORKERS=2 in front of the simulator', () => {
  test('serves, gates, authenticates, aggregates metrics and drains on SIGTERM', async () => {
    const sup = await startSupervisor({ NIM_PROXY_WORKERS: '2', NIM_API_KEY: KEY, VLLM_SIM_TOKEN_MS: '10' });
    await sup.waitReady(30_000);
    const pids = workerPids(sup);
    assert.equal(pids.length, 2, 'two workers listed in the serving line');
    for (const pid of pids) assert.ok(isAlive(pid));
    const engine = await sup.engine();

    // Liveness and readiness (answered by the primary through whichever worker took the connection).
    assert.equal((await getOnNewConnection(`${sup.baseUrl}/v1/health/live`, {})).status, 200);
    const ready = await getOnNewConnection(`${sup.baseUrl}/v1/health/ready`, {});
    assert.equal(ready.status, 200);
    assert.equal(JSON.parse(ready.body).status, 'ready');

    // The API key: on a proxied route (served by the worker) and on a management route (by the primary).
    assert.equal((await getOnNewConnection(`${sup.baseUrl}/v1/models`, {})).status, 401);
    assert.equal((await getOnNewConnection(`${sup.baseUrl}/v1/metadata`, {})).status, 401);
    assert.equal((await getOnNewConnection(`${sup.baseUrl}/v1/metadata`, auth)).status, 200);
    assert.equal((await getOnNewConnection(`${sup.baseUrl}/v1/nope`, auth)).status, 404);

    // Requests on separate connections: each accepted by whichever worker is free (SCHED_NONE).
    const N = 8;
    for (let i = 0; i < N; i++) {
      const r = await getOnNewConnection(`${sup.baseUrl}/v1/models`, auth);
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).data[0].id, DEFAULT_MODEL);
    }

    // A streamed chat completion.
    const events = await readSse(await chat(sup, 4));
    assert.equal(events.at(-1), '[DONE]');
    assert.ok(events.length >= 3);

    // One /v1/metrics: both workers' counts summed with the primary's, the families as with one process.
    const scrape = await getOnNewConnection(`${sup.baseUrl}/v1/metrics`, auth);
    assert.equal(scrape.status, 200);
    const count = (route: string, status: string): number => {
      const m = new RegExp(`^nim_supervisor_http_requests_total\\{route="${route.replace(/\//g, '\\/')}",method="GET",status="${status}"\\} (\\d+)$`, 'm').exec(scrape.body);
      return m ? Number(m[1]) : 0;
    };
    assert.equal(count('/v1/models', '200'), N);
    assert.equal(count('/v1/metadata', '200'), 1);
    assert.match(scrape.body, /^nim_supervisor_http_requests_total\{route="\/v1\/chat\/completions",method="POST",status="200"\} 1$/m);
    assert.match(scrape.body, /^nim_supervisor_engine_state\{state="ready"\} 1$/m);
    assert.match(scrape.body, /^nim_supervisor_profile_info\{.*\} 1$/m);
    assert.match(scrape.body, /^# TYPE nim_supervisor_process_start_time_seconds gauge$/m);
    assert.match(scrape.body, /^vllm:num_requests_running/m); // the engine's, as before
    for (const family of ['http_requests_total', 'http_request_duration_seconds', 'stream_time_to_first_byte_seconds', 'http_requests_in_flight']) {
      assert.equal(scrape.body.match(new RegExp(`^# TYPE nim_supervisor_${family} `, 'gm'))?.length, 1, family);
    }
    if (findExecutable('promtool', process.env.PATH)) {
      const dir = await mkdtemp(path.join(tmpdir(), 'nim-workers-promtool-'));
      await writeFile(path.join(dir, 'scrape.txt'), scrape.body);
      const r = await run('sh', ['-c', `promtool check metrics < "${path.join(dir, 'scrape.txt')}"`]);
      assert.doesNotMatch(r.stdout + r.stderr, /error while linting|parsing error/i);
    }

    // Drain: SIGTERM with a stream in flight. The stream completes, a new request gets 503, exit 0, nothing left.
    const streaming = await chat(sup, 150); // ~1.5 s at 10 ms per token
    assert.equal(streaming.status, 200);
    const reader = streaming.body!.getReader();
    const first = await reader.read();
    assert.ok(!first.done);
    sup.proc.kill('SIGTERM');
    await sup.proc.waitForOutput(/draining requests/);
    await waitFor(async () => (await getOnNewConnection(`${sup.baseUrl}/v1/models`, auth)).status === 503, { what: '503 while draining' });
    const refused = await getOnNewConnection(`${sup.baseUrl}/v1/models`, auth);
    assert.equal(refused.status, 503);
    assert.match(JSON.parse(refused.body).error.message, /shutting down/);
    let rest = new TextDecoder().decode(first.value);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    assert.match(rest, /data: \[DONE\]\n\n$/, 'the stream in flight completed');
    const exit = await sup.proc.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, sup.proc.output().slice(-2000));
    for (const pid of [...pids, engine.pid]) await waitGone(pid);
    // Both workers answered requests (each logs its count as it stops).
    const stopped = sup.logs().filter((r) => typeof r.worker === 'number' && typeof r.requests === 'number');
    assert.equal(stopped.length, 2, 'both workers logged their stop');
    for (const r of stopped) assert.ok((r.requests as number) > 0, `worker ${String(r.worker)} answered requests`);
  });

  test('a public port in use fails fast with exit 2, before any engine, no worker left', async () => {
    const blocker = http.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const sup = await startSupervisor({ NIM_PROXY_WORKERS: '2', NIM_SERVER_PORT: String(port) });
      const exit = await sup.proc.exited;
      assert.equal(exit.code, 2, sup.proc.output().slice(-2000));
      assert.match(sup.proc.stderr(), /port \d+ on 127\.0\.0\.1 is already in use/);
      assert.ok(!sup.logs().some((r) => r.phase === 'spawned'), 'no engine was spawned');
    } finally {
      blocker.close();
    }
  });

  test('a SIGKILLed primary leaves no worker and no engine behind; a killed worker is replaced', async () => {
    // A SIGKILLed primary cannot remove its socket directory: give it a TMPDIR of this test's own.
    const tmp = await mkdtemp(path.join(tmpdir(), 'nim-workers-kill-'));
    after(() => rm(tmp, { recursive: true, force: true }));
    const sup = await startSupervisor({ NIM_PROXY_WORKERS: '2', TMPDIR: tmp });
    await sup.waitReady(30_000);
    const engine = await sup.engine();
    const pids = workerPids(sup);
    assert.equal(pids.length, 2);
    // A worker that dies is replaced, and the port keeps answering.
    process.kill(pids[0]!, 'SIGKILL');
    await sup.proc.waitForOutput(/exited unexpectedly .*starting a new one/);
    await waitFor(async () => (await getOnNewConnection(`${sup.baseUrl}/v1/health/ready`, {})).status === 200, { what: 'ready again' });
    sup.proc.kill('SIGKILL');
    await sup.proc.exited;
    await waitGone(pids[1]!);
    await waitGone(engine.pid, 10_000);
  });
});

test("the primary's socket directory: TMPDIR, else the cache volume; none writable is one clear error (exit 2)", async () => {
  const { socketDirectory } = await import('../src/workers/primary.js');
  const { ConfigError } = await import('../src/errors.js');
  const { mkdtempSync, rmSync, statSync } = await import('node:fs');
  const os = await import('node:os');
  const base = mkdtempSync(path.join(os.tmpdir(), 'sockdir-test-'));
  try {
    const dir = socketDirectory(['/nonexistent-tmp-dir', base]);
    assert.ok(dir.startsWith(path.join(base, 'nim-supervisor-')), dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.throws(
      () => socketDirectory(['/nonexistent-a', '/nonexistent-b']),
      (err: unknown) => err instanceof ConfigError && err.exitCode === 2 && /nonexistent-a \(ENOENT\), \/nonexistent-b \(ENOENT\)/.test(err.message),
    );
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
