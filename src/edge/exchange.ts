// One proxied request/response on the fast path: the request head rewritten
// for the engine (hop-by-hop headers out, X-Forwarded-* in), the body passed
// on with its framing checked, the engine's response head rewritten for the
// client (hop-by-hop and the engine's CORS headers out, ours and the SSE
// anti-buffering ones in), and the response body passed through unchanged,
// chunk framing included. The guarantees are the node:http path's
// (server/proxy.ts): limits, aborts reaching the engine, one replay after
// uvicorn's idle close, and streams the engine breaks ending in a way the
// client can tell apart from success.
import { responseCorsHeaders, isCorsResponseHeader } from '../server/cors.js';
import { admitProxied, tooLargeMessage } from '../server/admission.js';
import { openAIError } from '../server/errors.js';
import { SSE_ANTI_BUFFERING, KEEP_ALIVE_COMMENT } from '../server/sse-keepalive.js';
import { ChunkedScanner, ChunkedSyntaxError, chunkOf } from './chunked.js';
import type { PooledSocket, SocketOwner } from './engine-pool.js';
import type { FastProxy, FastRoute, ResponsePeek, TickedStream } from './fast-proxy.js';
import { BadResponseHead, parseResponseHead, type RequestHead, type ResponseHead } from './head.js';
import { errorResponse, headerLines } from './raw-response.js';
import { CLIENT_ADDRESS_HEADER } from '../server/internal-headers.js';
import { HOP_BY_HOP } from '../server/hop-by-hop.js';

/** The client side of an exchange (client-connection.ts). */
export interface ClientSide {
  /** Strings are heads (latin1: each char one byte, as they were read). */
  write(data: string | Buffer): boolean;
  /** Stop/restart reading the client while the engine cannot take more of the body. */
  pauseReading(): void;
  resumeReading(): void;
  onDrain(fn: () => void): void;
  /** The exchange is over: `reuse` = the connection may carry another request. */
  exchangeDone(reuse: boolean): void;
  /** Cut the client connection (a response that cannot be completed). */
  destroy(): void;
  /** X-Forwarded-* values of this connection. */
  remoteAddress: string;
  encrypted: boolean;
}

// Hop-by-hop headers (RFC 9110 §7.6.1), the X-Forwarded-* the edge sets itself, and the supervisor's internal ones.
const DROP_REQUEST = new Set([...HOP_BY_HOP, 'x-forwarded-for', 'x-forwarded-port', 'x-forwarded-proto', CLIENT_ADDRESS_HEADER]);
const DROP_RESPONSE = new Set(HOP_BY_HOP);

/** Largest request body kept in memory for a replay after an idle-close race. */
const REPLAY_MAX_BYTES = 16 * 1024 * 1024;
/** Largest response head accepted from the engine. */
const MAX_RESPONSE_HEAD = 64 * 1024;
const SSE = 'text/event-stream';
/** Body bytes up to this size are sent in the same write as a head. */
const INLINE_BODY_MAX = 16 * 1024;

const enum Phase {
  /** Waiting for the engine's response head. */
  Head,
  /** Passing the response body through. */
  Body,
  /** The response is complete (or was answered by the edge); the request body may still be arriving. */
  Answered,
  Finished,
}

export class Exchange implements TickedStream, SocketOwner {
  readonly #client: ClientSide;
  readonly #head: RequestHead;
  readonly #proxy: FastProxy;
  #route: FastRoute;
  readonly #start = performance.now();
  #phase = Phase.Head;
  #status = 200;
  #counted = false;
  #inflight = false;

  // Request body
  #bodyLeft: number; // bytes still to come (declared length), or -1 chunked
  #reqScanner: ChunkedScanner | undefined;
  #bodyDone: boolean;
  /** Body bytes go nowhere (refused, or the engine already answered). */
  #discard = false;
  /** Bytes discarded so far, and the most that will be read before cutting. */
  #discarded = 0;
  #keep: Buffer[] | undefined = []; // the body so far, for a replay (undefined: too large)
  #kept = 0;
  #closeAfter: boolean;

