// Proxied event streams through real intermediaries. nginx (and ingress-nginx)
// buffers a response unless it says `X-Accel-Buffering: no`, and cuts an
// upstream that stays silent longer than its proxy_read_timeout (60 s by
// default; a long prefill or a queue can be longer). vLLM itself sends neither
// the headers nor anything during a silence (serving_chat.py: `data: …\n\n`
// events only), so the supervisor adds both: anti-buffering headers on every
// proxied event stream, and an SSE comment line (`: keep-alive`) after
// NIM_SSE_KEEPALIVE_INTERVAL of silence. Comments are ignored by every SSE
// parser (WHATWG HTML §9.2.6: lines starting with a colon), and one is only
// ever written between two events, never inside one.
import type { ServerResponse } from 'node:http';

/** The comment written during a silence: one comment line and the blank line that ends it. */
export const KEEP_ALIVE_COMMENT = ': keep-alive\n\n';

/** Response headers that stop intermediaries from buffering or caching an event stream. */
export const SSE_ANTI_BUFFERING: Readonly<Record<string, string>> = {
  // nginx and ingress-nginx: pass each chunk on at once (ngx_http_proxy_module, "X-Accel-Buffering").
  'x-accel-buffering': 'no',
  'cache-control': 'no-cache',
};

/**
 * Tracks whether the bytes of an event stream seen so far end at an event
 * boundary: nothing yet, or a blank line (two line ends in a row; CRLF, LF
 * and CR all end a line in SSE).
 */
export class EventBoundary {
  #tail = '';

  /** True when a comment written now cannot land inside an event. */
  get atBoundary(): boolean {
    if (this.#tail === '') return true;
    return this.#tail.replace(/\r\n/g, '\n').replace(/\r/g, '\n').endsWith('\n\n');
  }

  observe(chunk: Buffer | string): void {
    const s = typeof chunk === 'string' ? chunk.slice(-4) : chunk.subarray(-4).toString('latin1');
    this.#tail = (this.#tail + s).slice(-4);
  }
}

export interface SseKeepAliveOptions {
  /** Silence (ms) after which a comment is written; > 0. */
  intervalMs: number;
  /** Monotonic clock in ms (injectable for tests). */
  now?: () => number;
  /** Timer functions (injectable for tests; default: setTimeout, unref'd, and clearTimeout). */
  timers?: { set(fn: () => void, ms: number): unknown; clear(handle: unknown): void };
}

const realTimers = {
  set(fn: () => void, ms: number): unknown {
    const t = setTimeout(fn, ms);
    t.unref(); // a silent stream must not keep the process alive
    return t;
  },
  clear(handle: unknown): void {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/**
 * Writes `: keep-alive` comments to `res` while the stream it carries is silent.
 * Call observe() with every chunk passed to `res`, and stop() when the stream
 * ends (it also stops by itself once `res` is finished or destroyed).
 */
export class SseKeepAlive {
  readonly #res: ServerResponse;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #timers: NonNullable<SseKeepAliveOptions['timers']>;
  readonly #boundary = new EventBoundary();
  #last: number;
  #timer: unknown;
  /** Comments written so far. */
  sent = 0;

  constructor(res: ServerResponse, opts: SseKeepAliveOptions) {
    this.#res = res;
    this.#intervalMs = opts.intervalMs;
    this.#now = opts.now ?? (() => performance.now());
    this.#timers = opts.timers ?? realTimers;
    this.#last = this.#now();
    this.#schedule(this.#intervalMs);
  }

  /** A chunk of the stream went to the client. */
  observe(chunk: Buffer | string): void {
    this.#last = this.#now();
    this.#boundary.observe(chunk);
  }

  stop(): void {
    if (this.#timer !== undefined) this.#timers.clear(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    this.#timer = this.#timers.set(() => this.#tick(), ms);
  }

  #tick(): void {
    const res = this.#res;
    if (res.writableEnded || res.destroyed) {
      this.stop();
      return;
    }
    const idle = this.#now() - this.#last;
    if (idle < this.#intervalMs) {
      this.#schedule(this.#intervalMs - idle);
      return;
    }
    // Mid-event silence (an engine that stalls inside an event): wait for the event to end.
    if (this.#boundary.atBoundary) {
      res.write(KEEP_ALIVE_COMMENT);
      this.#boundary.observe(KEEP_ALIVE_COMMENT);
      this.#last = this.#now();
      this.sent += 1;
    }
    this.#schedule(this.#intervalMs);
  }
}
