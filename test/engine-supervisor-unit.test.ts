// The engine supervisor's state machine under a fake clock, a fake spawn and a
// fake probe: backoff doubling, a signal during backoff, readiness hysteresis,
// the wedged-engine watchdog and the restart budget. Fast and table-driven;
// the end-to-end versions (real processes, real signals) are in
// engine-health.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { decideRestart, HEALTHY, judgeProbe, type FailureStreak, type HealthVerdict } from '../src/engine/health-policy.js';
import { Lifecycle, type EngineState } from '../src/engine/lifecycle.js';
import type { ProbeResult } from '../src/engine/probe.js';
import { EngineSupervisor, type EngineHandle, type SupervisionOutcome } from '../src/engine/supervisor.js';
import type { ProcessExit } from '../src/process/exit.js';
import { FakeClock, flush } from './helpers/fake-clock.js';

class FakeEngine implements EngineHandle {
  readonly pid: number;
  readonly exited: Promise<ProcessExit>;
  readonly drained = Promise.resolve();
  #resolve!: (e: ProcessExit) => void;
  exit: ProcessExit | undefined;
  destroyed = false;
  constructor(pid: number) {
    this.pid = pid;
    this.exited = new Promise((r) => (this.#resolve = r));
  }
  get running(): boolean {
    return this.exit === undefined;
  }
  end(exit: ProcessExit): void {
    if (this.exit) return;
    this.exit = exit;
    this.#resolve(exit);
  }
  async close(): Promise<{ exit: ProcessExit; killed: boolean }> {
    this.end({ code: null, signal: 'SIGTERM' });
    return { exit: this.exit!, killed: false };
  }
  destroy(): void {
    this.destroyed = true;
    this.end({ code: null, signal: 'SIGKILL' });
  }
}

/** A probe's script: each call takes `ms` of fake time and gives `ok`. */
type Step = { ok: boolean; ms?: number; reason?: string };

function harness(opts: { probes?: (n: number, engines: number) => Step; maxRestarts?: number; backoff?: number; threshold?: number; unhealthyTimeout?: number; interval?: number; budgetReset?: number } = {}) {
  const clock = new FakeClock();
  const lifecycle = new Lifecycle();
  const states: EngineState[] = [];
  lifecycle.on('change', (c) => states.push(c.to));
  const engines: FakeEngine[] = [];
  const spawnedAt: number[] = [];
  let probes = 0;
  const sup = new EngineSupervisor({
    command: { command: '/bin/true', args: [], env: {} },
    host: '127.0.0.1',
    port: 1,
    servedModelNames: ['m'],
    baseEnv: {},
    lifecycle,
    logger: pino({ level: 'silent' }),
    startupTimeoutMs: 60_000,
    stopTimeoutMs: 1000,
    healthIntervalMs: opts.interval ?? 1000,
    startupPollMs: 100,
    probeTimeoutMs: 2000,
    failureThreshold: opts.threshold ?? 3,
    unhealthyTimeoutMs: opts.unhealthyTimeout ?? 0,
    maxRestarts: opts.maxRestarts ?? 0,
    restartBackoffMs: opts.backoff ?? 1000,
    restartBudgetResetMs: opts.budgetReset ?? 600_000,
    clock,
    spawn: () => {
      const e = new FakeEngine(1000 + engines.length);
      engines.push(e);
      spawnedAt.push(clock.now());
      return e;
    },
    probe: async (): Promise<ProbeResult> => {
      const step = (opts.probes ?? ((): Step => ({ ok: true })))(probes++, engines.length);
      if (step.ms) await clock.sleep(step.ms);
      return step.ok ? { ok: true } : { ok: false, reason: step.reason ?? 'engine /health answered 503' };
    },
  });
  let outcome: SupervisionOutcome | undefined;
  void sup.done.then((o) => (outcome = o));
  return { clock, lifecycle, states, engines, spawnedAt, sup, outcome: () => outcome, probeCount: () => probes };
}

describe('restart policy (pure)', () => {
  const policy = { maxRestarts: 3, backoffMs: 1000, maxBackoffMs: 5000, budgetResetMs: 60_000 };
  const cases: Array<[string, number, number | undefined, ReturnType<typeof decideRestart>]> = [
    ['first crash', 0, undefined, { restart: true, attempt: 1, delayMs: 1000, budgetReset: false }],
    ['second: doubled', 1, 10, { restart: true, attempt: 2, delayMs: 2000, budgetReset: false }],
    ['third: doubled again', 2, undefined, { restart: true, attempt: 3, delayMs: 4000, budgetReset: false }],
    ['budget spent', 3, 59_999, { restart: false, used: 3, budgetReset: false }],
    ['budget spent, but ready long enough: reset', 3, 60_000, { restart: true, attempt: 1, delayMs: 1000, budgetReset: true }],
    ['no restarts configured', 0, 1e9, { restart: false, used: 0, budgetReset: false }],
  ];
  for (const [name, used, readyFor, want] of cases) {
    test(name, () => {
      const p = name === 'no restarts configured' ? { ...policy, maxRestarts: 0 } : policy;
      assert.deepEqual(decideRestart(used, readyFor, p), want);
    });
  }
  test('backoff is capped', () => {
    assert.deepEqual(decideRestart(3, undefined, { ...policy, maxRestarts: 10 }), { restart: true, attempt: 4, delayMs: 5000, budgetReset: false });
  });
});

describe('health verdicts (pure)', () => {
  const policy = { failureThreshold: 3, unhealthyTimeoutMs: 10_000 };
  // Each row: probes as [ok, startedAt, endedAt] → verdict kinds.
  const rows: Array<[string, Array<[boolean, number, number]>, Array<HealthVerdict['kind']>]> = [
    ['one slow probe keeps it ready', [[false, 0, 5], [true, 10, 11]], ['degraded', 'healthy']],
    ['threshold reached on the third failure', [[false, 0, 1], [false, 2, 3], [false, 4, 5]], ['degraded', 'degraded', 'unhealthy']],
    ['a success resets the count', [[false, 0, 1], [false, 2, 3], [true, 4, 5], [false, 6, 7], [false, 8, 9]], ['degraded', 'degraded', 'healthy', 'degraded', 'degraded']],
    ['wedged once failing for the timeout, counted from the first failed probe start', [[false, 1000, 3000], [false, 4000, 6000], [false, 7000, 9000], [false, 10_000, 12_000]], ['degraded', 'degraded', 'unhealthy', 'wedged']],
  ];
  for (const [name, probes, want] of rows) {
    test(name, () => {
      let streak: FailureStreak = HEALTHY;
      const got: string[] = [];
      for (const [ok, startedAt, endedAt] of probes) {
        const r = judgeProbe(streak, { ok, startedAt }, endedAt, policy);
        streak = r.streak;
        got.push(r.verdict.kind);
      }
      assert.deepEqual(got, want);
    });
  }
  test('unhealthyTimeout 0 never wedges', () => {
    const r = judgeProbe({ failures: 100, since: 0 }, { ok: false, startedAt: 1e9 }, 1e9 + 1, { failureThreshold: 3, unhealthyTimeoutMs: 0 });
    assert.equal(r.verdict.kind, 'unhealthy');
  });
});

describe('engine supervisor state machine (fake clock, spawn, probe)', () => {
  test('backoff doubles between restarts; the last crash fails with the engine exit code', async () => {
    const h = harness({ maxRestarts: 3, backoff: 1000 });
    h.sup.start();
    for (let i = 0; i < 4; i++) {
      await flush();
      h.engines.at(-1)!.end({ code: 3, signal: null });
      await h.clock.advance(10_000);
    }
    assert.equal(h.engines.length, 4);
    const outcome = h.outcome();
    assert.equal(outcome?.exitCode, 3);
    assert.equal(h.lifecycle.state, 'failed');
  });

  test('restart delays are 1 s, 2 s, 4 s', async () => {
    const h = harness({ maxRestarts: 3, backoff: 1000 });
    h.sup.start();
    const crashAt: number[] = [];
    for (let i = 0; i < 3; i++) {
      await flush();
      crashAt.push(h.clock.now());
      h.engines.at(-1)!.end({ code: 1, signal: null });
      await h.clock.advance(8_000);
    }
    assert.deepEqual(
      h.spawnedAt.slice(1).map((t, i) => t - crashAt[i]!),
      [1000, 2000, 4000],
    );
  });

  test('a signal during backoff stops cleanly: no further spawn, exit 0', async () => {
    const h = harness({ maxRestarts: 3, backoff: 5000 });
    h.sup.start();
    await flush();
    h.engines[0]!.end({ code: 1, signal: null });
    await h.clock.advance(100);
    assert.equal(h.lifecycle.state, 'starting');
    h.lifecycle.transition('stopping', 'received SIGTERM');
    const closing = h.sup.close();
    await h.clock.advance(1000);
    const outcome = await closing;
    await h.clock.advance(60_000);
    assert.equal(h.engines.length, 1, 'no restart after the signal');
    assert.equal(outcome.exitCode, 0);
    assert.equal(h.lifecycle.state, 'stopped');
  });

  // Probe scripts after the first (start-up) probe: readiness states through the threshold.
  const thresholdRows: Array<[string, number, boolean[], EngineState[]]> = [
    ['threshold 3: two failures keep it ready', 3, [false, false, true], ['starting', 'loading', 'ready']],
    ['threshold 3: three failures make it unhealthy, one success ready again', 3, [false, false, false, true], ['starting', 'loading', 'ready', 'unhealthy', 'ready']],
    ['threshold 1: each failure counts', 1, [false, true, false, true], ['starting', 'loading', 'ready', 'unhealthy', 'ready', 'unhealthy', 'ready']],
  ];
  for (const [name, threshold, script, want] of thresholdRows) {
    test(name, async () => {
      const h = harness({ threshold, probes: (n) => ({ ok: n === 0 ? true : (script[n - 1] ?? true) }) });
      h.sup.start();
      await h.clock.advance(1000 * (script.length + 1));
      // 'starting' is where the lifecycle begins: transitions recorded start at loading.
      assert.deepEqual(['starting', ...h.states], want);
      assert.equal(h.engines.length, 1);
    });
  }

  test('watchdog: a hung engine is killed after the unhealthy timeout and restarted', async () => {
    // Ready, then every probe hangs until its 2 s timeout.
    const h = harness({ maxRestarts: 1, backoff: 0, unhealthyTimeout: 10_000, interval: 1000, probes: (n, engines) => (n === 0 || engines >= 2 ? { ok: true } : { ok: false, ms: 2000, reason: 'engine /health gave no answer within 2000 ms' }) });
    h.sup.start();
    await h.clock.advance(9_000);
    assert.equal(h.engines[0]!.destroyed, false, 'not before the timeout');
    assert.equal(h.lifecycle.state, 'unhealthy');
    await h.clock.advance(5_000);
    assert.equal(h.engines[0]!.destroyed, true, 'killed (SIGKILL to its group)');
    assert.equal(h.engines.length, 2, 'restarted');
    assert.ok(h.states.includes('starting'));
    await h.clock.advance(1000);
    assert.equal(h.lifecycle.state, 'ready');
  });

  test('watchdog with no restart left: exit 1 naming NIM_ENGINE_UNHEALTHY_TIMEOUT', async () => {
    const h = harness({ maxRestarts: 0, unhealthyTimeout: 5_000, probes: (n) => ({ ok: n === 0 }) });
    h.sup.start();
    await h.clock.advance(20_000);
    assert.equal(h.engines[0]!.destroyed, true);
    const outcome = h.outcome();
    assert.equal(outcome?.exitCode, 1);
    assert.match(outcome?.error?.message ?? '', /NIM_ENGINE_UNHEALTHY_TIMEOUT/);
    assert.equal(h.lifecycle.state, 'failed');
  });

  test('watchdog off (0): an unhealthy engine is left running', async () => {
    const h = harness({ unhealthyTimeout: 0, probes: (n) => ({ ok: n === 0 }) });
    h.sup.start();
    await h.clock.advance(600_000);
    assert.equal(h.engines[0]!.destroyed, false);
    assert.equal(h.lifecycle.state, 'unhealthy');
  });

  test('the restart budget resets after a long healthy run', async () => {
    const h = harness({ maxRestarts: 1, backoff: 0, budgetReset: 60_000 });
    h.sup.start();
    await h.clock.advance(120_000); // ready for two minutes
    h.engines[0]!.end({ code: 1, signal: null });
    await h.clock.advance(120_000); // restarted (restart 1 of 1), ready for two minutes again
    h.engines[1]!.end({ code: 1, signal: null });
    await h.clock.advance(1000);
    assert.equal(h.engines.length, 3, 'a fresh budget: restarted again');
    h.engines[2]!.end({ code: 1, signal: null }); // crashes at once: budget spent
    await h.clock.advance(1000);
    assert.equal(h.engines.length, 3);
    assert.equal(h.outcome()?.exitCode, 1);
  });
});
