// Throughput of the vLLM simulator against a minimal node:http server.
//   npm run build && node dist/bench/sim-throughput.js [--seconds 3] [--rounds 2] [--streams 2000]
// Starts the built simulator (zero latencies) and a hello server as separate
// processes on 127.0.0.1, drives each with keep-alive requests at concurrency
// 16 in interleaved rounds, prints requests/s and the ratio, then opens
// 2,000 concurrent SSE streams against a simulator with a per-token delay.
// Stops by itself; not part of `npm test`.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort } from '../src/engine/port.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const simMain = path.join(repoRoot, 'dist', 'src', 'sim', 'main.js');

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const SECONDS = arg('seconds', 3);
const ROUNDS = arg('rounds', 2);
const STREAMS = arg('streams', 2000);
const CONCURRENCY = 16;

const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});


const logDir = mkdtempSync(path.join(tmpdir(), 'sim-bench-'));
process.on('exit', () => rmSync(logDir, { recursive: true, force: true }));

/**
 * Start a server process with its output going to a file, as a supervisor
 * writing engine logs would; the load generator then spends no CPU on it.
 */
async function startProcess(args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<ChildProcess> {
  const log = path.join(logDir, `${children.length}.log`);
  const fd = openSync(log, 'w');
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  children.push(child);
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  const deadline = Date.now() + 15_000;
  while (!ready.test(readFileSync(log, 'utf8'))) {
    if (exited !== null || Date.now() > deadline) throw new Error(`not ready (exit ${exited}): ${readFileSync(log, 'utf8').slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

const HELLO_SRC = `
const http = require('node:http');
const body = '{"ok":true}';
http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => { res.writeHead(200, {'content-type': 'application/json', 'content-length': body.length}); res.end(body); });
}).listen(Number(process.argv[1]), '127.0.0.1', () => console.log('listening'));
`;

const CHAT_BODY = JSON.stringify({
  model: 'bench',
  messages: [{ role: 'user', content: 'Say hello to the benchmark.' }],
  max_tokens: 16,
});

function once(agent: Agent, port: number, p: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: p, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function load(port: number, p: string, body: string, seconds: number): Promise<{ rps: number; errors: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const deadline = performance.now() + seconds * 1000;
  let ok = 0;
  let errors = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      try {
        const s = await once(agent, port, p, body);
        if (s === 200) ok++;
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const dt = (performance.now() - t0) / 1000;
  agent.destroy();
  return { rps: ok / dt, errors };
}

let openNow = 0;
let openPeak = 0;

function stream(agent: Agent, port: number, maxTokens: number): Promise<{ ok: boolean; chunks: number }> {
  const body = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'Stream please.' }], max_tokens: maxTokens, ignore_eos: true, stream: true });
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        openPeak = Math.max(openPeak, ++openNow);
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('close', () => openNow--);
        res.on('end', () => resolve({ ok: res.statusCode === 200 && text.endsWith('data: [DONE]\n\n'), chunks: text.split('\n\n').length - 1 }));
        res.on('error', () => resolve({ ok: false, chunks: 0 }));
      },
    );
    req.setTimeout(60_000, () => req.destroy());
    req.on('error', () => resolve({ ok: false, chunks: 0 }));
    req.end(body);
  });
}

async function gauge(port: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const m = new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(await res.text());
  return m ? Number(m[1]) : NaN;
}

async function main(): Promise<void> {
  const zero = { VLLM_SIM_STARTUP_MS: '0', VLLM_SIM_TTFT_MS: '0', VLLM_SIM_TOKEN_MS: '0' };
  const simPort = await findFreePort();
  const quietPort = await findFreePort();
  const helloPort = await findFreePort();
  const ready = /Application startup complete/;
  await startProcess([simMain, 'serve', 'bench', '--host', '127.0.0.1', '--port', String(simPort)], zero, ready);
  await startProcess(
    [simMain, 'serve', 'bench', '--host', '127.0.0.1', '--port', String(quietPort), '--disable-uvicorn-access-log', '--disable-log-stats'],
    zero,
    ready,
  );
  await startProcess(['-e', HELLO_SRC, String(helloPort)], {}, /listening/);

  // Warm up all three (JIT, connections).
  await load(helloPort, '/', CHAT_BODY, 0.5);
  await load(simPort, '/v1/chat/completions', CHAT_BODY, 0.5);
  await load(quietPort, '/v1/chat/completions', CHAT_BODY, 0.5);

  const hello: number[] = [];
  const sim: number[] = [];
  const quiet: number[] = [];
  let errors = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const h = await load(helloPort, '/', CHAT_BODY, SECONDS);
    const s = await load(simPort, '/v1/chat/completions', CHAT_BODY, SECONDS);
    const q = await load(quietPort, '/v1/chat/completions', CHAT_BODY, SECONDS);
    hello.push(h.rps);
    sim.push(s.rps);
    quiet.push(q.rps);
    errors += h.errors + s.errors + q.errors;
    console.log(`round ${r + 1}: hello ${h.rps.toFixed(0)} req/s, sim ${s.rps.toFixed(0)} req/s, sim (no access log) ${q.rps.toFixed(0)} req/s`);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  // Per-round ratios, median: robust against a noisy neighbour on a small machine.
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ratios = sim.map((v, i) => v / hello[i]!);
  const quietRatios = quiet.map((v, i) => v / hello[i]!);
  console.log(
    `non-streaming chat, concurrency ${CONCURRENCY}, ${ROUNDS}x${SECONDS}s: hello ${mean(hello).toFixed(0)} req/s; ` +
      `sim ${mean(sim).toFixed(0)} req/s (ratio ${(mean(sim) / mean(hello)).toFixed(2)}); ` +
      `sim without access log ${mean(quiet).toFixed(0)} req/s (ratio ${(mean(quiet) / mean(hello)).toFixed(2)}); errors ${errors}`,
  );
  console.log(`median per-round ratio: sim/hello ${median(ratios).toFixed(2)}, sim without access log/hello ${median(quietRatios).toFixed(2)}`);

  // Concurrent SSE streams: 64 tokens 50 ms apart, so all of them are open at once.
  const ssePort = await findFreePort();
  await startProcess(
    [simMain, 'serve', 'bench', '--host', '127.0.0.1', '--port', String(ssePort), '--disable-uvicorn-access-log'],
    { ...zero, VLLM_SIM_TOKEN_MS: '50' },
    ready,
  );
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const t0 = performance.now();
  const all = Array.from({ length: STREAMS }, () => stream(agent, ssePort, 64));
  let peak = 0;
  const sampler = setInterval(() => {
    void gauge(ssePort, 'vllm:num_requests_running').then((v) => (peak = Math.max(peak, v)), () => {});
  }, 100);
  const results = await Promise.all(all);
  clearInterval(sampler);
  const dt = (performance.now() - t0) / 1000;
  const ok = results.filter((r) => r.ok).length;
  const chunks = results.reduce((a, r) => a + r.chunks, 0);
  console.log(
    `SSE: ${STREAMS} streams x 64 tokens @50 ms: ${ok} completed, ${STREAMS - ok} errors, ${chunks} events, ` +
      `peak open streams ${openPeak} (client side), peak vllm:num_requests_running ${peak}, ${dt.toFixed(2)} s`,
  );
  for (const c of children) c.kill('SIGTERM');
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