  // Engine side
  #upstream: PooledSocket | undefined;
  /** The client's reading is paused until the engine socket drains (request body backpressure). */
  #clientPaused = false;
  #forwardHead = '';
  /** The head is not written yet (it goes with the first body bytes). */
  #headPending = false;
  #replayed = false;
  #resBuf: Buffer | undefined;
  #res: ResponseHead | undefined;
  #resLeft = 0;
  #resScanner: ChunkedScanner | undefined;
  #sse = false;
  #peek: ResponsePeek | undefined;
  #gotBody = false;
  #upstreamError: string | undefined;
  // SSE keep-alive (TickedStream)
  lastTick = 0;

  constructor(client: ClientSide, head: RequestHead, route: FastRoute, proxy: FastProxy) {
    this.#client = client;
    this.#head = head;
    this.#route = route;
    this.#proxy = proxy;
    this.#bodyLeft = head.contentLength;
    this.#bodyDone = head.contentLength === 0;
    this.#closeAfter = head.close;
    if (head.contentLength < 0) this.#reqScanner = new ChunkedScanner();
  }

  /** Decide and start: refuse at once, or connect to the engine and send the head. */
  start(): void {
    const proxy = this.#proxy;
    const o = proxy.opts;
    const head = this.#head;
    if (proxy.matches !== undefined && !proxy.matches(head.authorization)) {
      this.#route = proxy.unmatched(head.method);
      this.#refuse(401, "Invalid or missing API key: send it as 'Authorization: Bearer <key>'.", 'www-authenticate: Bearer\r\n');
      return;
    }
    const target = o.target();
    const refusal = admitProxied({
      state: o.lifecycle.state,
      reason: o.lifecycle.reason,
      hasTarget: target !== undefined,
      inflight: o.inflight.count,
      maxInflight: o.maxInflight,
      maxInflightLabel: o.maxInflightLabel,
      declaredLength: head.contentLength >= 0 ? head.contentLength : undefined,
      maxBodyBytes: o.maxRequestBodyBytes,
    });
    if (refusal !== undefined) {
      const r = this.#route;
      (refusal.kind === 'not_ready' ? r.rejectedNotReady : refusal.kind === 'overloaded' ? r.rejectedOverloaded : r.rejectedTooLarge).inc();
      // A body too large to read is not read: answer, then close once it is discarded (or cut past a bound).
      if (refusal.kind === 'too_large') this.#closeAfter = true;
      this.#refuse(refusal.status, refusal.message, headerLines(refusal.headers));
      return;
    }
    this.#inflight = true;
    o.inflight.enter();
    this.#route.inFlight.inc();
    this.#forwardHead = this.#buildForwardHead();
    this.#connect(target!, false);
  }

  // ------------------------------------------------------------ request side

