// The performance benchmark: `npm run bench` (= build, then node dist/bench/run.js).
// Measures issue #19's targets in one run and prints a targets table:
//   requests  CPU per non-streaming request (h2load --h1, fixed -n), direct vs supervisor vs nginx, interleaved rounds
//   events    CPU per forwarded SSE event (fixed streams × tokens, events counted by the client), the same three paths
//   workers   the same SSE measurement with NIM_PROXY_WORKERS=1, 2 (… up to the cores, max 4), interleaved with the
//             bare Node relay and nginx at as many processes (their own growth on these cores)
//   burst     5,000 streams opened within 200 ms against each path: errors, SYN-retransmit waits, listen drops,
//             TTFB p50/p99; the supervisor's peak RSS (whole tree minus the engine) with 5,000 streams open
//   startup   launch → engine spawned (a stub `vllm` records its own start), median of 10
// CPU is utime+stime from /proc/<pid>/stat summed over each proxy's process tree (the supervisor's tree minus the
// engine's subtree; nginx's master and workers; for "direct", the engine's own tree as the reference).
// Options: --phases requests,events,workers,burst,startup (default) | all | legacy phases (bench/legacy.ts:
//          throughput,bodies,scrapes,tracing,streams) · --rounds 3 · --requests 5000 · --concurrency 16
//          · --streams 100 · --tokens 256 · --token-ms 10 · --workers 1,2 · --burst 5000 · --burst-rounds 3
//          · --burst-token-ms 2000 · --burst-tokens 4 · --backlog 4096 · --launches 10 · --no-nginx · --readme
// Everything listens on and talks to 127.0.0.1 only. Every process started here is stopped here, by pid,
// and every loop has a count and a deadline.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { H2LOAD, H2LOAD_HINT, h2load } from './lib/h2load.js';
import { counterDelta, listenBacklog, listenCounters, somaxconn, type ListenCounters } from './lib/netstat.js';
import { NGINX, NGINX_HINT, startNginx, stopNginx, type Nginx } from './lib/nginx.js';
import { CLK_TCK, hardNofile, killAll, sleep, softNofile, startChild, stopChild, WANT_NOFILE } from './lib/proc.js';
import { cpuBetween, nodeProcesses, rssPeakSampler, usage, type Tree } from './lib/proctree.js';
import { f, median } from './lib/stats.js';
import { countDirectEvents, nodeBootCost, startSupervisor, stopSupervisor, supervisorEntry, backlogVariable, writeStubs, type BenchEnv, type Supervisor } from './lib/supervisor.js';
import { renderReadme, updateReadme } from './lib/readme.js';
import { startRelay, stopRelay, type Relay } from './lib/relay.js';
import { flag, num, opt } from './lib/options.js';
import { runStreams as runStreamsIn, type StreamResult } from './lib/streams.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const distDir = path.join(repoRoot, 'dist');
const resultsDir = path.join(repoRoot, 'bench', 'results');
const BENCH_DEADLINE = Date.now() + 9 * 60_000; // npm run bench must end within 10 minutes

// ---------------------------------------------------------------- options

const TARGET_PHASES = ['startup', 'requests', 'events', 'workers', 'burst'];
const LEGACY_PHASES = ['throughput', 'bodies', 'scrapes', 'tracing', 'streams'];
const phaseArg = opt('phases', TARGET_PHASES.join(','));
const PHASES = new Set(phaseArg === 'all' ? [...TARGET_PHASES, ...LEGACY_PHASES] : phaseArg.split(',').map((s) => s.trim()));
for (const p of PHASES) if (![...TARGET_PHASES, ...LEGACY_PHASES].includes(p)) throw new Error(`--phases: unknown phase "${p}"; expected some of ${[...TARGET_PHASES, ...LEGACY_PHASES].join(', ')} or all`);
const ROUNDS = num('rounds', 5);
/** Non-streaming requests per path before the measured rounds (JIT and pools warm). */
const WARMUP_REQUESTS = num('warmup-requests', 10000);
const REQUESTS = num('requests', 5000);
const CONCURRENCY = num('concurrency', 16);
const STREAMS = num('streams', 100);
const TOKENS = num('tokens', 256);
const TOKEN_MS = num('token-ms', 10);
const CORES = os.availableParallelism?.() ?? os.cpus().length;
const WORKER_LEVELS = opt('workers', [1, 2, ...(CORES >= 4 ? [Math.min(4, CORES)] : [])].join(',')).split(',').map(Number);
const BURST = num('burst', 5000);
const BURST_ROUNDS = num('burst-rounds', 3);
const BURST_TOKEN_MS = num('burst-token-ms', 2000);
const BURST_TOKENS = num('burst-tokens', 4);
/** 250 connections every 10 ms: 5,000 within 200 ms. */
const BURST_BATCH = 250;
const BURST_GAP_MS = 10;
/** A burst stream that has not finished 30 s after its connect() counts as an error (timeout): it bounds the phase. */
const BURST_TIMEOUT_MS = 30_000;
const SOMAXCONN = somaxconn();
const BACKLOG = num('backlog', Number.isFinite(SOMAXCONN) ? Math.min(SOMAXCONN, 4096) : 4096);
const LAUNCHES = num('launches', 10);
const USE_NGINX = NGINX !== undefined && !flag('no-nginx');

