// The older proxy survey, run by bench/run.ts for its legacy phases (--phases throughput,streams,bodies,scrapes,tracing)
// or directly: node dist/bench/legacy.js --phases 1,2,3,5,6 (phase 4, start-up, is bench/run.ts's `startup` now).
//
// Three paths to one simulator process, interleaved in every round:
//   (a) client → simulator (the engine's private port: the floor)
//   (b) client → nim-supervisor → simulator
//   (c) client → nginx → simulator (Debian's nginx, generated config; skipped if missing)
// Phases: 1 non-streaming chat at concurrency 1/16/64 (wrk, or autocannon if wrk
// is missing); 2 concurrent SSE streams (bench/stream-client.ts, a child);
// 3 10 MiB image bodies at concurrency 8; 4 start-up; 5 /v1/metrics scrapes under load;
// 6 the supervisor's CPU per request with tracing off and on (NIM_ENABLE_OTEL, spans to a loopback sink).
// Prints one summary table and writes bench/results/<timestamp>.json and latest.json.
//
// Options: --phases 1,2,3,4,5,6  --seconds 3  --rounds 3  --streams 100,1000,5000
//          --token-ms 20  --cpu-prof (supervisor runs with --cpu-prof into bench/results/profiles)
//          --no-nginx
// Everything listens on and talks to 127.0.0.1 only. Every process started here
// is stopped here, by pid, and every loop has a count and a deadline.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../src/engine/port.js';
import { NGINX, startNginx, stopNginx, type Nginx } from './lib/nginx.js';
import { flag, opt } from './lib/options.js';
import { runStreams as runStreamsIn, type StreamResult } from './lib/streams.js';
import { hardNofile, killAll, sleep, softNofile, startChild, stopChild, waitFor, WANT_NOFILE, type Child } from './lib/proc.js';
import { f, median, pct } from './lib/stats.js';
import { benchSupervisorEnv, countDirectEvents, httpGet, supervisorEntry } from './lib/supervisor.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const distDir = path.join(repoRoot, 'dist');
const resultsDir = path.join(repoRoot, 'bench', 'results');
const BENCH_DEADLINE = Date.now() + 9 * 60_000; // npm run bench must end within 10 minutes

// ---------------------------------------------------------------- options

const PHASES = new Set(opt('phases', '1,2,3,5,6').split(',').map(Number));
const SECONDS = Number(opt('seconds', '3'));
const ROUNDS = Number(opt('rounds', '3'));
const STREAM_LEVELS = opt('streams', '100,1000,5000').split(',').map(Number);
const TOKEN_MS = Number(opt('token-ms', '20'));
/** Token pace for the 5,000-stream level: 5,000 streams × 1/20 ms would be 250,000 chunks/s, far past 2 cores. */
const TOKEN_MS_5000 = Number(opt('token-ms-5000', '200'));
const tokenMsFor = (n: number): number => (n >= 5000 ? TOKEN_MS_5000 : TOKEN_MS);
const STREAM_TOKENS = 256;
const CPU_PROF = flag('cpu-prof');
const CONCURRENCIES = opt('concurrency', '1,16,64').split(',').map(Number);
const BIG_CONCURRENCY = 8;
const BIG_BYTES = 10 * 1024 * 1024;
const SCRAPES = 200;

type PathId = 'a' | 'b' | 'c';
const PATH_NAMES: Record<PathId, string> = { a: 'direct', b: 'supervisor', c: 'nginx' };

// ---------------------------------------------------------------- processes

for (const s of ['SIGINT', 'SIGTERM'] as const) {
  process.once(s, () => {
    killAll('SIGTERM');
    setTimeout(() => process.exit(130), 500).unref();
  });
}


const nowEpochMs = (): number => performance.timeOrigin + performance.now();


/** VmRSS of a pid in MB (MiB), or NaN. */
function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Sample a pid's RSS every 50 ms until stopped; returns the peak. */
function rssSampler(pid: number): () => number {
  let peak = rssMiB(pid);
  const t = setInterval(() => {
    const v = rssMiB(pid);
    if (v > peak || Number.isNaN(peak)) peak = v;
  }, 50);
  return () => {
    clearInterval(t);
    const v = rssMiB(pid);
    return Math.max(peak, Number.isNaN(v) ? 0 : v);
  };
}

// ---------------------------------------------------------------- HTTP helpers (bench's own, light)


// ---------------------------------------------------------------- supervisor

