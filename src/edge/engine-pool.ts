// Keep-alive connections to the engine's private port, as raw sockets. Same
// policy as server/engine-agent.ts (which the node:http path uses): idle
// sockets are dropped before uvicorn's VLLM_HTTP_TIMEOUT_KEEP_ALIVE closes them
// (poolIdleMs), newest first (LIFO keeps few sockets warm). Instead of a timer
// per socket, one sweep every quarter of the idle time drops the stale ones.
// Each socket gets its listeners once, when made, and passes events to its
// current owner (the exchange using it): nothing is added or removed per request.
//
// Engine sockets are read with net's `onread` into one buffer shared by the
// whole process, and each read is copied out into its own Buffer before the
// owner sees it. That skips a Readable `push` and a 64 KiB allocation per read,
// which is most of the proxy's own work per SSE event (measured: user CPU per
// event 16.5 → 12.2 µs, total −6 %; docs/benchmarks.md). The copy is what makes
// sharing safe: a write that goes asynchronous, a head held across reads or a
// body peek all hold the copy, never the shared memory, which the next read of
// any engine socket overwrites.
import net from 'node:net';

/** Who a pooled socket reports to while it carries a request. */
export interface SocketOwner {
  onUpstreamData(chunk: Buffer): void;
  onUpstreamError(err: NodeJS.ErrnoException): void;
  onUpstreamClose(s: PooledSocket): void;
}

export interface PooledSocket extends net.Socket {
  owner?: SocketOwner | undefined;
  /** When it went back to the pool (performance.now() ms). */
  idleSince?: number;
  /** It carried a request before (a failure before any response byte may be uvicorn's idle close). */
  reused?: boolean;
  /** The engine port it was made for (`remotePort` would cost a getpeername(2) per request). */
  enginePort?: number;
}

/** libuv's and Node's default read size: a read never brings more than this. */
const READ_SIZE = 65536;
/** Every engine socket of this process reads into it; see the file's comment for why this is safe. */
const READ_BUFFER = Buffer.allocUnsafeSlow(READ_SIZE);

/** The `n` bytes just read into `buf`, as a Buffer of their own (small ones come from Node's pool slab). */
function copyRead(buf: Uint8Array, n: number): Buffer {
  const chunk = Buffer.allocUnsafe(n);
  chunk.set(buf.subarray(0, n));
  return chunk;
}

export class EnginePool {
  readonly #idle: PooledSocket[] = [];
  readonly #idleMs: number;
  readonly #maxIdle: number;
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;
  /** Every socket made, idle or busy (for destroy()). */
  readonly #all = new Set<PooledSocket>();

  constructor(opts: { idleMs: number; maxIdle?: number }) {
    this.#idleMs = opts.idleMs;
    this.#maxIdle = opts.maxIdle ?? 256;
  }

  /** An idle connection to `host:port`, or a new one (connecting); `owner` gets its events. */
  take(host: string, port: number, owner: SocketOwner): PooledSocket {
    const now = performance.now();
    for (let s = this.#idle.pop(); s !== undefined; s = this.#idle.pop()) {
      if (!s.destroyed && s.readyState === 'open' && now - s.idleSince! < this.#idleMs && s.enginePort === port) {
        s.ref();
        s.reused = true;
        s.owner = owner;
        return s;
      }
      s.destroy();
    }
    return this.connectNew(host, port, owner);
  }

  /** A new connection (a replay must not meet another stale socket). */
  connectNew(host: string, port: number, owner: SocketOwner): PooledSocket {
    const s: PooledSocket = net.connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array): boolean => {
          if (s.owner !== undefined) s.owner.onUpstreamData(copyRead(buf, n));
          else s.destroy(); // bytes on an idle connection: the engine broke framing
          return true; // backpressure is the owner's: it pauses the socket
        },
      },
    });
    s.reused = false;
    s.enginePort = port;
    s.owner = owner;
    this.#all.add(s);
    s.on('error', (err: NodeJS.ErrnoException) => s.owner?.onUpstreamError(err));
    s.on('close', () => {
      this.#all.delete(s);
      s.owner?.onUpstreamClose(s); // an idle one is dropped from the list on the next take or sweep
    });
    return s;
  }

  /** A socket whose exchange ended cleanly and may carry another request. */
  release(s: PooledSocket): void {
    s.owner = undefined;
    if (this.#closed || s.destroyed || this.#idle.length >= this.#maxIdle) {
      s.destroy();
      return;
    }
    // Its exchange may have paused it for a slow client in the very read that completed the response. An idle
    // socket must be read (uvicorn's idle close, stray bytes), and the next request's response must be too:
    // a paused socket handed out again would hang that request with its answer unread.
    if (s.isPaused()) s.resume();
    s.idleSince = performance.now();
    s.unref(); // an idle pooled socket keeps nothing alive (as node's Agent does)
    this.#idle.push(s);
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(50, this.#idleMs / 4));
      this.#sweeper.unref();
    }
  }

  #sweep(): void {
    const cutoff = performance.now() - this.#idleMs;
    let keep = 0;
    for (const s of this.#idle) {
      if (s.idleSince! < cutoff || s.destroyed) s.destroy();
      else this.#idle[keep++] = s;
    }
    this.#idle.length = keep;
    if (keep === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** Graceful: pool nothing more, close idle sockets; busy ones close when their exchange ends. */
  close(): void {
    this.#closed = true;
    for (const s of this.#idle) s.destroy();
    this.#idle.length = 0;
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  /** Immediate: every engine connection, busy or idle, is cut. */
  destroy(): void {
    this.close();
    for (const s of this.#all) s.destroy();
  }
}