type PathId = 'direct' | 'supervisor' | 'relay' | 'nginx';

// ---------------------------------------------------------------- measuring

interface Subject {
  id: string;
  port: number;
  tree: Tree;
}
interface Measured<R> {
  cpuS: number;
  perPidS: Record<number, number>;
  wallS: number;
  result: R;
}

/**
 * Run `once` on each subject in turn, `rounds` times, measuring each subject's tree CPU around its run. The order
 * rotates from round to round (a b c, b c a, c a b, …): the shared engine warms up and its heap grows as rounds go
 * by, and a fixed order would hand the last subject the warmest engine every time.
 */
async function interleave<R>(subjects: Subject[], rounds: number, once: (s: Subject) => Promise<R>, log: (s: Subject, m: Measured<R>, r: number) => string): Promise<Record<string, Array<Measured<R>>>> {
  const out: Record<string, Array<Measured<R>>> = Object.fromEntries(subjects.map((s) => [s.id, []]));
  for (let r = 0; r < rounds; r++) {
    if (Date.now() > BENCH_DEADLINE) {
      console.log(`  (round ${r + 1} skipped: the 9-minute budget is spent)`);
      break;
    }
    for (let i = 0; i < subjects.length; i++) {
      const s = subjects[(i + r) % subjects.length]!;
      const u0 = usage(s.tree);
      const t0 = performance.now();
      const result = await once(s);
      const wallS = (performance.now() - t0) / 1000;
      const cpu = cpuBetween(u0, usage(s.tree));
      const m = { cpuS: cpu.seconds, perPidS: cpu.perPid, wallS, result };
      out[s.id]!.push(m);
      console.log(`  round ${r + 1} ${s.id}: ${log(s, m, r)}`);
    }
  }
  return out;
}

/** Median over rounds of (a's per-unit CPU / b's per-unit CPU) in the same round. */
function ratioOfRounds(a: number[], b: number[]): number {
  return median(a.map((x, i) => x / b[i]!));
}

/** µs of CPU per SSE event a subject spent in one measured streams run. */
function usPerEvent(m: Measured<StreamResult>): number {
  return (m.cpuS * 1e6) / Math.max(1, m.result.events);
}

/** Idle CPU of a tree over `ms`, in ms of CPU per second (housekeeping: probes, timers). */
async function idleCpu(t: Tree, ms = 2000): Promise<number> {
  const u0 = usage(t);
  await sleep(ms);
  return (cpuBetween(u0, usage(t)).seconds * 1000) / (ms / 1000);
}

function runStreams(port: number, n: number, body: string, expectEvents: number, batch: number, batchGapMs: number, timeoutMs = 60_000): Promise<StreamResult> {
  return runStreamsIn(distDir, port, n, body, expectEvents, { batch, batchGapMs, timeoutMs });
}


const streamBody = (model: string, tokens: number): string => JSON.stringify({ model, messages: [{ role: 'user', content: 'Stream please.' }], max_tokens: tokens, ignore_eos: true, stream: true });

// ---------------------------------------------------------------- targets

