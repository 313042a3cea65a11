// WebSocket pass-through (issue #13, fault 4): vLLM's /v1/realtime through the
// real supervisor to the simulator, for a model with the realtime task. The API
// key, readiness gating, in-flight accounting and drain apply to the session;
// any other upgrade is refused at once (WebSocket) or served as plain HTTP (h2c).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { fixturesDir } from './helpers/process.js';
import { rawRequest } from './helpers/raw-http.js';
import { startSupervisor, type Supervisor } from './helpers/supervisor.js';

const KEY = 'ws-test-key';
const MODEL = 'mistralai/voxtral-mini-4b-realtime';
const env = { NIM_MANIFEST_PATH: path.join(fixturesDir, 'manifests', 'realtime.yaml'), NIM_API_KEY: KEY, VLLM_SIM_TOKEN_MS: '5' };

/** One second of 16 kHz PCM16 silence, base64 (as the realtime API takes audio). */
const AUDIO = Buffer.alloc(32_000).toString('base64');

type Event = { type: string; [k: string]: unknown };

/** Open a WebSocket; resolves with the socket and a reader of its JSON events, or rejects with the HTTP status it got instead. */
function openWs(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; next: (type: string) => Promise<Event>; events: Event[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const events: Event[] = [];
    const waiters: Array<{ type: string; resolve: (e: Event) => void }> = [];
    ws.on('message', (data) => {
      const e = JSON.parse(String(data)) as Event;
      events.push(e);
      const i = waiters.findIndex((w) => w.type === e.type);
      if (i >= 0) waiters.splice(i, 1)[0]!.resolve(e);
    });
    const next = (type: string): Promise<Event> => {
      const seen = events.find((e) => e.type === type && !(e as { taken?: boolean }).taken);
      if (seen) {
        (seen as { taken?: boolean }).taken = true;
        return Promise.resolve(seen);
      }
      return new Promise((r) => waiters.push({ type, resolve: (e) => ((e as { taken?: boolean }).taken = true, r(e)) }));
    };
    ws.once('open', () => resolve({ ws, next, events }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
}

/** A whole utterance: update, commit, append, final commit → the done event. */
async function transcribe(s: Awaited<ReturnType<typeof openWs>>): Promise<Event> {
  s.ws.send(JSON.stringify({ type: 'session.update', model: MODEL }));
  s.ws.send(JSON.stringify({ type: 'input_audio_buffer.commit' }));
  s.ws.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: AUDIO }));
  s.ws.send(JSON.stringify({ type: 'input_audio_buffer.commit', final: true }));
  return await s.next('transcription.done');
}

const status = async (p: Promise<unknown>): Promise<number | undefined> => {
  try {
    await p;
    return 101;
  } catch (err) {
    return (err as { status?: number }).status;
  }
};

describe('WebSocket /v1/realtime through the supervisor', { concurrency: true }, () => {
  let sup: Supervisor;
  let draining: Supervisor;
  before(async () => {
    [sup, draining] = await Promise.all([startSupervisor(env), startSupervisor({ ...env, NIM_SHUTDOWN_GRACE_PERIOD: '60' })]);
    await Promise.all([sup.waitReady(30_000), draining.waitReady(30_000)]);
  });
  after(() => {
    sup?.proc.kill('SIGKILL');
    draining?.proc.kill('SIGKILL');
  });
  const wsUrl = (s: Supervisor, p = '/v1/realtime'): string => `ws://127.0.0.1:${s.port}${p}`;

  it('a realtime session runs end to end with the API key, and counts as in flight while open', async () => {
    const s = await openWs(wsUrl(sup), { authorization: `Bearer ${KEY}` });
    const created = await s.next('session.created');
    assert.match(String(created.id), /^sess-/);
    const done = await transcribe(s);
    assert.ok(String(done.text).length > 0);
    const deltas = s.events.filter((e) => e.type === 'transcription.delta').map((e) => e.delta).join('');
    assert.equal(deltas, done.text);
    assert.deepEqual(Object.keys(done.usage as object), ['prompt_tokens', 'total_tokens', 'completion_tokens', 'prompt_tokens_details']);
    const metrics = await (await fetch(`${sup.baseUrl}/v1/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    assert.match(metrics, /nim_supervisor_http_requests_in_flight\{route="\/v1\/realtime"\} 1/);
    assert.match(metrics, /nim_supervisor_http_requests_total\{route="\/v1\/realtime",method="GET",status="101"\} 1/);
    s.ws.close();
    await new Promise((r) => s.ws.once('close', r));
  });

  it('the API key applies to the handshake', async () => {
    assert.equal(await status(openWs(wsUrl(sup))), 401);
    assert.equal(await status(openWs(wsUrl(sup), { authorization: 'Bearer wrong' })), 401);
  });

  it('a WebSocket handshake on any other route is refused at once', async () => {
    const t0 = performance.now();
    assert.equal(await status(openWs(wsUrl(sup, '/v1/chat/completions'), { authorization: `Bearer ${KEY}` })), 404);
    assert.equal(await status(openWs(wsUrl(sup, '/v1/health/ready'))), 404);
    assert.equal(await status(openWs(wsUrl(sup, '/health'), { authorization: `Bearer ${KEY}` })), 404, 'engine-internal routes stay internal');
    assert.ok(performance.now() - t0 < 10_000);
    // Raw: answered and closed, never left hanging.
    const raw = await rawRequest(sup.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', 5000);
    assert.equal(raw.status, 404);
    assert.equal(raw.closed, true);
  });

  it('any other upgrade (h2c) is served as plain HTTP on the same connection', async () => {
    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
    const req =
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n` +
      `Authorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` +
      `GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nConnection: close\r\n\r\n`;
    const raw = await rawRequest(sup.port, req, 10_000);
    assert.equal(raw.status, 200);
    assert.match(raw.text, /"object":"chat\.completion"/);
    // The pipelined request behind it was answered too.
    assert.match(raw.text, /"object":"list"/);
  });

  it('drain: an open session keeps working after SIGTERM, new handshakes get 503, and exit follows its close', async () => {
    const s = await openWs(wsUrl(draining), { authorization: `Bearer ${KEY}` });
    await s.next('session.created');
    draining.proc.kill('SIGTERM');
    await draining.proc.waitForOutput(/draining requests/, 10_000);
    assert.equal(await status(openWs(wsUrl(draining), { authorization: `Bearer ${KEY}` })), 503);
    const done = await transcribe(s);
    assert.ok(String(done.text).length > 0, 'the session is still served during the drain');
    const t0 = performance.now();
    s.ws.close();
    const exit = await draining.proc.exited;
    assert.equal(exit.code, 0);
    // The drain waited for the session, not for the 60 s grace period.
    assert.ok(performance.now() - t0 < 30_000);
  });
});
