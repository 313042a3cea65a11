// What the edge's fast path needs to proxy the allow-listed inference routes
// (server/routes.ts, exact paths): per-route metric children bound once, the
// engine connection pool, the API-key check, CORS settings and the SSE
// keep-alive ticker shared by every stream.
import type { Counter, Histogram } from 'prom-client';
import type { CorsSettings } from '../config/env.js';
import { bearerMatcher } from '../server/auth.js';
import { poolIdleMs } from '../server/engine-agent.js';
import { bindRouteMetrics, type ProxyingOptions, type RouteMetrics } from '../server/proxy.js';
import { PROXIED_ROUTES } from '../server/routes.js';
import { EnginePool } from './engine-pool.js';

/** Looks at the first bytes of an engine response body; returns true when it has seen enough. */
export type ResponsePeek = (chunk: Buffer) => boolean;

export interface FastProxyOptions extends ProxyingOptions {
  apiKey?: string | undefined;
  cors: CorsSettings;
  /** Silence on an event stream before a `: keep-alive` comment (ms; 0 = never). */
  sseKeepAliveIntervalMs: number;
  /** The public port's keep-alive timeout (ms), announced as `Keep-Alive: timeout=N`. */
  keepAliveTimeoutMs: number;
  /** The engine's idle keep-alive (VLLM_HTTP_TIMEOUT_KEEP_ALIVE, ms). */
  engineKeepAliveMs: number;
  /** Sees each engine response as it starts (status), and may peek at its first body bytes (per-LoRA-adapter counts). */
  onEngineResponse?: ((status: number) => ResponsePeek | undefined) | undefined;
}

/** Per-route metric children, bound once: the node:http path's, plus the request count and duration. */
export interface FastRoute extends RouteMetrics {
  method: string;
  duration: Histogram.Internal<'route' | 'method'>;
  /** The request counter child for a status code (cached). */
  count(status: number): void;
}

/** A stream the keep-alive ticker looks after. */
export interface TickedStream {
  /** The ticker's count when the stream last wrote. */
  lastTick: number;
  /** Called when the stream was silent for the interval: write a comment if it can. */
  silent(): void;
}

export class FastProxy {
  readonly opts: FastProxyOptions;
  readonly pool: EnginePool;
  readonly matches: ((authorization: string | undefined) => boolean) | undefined;
  readonly keepAliveHint: string;
  readonly #routes = new Map<string, FastRoute>();
  readonly #unmatched = new Map<string, FastRoute>();
  readonly #streams = new Set<TickedStream>();
  #ticker: NodeJS.Timeout | undefined;
  /** Incremented by the ticker: streams note it on every write instead of reading a clock. */
  tick = 0;
  /** Ticks of silence before a comment (ticks are a quarter of the interval). */
  static readonly SILENT_TICKS = 4;

  constructor(opts: FastProxyOptions) {
    this.opts = opts;
    this.pool = new EnginePool({ idleMs: poolIdleMs(opts.engineKeepAliveMs) });
    this.matches = opts.apiKey ? bearerMatcher(opts.apiKey) : undefined;
    this.keepAliveHint = `timeout=${Math.floor(opts.keepAliveTimeoutMs / 1000)}`;
    for (const r of PROXIED_ROUTES) {
      if (r.path.includes(':')) continue; // parameterised paths go through express
      this.#routes.set(`${r.method} ${r.path}`, this.#bind(r.path, r.method));
    }
  }

  /** The route for `METHOD path`, or undefined (the request goes to node:http). */
  route(method: string, path: string): FastRoute | undefined {
    return this.#routes.get(`${method} ${path}`);
  }

  /** Refused by the API key check: counted as `unmatched` (as express counts it). */
  unmatched(method: string): FastRoute {
    let r = this.#unmatched.get(method);
    if (r === undefined) {
      r = this.#bind('unmatched', method);
      this.#unmatched.set(method, r);
    }
    return r;
  }

  #bind(name: string, method: string): FastRoute {
    const m = this.opts.metrics;
    const byStatus = new Map<number, Counter.Internal>();
    return {
      ...bindRouteMetrics(m, name),
      method,
      duration: m.requestDuration.labels(name, method),
      count(status) {
        let c = byStatus.get(status);
        if (c === undefined) {
          c = m.requests.labels(name, method, String(status));
          byStatus.set(status, c);
        }
        c.inc();
      },
    };
  }

  /** Watch a stream for silences (no-op when keep-alive comments are off). */
  watch(s: TickedStream): void {
    const interval = this.opts.sseKeepAliveIntervalMs;
    if (interval <= 0) return;
    s.lastTick = this.tick;
    this.#streams.add(s);
    if (this.#ticker === undefined) {
      this.#ticker = setInterval(() => this.#onTick(), Math.max(10, interval / FastProxy.SILENT_TICKS));
      this.#ticker.unref();
    }
  }

  unwatch(s: TickedStream): void {
    this.#streams.delete(s);
  }

  #onTick(): void {
    this.tick++;
    if (this.#streams.size === 0) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
      return;
    }
    for (const s of this.#streams) if (this.tick - s.lastTick > FastProxy.SILENT_TICKS) s.silent();
  }

  /** Graceful: no more pooling of engine connections; requests in flight finish. */
  close(): void {
    this.pool.close();
  }

  /** Immediate: every engine connection is cut. */
  destroy(): void {
    this.pool.destroy();
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
    this.#ticker = undefined;
    this.#streams.clear();
  }
}
