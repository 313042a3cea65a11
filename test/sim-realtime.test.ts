// The simulator's edge behaviours taken from vLLM (issue #13): the realtime
// WebSocket for a model with the realtime task (its error events included),
// no realtime route for other models, and an event stream's status and headers
// sent before the first token.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startSim, type RunningSim } from './helpers/sim.js';

function session(url: string): Promise<{ ws: WebSocket; events: Array<Record<string, unknown>>; next(): Promise<Record<string, unknown>> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const events: Array<Record<string, unknown>> = [];
    let read = 0;
    const waiters: Array<() => void> = [];
    ws.on('message', (d) => {
      events.push(JSON.parse(String(d)) as Record<string, unknown>);
      for (const w of waiters.splice(0)) w();
    });
    const next = async (): Promise<Record<string, unknown>> => {
      while (read >= events.length) await new Promise<void>((r) => waiters.push(r));
      return events[read++]!;
    };
    ws.once('open', () => resolve({ ws, events, next }));
    ws.once('unexpected-response', (_q, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
  });
}

describe('simulator: /v1/realtime and stream start', { concurrency: true }, () => {
  let realtime: RunningSim;
  let chat: RunningSim;
  before(async () => {
    [realtime, chat] = await Promise.all([
      startSim([], {}, { model: 'mistralai/Voxtral-Mini-4B-Realtime-2602' }),
      startSim([], { VLLM_SIM_TTFT_MS: '3000' }),
    ]);
  });
  after(() => {
    realtime?.proc.kill('SIGKILL');
    chat?.proc.kill('SIGKILL');
  });

  it('follows connection.py: session.created, then error events for bad input, the socket staying open', async () => {
    const s = await session(`ws://127.0.0.1:${realtime.port}/v1/realtime`);
    const created = await s.next();
    assert.equal(created.type, 'session.created');
    assert.equal(typeof created.created, 'number');
    s.ws.send('not json');
    assert.deepEqual(await s.next(), { type: 'error', error: 'Invalid JSON', code: 'invalid_json' });
    s.ws.send(JSON.stringify({ type: 'input_audio_buffer.commit' }));
    assert.equal((await s.next()).code, 'model_not_validated');
    s.ws.send(JSON.stringify({ type: 'response.create' }));
    assert.deepEqual(await s.next(), { type: 'error', error: 'Unknown event type: response.create', code: 'unknown_event' });
    s.ws.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: '' }));
    assert.deepEqual(await s.next(), { type: 'error', error: 'Invalid audio data', code: 'invalid_audio' });
    s.ws.close();
  });

  it('a model without the realtime task has no /v1/realtime (uvicorn refuses the handshake with 403)', async () => {
    await assert.rejects(session(`ws://127.0.0.1:${chat.port}/v1/realtime`), (e: { status?: number }) => e.status === 403);
  });

  it('an event stream sends its status and headers before the first token (as uvicorn does)', async () => {
    const t0 = performance.now();
    const res = await fetch(`${chat.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 2 }),
    });
    const headersAt = performance.now() - t0;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    await reader.read();
    const firstEventAt = performance.now() - t0;
    while (!(await reader.read()).done);
    // Ordering, not a timing bound: the headers came first, the first event after the 3 s "prefill".
    assert.ok(headersAt < firstEventAt, `headers at ${headersAt} ms, first event at ${firstEventAt} ms`);
    assert.ok(firstEventAt - headersAt > 1000, 'the headers did not wait for the first token');
  });
});
