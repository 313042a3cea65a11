// SSE load client for bench/run.ts, run as a child process (so its CPU is its
// own process, not the bench's): opens N concurrent streaming chat completions
// against one port, timestamps every chunk it reads, and prints one JSON line.
//   node dist/bench/stream-client.js '{"port":1234,"streams":100,"body":"…","expectEvents":259}'
// Traffic goes to 127.0.0.1 only; every request has a deadline, so it ends by itself.
import { Agent, request } from 'node:http';

interface Args {
  port: number;
  streams: number;
  body: string;
  /** SSE events (`data: …\n\n`) a complete stream carries. */
  expectEvents: number;
  /** Connections opened per batch, one batch every `batchGapMs` (avoids SYN-backlog drops). */
  batch?: number;
  batchGapMs?: number;
  timeoutMs?: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const BATCH = args.batch ?? 250;
const BATCH_GAP_MS = args.batchGapMs ?? 10;
const TIMEOUT_MS = args.timeoutMs ?? 120_000;

// Inter-chunk gaps in ms, all streams together (grown as needed).
let gaps = new Float64Array(1 << 20);
let nGaps = 0;
function addGap(ms: number): void {
  if (nGaps === gaps.length) {
    const g = new Float64Array(gaps.length * 2);
    g.set(gaps);
    gaps = g;
  }
  gaps[nGaps++] = ms;
}
const ttfb: number[] = [];
let ok = 0;
let errors = 0;
let incomplete = 0;
let open = 0;
let peakOpen = 0;
let reads = 0;
let minEvents = Infinity;
let maxEvents = 0;
const errorKinds: Record<string, number> = {};

const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
const payload = Buffer.from(args.body);

function countEvents(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n\n'); i >= 0; i = s.indexOf('\n\n', i + 2)) n++;
  return n;
}

function one(): Promise<void> {
  return new Promise((resolve) => {
    let settled = false;
    const fail = (kind: string): void => {
      if (settled) return;
      settled = true;
      errors++;
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
      resolve();
    };
    const t0 = performance.now();
    const req = request(
      {
        host: '127.0.0.1',
        port: args.port,
        path: '/v1/chat/completions',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          fail(`status_${res.statusCode}`);
          return;
        }
        open++;
        if (open > peakOpen) peakOpen = open;
        let last = -1;
        let events = 0;
        let tail = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          const now = performance.now();
          reads++;
          if (last < 0) ttfb.push(now - t0);
          else addGap(now - last);
          last = now;
          // Count complete events; keep a short tail in case "\n\n" is split across reads.
          const s = tail + d;
          events += countEvents(s);
          const cut = s.lastIndexOf('\n\n');
          tail = cut >= 0 ? s.slice(cut + 2) : s;
          if (tail.length > 4096) tail = tail.slice(-4096);
          if (s.endsWith('data: [DONE]\n\n')) tail = '[DONE]';
        });
        res.on('end', () => {
          open--;
          if (settled) return;
          settled = true;
          minEvents = Math.min(minEvents, events);
          maxEvents = Math.max(maxEvents, events);
          if (tail === '[DONE]' && events === args.expectEvents) ok++;
          else {
            incomplete++;
            errorKinds.incomplete = (errorKinds.incomplete ?? 0) + 1;
            errors++;
          }
          resolve();
        });
        res.on('error', () => {
          open--;
          fail('response_error');
        });
      },
    );
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
    req.end(payload);
  });
}

function pct(xs: ArrayLike<number>, n: number, p: number): number {
  if (n === 0) return NaN;
  const i = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
  return xs[i]!;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const all: Array<Promise<void>> = [];
  for (let i = 0; i < args.streams; i += BATCH) {
    for (let j = i; j < Math.min(args.streams, i + BATCH); j++) all.push(one());
    if (i + BATCH < args.streams) await new Promise((r) => setTimeout(r, BATCH_GAP_MS));
  }
  await Promise.all(all);
  const seconds = (performance.now() - t0) / 1000;
  const g = gaps.subarray(0, nGaps).sort();
  const t = Float64Array.from(ttfb).sort();
  const out = {
    streams: args.streams,
    ok,
    errors,
    incomplete,
    errorKinds,
    peakOpen,
    seconds,
    reads,
    readsPerStream: ok > 0 ? reads / args.streams : 0,
    eventsPerStream: { expected: args.expectEvents, min: minEvents === Infinity ? 0 : minEvents, max: maxEvents },
    ttfbMs: { p50: pct(t, t.length, 50), p99: pct(t, t.length, 99), max: t.length ? t[t.length - 1]! : NaN },
    gapMs: { p50: pct(g, g.length, 50), p99: pct(g, g.length, 99), p999: pct(g, g.length, 99.9), max: g.length ? g[g.length - 1]! : NaN },
  };
  process.stdout.write(`STREAM_JSON ${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
