// Quick measurement for NIM_PROXY_WORKERS (issue #19 item 3): CPU of the whole
// supervisor (primary + workers, from /proc) per forwarded SSE event, and
// events/s, for each worker count, in interleaved rounds, medians.
//   npm run build && node dist/bench/proxy-workers-quick.js [workers=1,2] [streams=50] [tokens=256] [tokenMs=5] [rounds=3]
// Traffic goes to 127.0.0.1 only; every process started here is stopped at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const [workersArg = '1,2', streamsArg = '50', tokensArg = '256', tokenMsArg = '5', roundsArg = '3'] = process.argv.slice(2);
const WORKERS = workersArg.split(',').map(Number);
const STREAMS = Number(streamsArg);
const TOKENS = Number(tokensArg);
const ROUNDS = Number(roundsArg);
const MODEL = 'nvidia/nemotron-3-content-safety';

const children: ChildProcess[] = [];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** The supervisor's processes: the primary and its forked workers (not the engine, not the reaper). */
function supervisorPids(primary: number): number[] {
  const pids = [primary];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === primary && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('cli/main.js')) pids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return pids;
}

async function startSupervisor(workers: number): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [path.join(root, 'dist/src/cli/main.js'), 'serve'], {
    env: {
      ...process.env,
      PATH: `${path.join(root, 'bin')}:${process.env.PATH ?? ''}`,
      NIM_SERVER_PORT: String(port),
      NIM_SERVER_HOST: '127.0.0.1',
      NIM_PROXY_WORKERS: String(workers),
      NIM_LOG_LEVEL: 'WARNING',
      NIM_MAX_INFLIGHT_REQUESTS: '0',
      // As bench/run.ts: no per-request engine access log (the primary would re-log every line), no engine queueing.
      NIM_PASSTHROUGH_ARGS: '--disable-uvicorn-access-log --disable-log-stats',
      VLLM_SIM_MAX_CONCURRENCY: '100000',
      VLLM_SIM_STARTUP_MS: '50',
      VLLM_SIM_TOKEN_MS: tokenMsArg,
      VLLM_SIM_TTFT_MS: '0',
    },
    stdio: 'ignore',
    detached: true,
  });
  children.push(proc);
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(100)) {
    const ok = await new Promise<boolean>((resolve) => {
      request({ host: '127.0.0.1', port, path: '/v1/health/ready' }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      })
        .on('error', () => resolve(false))
        .end();
    });
    if (ok) return { port, proc };
  }
  throw new Error(`supervisor with ${workers} workers not ready`);
}

interface Round {
  ok: number;
  events: number;
  seconds: number;
  cpu: number;
  /** Of which the primary's (with workers: connection hand-off, probes, idle). */
  primaryCpu: number;
}

async function round(port: number, primary: number): Promise<Round> {
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Stream please.' }], max_tokens: TOKENS, ignore_eos: true, stream: true });
  const pids = supervisorPids(primary);
  const before = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  const primaryBefore = cpuSeconds(primary);
  const client = spawn(process.execPath, [path.join(root, 'dist/bench/stream-client.js'), JSON.stringify({ port, streams: STREAMS, body, expectEvents: TOKENS + 2 })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(client);
  let out = '';
  client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => client.once('exit', r));
  const after = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  const primaryCpu = cpuSeconds(primary) - primaryBefore;
  const r = JSON.parse(/STREAM_JSON (\{.*\})/.exec(out)![1]!) as { ok: number; seconds: number; eventsPerStream: { min: number }; errorKinds: Record<string, number> };
  if (r.ok < STREAMS) console.log(`  ${STREAMS - r.ok} streams failed: ${JSON.stringify(r.errorKinds)}`);
  return { ok: r.ok, events: r.ok * r.eventsPerStream.min, seconds: r.seconds, cpu: after - before, primaryCpu };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const sups = new Map<number, { port: number; proc: ChildProcess }>();
  for (const n of WORKERS) sups.set(n, await startSupervisor(n));
  const results = new Map<number, Round[]>(WORKERS.map((n) => [n, []]));
  for (const n of WORKERS) await round(sups.get(n)!.port, sups.get(n)!.proc.pid!); // warm-up
  for (let i = 0; i < ROUNDS; i++) {
    for (const n of WORKERS) {
      const s = sups.get(n)!;
      const r = await round(s.port, s.proc.pid!);
      results.get(n)!.push(r);
      console.log(`workers=${n} round ${i + 1}: ${r.ok}/${STREAMS} streams, ${r.events} events in ${r.seconds.toFixed(2)} s, supervisor CPU ${r.cpu.toFixed(2)} s = ${((r.cpu / r.events) * 1e6).toFixed(1)} µs/event (primary ${r.primaryCpu.toFixed(2)} s)`);
    }
  }
  console.log(`\n| workers | µs CPU per event (median) | events/s (median) | events/s per worker |`);
  console.log('|---:|---:|---:|---:|');
  for (const n of WORKERS) {
    const rs = results.get(n)!;
    const us = median(rs.map((r) => (r.cpu / r.events) * 1e6));
    const eps = median(rs.map((r) => r.events / r.seconds));
    console.log(`| ${n} | ${us.toFixed(1)} | ${eps.toFixed(0)} | ${(eps / n).toFixed(0)} |`);
  }
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) {
      try {
        if (c.exitCode === null) process.kill(-c.pid!, 'SIGTERM');
      } catch {
        /* gone, or not a group */
      }
    }
  });