interface Supervisor {
  proc: Child;
  port: number;
  enginePort: number;
  enginePid: number;
  model: string;
  startup: StartupSample;
}
interface StartupSample {
  /** Bench spawn → the supervisor's `engine spawned` log record (its own clock, `time`). */
  spawnToEngineSpawnedMs: number;
  /** The supervisor's own figure: performance.now() at spawn (ms since its process started). */
  engineSpawnedLoggedMs: number;
  /** Engine /v1/models first 200 → supervisor /v1/health/ready first 200. */
  readyLagMs: number;
  engineServingAfterSpawnMs: number;
}

function logRecords(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      /* partial */
    }
  }
  return out;
}

/** Poll a URL every ~2 ms until it answers 200 (and `ok(body)`), returning the epoch ms of that answer. */
async function firstOk(port: number, p: string, deadline: number, ok: (body: string) => boolean = () => true): Promise<number> {
  for (let i = 0; i < 100_000 && performance.now() < deadline; i++) {
    try {
      const r = await httpGet(port, p, 1000);
      if (r.status === 200 && ok(r.body)) return nowEpochMs();
    } catch {
      /* not listening yet */
    }
    await sleep(2);
  }
  throw new Error(`${p} on ${port} never answered 200`);
}

async function startSupervisor(tokenMs: number, label: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Supervisor> {
  const port = await findFreePort();
  const env: NodeJS.ProcessEnv = { ...benchSupervisorEnv(repoRoot, port, tokenMs), ...extraEnv };
  const nodeArgs: string[] = [];
  if (CPU_PROF) {
    const dir = path.join(resultsDir, 'profiles');
    mkdirSync(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', `supervisor-${label}-${Date.now()}.cpuprofile`);
  }
  const t0 = nowEpochMs();
  // The entry users run: package.json's bin["nim-supervisor"].
  const proc = startChild(`supervisor-${label}`, process.execPath, [...nodeArgs, supervisorEntry(repoRoot), 'serve'], { env });
  const spawned = await waitFor(
    'engine spawn',
    () => {
      if (proc.child.exitCode !== null) throw new Error(`supervisor exited: ${proc.out().slice(-2000)}`);
      const recs = logRecords(proc.out());
      // The start-up report's "spawned" record: pid, port and elapsedS (s since supervisor launch).
      const eng = recs.find((r) => r.phase === 'spawned');
      return eng ? { eng, ms: { time: eng.time, ms: Number(eng.elapsedS) * 1000 } } : undefined;
    },
    20_000,
    2,
  );
  const enginePort = Number(spawned.eng.port);
  const deadline = performance.now() + 20_000;
  const [engineAt, readyAt] = await Promise.all([
    firstOk(enginePort, '/v1/models', deadline),
    firstOk(port, '/v1/health/ready', deadline),
  ]);
  const models = JSON.parse((await httpGet(enginePort, '/v1/models')).body) as { data: Array<{ id: string }> };
  return {
    proc,
    port,
    enginePort,
    enginePid: Number(spawned.eng.pid),
    model: models.data[0]!.id,
    startup: {
      spawnToEngineSpawnedMs: Date.parse(String(spawned.ms.time)) - t0,
      engineSpawnedLoggedMs: Number(spawned.ms.ms),
      readyLagMs: readyAt - engineAt,
      engineServingAfterSpawnMs: engineAt - Date.parse(String(spawned.eng.time)),
    },
  };
}

// ---------------------------------------------------------------- nginx


// ---------------------------------------------------------------- load generator (wrk child, or autocannon child)

interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
  mibPerSec: number;
}
const WRK = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find((p) => existsSync(p));
const AUTOCANNON = path.join(repoRoot, 'node_modules', 'autocannon', 'autocannon.js');
const LOADGEN = WRK ? 'wrk (1 thread, C)' : 'autocannon (child process)';
let tmpDir = '';

function wrkScript(): string {
  const p = path.join(tmpDir, 'post.lua');
  if (!existsSync(p)) {
    writeFileSync(
      p,
      `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BENCH_BODY_FILE"), "rb")
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`,
    );
  }
  return p;
}

async function load(port: number, urlPath: string, bodyFile: string, concurrency: number, seconds: number, reqBytes = 0): Promise<LoadResult> {
  const url = `http://127.0.0.1:${port}${urlPath}`;
  const proc = WRK
    ? startChild('wrk', WRK, ['-t1', `-c${concurrency}`, `-d${seconds}s`, '--timeout', '30s', '-s', wrkScript(), url], {
        env: { ...process.env, BENCH_BODY_FILE: bodyFile },
      })
    : startChild('autocannon', process.execPath, [
        AUTOCANNON,
        '-c',
        String(concurrency),
        '-d',
        String(seconds),
        '-m',
        'POST',
        '-H',
        'content-type=application/json',
        '-i',
        bodyFile,
        '--json',
        url,
      ]);
  const timer = setTimeout(() => void stopChild(proc, 'SIGKILL'), (seconds + 30) * 1000);
  await proc.exited;
  clearTimeout(timer);
  const out = proc.out();
  if (WRK) {
    const m = /BENCH_JSON (\{.*\})/.exec(out);
    if (!m) throw new Error(`wrk gave no result: ${out.slice(-1000)}`);
    const r = JSON.parse(m[1]!) as { requests: number; duration_us: number; errors: number; p50_us: number; p99_us: number };
    const s = r.duration_us / 1e6;
    return {
      rps: (r.requests - r.errors) / s,
      p50Ms: r.p50_us / 1000,
      p99Ms: r.p99_us / 1000,
      requests: r.requests,
      errors: r.errors,
      mibPerSec: (r.requests * reqBytes) / s / 1048576,
    };
  }
  const j = JSON.parse(out.slice(out.indexOf('{'))) as {
    requests: { total: number; average: number };
    latency: { p50: number; p99: number };
    errors: number;
    non2xx: number;
    duration: number;
    timeouts: number;
  };
  const errors = j.errors + j.non2xx + j.timeouts;
  return {
    rps: (j.requests.total - errors) / j.duration,
    p50Ms: j.latency.p50,
    p99Ms: j.latency.p99,
    requests: j.requests.total,
    errors,
    mibPerSec: (j.requests.total * reqBytes) / j.duration / 1048576,
  };
}

// ---------------------------------------------------------------- statistics


// ---------------------------------------------------------------- phases

interface Targets {
  [name: string]: { met: boolean; detail: string };
}

async function main(): Promise<void> {
  supervisorEntry(repoRoot); // throws, naming what to build, when missing
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'nim-bench-'));
  process.on('exit', () => rmSync(tmpDir, { recursive: true, force: true }));
  const useNginx = NGINX !== undefined && !flag('no-nginx');
  const paths: PathId[] = useNginx ? ['a', 'b', 'c'] : ['a', 'b'];
  const cpu = `${os.cpus().length} cores shared by everything: the simulator (1 Node process), the supervisor (1 Node process), nginx (1 worker), and the load generator (${LOADGEN}; SSE: one Node child process); the bench process itself only orchestrates.`;
  console.log(`nim-supervisor proxy benchmark — Node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})`);
  console.log(`CPU: ${cpu}`);
  console.log(`open files: soft ${softNofile}, hard ${hardNofile}; children get ${WANT_NOFILE}`);
  if (!useNginx) console.log(NGINX ? 'nginx: disabled by --no-nginx; path (c) skipped' : 'nginx: not found (apt-get install nginx-light); path (c) skipped');
  else console.log(`nginx: ${NGINX}, worker_processes 1 (the same single-process CPU budget as the supervisor)`);

  const results: Record<string, unknown> = {
    timestamp: new Date().toISOString(),
    machine: { cores: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, platform: `${os.type()} ${os.release()}`, memMiB: Math.round(os.totalmem() / 1048576) },
    cpuSharing: cpu,
    loadGenerator: LOADGEN,
    nginx: useNginx ? { binary: NGINX, workerProcesses: 1 } : null,
    options: { phases: [...PHASES], seconds: SECONDS, rounds: ROUNDS, streams: STREAM_LEVELS, tokenMs: STREAM_TOKENS && TOKEN_MS, cpuProf: CPU_PROF },
  };
  const targets: Targets = {};
  const table: string[] = [];
  const portOf = (p: PathId, sup: Supervisor, ngx: Nginx | undefined): number => (p === 'a' ? sup.enginePort : p === 'b' ? sup.port : ngx!.port);

  // ---------- phase 4 first: clean start-up samples (3 launches, nothing else running)
  const startups: StartupSample[] = [];
  if (PHASES.has(4)) {
    for (let i = 0; i < 3; i++) {
      const s = await startSupervisor(0, `startup${i}`);
      startups.push(s.startup);
      await stopChild(s.proc);
    }
  }

  // ---------- the zero-latency supervisor + simulator: phases 1, 3, 5
  if (PHASES.has(1) || PHASES.has(3) || PHASES.has(5)) {
    const sup = await startSupervisor(0, 'zero');
    startups.push(sup.startup);
    const ngx = useNginx ? await startNginx(sup.enginePort, 1, 511) : undefined;
    const chatFile = path.join(tmpDir, 'chat.json');
    writeFileSync(chatFile, JSON.stringify({ model: sup.model, messages: [{ role: 'user', content: 'Say hello to the benchmark.' }], max_tokens: 16 }));
    // Warm-up: JIT, connection pools.
    for (const p of paths) await load(portOf(p, sup, ngx), '/v1/chat/completions', chatFile, 16, 1);
    const idleRss = rssMiB(sup.proc.pid);
    results.supervisorIdleRssMiB = idleRss;

    if (PHASES.has(1)) {
      const phase1: Record<string, unknown> = {};
      table.push('', `1. Non-streaming chat completion (max_tokens 16, ~600 B response), ${ROUNDS} rounds × ${SECONDS} s, medians`);
      table.push('| conc | path | req/s | p50 ms | p99 ms | errors | (b)/(a) req/s | (c)/(a) req/s | (b)/(c) req/s | added p50 ms vs (a) |');
      table.push('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const c of CONCURRENCIES) {
        const per: Record<PathId, LoadResult[]> = { a: [], b: [], c: [] };
        for (let r = 0; r < ROUNDS; r++) {
          for (const p of paths) per[p].push(await load(portOf(p, sup, ngx), '/v1/chat/completions', chatFile, c, SECONDS));
          console.log(`phase 1 c=${c} round ${r + 1}: ` + paths.map((p) => `(${p}) ${f(per[p][r]!.rps, 0)} req/s p50 ${f(per[p][r]!.p50Ms, 2)} ms`).join(', '));
        }
        const med = (p: PathId, k: keyof LoadResult): number => median(per[p].map((x) => x[k]));
        const ratio = (x: PathId, y: PathId): number => median(per[x].map((v, i) => v.rps / per[y][i]!.rps));
        const row = {
          rounds: per,
          median: Object.fromEntries(paths.map((p) => [p, { rps: med(p, 'rps'), p50Ms: med(p, 'p50Ms'), p99Ms: med(p, 'p99Ms'), errors: per[p].reduce((s, x) => s + x.errors, 0) }])),
          ratioBA: ratio('b', 'a'),
          ratioCA: useNginx ? ratio('c', 'a') : NaN,
          ratioBC: useNginx ? ratio('b', 'c') : NaN,
          addedP50Ms: { b: med('b', 'p50Ms') - med('a', 'p50Ms'), c: useNginx ? med('c', 'p50Ms') - med('a', 'p50Ms') : NaN },
          addedP99Ms: { b: med('b', 'p99Ms') - med('a', 'p99Ms'), c: useNginx ? med('c', 'p99Ms') - med('a', 'p99Ms') : NaN },
        };
        phase1[`c${c}`] = row;
        for (const p of paths) {
          const m = row.median[p]!;
          const ratios = p === 'b' ? `${f(row.ratioBA, 2)} | | ${f(row.ratioBC, 2)} | ${f(row.addedP50Ms.b, 3)}` : p === 'c' ? ` | ${f(row.ratioCA, 2)} | | ${f(row.addedP50Ms.c, 3)}` : ' | | | ';
          table.push(`| ${c} | (${p}) ${PATH_NAMES[p]} | ${f(m.rps, 0)} | ${f(m.p50Ms, 2)} | ${f(m.p99Ms, 2)} | ${m.errors} | ${ratios} |`);
        }
        if (c === 16 && useNginx) {
          targets['c16 added latency ≤ nginx'] = {
            met: row.addedP50Ms.b <= row.addedP50Ms.c,
            detail: `added p50: supervisor ${f(row.addedP50Ms.b, 3)} ms, nginx ${f(row.addedP50Ms.c, 3)} ms (p99: ${f(row.addedP99Ms.b, 2)} vs ${f(row.addedP99Ms.c, 2)} ms)`,
          };
          targets['c16 (b)/(a) ≥ (c)/(a)'] = { met: row.ratioBA >= row.ratioCA, detail: `(b)/(a) ${f(row.ratioBA, 2)}, (c)/(a) ${f(row.ratioCA, 2)}` };
        }
      }
      results.phase1 = phase1;
    }

    if (PHASES.has(5)) {
      // 200 scrapes of /v1/metrics (engine metrics merged) while concurrency-16 load runs through the supervisor.
      const scrapeAgent = new Agent({ keepAlive: true, maxSockets: 1 });
      const scrape = async (n: number): Promise<number[]> => {
        const lat: number[] = [];
        for (let i = 0; i < n; i++) {
          const t = performance.now();
          const r = await httpGet(sup.port, '/v1/metrics', 5000, scrapeAgent);
          lat.push(performance.now() - t);
          if (r.status !== 200 || !r.body.includes('vllm:num_requests_running')) throw new Error(`bad scrape: ${r.status}`);
          await sleep(20);
        }
        return lat;
      };
      const idle = await scrape(50);
      const bg = load(sup.port, '/v1/chat/completions', chatFile, 16, 8);
      await sleep(500);
      const busy = await scrape(SCRAPES);
      const bgResult = await bg;
      const phase5 = {
        idle: { n: idle.length, p50Ms: median(idle), p99Ms: pct(idle, 99) },
        underLoad: { n: busy.length, p50Ms: median(busy), p99Ms: pct(busy, 99), maxMs: Math.max(...busy), backgroundRps: bgResult.rps },
      };
      results.phase5 = phase5;
      table.push('', `5. /v1/metrics scrape (supervisor + engine metrics merged), every 20 ms`);
      table.push('| condition | scrapes | p50 ms | p99 ms |', '|---|---:|---:|---:|');
      table.push(`| idle | ${idle.length} | ${f(phase5.idle.p50Ms, 2)} | ${f(phase5.idle.p99Ms, 2)} |`);
      table.push(`| under c=16 load via (b), ${f(bgResult.rps, 0)} req/s | ${busy.length} | ${f(phase5.underLoad.p50Ms, 2)} | ${f(phase5.underLoad.p99Ms, 2)} |`);
      targets['scrape p99 < 20 ms under load'] = { met: phase5.underLoad.p99Ms < 20, detail: `p99 ${f(phase5.underLoad.p99Ms, 2)} ms (p50 ${f(phase5.underLoad.p50Ms, 2)} ms)` };
    }

    if (PHASES.has(3)) {
      // A valid PNG data URL (PNG signature first), padded with base64 'A's to 10 MiB of body.
      const head = JSON.stringify({ model: sup.model, max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'text', text: 'Describe.' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo' } }] }] });
      const at = head.indexOf('iVBORw0KGgo') + 'iVBORw0KGgo'.length;
      let pad = BIG_BYTES - head.length;
      pad -= (pad + 'iVBORw0KGgo'.length) % 4; // keep the base64 length a multiple of 4
      const big = head.slice(0, at) + 'A'.repeat(pad) + head.slice(at);
      const bigFile = path.join(tmpDir, 'big.json');
      writeFileSync(bigFile, big);
      const probe = await load(sup.enginePort, '/v1/chat/completions', bigFile, 1, 1);
      if (probe.errors > 0) throw new Error('the simulator refused the 10 MiB image request');
      const per: Record<PathId, LoadResult[]> = { a: [], b: [], c: [] };
      const rssPeaks: number[] = [];
      const bigRounds = Math.max(1, Math.min(ROUNDS, 3));
      for (let r = 0; r < bigRounds; r++) {
        for (const p of paths) {
          const stopRss = p === 'b' ? rssSampler(sup.proc.pid) : undefined;
          per[p].push(await load(portOf(p, sup, ngx), '/v1/chat/completions', bigFile, BIG_CONCURRENCY, SECONDS, big.length));
          if (stopRss) rssPeaks.push(stopRss());
        }
        console.log(`phase 3 round ${r + 1}: ` + paths.map((p) => `(${p}) ${f(per[p][r]!.rps, 1)} req/s ${f(per[p][r]!.mibPerSec, 0)} MiB/s`).join(', '));
      }
      const phase3 = {
        bodyBytes: big.length,
        concurrency: BIG_CONCURRENCY,
        rounds: per,
        median: Object.fromEntries(paths.map((p) => [p, { rps: median(per[p].map((x) => x.rps)), mibPerSec: median(per[p].map((x) => x.mibPerSec)), p50Ms: median(per[p].map((x) => x.p50Ms)), p99Ms: median(per[p].map((x) => x.p99Ms)), errors: per[p].reduce((s, x) => s + x.errors, 0) }])),
        supervisorPeakRssMiB: Math.max(...rssPeaks),
        supervisorIdleRssMiB: idleRss,
      };
      results.phase3 = phase3;
      table.push('', `3. 10 MiB base64-image chat requests (max_tokens 1), concurrency ${BIG_CONCURRENCY}, ${bigRounds} rounds × ${SECONDS} s, medians`);
      table.push('| path | req/s | MiB/s up | p50 ms | p99 ms | errors |', '|---|---:|---:|---:|---:|---:|');
      for (const p of paths) {
        const m = phase3.median[p]!;
        table.push(`| (${p}) ${PATH_NAMES[p]} | ${f(m.rps, 1)} | ${f(m.mibPerSec, 0)} | ${f(m.p50Ms, 0)} | ${f(m.p99Ms, 0)} | ${m.errors} |`);
      }
      table.push(`Supervisor RSS: idle ${f(idleRss, 0)} MiB, peak during (b) ${f(phase3.supervisorPeakRssMiB, 0)} MiB (${BIG_CONCURRENCY} × 10 MiB in flight = 80 MiB if buffered).`);
    }
    if (ngx) await stopNginx(ngx);
    await stopChild(sup.proc);
  }

  // ---------- phase 2: streaming, on a second supervisor + simulator with VLLM_SIM_TOKEN_MS
  if (PHASES.has(2)) {
    let sup = await startSupervisor(tokenMsFor(STREAM_LEVELS[0] ?? 100), 'stream');
    let supTokenMs = tokenMsFor(STREAM_LEVELS[0] ?? 100);
    startups.push(sup.startup);
    let ngx = useNginx ? await startNginx(sup.enginePort, 1, 511) : undefined;
    const body = JSON.stringify({ model: sup.model, messages: [{ role: 'user', content: 'Stream please.' }], max_tokens: STREAM_TOKENS, ignore_eos: true, stream: true });
    // role chunk + 256 token chunks + usage chunk? Count what a direct stream carries.
    const expect = await countDirectEvents(sup.enginePort, body);
    const phase2: Record<string, unknown> = { tokenMs: TOKEN_MS, tokenMs5000: TOKEN_MS_5000, tokens: STREAM_TOKENS, eventsPerStream: expect };
    table.push('', `2. SSE streams of ${STREAM_TOKENS} tokens (ignore_eos); simulator behind its own supervisor with VLLM_SIM_TOKEN_MS=${TOKEN_MS} (${TOKEN_MS_5000} for 5,000 streams); medians of rounds`);
    table.push('| streams | token ms | path | ok | errors | TTFB p50 ms | TTFB p99 ms | gap p50 ms | gap p99 ms | reads/stream | wall s | supervisor peak RSS MiB |');
    table.push('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    let peak5000 = NaN;
    let errors5000 = 0;
    for (const n of STREAM_LEVELS) {
      if (tokenMsFor(n) !== supTokenMs) {
        // Another token pace needs another simulator (it reads VLLM_SIM_TOKEN_MS at start).
        if (ngx) await stopNginx(ngx);
        await stopChild(sup.proc);
        supTokenMs = tokenMsFor(n);
        sup = await startSupervisor(supTokenMs, `stream${supTokenMs}`);
        startups.push(sup.startup);
        ngx = useNginx ? await startNginx(sup.enginePort, 1, 511) : undefined;
      }
      const rounds = n <= 100 ? 2 : 1;
      const per: Record<PathId, Array<StreamResult & { rssPeakMiB?: number }>> = { a: [], b: [], c: [] };
      for (let r = 0; r < rounds; r++) {
        for (const p of paths) {
          const stopRss = rssSampler(sup.proc.pid);
          const res = await runStreams(portOf(p, sup, ngx), n, body, expect);
          const peak = stopRss();
          per[p].push(p === 'b' ? { ...res, rssPeakMiB: peak } : res);
          console.log(`phase 2 n=${n} round ${r + 1} (${p}): ok ${res.ok}/${n}, ttfb p50 ${f(res.ttfbMs.p50, 1)} p99 ${f(res.ttfbMs.p99, 1)} ms, gap p50 ${f(res.gapMs.p50, 1)} p99 ${f(res.gapMs.p99, 1)} ms, ${f(res.seconds, 1)} s${p === 'b' ? `, RSS ${f(peak, 0)} MiB` : ''}`);
          await sleep(300);
        }
      }
      const summary = Object.fromEntries(
        paths.map((p) => {
          const xs = per[p];
          return [
            p,
            {
              ok: xs.reduce((s, x) => s + x.ok, 0),
              errors: xs.reduce((s, x) => s + x.errors, 0),
              ttfbP50Ms: median(xs.map((x) => x.ttfbMs.p50)),
              ttfbP99Ms: median(xs.map((x) => x.ttfbMs.p99)),
              gapP50Ms: median(xs.map((x) => x.gapMs.p50)),
              gapP99Ms: median(xs.map((x) => x.gapMs.p99)),
              readsPerStream: median(xs.map((x) => x.readsPerStream)),
              seconds: median(xs.map((x) => x.seconds)),
              rssPeakMiB: p === 'b' ? Math.max(...xs.map((x) => x.rssPeakMiB ?? 0)) : undefined,
            },
          ];
        }),
      );
      phase2[`n${n}`] = { rounds: per, summary };
      for (const p of paths) {
        const s = summary[p]!;
        table.push(`| ${n} | ${supTokenMs} | (${p}) ${PATH_NAMES[p]} | ${s.ok} | ${s.errors} | ${f(s.ttfbP50Ms)} | ${f(s.ttfbP99Ms)} | ${f(s.gapP50Ms)} | ${f(s.gapP99Ms)} | ${f(s.readsPerStream, 0)} | ${f(s.seconds)} | ${p === 'b' ? f(s.rssPeakMiB!, 0) : ''} |`);
      }
      if (n === 5000) {
        peak5000 = summary.b!.rssPeakMiB!;
        errors5000 = summary.b!.errors;
      }
    }
    results.phase2 = phase2;
    if (STREAM_LEVELS.includes(5000)) {
      targets['5,000 streams: 0 errors, RSS < 250 MB'] = { met: errors5000 === 0 && peak5000 * 1.048576 < 250, detail: `${errors5000} errors, supervisor peak RSS ${f(peak5000, 0)} MiB (${f(peak5000 * 1.048576, 0)} MB)` };
    }
    if (ngx) await stopNginx(ngx);
    await stopChild(sup.proc);
  }

  // ---------- phase 6: what tracing costs. Two supervisors, interleaved rounds, the same load;
  // CPU of the supervisor process from /proc over each run, per request.
  if (PHASES.has(6)) {
    const sink = await startOtlpSink();
    const off = await startSupervisor(0, 'trace-off');
    const on = await startSupervisor(0, 'trace-on', { NIM_ENABLE_OTEL: '1', OTEL_EXPORTER_OTLP_ENDPOINT: sink.url });
    const chatFile = path.join(tmpDir, 'chat6.json');
    writeFileSync(chatFile, JSON.stringify({ model: off.model, messages: [{ role: 'user', content: 'Say hello to the benchmark.' }], max_tokens: 16 }));
    for (const s of [off, on]) await load(s.port, '/v1/chat/completions', chatFile, 16, 1);
    const per: Record<'off' | 'on', number[]> = { off: [], on: [] };
    for (let r = 0; r < ROUNDS && Date.now() < BENCH_DEADLINE; r++) {
      for (const [k, s] of [['off', off], ['on', on]] as const) {
        const cpu0 = cpuSecondsOf(s.proc.pid);
        const res = await load(s.port, '/v1/chat/completions', chatFile, 16, SECONDS);
        per[k].push(((cpuSecondsOf(s.proc.pid) - cpu0) * 1e6) / Math.max(1, res.requests));
      }
      console.log(`phase 6 round ${r + 1}: tracing off ${f(per.off[r]!, 1)} µs/request, on ${f(per.on[r]!, 1)} µs/request`);
    }
    const phase6 = { cpuUsPerRequest: { off: median(per.off), on: median(per.on) }, rounds: per, spansReceived: sink.spans() };
    results.phase6 = phase6;
    table.push('', '6. Tracing (non-streaming chat, c=16; supervisor CPU per request, medians)');
    table.push('| tracing | µs CPU / request |', '|---|---:|');
    table.push(`| off (default: no tracing code on the request path) | ${f(phase6.cpuUsPerRequest.off, 1)} |`);
    table.push(`| on (NIM_ENABLE_OTEL=1, batch export to a loopback sink) | ${f(phase6.cpuUsPerRequest.on, 1)} (${f(phase6.cpuUsPerRequest.on / phase6.cpuUsPerRequest.off, 2)}×) |`);
    targets['tracing on adds < 50% CPU per request'] = {
      met: phase6.cpuUsPerRequest.on < 1.5 * phase6.cpuUsPerRequest.off,
      detail: `${f(phase6.cpuUsPerRequest.off, 1)} → ${f(phase6.cpuUsPerRequest.on, 1)} µs/request; ${sink.spans()} spans exported`,
    };
    await stopChild(off.proc);
    await stopChild(on.proc);
    await sink.close();
  }

  if (startups.length > 0) {
    const s = {
      samples: startups,
      median: {
        spawnToEngineSpawnedMs: median(startups.map((x) => x.spawnToEngineSpawnedMs)),
        engineSpawnedLoggedMs: median(startups.map((x) => x.engineSpawnedLoggedMs)),
        readyLagMs: median(startups.map((x) => x.readyLagMs)),
      },
      max: { readyLagMs: Math.max(...startups.map((x) => x.readyLagMs)), spawnToEngineSpawnedMs: Math.max(...startups.map((x) => x.spawnToEngineSpawnedMs)) },
    };
    results.phase4 = s;
    table.push('', `4. Start-up (${startups.length} launches; medians, max in brackets)`);
    table.push('| measure | ms |', '|---|---:|');
    table.push(`| bench spawn → \`engine spawned\` log record | ${f(s.median.spawnToEngineSpawnedMs, 0)} (${f(s.max.spawnToEngineSpawnedMs, 0)}) |`);
    table.push(`| supervisor's own \`ms\` (since its process start) | ${f(s.median.engineSpawnedLoggedMs, 0)} |`);
    table.push(`| engine serving (/v1/models 200) → public /v1/health/ready 200 | ${f(s.median.readyLagMs, 1)} (${f(s.max.readyLagMs, 1)}) |`);
    targets['start-up before engine spawn < 200 ms'] = { met: s.median.spawnToEngineSpawnedMs < 200, detail: `median ${f(s.median.spawnToEngineSpawnedMs, 0)} ms from the bench's spawn (${f(s.median.engineSpawnedLoggedMs, 0)} ms by the supervisor's clock)` };
    targets['ready lag < 100 ms'] = { met: s.max.readyLagMs < 100, detail: `median ${f(s.median.readyLagMs, 1)} ms, max ${f(s.max.readyLagMs, 1)} ms` };
  }

  results.targets = targets;
  table.push('', 'Targets', '| target | met | measured |', '|---|---|---|');
  for (const [name, t] of Object.entries(targets)) table.push(`| ${name} | ${t.met ? 'yes' : 'NO'} | ${t.detail} |`);
  const text = table.join('\n');
  results.summaryTable = text;
  console.log(`\n${text}\n`);
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(path.join(resultsDir, `legacy-${stamp}.json`), JSON.stringify(results, null, 2));
  writeFileSync(path.join(resultsDir, 'legacy-latest.json'), JSON.stringify(results, null, 2));
  console.log(`results: bench/results/legacy-${stamp}.json (and legacy-latest.json)`);
}

/** User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15, in clock ticks of 100 Hz). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** An OTLP/HTTP sink on loopback that accepts and counts spans (JSON), for phase 6. */
async function startOtlpSink(): Promise<{ url: string; spans: () => number; close: () => Promise<void> }> {
  let spans = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      spans += (body.match(/"spanId"/g) ?? []).length;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    spans: () => spans,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function runStreams(port: number, n: number, body: string, expectEvents: number): Promise<StreamResult> {
  if (Date.now() > BENCH_DEADLINE) throw new Error('bench deadline passed');
  return await runStreamsIn(distDir, port, n, body, expectEvents, { timeoutMs: 120_000 });
}

const hardStop = setTimeout(() => {
  console.error('bench: 10-minute limit reached; stopping everything');
  killAll('SIGKILL');
  process.exit(1);
}, BENCH_DEADLINE + 25_000 - Date.now());
hardStop.unref();

main().then(
  async () => {
    killAll('SIGTERM');
    process.exit(0);
  },
  (e: unknown) => {
    console.error(e);
    killAll('SIGTERM');
    setTimeout(() => process.exit(1), 300);
  },
);
