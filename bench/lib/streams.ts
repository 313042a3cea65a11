// Streaming load for the bench: bench/stream-client.ts run as a child (its CPU is its own process's),
// N streamed chat completions against one port, and its one-line JSON result.
import path from 'node:path';
import { startChild, stopChild } from './proc.js';

/** What bench/stream-client.ts prints (`STREAM_JSON {…}`). */
export interface StreamResult {
  streams: number;
  ok: number;
  errors: number;
  errorKinds: Record<string, number>;
  peakOpen: number;
  peakConnected: number;
  openedWithinMs: number;
  events: number;
  slowConnects: number;
  seconds: number;
  readsPerStream: number;
  eventsPerStream: { expected: number; min: number; max: number };
  ttfbMs: { p50: number; p99: number; max: number };
  connectMs: { p50: number; p99: number; max: number };
  gapMs: { p50: number; p99: number; p999: number; max: number };
}

export interface StreamOptions {
  /** Streams opened together, every `batchGapMs` (the client's defaults when left out: 250 every 10 ms). */
  batch?: number;
  batchGapMs?: number;
  /** Per stream, from its connect() (default 60 s); the client is killed 30 s after that. */
  timeoutMs?: number;
}

/** `n` streams of `body` to 127.0.0.1:`port`, each expected to carry `expectEvents` SSE events. */
export async function runStreams(distDir: string, port: number, n: number, body: string, expectEvents: number, o: StreamOptions = {}): Promise<StreamResult> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const args = { port, streams: n, body, expectEvents, batch: o.batch, batchGapMs: o.batchGapMs, timeoutMs };
  const proc = startChild('stream-client', process.execPath, [path.join(distDir, 'bench', 'stream-client.js'), JSON.stringify(args)]);
  const timer = setTimeout(() => void stopChild(proc, 'SIGKILL'), timeoutMs + 30_000);
  await proc.exited;
  clearTimeout(timer);
  const m = /STREAM_JSON (\{.*\})/.exec(proc.out());
  if (!m) throw new Error(`stream client gave no result: ${proc.out().slice(-2000)}`);
  return JSON.parse(m[1]!) as StreamResult;
}