  /**
   * Client bytes `buf[start, end)` while the request body is due. Returns the
   * offset where the body ended (bytes after it are the next request), or -1
   * when all of them were body.
   */
  body(buf: Buffer, start: number, end: number): number {
    let stop: number;
    if (this.#bodyLeft >= 0) {
      const take = Math.min(this.#bodyLeft, end - start);
      this.#bodyLeft -= take;
      stop = start + take;
      if (this.#bodyLeft === 0) this.#bodyDone = true;
    } else {
      let r: number;
      try {
        r = this.#reqScanner!.scan(buf, start, end);
      } catch (err) {
        this.#badBody((err as ChunkedSyntaxError).message);
        return -1;
      }
      stop = r < 0 ? end : r;
      if (r >= 0) this.#bodyDone = true;
      if (this.#reqScanner!.payloadBytes > this.#proxy.opts.maxRequestBodyBytes && !this.#discard) this.#tooLargeMidway();
    }
    if (stop > start) this.#forwardBody(buf.subarray(start, stop));
    if (this.#bodyDone) {
      if (this.#phase === Phase.Answered) this.#finish();
      return stop;
    }
    return -1;
  }

  /** Nothing was written to the client yet (the engine has not answered, the edge has not refused). */
  get unanswered(): boolean {
    return this.#phase === Phase.Head;
  }

  /** The body is still due (the connection feeds it here). */
  get wantsBody(): boolean {
    return !this.#bodyDone;
  }

  #forwardBody(chunk: Buffer): void {
    if (this.#discard) {
      this.#discarded += chunk.length;
      if (this.#discarded > Math.max(this.#proxy.opts.maxRequestBodyBytes, REPLAY_MAX_BYTES)) this.#client.destroy();
      return;
    }
    if (this.#keep !== undefined) {
      this.#kept += chunk.length;
      if (this.#kept <= REPLAY_MAX_BYTES) this.#keep.push(chunk);
      else this.#keep = undefined;
    }
    const up = this.#upstream!;
    let ok: boolean;
    if (this.#headPending) {
      // One write for head and body (one syscall, no writev): a small body rides along as latin1.
      this.#headPending = false;
      ok = chunk.length <= INLINE_BODY_MAX ? up.write(this.#forwardHead + chunk.toString('latin1'), 'latin1') : (up.write(this.#forwardHead, 'latin1'), up.write(chunk));
    } else ok = up.write(chunk);
    if (!ok && !this.#clientPaused) {
      this.#clientPaused = true;
      this.#client.pauseReading();
      up.once('drain', () => this.#resumeClient());
    }
  }

  /** Undo the pause on the client's reading that waited for the engine socket to drain (once). */
  #resumeClient(): void {
    if (!this.#clientPaused) return;
    this.#clientPaused = false;
    this.#client.resumeReading();
  }

  /** A chunked request body grew past NIM_MAX_REQUEST_BODY: 413, the engine request is dropped. */
  #tooLargeMidway(): void {
    this.#route.rejectedTooLarge.inc();
    this.#dropUpstream();
    this.#closeAfter = true;
    if (this.#phase === Phase.Head) this.#answer(413, tooLargeMessage(this.#proxy.opts.maxRequestBodyBytes), '');
    this.#discard = true;
  }

  /** A malformed chunked body: 400, the connection closes (nothing after it can be framed). */
  #badBody(reason: string): void {
    this.#dropUpstream();
    this.#closeAfter = true;
    this.#bodyDone = true;
    if (this.#phase === Phase.Head) this.#answer(400, `Malformed chunked request body: ${reason}.`, '');
    this.#finish();
  }

  // ------------------------------------------------------------ engine side

  #buildForwardHead(): string {
    const h = this.#head;
    const c = this.#client;
    let s = `${h.method} ${h.target} HTTP/1.1\r\n`;
    let xff: string | undefined;
    let xfport: string | undefined;
    let xfproto: string | undefined;
    let xfhost = false;
    for (let i = 0; i < h.names.length; i++) {
      const name = h.names[i]!;
      if (DROP_REQUEST.has(name)) {
        // Appended to, as http-proxy's xfwd does: `<theirs>,<ours>`.
        if (name === 'x-forwarded-for') xff = xff === undefined ? h.values[i] : `${xff},${h.values[i]}`;
        else if (name === 'x-forwarded-port') xfport = h.values[i];
        else if (name === 'x-forwarded-proto') xfproto = h.values[i];
        continue;
      }
      if (name === 'x-forwarded-host') xfhost = true;
      s += `${h.rawNames[i]}: ${h.values[i]}\r\n`;
    }
    const colon = h.host.lastIndexOf(':');
    const port = colon >= 0 && h.host.indexOf(']', colon) < 0 ? h.host.slice(colon + 1) : c.encrypted ? '443' : '80';
    const proto = c.encrypted ? 'https' : 'http';
    s += `x-forwarded-for: ${xff === undefined ? c.remoteAddress : `${xff},${c.remoteAddress}`}\r\n`;
    s += `x-forwarded-port: ${xfport === undefined ? port : `${xfport},${port}`}\r\n`;
    s += `x-forwarded-proto: ${xfproto === undefined ? proto : `${xfproto},${proto}`}\r\n`;
    if (!xfhost) s += `x-forwarded-host: ${h.host}\r\n`;
    return `${s}\r\n`;
  }

  onUpstreamError(err: NodeJS.ErrnoException): void {
    this.#upstreamError ??= err.code ?? 'ERR';
  }

  #connect(target: URL, fresh: boolean): void {
    const port = Number(target.port);
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const up = fresh ? this.#proxy.pool.connectNew(host, port, this) : this.#proxy.pool.take(host, port, this);
    this.#upstream = up;
    this.#resBuf = undefined;
    this.#upstreamError = undefined;
    if (fresh) {
      // A replay: the head and the body so far, on the new connection.
      up.write(this.#forwardHead, 'latin1');
      if (this.#keep !== undefined) for (const b of this.#keep) up.write(b);
    } else this.#headPending = true; // sent with the first body bytes, or by flush()
  }

  /** The client's bytes at hand were passed on: send the head if no body bytes took it along. */
  flush(): void {
    if (!this.#headPending) return;
    this.#headPending = false;
    this.#upstream?.write(this.#forwardHead, 'latin1');
  }

  /**
   * Stop hearing from an engine socket the exchange is done with. A pause the exchange put on the client's reading
   * for that socket's drain ends here: the drain may never come (the socket is destroyed or pooled).
   */
  #detach(up: PooledSocket): void {
    if (up.owner === this) up.owner = undefined;
    this.#resumeClient();
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.#phase === Phase.Head) {
      const buf = this.#resBuf === undefined ? chunk : Buffer.concat([this.#resBuf, chunk]);
      let res: ResponseHead | undefined;
      try {
        res = parseResponseHead(buf, MAX_RESPONSE_HEAD, this.#resBuf === undefined ? 0 : this.#resBuf.length);
      } catch (err) {
        this.#upstreamError = (err as BadResponseHead).message;
        this.#dropUpstream();
        this.#engineFailedBeforeResponse();
        return;
      }
      if (res === undefined) {
        this.#resBuf = buf;
        return;
      }
      this.#resBuf = undefined;
      if (res.status < 200) {
        // An interim response (100, 103): not passed on; the real one follows.
        if (res.end < buf.length) this.onUpstreamData(buf.subarray(res.end));
        return;
      }
      const head = this.#startResponse(res);
      if (res.end < buf.length) this.#relay(buf, res.end, head);
      else {
        this.#client.write(head);
        if (res.contentLength === 0) this.#responseComplete();
      }
      return;
    }
    if (this.#phase === Phase.Body) this.#relay(chunk, 0);
    // Bytes after a complete response: the engine broke framing; the socket is not reused (see #responseComplete).
  }

  /** Take the response head: returns the client's head, to be written by the caller (with the first body bytes). */
  #startResponse(res: ResponseHead): string {
    this.#res = res;
    this.#status = res.status;
    this.#phase = Phase.Body;
    const o = this.#proxy.opts;
    this.#sse = res.contentType.startsWith(SSE);
    // The client's connection: kept unless it asked to close or the body ends with the engine's connection.
    if (res.contentLength === -2) this.#closeAfter = true;
    let s = `HTTP/1.1 ${res.status} ${res.reason}\r\n`;
    const cors = responseCorsHeaders(o.cors, this.#head.origin);
    let vary = cors?.vary;
    let cacheControl = false;
    for (let i = 0; i < res.names.length; i++) {
      const name = res.names[i]!;
      if (DROP_RESPONSE.has(name) || isCorsResponseHeader(name)) continue;
      // Named in the engine's Connection: hop-by-hop, unless it frames this body (the edge frames by it too).
      if (res.connectionListed?.includes(name) === true && name !== 'content-length' && name !== 'transfer-encoding') continue;
      if (name === 'vary' && vary !== undefined) {
        vary = `${vary}, ${res.values[i]}`;
        continue;
      }
      if (this.#sse && name === 'x-accel-buffering') continue;
      if (name === 'cache-control') cacheControl = true;
      s += `${res.rawNames[i]}: ${res.values[i]}\r\n`;
    }
    if (cors !== undefined) for (const k in cors) if (k !== 'vary') s += `${k}: ${cors[k]}\r\n`;
    if (vary !== undefined) s += `vary: ${vary}\r\n`;
    if (this.#sse) {
      s += `x-accel-buffering: ${SSE_ANTI_BUFFERING['x-accel-buffering']}\r\n`;
      if (!cacheControl) s += `cache-control: ${SSE_ANTI_BUFFERING['cache-control']}\r\n`;
    }
    s += this.#closeAfter ? 'connection: close\r\n\r\n' : `connection: keep-alive\r\nkeep-alive: ${this.#proxy.keepAliveHint}\r\n\r\n`;
    if (res.contentLength === -1) this.#resScanner = new ChunkedScanner();
    else if (res.contentLength >= 0) this.#resLeft = res.contentLength;
    if (o.onEngineResponse !== undefined) this.#peek = o.onEngineResponse(res.status);
    if (this.#sse && res.contentLength === -1) this.#proxy.watch(this);
    return s;
  }

  /** Pass response body bytes `buf[from…]` on to the client (after `head`, when given). */
  #relay(buf: Buffer, from: number, head?: string): void {
    if (!this.#gotBody) {
      this.#gotBody = true;
      if (this.#sse) this.#route.ttfb.observe((performance.now() - this.#start) / 1000);
    }
    this.lastTick = this.#proxy.tick;
    const res = this.#res!;
    let stop = buf.length;
    let complete = false;
    if (res.contentLength === -1) {
      let r: number;
      try {
        r = this.#resScanner!.scan(buf, from, buf.length);
      } catch {
        // The engine's framing broke: the client's response cannot be completed.
        this.#upstreamError = 'bad chunked framing';
        if (head !== undefined) this.#client.write(head);
        this.#dropUpstream();
        this.#brokenResponse();
        return;
      }
      if (r >= 0) {
        stop = r;
        complete = true;
      }
    } else if (res.contentLength >= 0) {
      const take = Math.min(this.#resLeft, buf.length - from);
      this.#resLeft -= take;
      stop = from + take;
      complete = this.#resLeft === 0;
    }
    const out = from === 0 && stop === buf.length ? buf : buf.subarray(from, stop);
    if (this.#peek !== undefined && this.#peek(out)) this.#peek = undefined;
    const ok =
      head === undefined
        ? this.#client.write(out)
        : out.length <= INLINE_BODY_MAX
          ? this.#client.write(head + out.toString('latin1'))
          : (this.#client.write(head), this.#client.write(out));
    if (!ok) {
      const up = this.#upstream!;
      up.pause();
      // Only while this exchange still owns it: by the client's drain the socket may be pooled or another's
      // (EnginePool.release resumes a socket paused here when this chunk completed the response).
      this.#client.onDrain(() => {
        if (up.owner === this) up.resume();
      });
    }
    if (complete) {
      if (stop < buf.length) this.#res!.close = true; // trailing garbage: do not reuse that socket
      this.#responseComplete();
    }
  }

  /** The SSE keep-alive ticker found the stream silent for the interval. */
  silent(): void {
    const s = this.#resScanner;
    if (this.#phase !== Phase.Body || s === undefined || !s.atChunkBoundary || !s.atEventBoundary) return;
    this.#client.write(chunkOf(KEEP_ALIVE_COMMENT));
    this.lastTick = this.#proxy.tick;
  }

  #responseComplete(): void {
    const up = this.#upstream;
    this.#upstream = undefined;
    if (up !== undefined) {
      this.#detach(up);
      // Reusable only when the engine keeps it and got the whole request.
      if (!this.#res!.close && this.#bodyDone && !this.#discard) this.#proxy.pool.release(up);
      else up.destroy();
    }
    this.#phase = Phase.Answered;
    if (this.#bodyDone) this.#finish();
    else this.#discard = true; // the engine answered before the whole body: read and drop the rest
  }

  onUpstreamClose(closed: PooledSocket): void {
    const up = this.#upstream;
    if (up === undefined || up !== closed) return;
    this.#upstream = undefined;
    this.#detach(up);
    if (this.#phase === Phase.Head) {
      this.#engineFailedBeforeResponse(up);
      return;
    }
    if (this.#phase !== Phase.Body) return;
    if (this.#res!.contentLength === -2) {
      // A body delimited by the engine's close: that close is its end.
      this.#responseComplete();
      return;
    }
    this.#brokenResponse();
  }

  /** The engine went away (or broke HTTP) before its response began. */
  #engineFailedBeforeResponse(up?: PooledSocket): void {
    const o = this.#proxy.opts;
    const code = this.#upstreamError ?? 'ECONNRESET';
    const route = this.#route.name;
    // uvicorn closed an idle pooled socket just as this request went out on it: replay once.
    if (up?.reused === true && !this.#replayed && this.#keep !== undefined && !this.#discard && o.lifecycle.isReady) {
      const target = o.target();
      if (target !== undefined) {
        this.#replayed = true;
        o.metrics.upstreamErrors.inc({ route, kind: 'idle_close_replayed' });
        o.logger.debug({ route, code }, 'engine closed a reused connection; replaying the request on a new one');
        this.#connect(target, true);
        return;
      }
    }
    o.metrics.upstreamErrors.inc({ route, kind: code === 'ECONNREFUSED' ? 'refused' : 'error' });
    o.logger.warn({ route, code, msg: this.#upstreamError }, 'engine request failed');
    const lc = o.lifecycle;
    // While the request body is still arriving, the connection cannot be reused safely.
    if (!this.#bodyDone) this.#closeAfter = true;
    this.#answer(502, `The model engine could not be reached (${code})${lc.isReady ? '' : `: ${lc.reason}`}.`, '');
    this.#discard = true;
    if (this.#bodyDone) this.#finish();
  }

  /** The engine's response stopped before its end: end the client's so it can tell. */
  #brokenResponse(): void {
    this.#route.brokenStreams.inc();
    const s = this.#resScanner;
    if (this.#sse && s !== undefined && s.atChunkBoundary) {
      // vLLM's own mid-stream error shape, then the terminator: clients stop cleanly.
      const err = openAIError(502, 'The model engine stopped while streaming this response.');
      const pad = s.atEventBoundary ? '' : '\n\n';
      this.#client.write(`${chunkOf(`${pad}data: ${JSON.stringify(err)}\n\ndata: [DONE]\n\n`)}0\r\n\r\n`);
      this.#phase = Phase.Answered;
      this.#proxy.unwatch(this);
      if (this.#bodyDone) this.#finish();
      else this.#discard = true;
      return;
    }
    // A truncated body must not look complete: drop the connection.
    this.#closeAfter = true;
    this.#finish();
    this.#client.destroy();
  }

  // ------------------------------------------------------------ endings

  /** Answer with the edge's own response (nothing was sent to the client yet). */
  #answer(status: number, message: string, extra: string): void {
    this.#status = status;
    this.#phase = Phase.Answered;
    const cors = responseCorsHeaders(this.#proxy.opts.cors, this.#head.origin);
    this.#client.write(errorResponse(status, message, extra + headerLines(cors), this.#closeAfter ? 'close' : 'keep-alive', this.#proxy.keepAliveHint));
  }

  /** A refusal before anything went to the engine: the body (if any) is read and dropped. */
  #refuse(status: number, message: string, extra: string): void {
    this.#discard = true;
    this.#keep = undefined;
    this.#answer(status, message, extra);
    if (this.#bodyDone) this.#finish();
  }

  #dropUpstream(): void {
    const up = this.#upstream;
    if (up === undefined) return;
    this.#upstream = undefined;
    this.#detach(up);
    up.destroy();
  }

  #count(): void {
    if (this.#counted) return;
    this.#counted = true;
    const r = this.#route;
    r.count(this.#status);
    r.duration.observe((performance.now() - this.#start) / 1000);
    if (this.#inflight) {
      this.#inflight = false;
      this.#proxy.opts.inflight.leave();
      r.inFlight.dec();
      if (this.#sse) r.streamDuration.observe((performance.now() - this.#start) / 1000);
    }
  }

  #finish(): void {
    if (this.#phase === Phase.Finished) return;
    this.#phase = Phase.Finished;
    this.#proxy.unwatch(this);
    this.#keep = undefined;
    this.#count();
    this.#client.exchangeDone(!this.#closeAfter);
  }

  /** The client went away before the exchange finished: the engine request is aborted. */
  clientGone(): void {
    if (this.#phase === Phase.Finished) return;
    this.#dropUpstream();
    this.#route.clientAborts.inc();
    this.#phase = Phase.Finished;
    this.#proxy.unwatch(this);
    this.#keep = undefined;
    this.#count();
  }
}
