// One client connection on the public port. Request heads are parsed here
// (head.ts); a request for an allow-listed inference route runs as an
// Exchange (exchange.ts); anything else (management routes, preflights,
// WebSocket upgrades, HTTP/1.0, `Expect`, heads outside the strict subset)
// hands the whole connection, with the bytes already read, to node:http.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Exchange, type ClientSide } from './exchange.js';
import type { FastProxy } from './fast-proxy.js';
import { parseRequestHead } from './head.js';

export const enum ConnPhase {
  /** Between requests, nothing read yet. */
  Idle,
  /** Part of a request head has arrived. */
  Head,
  /** A request is being served. */
  Exchange,
  /** Given to node:http (or closed): no longer the edge's. */
  Gone,
}

export interface ConnectionHost {
  /** The fast path now (undefined while booting or with tracing on: everything goes to node:http). */
  fast(): FastProxy | undefined;
  /** Give the socket to node:http with `pending` read back into it. */
  handOver(socket: Socket, pending: Buffer | undefined): void;
  maxHeadBytes: number;
  /** The connection is no longer the edge's (closed or handed over). */
  forget(conn: ClientConnection): void;
}

export class ClientConnection implements ClientSide {
  readonly socket: Socket;
  readonly #host: ConnectionHost;
  readonly remoteAddress: string;
  readonly encrypted: boolean;
  phase = ConnPhase.Head;
  /** When the current phase began (performance.now() ms): the edge's timeout sweep reads it. */
  since = performance.now();
  /** When the current request began (requestTimeout covers head and body). */
  requestStart = this.since;
  #pending: Buffer | undefined;
  #exchange: Exchange | undefined;
  #pausedFor = 0;
  #closing = false;

  constructor(socket: Socket, host: ConnectionHost) {
    this.socket = socket;
    this.#host = host;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.encrypted = (socket as TLSSocket).encrypted === true;
    socket.on('data', this.#onData);
    socket.on('end', this.#onGone);
    socket.on('close', this.#onGone);
    socket.on('error', this.#onError);
  }

  /** The request body still due belongs to an exchange in progress. */
  get bodyDue(): boolean {
    return this.#exchange !== undefined && this.#exchange.wantsBody;
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#exchange !== undefined) {
      if (this.#exchange.wantsBody) {
        const stop = this.#exchange.body(chunk, 0, chunk.length);
        this.#exchange?.flush();
        if (stop < 0 || stop === chunk.length) return;
        chunk = chunk.subarray(stop);
      }
      if (this.#exchange !== undefined) {
        // Pipelined: the next request waits until this response is complete.
        this.#pending = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
        this.pauseReading();
        return;
      }
    }
    this.#pending = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#next();
  };

  /** Parse the next request from what has been read and serve it. */
  #next(): void {
    const buf = this.#pending;
    if (buf === undefined || this.phase === ConnPhase.Gone) return;
    const fast = this.#host.fast();
    if (fast === undefined) {
      this.#handOver();
      return;
    }
    const head = parseRequestHead(buf, this.#host.maxHeadBytes);
    if (head === 'incomplete') {
      if (this.phase === ConnPhase.Idle) {
        this.phase = ConnPhase.Head;
        this.since = this.requestStart = performance.now();
      }
      return;
    }
    const route = typeof head === 'string' ? undefined : fast.route(head.method, head.path);
    if (typeof head === 'string' || route === undefined) {
      this.#handOver();
      return;
    }
    if (this.phase === ConnPhase.Idle) this.requestStart = performance.now();
    this.phase = ConnPhase.Exchange;
    const ex = new Exchange(this, head, route, fast);
    this.#exchange = ex;
    this.#pending = undefined;
    const rest = head.end < buf.length ? buf.subarray(head.end) : undefined;
    ex.start();
    if (rest !== undefined) {
      let after: Buffer | undefined = rest;
      if (ex.wantsBody) {
        const stop = ex.body(rest, 0, rest.length);
        after = stop >= 0 && stop < rest.length ? rest.subarray(stop) : undefined;
      }
      if (after !== undefined && (this.phase as ConnPhase) !== ConnPhase.Gone) {
        this.#pending = this.#pending === undefined ? after : Buffer.concat([this.#pending, after]);
        if (this.#exchange !== undefined) this.pauseReading();
      }
    }
    ex.flush();
    // The exchange may have finished synchronously (a refusal): go on with what is pending.
    if (this.#exchange === undefined && this.#pending !== undefined && (this.phase as ConnPhase) !== ConnPhase.Gone) this.#next();
  }

  #handOver(): void {
    const pending = this.#pending;
    this.#pending = undefined;
    this.#release();
    this.#host.handOver(this.socket, pending);
  }

  /** Stop being this socket's owner (listeners off, forgotten by the edge). */
  #release(): void {
    this.phase = ConnPhase.Gone;
    const s = this.socket;
    s.off('data', this.#onData);
    s.off('end', this.#onGone);
    s.off('close', this.#onGone);
    s.off('error', this.#onError);
    this.#host.forget(this);
  }

  readonly #onError = (): void => {
    /* followed by 'close' */
  };

  readonly #onGone = (): void => {
    // As node:http does (httpAllowHalfOpen off): a client that ends its side aborts what it asked for.
    const ex = this.#exchange;
    this.#exchange = undefined;
    ex?.clientGone();
    this.#release();
    this.socket.destroy();
  };

  // ------------------------------------------------------------ ClientSide

  write(data: string | Buffer): boolean {
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }
  onDrain(fn: () => void): void {
    this.socket.once('drain', fn);
  }
  pauseReading(): void {
    if (this.#pausedFor++ === 0) this.socket.pause();
  }
  resumeReading(): void {
    if (this.#pausedFor > 0 && --this.#pausedFor === 0) this.socket.resume();
  }
  destroy(): void {
    this.#onGone();
  }

  exchangeDone(reuse: boolean): void {
    this.#exchange = undefined;
    if (this.phase === ConnPhase.Gone) return;
    if (!reuse || this.#closing) {
      this.#release();
      // Half-close after the response; the client's FIN (or a timeout) ends the socket.
      this.socket.end();
      this.socket.on('error', this.#onError);
      this.socket.setTimeout(5000, () => this.socket.destroy());
      return;
    }
    this.phase = ConnPhase.Idle;
    this.since = performance.now();
    if (this.#pending !== undefined) {
      // The pipelined request (read while paused) comes next.
      this.#pausedFor = 0;
      this.socket.resume();
      this.#next();
    }
  }

  /** Too slow (headers or request timeout): node:http's 408 when nothing was answered yet, then close. */
  timeOut(): void {
    if (this.phase === ConnPhase.Exchange && this.#exchange?.unanswered === true) {
      // The body did not arrive in time: the engine request is dropped and the client told, as node:http tells it.
      const ex = this.#exchange;
      this.#exchange = undefined;
      ex.clientGone();
      this.phase = ConnPhase.Head;
    }
    if (this.phase === ConnPhase.Head) {
      this.#release();
      this.socket.on('error', this.#onError);
      this.socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
      this.socket.setTimeout(1000, () => this.socket.destroy());
    } else this.destroy();
  }

  /** Graceful close: an idle connection ends now, a busy one after its response. */
  close(): void {
    this.#closing = true;
    if (this.phase === ConnPhase.Idle || this.phase === ConnPhase.Head) {
      this.#release();
      this.socket.end();
    }
  }
}
