// Multi-node groups end to end: three (or two) real `nim-supervisor serve`
// processes as one LeaderWorkerSet group on 127.0.0.1 (LWS_* set by hand), the
// `ray` shim (bin/ray) and the vLLM simulator (bin/vllm), with a fake 8× H100
// inventory on the leader. Every process a test starts carries a unique
// NIM_TEST_GROUP in its environment, inherited by everything below it (ray,
// vLLM, reapers), so "nothing left behind" is checked from /proc.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fixturesDir, freePort, isAlive, waitFor } from './helpers/process.js';
import { startSupervisor, type Supervisor } from './helpers/supervisor.js';

const MANIFEST = path.join(fixturesDir, 'manifests', 'multinode.yaml');
const MODEL = 'test/big-vlm';

/** Live processes whose environment holds NIM_TEST_GROUP=<tag>. */
function tagged(tag: string): number[] {
  const needle = `NIM_TEST_GROUP=${tag}\0`;
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').includes(needle) && isAlive(Number(d))) out.push(Number(d));
    } catch {
      /* gone, or not ours */
    }
  }
  return out;
}

async function nothingLeft(tag: string): Promise<void> {
  await waitFor(() => tagged(tag).length === 0, { timeoutMs: 10_000, what: `no process of group ${tag} left (${tagged(tag).join(', ')})` });
}

interface Group {
  tag: string;
  rayPort: number;
  env: Record<string, string>;
  leader(extra?: Record<string, string>): Promise<Supervisor>;
  worker(index: number, extra?: Record<string, string>): Promise<Supervisor>;
}