export interface Target {
  name: string;
  figure: string;
  limit: string;
  /** true met, false not met, null not measured. */
  met: boolean | null;
  note?: string;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const entry = supervisorEntry(repoRoot);
  if (!existsSync(path.join(distDir, 'bench', 'stream-client.js'))) throw new Error('build first: npm run build');
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'nim-bench-'));
  process.on('exit', () => rmSync(tmpDir, { recursive: true, force: true }));
  const stubDir = path.join(tmpDir, 'bin');
  mkdirSync(stubDir);
  const env: BenchEnv = { repoRoot, stubDir, tmpDir };
  writeStubs(env);

  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const backlogVar = await backlogVariable(repoRoot);
  console.log(`nim-supervisor benchmark — Node ${process.version}, ${CORES} cores (${os.cpus()[0]?.model ?? '?'}), load average ${load}`);
  console.log(`supervisor entry: ${path.relative(repoRoot, entry)} (package.json bin["nim-supervisor"])`);
  console.log(`open files: soft ${softNofile}, hard ${hardNofile}; children get ${WANT_NOFILE}; CPU from /proc at ${CLK_TCK} ticks/s`);
  console.log(`listen backlog: somaxconn ${SOMAXCONN}; nginx listen backlog=${BACKLOG}; supervisor ${backlogVar ? `${backlogVar}=${BACKLOG}` : 'no backlog variable yet (its built-in default)'}`);
  if (!USE_NGINX) console.log(NGINX ? 'nginx: disabled by --no-nginx' : NGINX_HINT);
  if (!H2LOAD) console.log(H2LOAD_HINT);
  const caCost = nodeBootCost();
  if (caCost) {
    console.log(
      `NODE_EXTRA_CA_CERTS is set here: Node reads that bundle at every start (node -e 0: ${f(caCost.withMs, 0)} ms with it, ${f(caCost.withoutMs, 0)} ms without); bench supervisors run without it, as in the image`,
    );
  }
  if (process.env.NIM_PROXY_WORKERS) console.log(`NIM_PROXY_WORKERS=${process.env.NIM_PROXY_WORKERS} from your environment applies where a phase does not set it`);

  const results: Record<string, unknown> = {
    timestamp: new Date().toISOString(),
    machine: { cores: CORES, cpuModel: os.cpus()[0]?.model, node: process.version, platform: `${os.type()} ${os.release()}`, memMiB: Math.round(os.totalmem() / 1048576), loadAverageAtStart: load, nodeExtraCaCertsBootMs: caCost ?? null },
    supervisorEntry: path.relative(repoRoot, entry),
    gitCommit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).stdout?.trim(),
    options: { phases: [...PHASES], rounds: ROUNDS, requests: REQUESTS, concurrency: CONCURRENCY, streams: STREAMS, tokens: TOKENS, tokenMs: TOKEN_MS, workers: WORKER_LEVELS, burst: BURST, burstRounds: BURST_ROUNDS, burstTokenMs: BURST_TOKEN_MS, burstTokens: BURST_TOKENS, backlog: BACKLOG, backlogVariable: backlogVar ?? null, launches: LAUNCHES, nginx: USE_NGINX ? NGINX : null, h2load: H2LOAD ?? null },
  };
  const targets: Target[] = [];
  const lines: string[] = [];
  const nginxMissing = USE_NGINX ? undefined : NGINX ? 'nginx disabled (--no-nginx)' : 'install nginx-light';

  // ---------- start-up first, while nothing else of ours runs
  if (PHASES.has('startup')) {
    console.log(`\nstartup: ${LAUNCHES} launches, launch → engine spawned (stub vllm's own clock); each beside Node spawning it at once (bench/spawn-floor.ts)`);
    const ms: number[] = [];
    const floor: number[] = [];
    for (let i = 0; i < LAUNCHES && Date.now() < BENCH_DEADLINE; i++) {
      const s = await startSupervisor(env, { label: `startup${i}`, tokenMs: 0, waitReady: false, raiseNofile: false });
      ms.push(s.launchToEngineMs);
      await stopSupervisor(s);
      const n = await startSupervisor(env, { label: `floor${i}`, tokenMs: 0, spawnFloor: true, raiseNofile: false });
      floor.push(n.launchToEngineMs);
      await stopSupervisor(n);
      console.log(`  launch ${i + 1}: ${f(s.launchToEngineMs, 0)} ms (Node floor ${f(n.launchToEngineMs, 0)} ms)`);
    }
    const med = median(ms);
    const floorMed = median(floor);
    results.startup = { launchToEngineSpawnedMs: ms, median: med, min: Math.min(...ms), max: Math.max(...ms), nodeFloorMs: floor, nodeFloorMedian: floorMed };
    lines.push('', `startup: launch → engine spawned, ${ms.length} launches: median ${f(med, 0)} ms (min ${f(Math.min(...ms), 0)}, max ${f(Math.max(...ms), 0)}); Node spawning it at once: median ${f(floorMed, 0)} ms`);
    targets.push({ name: `Start-up: launch → engine spawned (median of ${ms.length})`, figure: `${f(med, 0)} ms (Node spawning it at once: ${f(floorMed, 0)} ms)`, limit: '< 200 ms', met: med < 200 });
  }

  // ---------- CPU per non-streaming request
  if (PHASES.has('requests')) {
    if (!H2LOAD) {
      targets.push({ name: 'CPU per non-streaming request vs nginx', figure: '—', limit: '≤ 2×', met: null, note: 'install nghttp2-client (h2load)' });
    } else {
      console.log(`\nrequests: ${ROUNDS} interleaved rounds × ${REQUESTS} non-streaming chat completions (h2load --h1 -c ${CONCURRENCY})`);
      const sup = await startSupervisor(env, { label: 'requests', tokenMs: 0, workers: 1 });
      const ngx = USE_NGINX ? await startNginx(sup.enginePort, 1, BACKLOG) : undefined;
      try {
        const chatFile = path.join(tmpDir, 'chat.json');
        writeFileSync(chatFile, JSON.stringify({ model: sup.model, messages: [{ role: 'user', content: 'Say hello to the benchmark.' }], max_tokens: 16 }));
        const subjects = subjectsOf(sup, ngx);
        // Warm-up to the steady state of a long-running server (V8 optimises the proxy's path over the
        // first thousands of requests: per-round figures kept falling after a 2,000-request warm-up).
        for (const s of subjects) await h2load(s.port, '/v1/chat/completions', chatFile, WARMUP_REQUESTS, CONCURRENCY);
        const idle = await idleCpu(sup.tree);
        const per = await interleave(subjects, ROUNDS, (s) => h2load(s.port, '/v1/chat/completions', chatFile, REQUESTS, CONCURRENCY), (_s, m) => `${f((m.cpuS * 1e6) / Math.max(1, m.result.status2xx), 1)} µs/request, ${f(m.result.rps, 0)} req/s, ${m.result.requests - m.result.status2xx} errors`);
        const us = (id: string): number[] => (per[id] ?? []).map((m) => (m.cpuS * 1e6) / Math.max(1, m.result.status2xx));
        const summary = Object.fromEntries(
          subjects.map((s) => [s.id, { usPerRequest: median(us(s.id)), rps: median(per[s.id]!.map((m) => m.result.rps)), errors: per[s.id]!.reduce((a, m) => a + m.result.requests - m.result.status2xx, 0), rounds: per[s.id]!.map((m) => ({ cpuS: m.cpuS, requests: m.result.requests, ok: m.result.status2xx, seconds: m.result.seconds, rps: m.result.rps, meanMs: m.result.meanMs })) }]),
        );
        const ratio = ngx ? ratioOfRounds(us('supervisor'), us('nginx')) : NaN;
        results.requests = { summary, supervisorOverNginx: ratio, supervisorIdleCpuMsPerS: idle, backlogs: backlogsOf(sup, ngx) };
        lines.push('', `requests: CPU per non-streaming chat completion (max_tokens 16), ${per.direct!.length} rounds × ${REQUESTS}, h2load -c ${CONCURRENCY}; medians`);
        lines.push('| path | µs CPU / request | req/s | errors |', '|---|---:|---:|---:|');
        for (const s of subjects) lines.push(`| ${label(s.id)} | ${f(summary[s.id]!.usPerRequest)} | ${f(summary[s.id]!.rps, 0)} | ${summary[s.id]!.errors} |`);
        lines.push(`supervisor/nginx (median of per-round ratios): ${f(ratio, 2)}×; supervisor idle CPU ${f(idle, 1)} ms/s (included above)`);
        targets.push({ name: 'CPU per non-streaming request, supervisor / nginx', figure: ngx ? `${f(ratio, 2)}× (${f(summary.supervisor!.usPerRequest)} vs ${f(summary.nginx!.usPerRequest)} µs; direct: engine ${f(summary.direct!.usPerRequest)} µs)` : `${f(summary.supervisor!.usPerRequest)} µs`, limit: '≤ 2×', met: ngx ? ratio <= 2 : null, note: nginxMissing });
      } finally {
        if (ngx) await stopNginx(ngx);
        await stopSupervisor(sup);
      }
    }
  }

  // ---------- CPU per SSE event
  if (PHASES.has('events')) {
    console.log(`\nevents: ${ROUNDS} interleaved rounds × ${STREAMS} streams × ${TOKENS} tokens, ${TOKEN_MS} ms per token`);
    const sup = await startSupervisor(env, { label: 'events', tokenMs: TOKEN_MS, workers: 1 });
    const ngx = USE_NGINX ? await startNginx(sup.enginePort, 1, BACKLOG) : undefined;
    const relay = await startRelay(distDir, sup.enginePort, BACKLOG);
    try {
      const body = streamBody(sup.model, TOKENS);
      const expect = await countDirectEvents(sup.enginePort, body);
      const subjects = subjectsOf(sup, ngx, relay);
      for (const s of subjects) await runStreams(s.port, 100, body, expect, 50, 10); // warm-up
      const per = await interleave(subjects, ROUNDS, (s) => runStreams(s.port, STREAMS, body, expect, 50, 10), (_s, m) => `${f(usPerEvent(m), 2)} µs/event, ${m.result.events} events, ${f(m.result.events / m.result.seconds, 0)} events/s, ${m.result.errors} errors`);
      const us = (id: string): number[] => (per[id] ?? []).map(usPerEvent);
      const summary = Object.fromEntries(subjects.map((s) => [s.id, { usPerEvent: median(us(s.id)), eventsPerS: median(per[s.id]!.map((m) => m.result.events / m.result.seconds)), errors: per[s.id]!.reduce((a, m) => a + m.result.errors, 0), rounds: per[s.id]!.map((m) => ({ cpuS: m.cpuS, events: m.result.events, seconds: m.result.seconds, errors: m.result.errors })) }]));
      const ratio = ngx ? ratioOfRounds(us('supervisor'), us('nginx')) : NaN;
      const floor = ngx ? ratioOfRounds(us('relay'), us('nginx')) : NaN;
      results.events = { eventsPerStream: expect, summary, supervisorOverNginx: ratio, relayOverNginx: floor };
      lines.push('', `events: CPU per forwarded SSE event, ${per.direct!.length} rounds × ${STREAMS} streams × ${expect} events (${TOKEN_MS} ms/token); medians`);
      lines.push('| path | µs CPU / event | events/s | errors |', '|---|---:|---:|---:|');
      for (const s of subjects) lines.push(`| ${label(s.id)} | ${f(summary[s.id]!.usPerEvent, 2)} | ${f(summary[s.id]!.eventsPerS, 0)} | ${summary[s.id]!.errors} |`);
      lines.push(`supervisor/nginx (median of per-round ratios): ${f(ratio, 2)}×; Node TCP relay/nginx: ${f(floor, 2)}× (Node's floor: no HTTP at all)`);
      targets.push({ name: 'CPU per forwarded SSE event, supervisor / nginx', figure: ngx ? `${f(ratio, 2)}× (${f(summary.supervisor!.usPerEvent, 2)} vs ${f(summary.nginx!.usPerEvent, 2)} µs; direct: engine ${f(summary.direct!.usPerEvent, 2)} µs; a bare Node TCP relay: ${f(floor, 2)}×)` : `${f(summary.supervisor!.usPerEvent, 2)} µs`, limit: '≤ 1.5×', met: ngx ? ratio <= 1.5 : null, note: nginxMissing });
    } finally {
      await stopRelay(relay);
      if (ngx) await stopNginx(ngx);
      await stopSupervisor(sup);
    }
  }

  // ---------- workers: the same SSE measurement with NIM_PROXY_WORKERS = 1, 2, …
  if (PHASES.has('workers')) {
    console.log(`\nworkers: NIM_PROXY_WORKERS=${WORKER_LEVELS.join(', ')}; ${ROUNDS} interleaved rounds × ${STREAMS} streams × ${TOKENS} tokens`);
    const sups: Array<{ w: number; sup: Supervisor }> = [];
    const relays: Array<{ w: number; relay: Relay }> = [];
    const nginxes: Array<{ w: number; ngx: Nginx }> = [];
    try {
      for (const w of WORKER_LEVELS) sups.push({ w, sup: await startSupervisor(env, { label: `workers${w}`, tokenMs: TOKEN_MS, workers: w }) });
      // The bare Node relay with as many processes, each level in front of that level's engine: Node's own growth.
      for (const { w, sup } of sups) relays.push({ w, relay: await startRelay(distDir, sup.enginePort, BACKLOG, w) });
      // nginx with as many worker_processes: the growth of a proxy that is not Node, on the same cores and load.
      if (USE_NGINX) for (const { w, sup } of sups) nginxes.push({ w, ngx: await startNginx(sup.enginePort, w, BACKLOG) });
      const body = streamBody(sups[0]!.sup.model, TOKENS);
      const expect = await countDirectEvents(sups[0]!.sup.enginePort, body);
      const subjects: Subject[] = [
        ...sups.map(({ w, sup }) => ({ id: `w${w}`, port: sup.port, tree: sup.tree })),
        ...relays.map(({ w, relay }) => ({ id: `relay${w}`, port: relay.port, tree: relay.tree })),
        ...nginxes.map(({ w, ngx }) => ({ id: `nginx${w}`, port: ngx.port, tree: ngx.tree })),
      ];
      for (const s of subjects) await runStreams(s.port, 50, body, expect, 50, 10);
      const procs = Object.fromEntries(sups.map(({ w, sup }) => [w, nodeProcesses(sup.tree)]));
      const per = await interleave(subjects, ROUNDS, (s) => runStreams(s.port, STREAMS, body, expect, 50, 10), (s, m) => `${f(usPerEvent(m), 2)} µs/event, ${f(m.result.events / m.result.seconds, 0)} events/s${s.id.startsWith('w') ? `, ${procs[Number(s.id.slice(1))]} Node processes` : ''}, ${m.result.errors} errors`);
      const medianUs = (id: string): number => median(per[id]!.map(usPerEvent));
      const rows = sups.map(({ w }) => {
        const ms = per[`w${w}`]!;
        const us = medianUs(`w${w}`);
        const eps = median(ms.map((m) => m.result.events / m.result.seconds));
        // The busiest process's share of the CPU: 1/w when the load is spread evenly.
        const busiest = median(ms.map((m) => Math.max(...Object.values(m.perPidS)) / Math.max(1e-9, m.cpuS)));
        return { workers: w, processes: procs[w]!, usPerEvent: us, eventsPerS: eps, eventsPerSPerWorker: eps / w, capacityPerProcessEventsPerS: 1e6 / us, busiestProcessShare: busiest, errors: ms.reduce((a, m) => a + m.result.errors, 0), ignored: w > 1 && procs[w]! <= 1 };
      });
      const relayRows = relays.map(({ w }) => ({ processes: w, usPerEvent: medianUs(`relay${w}`) }));
      const nginxRows = nginxes.map(({ w }) => ({ workers: w, usPerEvent: medianUs(`nginx${w}`) }));
      results.workers = { rows, relayRows, nginxRows };
      lines.push('', `workers: CPU per SSE event by NIM_PROXY_WORKERS, ${per[subjects[0]!.id]!.length} interleaved rounds × ${STREAMS} streams × ${expect} events (${TOKEN_MS} ms/token); medians`);
      lines.push('| NIM_PROXY_WORKERS | Node processes (supervisor tree − engine) | µs CPU / event | events/s | events/s per worker | busiest process share | errors |', '|---:|---:|---:|---:|---:|---:|---:|');
      for (const r of rows) lines.push(`| ${r.workers}${r.ignored ? ' (ignored)' : ''} | ${r.processes} | ${f(r.usPerEvent, 2)} | ${f(r.eventsPerS, 0)} | ${f(r.eventsPerSPerWorker, 0)} | ${f(r.busiestProcessShare * 100, 0)} % | ${r.errors} |`);
      const first = rows[0]!;
      const last = rows[rows.length - 1]!;
      const growth = last.usPerEvent / first.usPerEvent;
      const relayGrowth = relayRows[relayRows.length - 1]!.usPerEvent / relayRows[0]!.usPerEvent;
      lines.push(`bare Node TCP relay (bench/relay.ts) with as many processes, µs CPU / event: ${relayRows.map((r) => `${r.processes}: ${f(r.usPerEvent, 2)}`).join(', ')} (${f(relayGrowth, 2)}×: Node's own growth)`);
      const nginxGrowth = nginxRows.length > 1 ? nginxRows[nginxRows.length - 1]!.usPerEvent / nginxRows[0]!.usPerEvent : NaN;
      if (nginxRows.length > 1) lines.push(`nginx with as many worker_processes, µs CPU / event: ${nginxRows.map((r) => `${r.workers}: ${f(r.usPerEvent, 2)}`).join(', ')} (${f(nginxGrowth, 2)}×: the growth on these cores at this load, without Node)`);
      const ignored = rows.some((r) => r.ignored);
      if (ignored) lines.push('(ignored): the supervisor ran one process; NIM_PROXY_WORKERS has no effect in this build.');
      targets.push({ name: `Workers: CPU per event, NIM_PROXY_WORKERS=${last.workers} / ${first.workers}`, figure: `${f(growth, 2)}× (${f(last.usPerEvent, 2)} vs ${f(first.usPerEvent, 2)} µs; a bare Node TCP relay with ${last.workers} / ${first.workers} processes: ${f(relayGrowth, 2)}×${nginxRows.length > 1 ? `; nginx with ${last.workers} / ${first.workers} workers: ${f(nginxGrowth, 2)}×` : ''})${ignored ? '; NIM_PROXY_WORKERS ignored (1 process)' : ''}`, limit: '≤ 1.1× (does not grow), > 1 process', met: !ignored && growth <= 1.1 });
    } finally {
      for (const { ngx } of nginxes) await stopNginx(ngx);
      for (const { relay } of relays) await stopRelay(relay);
      for (const { sup } of sups) await stopSupervisor(sup);
    }
  }

  // ---------- bursts: 5,000 streams within 200 ms; memory with 5,000 streams open
  if (PHASES.has('burst')) {
    const nginxWorkers = CORES;
    console.log(`\nburst: ${BURST_ROUNDS} interleaved rounds × ${BURST} streams opened within ${(BURST / BURST_BATCH) * BURST_GAP_MS} ms (${BURST_BATCH} every ${BURST_GAP_MS} ms), ${BURST_TOKENS} tokens at ${BURST_TOKEN_MS} ms; supervisor with its default workers, nginx worker_processes ${nginxWorkers}`);
    const sup = await startSupervisor(env, { label: 'burst', tokenMs: BURST_TOKEN_MS, backlog: BACKLOG });
    const ngx = USE_NGINX ? await startNginx(sup.enginePort, nginxWorkers, BACKLOG) : undefined;
    const relay = await startRelay(distDir, sup.enginePort, BACKLOG);
    try {
      const body = streamBody(sup.model, BURST_TOKENS);
      const expect = await countDirectEvents(sup.enginePort, body);
      const subjects = subjectsOf(sup, ngx, relay);
      const backlogs = backlogsOf(sup, ngx, relay);
      // Warm-up: one unmeasured burst straight at the engine (its JIT and heap, as later rounds see them), then a few streams per path.
      await runStreams(sup.enginePort, BURST, body, expect, BURST_BATCH, BURST_GAP_MS, BURST_TIMEOUT_MS);
      for (const s of subjects) await runStreams(s.port, 200, body, expect, 100, 10);
      const procs = nodeProcesses(sup.tree);
      const rss: Record<string, number[]> = { supervisor: [], nginx: [] };
      const kernel: Record<string, ListenCounters[]> = Object.fromEntries(subjects.map((s) => [s.id, []]));
      const per = await interleave(
        subjects,
        BURST_ROUNDS,
        async (s) => {
          await sleep(1000); // let the previous round's sockets close
          const stopRss = s.id !== 'direct' && s.id !== 'relay' ? rssPeakSampler(s.tree) : undefined;
          const k0 = listenCounters();
          const r = await runStreams(s.port, BURST, body, expect, BURST_BATCH, BURST_GAP_MS, BURST_TIMEOUT_MS);
          kernel[s.id]!.push(counterDelta(k0, listenCounters()));
          if (stopRss) rss[s.id]!.push(stopRss().peakBytes);
          return r;
        },
        (s, m) => {
          const r = m.result;
          const k = kernel[s.id]!.at(-1)!;
          return `${r.ok}/${r.streams} ok, ${r.errors} errors, opened in ${f(r.openedWithinMs, 0)} ms, ${r.slowConnects} connects ≥ 0.9 s, ListenOverflows +${k.ListenOverflows} ListenDrops +${k.ListenDrops}, TTFB p50 ${f(r.ttfbMs.p50, 0)} p99 ${f(r.ttfbMs.p99, 0)} ms, peak open ${r.peakOpen}${rss[s.id] !== undefined ? `, peak RSS ${f(rss[s.id]!.at(-1)! / 1e6, 0)} MB` : ''}`;
        },
      );
      const sum = (id: string) => {
        const ms = per[id]!;
        const ks = kernel[id]!;
        return {
          errors: ms.reduce((a, m) => a + m.result.errors, 0),
          errorKinds: ms.map((m) => m.result.errorKinds),
          slowConnects: ms.reduce((a, m) => a + m.result.slowConnects, 0),
          listenOverflows: ks.reduce((a, k) => a + k.ListenOverflows, 0),
          listenDrops: ks.reduce((a, k) => a + k.ListenDrops, 0),
          reqQFullDrops: ks.reduce((a, k) => a + k.TCPReqQFullDrop, 0),
          syncookiesSent: ks.reduce((a, k) => a + k.SyncookiesSent, 0),
          ttfbP50Ms: median(ms.map((m) => m.result.ttfbMs.p50)),
          ttfbP99Ms: median(ms.map((m) => m.result.ttfbMs.p99)),
          connectP99Ms: median(ms.map((m) => m.result.connectMs.p99)),
          openedWithinMs: median(ms.map((m) => m.result.openedWithinMs)),
          peakOpen: Math.max(...ms.map((m) => m.result.peakOpen)),
          peakConnected: Math.max(...ms.map((m) => m.result.peakConnected)),
          peakRssMB: rss[id] === undefined ? NaN : Math.max(...rss[id]!) / 1e6,
          // The whole stream: accept, request, response head, 6 events, close (direct: the engine's).
          cpuUsPerStream: median(ms.map((m) => (m.cpuS * 1e6) / Math.max(1, m.result.ok))),
          rounds: ms.map((m) => m.result),
        };
      };
      const summary = Object.fromEntries(subjects.map((s) => [s.id, sum(s.id)]));
      const p99 = (id: string): number[] => per[id]!.map((m) => m.result.ttfbMs.p99);
      const ttfbRatio = ngx ? ratioOfRounds(p99('supervisor'), p99('nginx')) : NaN;
      const relayRatio = ngx ? ratioOfRounds(p99('relay'), p99('nginx')) : NaN;
      results.burst = { streams: BURST, batch: BURST_BATCH, gapMs: BURST_GAP_MS, tokens: BURST_TOKENS, tokenMs: BURST_TOKEN_MS, backlogs, supervisorProcesses: procs, nginxWorkers: ngx ? nginxWorkers : null, summary, supervisorOverNginxTtfbP99: ttfbRatio, relayOverNginxTtfbP99: relayRatio };
      lines.push('', `burst: ${BURST} streams opened within ${(BURST / BURST_BATCH) * BURST_GAP_MS} ms, ${per.direct!.length} rounds per path (errors and waits summed, TTFB medians of rounds); listen backlogs: ${Object.entries(backlogs).map(([k, v]) => `${k} ${v}`).join(', ')} (somaxconn ${SOMAXCONN}); supervisor ${procs} Node process(es) (NIM_PROXY_WORKERS ${process.env.NIM_PROXY_WORKERS ?? 'not set: its default'}), nginx ${nginxWorkers} workers`);
      lines.push('| path | errors | connects ≥ 0.9 s | ListenOverflows | ListenDrops | TTFB p50 ms | TTFB p99 ms | connect p99 ms | opened within ms | peak connections / open responses | peak RSS MB | µs CPU / stream |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const s of subjects) {
        const x = summary[s.id]!;
        lines.push(`| ${label(s.id)} | ${x.errors} | ${x.slowConnects} | ${x.listenOverflows} | ${x.listenDrops} | ${f(x.ttfbP50Ms, 0)} | ${f(x.ttfbP99Ms, 0)} | ${f(x.connectP99Ms, 0)} | ${f(x.openedWithinMs, 0)} | ${x.peakConnected} / ${x.peakOpen} | ${f(x.peakRssMB, 0)} | ${f(x.cpuUsPerStream, 0)} |`);
      }
      lines.push('ListenOverflows/ListenDrops are the kernel\'s counters for this network namespace during that path\'s rounds (other processes\' drops would count too).');
      const b = summary.supervisor!;
      const slowOpen = Math.max(...subjects.map((s) => summary[s.id]!.openedWithinMs));
      if (slowOpen > 2 * (BURST / BURST_BATCH) * BURST_GAP_MS) lines.push(`Note: the client needed up to ${f(slowOpen, 0)} ms to open the ${BURST} connections (planned: ${(BURST / BURST_BATCH) * BURST_GAP_MS} ms): the machine was too busy for a true burst; compare the paths, not the absolute figures.`);
      targets.push({ name: `Burst of ${BURST}: errors (supervisor)`, figure: `${b.errors}${b.errors ? ` (${kinds(b.errorKinds)})` : ''}`, limit: '0', met: b.errors === 0 });
      targets.push({ name: `Burst of ${BURST}: SYN-retransmit waits (supervisor)`, figure: `${b.slowConnects} connects ≥ 0.9 s; ListenOverflows +${b.listenOverflows}, ListenDrops +${b.listenDrops}`, limit: '0', met: b.slowConnects === 0 && b.listenDrops === 0 && b.listenOverflows === 0 });
      targets.push({ name: `Burst of ${BURST}: TTFB p99, supervisor / nginx`, figure: ngx ? `${f(ttfbRatio, 2)}× (${f(b.ttfbP99Ms, 0)} vs ${f(summary.nginx!.ttfbP99Ms, 0)} ms; direct ${f(summary.direct!.ttfbP99Ms, 0)} ms; a bare Node TCP relay, one process: ${f(relayRatio, 2)}×)` : `${f(b.ttfbP99Ms, 0)} ms`, limit: '≤ 1.5×', met: ngx ? ttfbRatio <= 1.5 : null, note: nginxMissing });
      targets.push({ name: `Memory: peak RSS of the whole supervisor (${procs} Node process(es) and helpers, not the engine), ${BURST} streams`, figure: `${f(b.peakRssMB, 0)} MB`, limit: '< 250 MB', met: b.peakRssMB < 250 && b.peakConnected >= BURST, note: `${b.peakConnected} connections and ${b.peakOpen} responses open at once` });
    } finally {
      await stopRelay(relay);
      if (ngx) await stopNginx(ngx);
      await stopSupervisor(sup);
    }
  }

  // ---------- the older survey (bench/legacy.ts), only when asked for
  const legacy = LEGACY_PHASES.filter((p) => PHASES.has(p));
  if (legacy.length > 0) {
    const map: Record<string, string> = { throughput: '1', streams: '2', bodies: '3', scrapes: '5', tracing: '6' };
    const left = Math.max(60, Math.floor((BENCH_DEADLINE - Date.now()) / 1000));
    console.log(`\nlegacy phases ${legacy.join(', ')} (bench/legacy.ts; ${left} s left)`);
    const proc = startChild('legacy', process.execPath, [path.join(distDir, 'bench', 'legacy.js'), '--phases', legacy.map((p) => map[p]).join(','), ...(USE_NGINX ? [] : ['--no-nginx'])], { keepOutput: true });
    proc.child.stdout!.on('data', (b: Buffer) => process.stdout.write(b));
    const timer = setTimeout(() => void stopChild(proc, 'SIGTERM'), left * 1000);
    await proc.exited;
    clearTimeout(timer);
    results.legacy = 'bench/results/legacy-latest.json';
  }

  // ---------- the targets table
  results.targets = targets;
  results.tables = lines.join('\n');
  const table = targetsTable(targets);
  console.log(`${lines.join('\n')}\n\nTargets (issue #19), ${new Date().toISOString()}, load average at start ${load}\n${table}\n`);
  console.log('The machine may be shared: absolute figures move with its load; ratios within one interleaved run much less.');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(path.join(resultsDir, `${stamp}.json`), JSON.stringify(results, null, 2));
  // latest.json (tracked, beside the README's table) is a whole run's: a partial run leaves it alone.
  const whole = TARGET_PHASES.every((p) => PHASES.has(p));
  if (whole) writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify(results, null, 2));
  console.log(`results: bench/results/${stamp}.json${whole ? ' and bench/results/latest.json' : ' (latest.json is only rewritten by a run of every target phase)'}`);
  if (flag('readme') && !TARGET_PHASES.every((p) => PHASES.has(p))) {
    console.log(`README.md left alone: --readme needs every target phase (${TARGET_PHASES.join(', ')}), so that its table is one whole run`);
  } else if (flag('readme')) {
    const readme = path.join(repoRoot, 'README.md');
    writeFileSync(readme, updateReadme(readFileSync(readme, 'utf8'), renderReadme(results as never, targets)));
    console.log('README.md: performance table regenerated between <!-- bench:start --> and <!-- bench:end -->');
  }
}

