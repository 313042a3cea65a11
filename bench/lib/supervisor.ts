// Start the supervisor the way a user does: `node <package.json bin["nim-supervisor"]> serve`,
// with a stub `vllm` first on PATH that records the engine's pid and start time
// (then execs the real bin/vllm, the simulator). No `nvidia-smi` is added: on this
// project's machines there is none, and the supervisor selects its CPU profile, as `npm start` does.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import path from 'node:path';
import { findFreePort } from '../../src/engine/port.js';
import { alive, orphanWatch, running, startChild, stopChild, waitFor, type Child } from './proc.js';
import type { Tree } from './proctree.js';
import { median } from './stats.js';

export interface BenchEnv {
  repoRoot: string;
  /** Holds the stubs `vllm` and `nvidia-smi`. */
  stubDir: string;
  tmpDir: string;
}

/** The supervisor's entry point: package.json's bin["nim-supervisor"] (so a bundled entry is picked up as it lands). */
export function supervisorEntry(repoRoot: string): string {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { bin?: Record<string, string> | string };
  const rel = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.['nim-supervisor'];
  if (!rel) throw new Error('package.json has no bin["nim-supervisor"]');
  const abs = path.join(repoRoot, rel);
  if (!existsSync(abs)) throw new Error(`${rel} (package.json bin["nim-supervisor"]) does not exist: run npm run build first`);
  return abs;
}

/** The command line that launches the entry: node for JavaScript files, the file itself otherwise. */
export function launchCommand(entry: string): { command: string; args: string[] } {
  return /\.(c|m)?js$/.test(entry) ? { command: process.execPath, args: [entry] } : { command: entry, args: [] };
}

export function writeStubs(env: BenchEnv): void {
  const vllm = path.join(env.stubDir, 'vllm');
  // $$ survives both execs (stub → bin/vllm → node), so it is the engine's pid.
  writeFileSync(
    vllm,
    `#!/bin/sh
# bench stub: record when the engine starts (only for 'vllm serve'), then run the simulator
if [ "$1" = serve ] && [ -n "$NIM_BENCH_ENGINE_STAMP" ]; then
  printf '%s %s\\n' "$$" "$(date +%s%N)" >> "$NIM_BENCH_ENGINE_STAMP"
fi
exec ${JSON.stringify(path.join(env.repoRoot, 'bin', 'vllm'))} "$@"
`,
  );
  chmodSync(vllm, 0o755);
}

export interface SupervisorOptions {
  label: string;
  /** VLLM_SIM_TOKEN_MS of its simulator (read once at the simulator's start). */
  tokenMs: number;
  /** NIM_PROXY_WORKERS; undefined: not set (the supervisor's default, or the caller's environment). */
  workers?: number;
  /** The listen backlog, set through the supervisor's backlog variable when it has one. */
  backlog?: number;
  extraEnv?: NodeJS.ProcessEnv;
  /** Launch bench/spawn-floor.js instead (Node spawning the engine at once: the start-up floor); implies waitReady false. */
  spawnFloor?: boolean;
  /** Wait for /v1/health/ready (default true). */
  waitReady?: boolean;
  raiseNofile?: boolean;
}

export interface Supervisor {
  proc: Child;
  port: number;
  enginePid: number;
  enginePort: number;
  model: string;
  /** Bench spawn → the stub vllm's own timestamp, ms. */
  launchToEngineMs: number;
  /** The supervisor's tree without the engine. */
  tree: Tree;
  engineTree: Tree;
  stampFile: string;
}

/** The supervisor's backlog variable, if its variable table has one (found by name, so the bench needs no change when it lands). */
export async function backlogVariable(repoRoot: string): Promise<string | undefined> {
  const p = path.join(repoRoot, 'dist', 'src', 'config', 'variables.js');
  if (!existsSync(p)) return undefined;
  try {
    const m = (await import(p)) as { VARIABLES?: Array<{ name: string }> };
    return m.VARIABLES?.map((v) => v.name).find((n) => /BACKLOG/.test(n));
  } catch {
    return undefined;
  }
}

/** A fresh connection per poll (nothing pooled between the bench's own requests). */
export const pollAgent = new Agent({ keepAlive: false });
export function httpGet(port: number, p: string, timeoutMs = 5000, agent: Agent = pollAgent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: p, agent: pollAgent, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** SSE events (`\n\n`) one streamed request with `body` carries, asked straight of the engine. */
export async function countDirectEvents(port: number, body: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent: pollAgent, headers: { 'content-type': 'application/json' } }, (res) => {
      let t = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (t += d));
      res.on('end', () => resolve(t.split('\n\n').length - 1));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function enginePortOf(pid: number): number | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.indexOf('--port');
    if (i >= 0) return Number(argv[i + 1]);
    const eq = argv.find((a) => a.startsWith('--port='));
    return eq ? Number(eq.slice(7)) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What every bench supervisor runs with (bench/run.ts and bench/legacy.ts): this process's environment, the
 * simulator first on PATH after `pathFirst`, the public port on 127.0.0.1, JSON-lines logs, and a simulator
 * pacing tokens every `tokenMs`. No fake nvidia-smi: the supervisor selects its CPU profile, as npm start does.
 */
export function benchSupervisorEnv(repoRoot: string, port: number, tokenMs: number, pathFirst: string[] = []): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: [...pathFirst, path.join(repoRoot, 'bin'), process.env.PATH ?? ''].join(path.delimiter),
    NIM_SERVER_PORT: String(port),
    NIM_SERVER_HOST: '127.0.0.1',
    NIM_JSONL_LOGGING: '1',
    NIM_LOG_LEVEL: 'INFO',
    // The simulator's per-request access line would be re-logged by the supervisor for every request.
    NIM_PASSTHROUGH_ARGS: '--disable-uvicorn-access-log --disable-log-stats',
    VLLM_SIM_STARTUP_MS: '300',
    VLLM_SIM_TTFT_MS: '0',
    VLLM_SIM_TOKEN_MS: String(tokenMs),
    // The CPU profile's --max-num-seqs would queue requests inside the engine; 5,000 streams must all run at once.
    VLLM_SIM_MAX_CONCURRENCY: '100000',
  };
  delete e.FAKE_NVIDIA_SMI;
  // A machine's own CA bundle for its egress proxy (a CI sandbox sets one): Node reads and parses it
  // at every start, before any of the supervisor's code runs (nodeBootCost measures it). An image
  // does not set it; bench supervisors and the start-up floor run as there.
  delete e.NODE_EXTRA_CA_CERTS;
  return e;
}