async function group(size: number, extra: Record<string, string> = {}): Promise<Group> {
  const tag = randomBytes(6).toString('hex');
  const rayPort = await freePort();
  const env = {
    NIM_TEST_GROUP: tag,
    NIM_MANIFEST_PATH: MANIFEST,
    LWS_GROUP_SIZE: String(size),
    LWS_LEADER_ADDRESS: '127.0.0.1',
    NIM_RAY_PORT: String(rayPort),
    NIM_HEALTH_CHECK_INTERVAL: '0.2',
    NIM_ENGINE_STOP_TIMEOUT: '5',
    ...extra,
  };
  return {
    tag,
    rayPort,
    env,
    leader: async (more = {}) => await startSupervisor({ ...env, LWS_WORKER_INDEX: '0', FAKE_NVIDIA_SMI: 'h100-sxm-x8', ...more }),
    worker: async (index, more = {}) => await startSupervisor({ ...env, LWS_WORKER_INDEX: String(index), ...more }),
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function ready(s: Supervisor): Promise<{ status: number; body: any }> {
  const r = await fetch(`${s.baseUrl}/v1/health/ready`);
  return { status: r.status, body: await r.json() };
}

async function waitWorkerReady(s: Supervisor, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    async () => {
      if (s.proc.child.exitCode !== null) throw new Error(`worker exited early:\n${s.proc.output().slice(-3000)}`);
      return (await ready(s)).status === 200;
    },
    { timeoutMs, what: 'worker readiness' },
  );
}

function logPid(s: Supervisor, msg: RegExp): number | undefined {
  const rec = s.logs().find((r) => typeof r.msg === 'string' && msg.test(r.msg));
  return rec ? Number(rec.pid) : undefined;
}

describe('a multi-node group: 1 leader + 2 workers', () => {
  test('forms, reports progress, serves a chat completion through the leader, and shuts down leaving nothing', async () => {
    const g = await group(3);
    const leader = await g.leader();
    const w1 = await g.worker(1);
    // With one worker of two joined, the leader is not ready and says why.
    await waitFor(async () => /waiting for Ray workers: 1 of 2 joined/.test((await ready(leader)).body.message), {
      timeoutMs: 15_000,
      what: 'leader progress "1 of 2 joined"',
    });
    const waiting = await ready(leader);
    assert.equal(waiting.status, 503);
    assert.equal(waiting.body.status, 'starting');
    await waitWorkerReady(w1);
    const w1Ready = await ready(w1);
    assert.match(w1Ready.body.message, new RegExp(`joined the Ray head at 127\\.0\\.0\\.1:${g.rayPort}`));
    assert.equal(logPid(leader, /^engine spawned /), undefined, 'vLLM does not start before the group is complete');

    const w2 = await g.worker(2);
    await leader.waitReady(20_000);
    await waitWorkerReady(w2);

    // The group profile was chosen automatically, and vLLM runs on the Ray backend.
    const meta = (await (await fetch(`${leader.baseUrl}/v1/metadata`)).json()) as { selectedModelProfile: { name: string } };
    assert.equal(meta.selectedModelProfile.name, 'vllm-bf16-tp8-pp3-n3-h100-throughput');
    const cmd = leader.logs().find((r) => r.msg === 'engine command');
    assert.match(String(cmd?.command), /--tensor-parallel-size 8 --pipeline-parallel-size 3 --distributed-executor-backend ray/);
    assert.ok(leader.logs().some((r) => r.msg === 'Ray cluster formed: 3 nodes; starting the engine'));

    const res = await fetch(`${leader.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hello across nodes' }], max_tokens: 8 }),
    });
    assert.equal(res.status, 200);
    const chat = (await res.json()) as { object: string; choices: Array<{ message: { content: string } }> };
    assert.equal(chat.object, 'chat.completion');
    assert.ok(chat.choices[0]!.message.content.length > 0);

    // A worker serves only health: the API is the leader's.
    const live = await fetch(`${w1.baseUrl}/v1/health/live`);
    assert.equal(live.status, 200);
    const onWorker = await fetch(`${w1.baseUrl}/v1/chat/completions`, { method: 'POST', body: '{}' });
    assert.equal(onWorker.status, 503);
    assert.match(((await onWorker.json()) as { error: { message: string } }).error.message, /this pod is Ray worker 1 of 3/);
    const notFound = await fetch(`${w1.baseUrl}/v1/metadata`);
    assert.equal(notFound.status, 404);
    assert.equal(((await notFound.json()) as { error: { code: number } }).error.code, 404);

    // SIGTERM to the whole group, as Kubernetes does: the leader stops vLLM, then the Ray head, and exits 0.
    const enginePid = logPid(leader, /^engine spawned /)!;
    const headPid = logPid(leader, /^Ray head spawned/)!;
    for (const s of [leader, w1, w2]) s.proc.kill('SIGTERM');
    const exits = await Promise.all([leader.proc.exited, w1.proc.exited, w2.proc.exited]);
    assert.equal(exits[0].code, 0, leader.proc.output().slice(-3000));
    for (const e of exits.slice(1)) assert.ok(e.code === 0 || e.code === 1, `worker exit ${JSON.stringify(e)}`);
    const order = leader.logs().map((r) => String(r.msg));
    assert.ok(order.findIndex((m) => /^engine (exited|was killed)/.test(m)) < order.findIndex((m) => /^Ray head (exited|was killed)/.test(m)), 'vLLM stops before the Ray head');
    assert.ok(!isAlive(enginePid) && !isAlive(headPid));
    await nothingLeft(g.tag);
  });
});

describe('failures of a multi-node group', () => {
  test('a worker that never joins: the leader times out with a clear message, exits non-zero, and nothing remains', async () => {
    const g = await group(2, { NIM_CLUSTER_START_TIMEOUT: '2' });
    const leader = await g.leader();
    const w1 = await g.worker(1, { RAY_SHIM_NEVER_JOIN: '1' });
    const [le, we] = await Promise.all([leader.proc.exited, w1.proc.exited]);
    assert.equal(le.code, 1, leader.proc.output().slice(-3000));
    assert.match(leader.proc.output(), /Ray workers did not join within 2 s \(NIM_CLUSTER_START_TIMEOUT\): 0 of 1 joined the head at 127\.0\.0\.1:\d+/);
    assert.equal(logPid(leader, /^engine spawned /), undefined, 'vLLM never started');
    assert.notEqual(we.code, 0);
    assert.match(w1.proc.output(), /did not join the Ray head at 127\.0\.0\.1:\d+ within 2 s \(NIM_CLUSTER_START_TIMEOUT\)/);
    await nothingLeft(g.tag);
  });

  test('a worker supervisor SIGKILLed: the leader turns unready and exits non-zero; nothing remains', async () => {
    const g = await group(2);
    const leader = await g.leader();
    const w1 = await g.worker(1);
    await leader.waitReady(20_000);
    await waitWorkerReady(w1);
    w1.proc.kill('SIGKILL');
    // Its ray process dies with it (pdeathsig / reaper), the head loses the node, the leader fails.
    await waitFor(async () => {
      if (leader.proc.child.exitCode !== null) return true;
      try {
        return (await ready(leader)).status === 503;
      } catch {
        return true;
      }
    }, { timeoutMs: 10_000, what: 'leader unready' });
    const le = await leader.proc.exited;
    assert.equal(le.code, 1, leader.proc.output().slice(-3000));
    assert.match(leader.proc.output(), /the Ray cluster lost a node: 1 of 2 nodes active \(LWS_GROUP_SIZE=2\)/);
    await nothingLeft(g.tag);
  });

  test("a worker's ray process SIGKILLed: the worker exits non-zero, then the leader; nothing remains", async () => {
    const g = await group(2);
    const leader = await g.leader();
    const w1 = await g.worker(1);
    await leader.waitReady(20_000);
    await waitWorkerReady(w1);
    const rayPid = logPid(w1, /^ray process spawned$/);
    assert.ok(rayPid && isAlive(rayPid));
    process.kill(rayPid, 'SIGKILL');
    const we = await w1.proc.exited;
    assert.equal(we.code, 137, w1.proc.output().slice(-2000));
    assert.match(w1.proc.output(), /the ray process was killed by SIGKILL after joining the head/);
    const le = await leader.proc.exited;
    assert.equal(le.code, 1);
    await nothingLeft(g.tag);
  });

  test('the leader going away takes its workers down (their ray loses the head)', async () => {
    const g = await group(2);
    const leader = await g.leader();
    const w1 = await g.worker(1);
    await leader.waitReady(20_000);
    await waitWorkerReady(w1);
    leader.proc.kill('SIGKILL');
    const we = await w1.proc.exited;
    assert.notEqual(we.code, 0);
    assert.match(w1.proc.output(), /lost its connection to the GCS/);
    await nothingLeft(g.tag);
  });
});