/** "timeout 3052, ECONNRESET 113" from the rounds' error counts. */
function kinds(rounds: Array<Record<string, number>>): string {
  const t: Record<string, number> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r)) t[k] = (t[k] ?? 0) + v;
  return Object.entries(t).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
}

function label(id: string): string {
  return id === 'direct' ? 'direct (engine CPU, reference)' : id === 'relay' ? "relay (a bare Node TCP relay: Node's floor)" : id;
}

function subjectsOf(sup: Supervisor, ngx: Nginx | undefined, relay?: Relay): Subject[] {
  const s: Subject[] = [
    { id: 'direct' satisfies PathId, port: sup.enginePort, tree: sup.engineTree },
    { id: 'supervisor' satisfies PathId, port: sup.port, tree: sup.tree },
  ];
  if (relay) s.push({ id: 'relay' satisfies PathId, port: relay.port, tree: relay.tree });
  if (ngx) s.push({ id: 'nginx' satisfies PathId, port: ngx.port, tree: ngx.tree });
  return s;
}

function backlogsOf(sup: Supervisor, ngx: Nginx | undefined, relay?: Relay): Record<string, number> {
  const b: Record<string, number> = { engine: listenBacklog(sup.enginePort), supervisor: listenBacklog(sup.port) };
  if (relay) b.relay = listenBacklog(relay.port);
  if (ngx) b.nginx = listenBacklog(ngx.port);
  return b;
}

export function targetsTable(targets: Target[]): string {
  const rows = targets.map((t) => `| ${t.name} | ${t.figure} | ${t.limit} | ${t.met === null ? `not measured${t.note ? ` (${t.note})` : ''}` : t.met ? 'met' : '**NOT met**'}${t.met !== null && t.note ? ` (${t.note})` : ''} |`);
  return ['| target | figure | limit | result |', '|---|---|---|---|', ...rows].join('\n');
}

const hardStop = setTimeout(() => {
  console.error('bench: 10-minute limit reached; stopping everything');
  killAll('SIGKILL');
  process.exit(1);
}, BENCH_DEADLINE + 50_000 - Date.now());
hardStop.unref();

for (const s of ['SIGINT', 'SIGTERM'] as const) {
  process.once(s, () => {
    killAll('SIGTERM');
    setTimeout(() => process.exit(130), 1000).unref();
  });
}

main().then(
  () => {
    killAll('SIGTERM');
    process.exit(0);
  },
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    killAll('SIGTERM');
    setTimeout(() => process.exit(1), 500);
  },
);
