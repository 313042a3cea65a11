// vLLM's realtime transcription WebSocket, `/v1/realtime`, for models with the
// `realtime` task (vllm/entrypoints/openai/realtime/: api_router.py,
// connection.py, protocol.py). The protocol, as connection.py runs it:
//   server → session.created {id: "sess-…", created}
//   client → session.update {model}            (marks the model validated)
//   client → input_audio_buffer.commit          (starts generation; needs the model validated)
//   client → input_audio_buffer.append {audio}  (base64 PCM16, 16 kHz mono)
//   server → transcription.delta {delta} …      (as audio arrives)
//   client → input_audio_buffer.commit {final: true}  (audio finished)
//   server → transcription.done {text, usage}
// Errors are `{"type":"error","error":msg,"code":code}` events; the socket stays open.
// The simulator has no audio model: the text is prose from the generator, about
// four tokens per second of audio, paced like generation (VLLM_SIM_TOKEN_MS).
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { hash32, plan } from './generator.js';
import { randomHex, type SimState } from './http.js';

/**
 * Whether the served model has vLLM's `realtime` task. vLLM reads it from the
 * model class (SupportsRealtime, e.g. VoxtralRealtimeGeneration); the
 * simulator has no weights, so it goes by the model id (`…-Realtime-…`).
 */
export function hasRealtimeTask(model: string): boolean {
  return /realtime/i.test(model);
}

/** 16 kHz PCM16: samples per second, and audio tokens per second (80 ms frames). */
const SAMPLE_RATE = 16_000;
const AUDIO_TOKENS_PER_S = 12.5;
const TEXT_TOKENS_PER_S = 4;

/** uvicorn's answer to a WebSocket handshake no route accepted (or the auth middleware refused). */
function uvicornRefusal(socket: Duplex): void {
  socket.end('HTTP/1.1 403 Forbidden\r\nserver: uvicorn\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
}

/** uvicorn ignores other Upgrade protocols (h2c …) and answers the HTTP request: hand it back to the parser. */
function serveAsHttp(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (name === 'upgrade' || name === 'http2-settings' || name === 'connection') continue;
    lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
  }
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), head]));
  server.emit('connection', socket);
}

export interface RealtimeOptions {
  /** The model has the realtime task (hasRealtimeTask). */
  enabled: boolean;
  /** vLLM's API key check (it guards WebSocket scopes under /v1 too). */
  authorized: (req: IncomingMessage) => boolean;
  needsAuth: boolean;
}

/**
 * Answer WebSocket handshakes on `server`: `/v1/realtime` when the model has
 * the realtime task; any other is refused with 403, as uvicorn refuses a
 * WebSocket no route accepted. Returns a closer for the open sessions.
 */
export function attachRealtime(server: Server, state: SimState, opts: RealtimeOptions): { close(): void } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let path = q < 0 ? url : url.slice(0, q);
    const root = state.config.rootPath;
    if (root && path.startsWith(root)) path = path.slice(root.length) || '/';
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      serveAsHttp(server, req, socket, head);
      return;
    }
    if (!opts.enabled || path !== '/v1/realtime' || (opts.needsAuth && !opts.authorized(req))) {
      uvicornRefusal(socket);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => session(ws, state));
  });
  return {
    close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

function session(ws: WebSocket, state: SimState): void {
  const { config, tokenizer, logger } = state;
  const connectionId = `ws-${randomHex()}`;
  const send = (event: object): void => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(event));
  };
  const sendError = (error: string, code: string): void => send({ type: 'error', error, code });
  send({ type: 'session.created', id: `sess-${randomHex()}`, created: Math.floor(Date.now() / 1000) });

  let validated = false;
  // One utterance: generation started by a commit, fed by appends, ended by a final commit.
  let generating = false;
  let queued: number[] = []; // audio chunks (samples) not yet transcribed
  let samples = 0;
  let text = '';
  let completionTokens = 0;
  let final = false;
  let pumping = false;
  let chunkNo = 0;

  const pump = async (): Promise<void> => {
    if (pumping) return;
    pumping = true;
    while (generating && ws.readyState === ws.OPEN) {
      const chunk = queued.shift();
      if (chunk === undefined) {
        if (!final) break;
        const promptTokens = Math.ceil((samples / SAMPLE_RATE) * AUDIO_TOKENS_PER_S);
        send({
          type: 'transcription.done',
          text,
          usage: { prompt_tokens: promptTokens, total_tokens: promptTokens + completionTokens, completion_tokens: completionTokens, prompt_tokens_details: null },
        });
        generating = false;
        final = false;
        queued = [];
        samples = 0;
        text = '';
        completionTokens = 0;
        break;
      }
      const n = Math.max(1, Math.round((chunk / SAMPLE_RATE) * TEXT_TOKENS_PER_S));
      const p = plan(tokenizer, { seedKey: hash32(connectionId, String(chunkNo++)), maxTokens: n, minTokens: 0, ignoreEos: true, stop: [], includeStopStr: false, continuation: text !== '' });
      for (const piece of p.pieces) {
        if (config.tokenMs > 0) await new Promise((r) => setTimeout(r, config.tokenMs));
        if (ws.readyState !== ws.OPEN) break;
        text += piece;
        completionTokens += 1;
        send({ type: 'transcription.delta', delta: piece });
      }
    }
    pumping = false;
  };

  const handle = (event: Record<string, unknown>): void => {
    const type = event.type;
    if (type === 'session.update') {
      // connection.py checks the model but ignores the result: any session.update validates.
      validated = true;
    } else if (type === 'input_audio_buffer.append') {
      let bytes: Buffer;
      try {
        if (typeof event.audio !== 'string') throw new Error('audio: Field required');
        bytes = Buffer.from(event.audio, 'base64');
        if (bytes.length < 2) throw new Error("Can't process empty audio.");
      } catch (e) {
        logger.log('ERROR', 'connection.py:131', `Failed to decode audio: ${(e as Error).message}`);
        sendError('Invalid audio data', 'invalid_audio');
        return;
      }
      const n = Math.floor(bytes.length / 2);
      samples += n;
      queued.push(n);
      if (generating) void pump();
    } else if (type === 'input_audio_buffer.commit') {
      if (!validated) {
        sendError('Model not validated. Make sure to validate the model by sending a session.update event.', 'model_not_validated');
        return;
      }
      if (event.final === true) {
        final = true;
        if (generating) void pump();
      } else if (!generating) {
        generating = true;
        void pump();
      }
    } else {
      sendError(`Unknown event type: ${String(type)}`, 'unknown_event');
    }
  };

  ws.on('message', (data: RawData, isBinary: boolean) => {
    let event: unknown;
    try {
      if (isBinary) throw new Error('binary frame');
      event = JSON.parse(String(data));
    } catch {
      sendError('Invalid JSON', 'invalid_json');
      return;
    }
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      sendError(`Unknown event type: None`, 'unknown_event');
      return;
    }
    handle(event as Record<string, unknown>);
  });
  ws.on('error', () => ws.terminate());
  ws.on('close', () => {
    generating = false;
  });
}
