// The public port. Connections arrive on a plain net (or TLS) server owned by
// the edge: allow-listed inference requests are proxied on the fast path
// (client-connection.ts, exchange.ts); every other connection is handed, with
// the bytes already read, to a node:http server that never listens itself
// and serves the rest (management endpoints, the express app, upgrades).
// The edge enforces node:http's timeouts on its own connections with one
// sweep: headers (slowloris), the whole request, and idle keep-alive.
import type http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { ClientConnection, ConnPhase, type ConnectionHost } from './client-connection.js';
import type { FastProxy } from './fast-proxy.js';
import type { PublicListener } from '../server/public-listener.js';

export interface EdgeOptions {
  /** Serves every connection the fast path does not (never listens itself). */
  fallback: http.Server;
  /** TLS (NIM_SSL_MODE) terminated here; undefined for plain HTTP. */
  tls?: tls.TlsOptions | undefined;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** 0 = no cap (NIM_MAX_CONNECTIONS). */
  maxConnections: number;
  /** Largest request head (bytes) the fast path reads; longer ones are node:http's to refuse (431). */
  maxHeadBytes?: number;
  /**
   * The port, already bound (serve binds it before the engine is spawned): its
   * connections are served from now on and `server` is its net.Server. Without
   * it the edge makes its own server, to listen with `listen` (proxy workers).
   */
  listener?: PublicListener | undefined;
}

export class Edge implements ConnectionHost {
  readonly server: net.Server;
  readonly #fallback: http.Server;
  readonly #opts: EdgeOptions;
  readonly #conns = new Set<ClientConnection>();
  #fast: FastProxy | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  readonly maxHeadBytes: number;

  constructor(opts: EdgeOptions) {
    this.#opts = opts;
    this.#fallback = opts.fallback;
    this.maxHeadBytes = opts.maxHeadBytes ?? 16 * 1024;
    // node:http sets up its own timeout checks when it starts listening; this one never
    // listens, so tell it to (http.Server's 'listening' handler does exactly that).
    this.#fallback.emit('listening');
    const onConnection = (socket: net.Socket): void => this.#accept(socket);
    const tlsServer = opts.tls ? tls.createServer({ ...opts.tls, allowHalfOpen: true, noDelay: true }, onConnection) : undefined;
    // A failed handshake is the client's problem, not the server's.
    tlsServer?.on('tlsClientError', (_err, socket) => socket.destroy());
    if (opts.listener) {
      // The listener's sockets come paused: TLS takes each over before a byte is read; plain ones are resumed here.
      this.server = opts.listener.server;
      opts.listener.attach(
        tlsServer
          ? (socket) => tlsServer.emit('connection', socket)
          : (socket) => {
              this.#accept(socket);
              socket.resume();
            },
      );
    } else {
      this.server = tlsServer ?? net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
      if (opts.maxConnections > 0) this.server.maxConnections = opts.maxConnections;
    }
  }

  /** Serve the fast path with `fast` from now on (undefined: node:http serves everything). */
  setFast(fast: FastProxy | undefined): void {
    this.#fast = fast;
  }

  fast(): FastProxy | undefined {
    return this.#fast;
  }

  #accept(socket: net.Socket): void {
    if (this.#fast === undefined) {
      this.handOver(socket, undefined);
      return;
    }
    const conn = new ClientConnection(socket, this);
    this.#conns.add(conn);
    if (this.#sweeper === undefined) {
      // As often as node:http checks its own (connectionsCheckingInterval in serve.ts).
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(100, Math.min(1000, this.#opts.headersTimeoutMs / 2)));
      this.#sweeper.unref();
    }
  }

  handOver(socket: net.Socket, pending: Buffer | undefined): void {
    if (socket.destroyed) return;
    if (pending !== undefined && pending.length > 0) socket.unshift(pending);
    this.#fallback.emit('connection', socket);
    socket.resume();
  }

  forget(conn: ClientConnection): void {
    this.#conns.delete(conn);
  }

  /** node:http's timeouts for the edge's connections. */
  #sweep(): void {
    if (this.#conns.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
      return;
    }
    const now = performance.now();
    const o = this.#opts;
    for (const c of this.#conns) {
      if (c.phase === ConnPhase.Idle) {
        if (now - c.since > o.keepAliveTimeoutMs) c.close();
      } else if (c.phase === ConnPhase.Head) {
        if (now - c.since > o.headersTimeoutMs || now - c.requestStart > o.requestTimeoutMs) c.timeOut();
      } else if (c.phase === ConnPhase.Exchange && c.bodyDue && now - c.requestStart > o.requestTimeoutMs) {
        c.timeOut();
      }
    }
  }

  /** Resolves once listening on `port`/`host`; rejects with the listen error. */
  listen(port: number, host: string, backlog: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        this.server.off('listening', onListening);
        reject(err);
      };
      const onListening = (): void => {
        this.server.off('error', onError);
        resolve();
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen({ port, host, backlog });
    });
  }

  /**
   * Graceful: stop accepting, end idle connections (the edge's and
   * node:http's), give responses already written `lingerMs` to reach their
   * clients, then cut whatever is still open.
   */
  async close(lingerMs = 50): Promise<void> {
    this.server.close();
    this.#fallback.close();
    this.#fallback.closeIdleConnections();
    for (const c of [...this.#conns]) c.close();
    await new Promise((r) => setTimeout(r, lingerMs));
    this.destroy();
  }

  /** Immediate: every connection is cut. */
  destroy(): void {
    this.server.close();
    this.#fallback.close();
    this.#fallback.closeAllConnections();
    for (const c of [...this.#conns]) c.destroy();
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}

