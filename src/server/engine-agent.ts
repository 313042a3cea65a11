// The keep-alive pool to the engine, and the one replay that covers the race
// with uvicorn's idle close. uvicorn closes a connection
// VLLM_HTTP_TIMEOUT_KEEP_ALIVE seconds (default 5) after its last response;
// a request the pool sends on that socket at the same moment meets a reset
// (ECONNRESET / EPIPE) before any response byte (vLLM PR #18472,
// llm-d/llm-d#1564). Two defences: idle pooled sockets are dropped well before
// the engine's deadline, and a request that still fails that way on a reused
// socket is sent once more on a fresh one when its body can be replayed.
import http from 'node:http';
import type { Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * How long an idle pooled socket is kept: the engine's keep-alive minus a
 * margin for the time a request takes to reach it -- 1 s, or half the
 * keep-alive when that is 2 s or less. `keepAliveMs` from the engine's
 * VLLM_HTTP_TIMEOUT_KEEP_ALIVE (engine/endpoint.ts).
 */
export function poolIdleMs(keepAliveMs: number): number {
  return keepAliveMs <= 2000 ? Math.max(1, Math.floor(keepAliveMs / 2)) : keepAliveMs - 1000;
}

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** Did this request fail because the engine closed the (reused) socket under it? */
export function isIdleCloseRace(err: NodeJS.ErrnoException, proxyReq: http.ClientRequest | undefined): boolean {
  return proxyReq?.reusedSocket === true && RESET_CODES.has(err.code ?? '');
}

export class EngineAgent extends http.Agent {
  readonly idleMs: number;
  #closing = false;
  constructor(idleMs: number) {
    super({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, scheduling: 'lifo' });
    this.idleMs = idleMs;
  }
  /** Stop pooling: idle sockets close now, busy ones once their response ends. */
  closeIdle(): void {
    this.#closing = true;
    for (const list of Object.values(this.freeSockets)) for (const s of list ?? []) s.destroy();
  }
  override keepSocketAlive(socket: Socket): boolean {
    if (this.#closing) return false;
    const keep = (http.Agent.prototype as unknown as { keepSocketAlive(s: Socket): boolean }).keepSocketAlive.call(this, socket);
    socket.setTimeout(this.idleMs); // an idle socket times out (and the agent destroys it) before the engine closes it
    return keep;
  }
  override reuseSocket(socket: Socket, req: http.ClientRequest): void {
    socket.setTimeout(0); // an active request may legitimately be silent for minutes (long prefill)
    (http.Agent.prototype as unknown as { reuseSocket(s: Socket, r: http.ClientRequest): void }).reuseSocket.call(this, socket, req);
  }
}

export class BodyTooLargeError extends Error {}

/**
 * The request body on its way to the engine: fails past `limit` bytes (a
 * chunked body has no declared length), and keeps a copy of up to
 * `keepUpTo` bytes so the request can be replayed once.
 */
export class RequestBody extends Transform {
  readonly #limit: number;
  readonly #keepUpTo: number;
  #seen = 0;
  #chunks: Buffer[] | undefined = [];
  constructor(limit: number, keepUpTo: number) {
    super();
    this.#limit = limit;
    this.#keepUpTo = keepUpTo;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) {
      cb(new BodyTooLargeError(`request body larger than ${this.#limit} bytes`));
      return;
    }
    if (this.#chunks && this.#seen <= this.#keepUpTo) this.#chunks.push(chunk);
    else this.#chunks = undefined; // too large to keep: not replayable
    cb(null, chunk);
  }
  /**
   * The whole body once the client has sent it, or undefined when it was too
   * large to keep (or the client went away). Reading continues even though
   * the first engine request is gone.
   */
  whole(): Promise<Buffer | undefined> {
    if (this.writableFinished) return Promise.resolve(this.#chunks ? Buffer.concat(this.#chunks) : undefined);
    this.resume(); // nothing reads the output any more: let the input flow into the copy
    return new Promise((resolve) => {
      this.once('finish', () => resolve(this.#chunks ? Buffer.concat(this.#chunks) : undefined));
      this.once('error', () => resolve(undefined));
      this.once('close', () => resolve(this.writableFinished && this.#chunks ? Buffer.concat(this.#chunks) : undefined));
    });
  }
}