export function supervisorEnv(env: BenchEnv, port: number, o: SupervisorOptions, stampFile: string, backlogVar: string | undefined): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {
    ...benchSupervisorEnv(env.repoRoot, port, o.tokenMs, [env.stubDir]),
    NIM_BENCH_ENGINE_STAMP: stampFile,
    ...o.extraEnv,
  };
  if (o.workers !== undefined) e.NIM_PROXY_WORKERS = String(o.workers);
  if (o.backlog !== undefined && backlogVar) e[backlogVar] = String(o.backlog);
  return e;
}

let seq = 0;
export async function startSupervisor(env: BenchEnv, o: SupervisorOptions): Promise<Supervisor> {
  const entry = supervisorEntry(env.repoRoot);
  const { command, args } = o.spawnFloor
    ? { command: process.execPath, args: [path.join(env.repoRoot, 'dist', 'bench', 'spawn-floor.js')] }
    : { ...launchCommand(entry), args: [...launchCommand(entry).args, 'serve'] };
  const port = await findFreePort();
  const stampFile = path.join(env.tmpDir, `engine-${o.label}-${seq++}.stamp`);
  writeFileSync(stampFile, '');
  const backlogVar = o.backlog !== undefined ? await backlogVariable(env.repoRoot) : undefined;
  const e = supervisorEnv(env, port, o, stampFile, backlogVar);
  const t0 = Date.now();
  const proc = startChild(`supervisor-${o.label}`, command, args, { env: e, raiseNofile: o.raiseNofile ?? true });
  const stamp = await waitFor(
    `the engine of supervisor-${o.label} to start`,
    () => {
      if (!running(proc)) throw new Error(`supervisor-${o.label} exited: ${proc.out().slice(-2000)}`);
      const line = readFileSync(stampFile, 'utf8').split('\n')[0];
      if (!line) return undefined;
      const [pid, ns] = line.split(' ');
      return { pid: Number(pid), atMs: Number(BigInt(ns!) / 1_000_000n) + Number(BigInt(ns!) % 1_000_000n) / 1e6 };
    },
    30_000,
    2,
  );
  orphanWatch.add(stamp.pid);
  const sup: Supervisor = {
    proc,
    port,
    enginePid: stamp.pid,
    enginePort: NaN,
    model: '',
    launchToEngineMs: stamp.atMs - t0,
    tree: { root: proc.pid, exclude: [stamp.pid] },
    engineTree: { root: stamp.pid, exclude: [] },
    stampFile,
  };
  if (o.waitReady === false || o.spawnFloor) return sup;
  sup.enginePort = await waitFor('the engine port', () => enginePortOf(stamp.pid), 10_000, 5);
  await waitFor(
    `supervisor-${o.label} ready`,
    async () => {
      if (!running(proc)) throw new Error(`supervisor-${o.label} exited: ${proc.out().slice(-2000)}`);
      try {
        return (await httpGet(port, '/v1/health/ready', 2000)).status === 200 ? true : undefined;
      } catch {
        return undefined;
      }
    },
    60_000,
    20,
  );
  const models = JSON.parse((await httpGet(sup.enginePort, '/v1/models')).body) as { data: Array<{ id: string }> };
  sup.model = models.data[0]!.id;
  return sup;
}

/** SIGTERM the supervisor, wait for it, and make sure its engine is gone too (SIGKILL by pid if not). */
export async function stopSupervisor(s: Supervisor): Promise<void> {
  await stopChild(s.proc, 'SIGTERM', 15_000);
  for (let i = 0; i < 100 && alive(s.enginePid); i++) await new Promise((r) => setTimeout(r, 50));
  if (alive(s.enginePid)) {
    try {
      process.kill(s.enginePid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  orphanWatch.delete(s.enginePid);
}

/**
 * What NODE_EXTRA_CA_CERTS (when this environment sets it) adds to every Node start: medians of
 * `node -e 0` wall time, ms, with and without it (5 runs each, interleaved). Undefined when unset.
 */
export function nodeBootCost(): { withMs: number; withoutMs: number } | undefined {
  if (!process.env.NODE_EXTRA_CA_CERTS) return undefined;
  const without = { ...process.env };
  delete without.NODE_EXTRA_CA_CERTS;
  const time = (env: NodeJS.ProcessEnv): number => {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', '0'], { env, stdio: 'ignore' });
    return performance.now() - t0;
  };
  const withMs: number[] = [];
  const withoutMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    withMs.push(time(process.env));
    withoutMs.push(time(without));
  }
  return { withMs: median(withMs), withoutMs: median(withoutMs) };
}
