// SSE load client for bench/run.ts, run as a child process (so its CPU is its
// own process, not the bench's). It opens N streaming chat completions against
// one port over raw TCP sockets (a prebuilt HTTP/1.1 request, a minimal response
// parser with chunked decoding: cheap enough to open 5,000 connections within
// 200 ms), in batches of `batch` every `batchGapMs`; it timestamps every connect
// and the first body byte, counts SSE events (`\n\n`), and prints one JSON line.
//   node dist/bench/stream-client.js '{"port":1234,"streams":100,"body":"…","expectEvents":130}'
// Traffic goes to 127.0.0.1 only; every stream has a deadline, so it ends by itself.
import { connect, type Socket } from 'node:net';

interface Args {
  port: number;
  streams: number;
  body: string;
  /** SSE events (`data: …\n\n`) a complete stream carries. */
  expectEvents: number;
  batch?: number;
  batchGapMs?: number;
  /** Per stream, from its connect() call. */
  timeoutMs?: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const BATCH = args.batch ?? 250;
const BATCH_GAP_MS = args.batchGapMs ?? 10;
const TIMEOUT_MS = args.timeoutMs ?? 120_000;
const payload = Buffer.from(args.body);
const head = Buffer.from(
  `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${args.port}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: ${payload.length}\r\nConnection: close\r\n\r\n`,
);
const requestBytes = Buffer.concat([head, payload]);

const ttfb: number[] = [];
const connectMs: number[] = [];
const gapsSampled: number[] = [];
let ok = 0;
let errors = 0;
let events = 0;
let reads = 0;
let open = 0;
let peakOpen = 0;
let connected = 0;
let peakConnected = 0;
/** Connections that took ≥ 900 ms to connect: a SYN (or SYN-ACK) retransmit waited out (the first is at 1 s). */
let slowConnects = 0;
let minEvents = Infinity;
let maxEvents = 0;
const errorKinds: Record<string, number> = {};

const enum St {
  Head,
  Size,
  Data,
  DataCrlf,
  Raw,
  Done,
}

function one(): Promise<void> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let settled = false;
    let sock: Socket;
    let headBuf = '';
    let st = St.Head;
    let left = 0; // bytes left in the current chunk
    let sizeLine = '';
    let prevNl = false;
    let n = 0;
    let lastData = -1;
    let isOpen = false;
    let isConnected = false;
    const finish = (kind: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (isOpen) open--;
      if (isConnected) connected--;
      if (kind === null) {
        minEvents = Math.min(minEvents, n);
        maxEvents = Math.max(maxEvents, n);
        if (n === args.expectEvents) ok++;
        else kind = 'incomplete';
      }
      if (kind !== null) {
        errors++;
        errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
      }
      sock.destroy();
      resolve();
    };
    const timer = setTimeout(() => finish('timeout'), TIMEOUT_MS);
    const body = (b: Buffer, from: number, to: number): void => {
      if (from >= to) return;
      const now = performance.now();
      if (lastData < 0) ttfb.push(now - t0);
      else if ((reads & 63) === 0) gapsSampled.push(now - lastData);
      lastData = now;
      for (let i = from; i < to; i++) {
        if (b[i] === 10) {
          if (prevNl) {
            n++;
            events++;
            prevNl = false;
          } else prevNl = true;
        } else if (b[i] !== 13) prevNl = false;
      }
    };
    sock = connect({ host: '127.0.0.1', port: args.port });
    sock.once('connect', () => {
      const ms = performance.now() - t0;
      connectMs.push(ms);
      if (ms >= 900) slowConnects++;
      isConnected = true;
      if (++connected > peakConnected) peakConnected = connected;
      sock.write(requestBytes);
    });
    sock.on('data', (b: Buffer) => {
      reads++;
      let i = 0;
      if (st === St.Head) {
        headBuf += b.toString('latin1');
        const end = headBuf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (headBuf.length > 65536) finish('bad_head');
          return;
        }
        const status = Number(headBuf.slice(9, 12));
        if (status !== 200) return finish(`status_${status}`);
        isOpen = true;
        if (++open > peakOpen) peakOpen = open;
        st = /\r\ntransfer-encoding:\s*chunked/i.test(headBuf.slice(0, end)) ? St.Size : St.Raw;
        i = b.length - (headBuf.length - end - 4);
        headBuf = '';
      }
      if (st === St.Raw) return body(b, i, b.length);
      for (let k = 0; k < 1_000_000 && i < b.length; k++) {
        if (st === St.Size) {
          const nl = b.indexOf(10, i);
          if (nl < 0) {
            sizeLine += b.toString('latin1', i);
            return;
          }
          sizeLine += b.toString('latin1', i, nl);
          i = nl + 1;
          left = parseInt(sizeLine.trim(), 16);
          sizeLine = '';
          if (!Number.isFinite(left)) return finish('bad_chunk');
          if (left === 0) {
            st = St.Done; // the last chunk: the trailer's CRLF need not be waited for
            return finish(null);
          }
          st = St.Data;
        } else if (st === St.Data) {
          const take = Math.min(left, b.length - i);
          body(b, i, i + take);
          i += take;
          left -= take;
          if (left === 0) st = St.DataCrlf;
        } else if (st === St.DataCrlf) {
          const nl = b.indexOf(10, i);
          if (nl < 0) return;
          i = nl + 1;
          st = St.Size;
        } else return;
      }
    });
    sock.on('end', () => finish(st === St.Raw ? null : st === St.Head ? 'closed_before_response' : 'closed_mid_stream'));
    sock.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'socket_error'));
  });
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const all: Array<Promise<void>> = [];
  for (let i = 0; i < args.streams; i += BATCH) {
    for (let j = i; j < Math.min(args.streams, i + BATCH); j++) all.push(one());
    if (i + BATCH < args.streams) await new Promise((r) => setTimeout(r, BATCH_GAP_MS));
  }
  const openedWithinMs = performance.now() - t0;
  await Promise.all(all);
  const seconds = (performance.now() - t0) / 1000;
  const out = {
    streams: args.streams,
    ok,
    errors,
    errorKinds,
    peakOpen,
    peakConnected,
    openedWithinMs,
    events,
    slowConnects,
    seconds,
    reads,
    readsPerStream: reads / args.streams,
    eventsPerStream: { expected: args.expectEvents, min: minEvents === Infinity ? 0 : minEvents, max: maxEvents },
    ttfbMs: { p50: pct(ttfb, 50), p99: pct(ttfb, 99), max: ttfb.length ? Math.max(...ttfb) : NaN },
    connectMs: { p50: pct(connectMs, 50), p99: pct(connectMs, 99), max: connectMs.length ? Math.max(...connectMs) : NaN },
    gapMs: { p50: pct(gapsSampled, 50), p99: pct(gapsSampled, 99), p999: pct(gapsSampled, 99.9), max: gapsSampled.length ? Math.max(...gapsSampled) : NaN },
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
