// The primary's side of NIM_PROXY_WORKERS > 1: forks the proxy workers
// (node:cluster, each accepting on the shared listening socket), keeps them told of the engine (its URL and
// lifecycle), serves the full app on a private Unix socket for what they pass
// on, drains them on shutdown, gathers their metrics, and replaces a worker
// that dies (or fails the supervisor when they keep dying). No worker outlives
// the primary: they exit when its channel closes, and its exit kills them by pid.
import cluster, { type Worker } from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config/env.js';
import type { Lifecycle } from '../engine/lifecycle.js';
import { ConfigError, SupervisorError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { PROXY_WORKER_ENV } from './marker.js';
import { isMessage, type EngineTarget, type FromWorker, type LifecycleSnapshot, type LoraCounting, type MetricsJson, type ToWorker } from './messages.js';
import { createClientAddressAdopter } from './client-address.js';
import { WorkerMetricSnapshots } from './metric-snapshots.js';
import { decideRespawn, shareOf, type RespawnPolicy, RESPAWN_POLICY } from './policy.js';

/** A proxy worker failed in a way the supervisor cannot recover from (exit 1; docs/troubleshooting.md). */
export class ProxyWorkerError extends SupervisorError {}

export interface ProxyWorkersOptions {
  config: Config;
  logger: Logger;
  /** Workers to run (>= 2). */
  count: number;
  lifecycle: Lifecycle;
  respawn?: RespawnPolicy;
  /** Time a scrape waits for a worker's metrics (ms). */
  metricsTimeoutMs?: number;
}

interface Member {
  worker: Worker;
  pid: number;
  listening: boolean;
}

/** Time workers get to close their port and exit after the engine stopped, before SIGKILL (ms). */
const CLOSE_TIMEOUT_MS = 5000;

export class ProxyWorkers {
  readonly count: number;
  /** The primary's internal listener (inside a fresh 0700 directory). */
  readonly socketPath: string;
  /** Settles once the workers cannot be kept running (they keep dying). */
  readonly failed: Promise<ProxyWorkerError>;
  readonly #opts: ProxyWorkersOptions;
  readonly #dir: string;
  readonly #members = new Map<number, Member>();
  readonly #deaths: number[] = [];
  #engine: EngineTarget | undefined;
  #lora: LoraCounting | undefined;
  #onLoraResponse: ((model: string) => void) | undefined;
  #closing = false;
  #fail: (err: ProxyWorkerError) => void = () => undefined;
  #nextMetricsId = 0;
  /** Called with the cluster id of each worker that answers scrape `id` (its answer is in #snapshots by then). */
  readonly #metricsWaiters = new Map<number, (worker: number) => void>();
  readonly #snapshots = new WorkerMetricSnapshots();
  /** Scrape answers stood in for by a worker's last metrics (debug log). */
  #staleAnswers = 0;
  readonly #drainWaiters = new Set<(pid: number, idle: boolean) => void>();

  constructor(opts: ProxyWorkersOptions) {
    this.#opts = opts;
    this.count = opts.count;
    this.#dir = socketDirectory([os.tmpdir(), opts.config.model.cachePath, '/dev/shm']);
    this.socketPath = path.join(this.#dir, 'primary.sock');
    this.failed = new Promise((resolve) => (this.#fail = resolve));
    // Whatever ends this process, its workers go with it (and the socket's directory).
    process.once('exit', () => this.destroy());
    process.once('SIGTERM', this.#earlySignal);
    process.once('SIGINT', this.#earlySignal);
    opts.lifecycle.on('change', () => this.#broadcast({ type: 'nim:lifecycle', lifecycle: this.#snapshot() }));
  }

  /**
   * The internal listener's server: plain HTTP on the Unix socket, with the
   * public port's timeouts (the workers enforce TLS, client limits and
   * maxConnections). `handler` is the primary's whole app; readiness is gated
   * on every worker listening (see `gate`). Each request and upgrade gets the
   * client's address from the worker's internal header first (client-address.ts);
   * the caller adds its own 'upgrade' listener after this returns.
   */
  createServer(handler: http.RequestListener): http.Server {
    const c = this.#opts.config;
    const gated = this.gate(handler);
    // Everything here came through a worker: the client's address is in its header (client-address.ts).
    const adopt = createClientAddressAdopter();
    const server = http.createServer(
      {
        headersTimeout: c.headersTimeoutMs,
        requestTimeout: c.requestTimeoutMs,
        keepAliveTimeout: c.keepAliveTimeoutMs,
        connectionsCheckingInterval: Math.max(100, Math.min(1000, c.headersTimeoutMs / 2)),
      },
      (req, res) => {
        adopt(req, false);
        gated(req, res);
      },
    );
    // Registered before the caller's 'upgrade' listener, so it runs first.
    server.on('upgrade', (req: http.IncomingMessage) => adopt(req, true));
    return server;
  }

  /** Readiness answers 503 while a worker is not listening (starting, or being replaced); all else goes to `handler`. */
  gate(handler: http.RequestListener): http.RequestListener {
    return (req, res) => {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const p = q < 0 ? url : url.slice(0, q);
      if (p === '/v1/health/ready' && this.#opts.lifecycle.isReady && this.listening < this.count) {
        const body = JSON.stringify({
          object: 'health.response',
          message: `${this.listening} of ${this.count} proxy workers listening (NIM_PROXY_WORKERS)`,
          status: 'starting',
        });
        res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      handler(req, res);
    };
  }

  /**
   * A signal while the supervisor is still starting, before serve handles signals: the default
   * action would skip the 'exit' handlers, so workers would meet a closed channel mid-handshake
   * (an EPIPE trace each) and the socket directory would stay. Stop them, then end by that
   * signal as a single process does.
   */
  readonly #earlySignal = (signal: NodeJS.Signals): void => {
    this.destroy();
    process.kill(process.pid, signal);
  };

  /** serve handles SIGTERM/SIGINT from now on (drain in order): the start-up handler steps aside. */
  handOverSignals(): void {
    process.off('SIGTERM', this.#earlySignal);
    process.off('SIGINT', this.#earlySignal);
  }

  /** Workers listening on the public port now. */
  get listening(): number {
    let n = 0;
    for (const m of this.#members.values()) if (m.listening) n += 1;
    return n;
  }

  /** The workers' pids (for logs and tests). */
  get pids(): number[] {
    return [...this.#members.values()].map((m) => m.pid);
  }

  /**
   * Open the internal listener, fork the workers and resolve once every one
   * listens on the public port. Rejects with the workers' own error when the
   * port cannot be opened (a ConfigError's exit code 2: in use, not allowed).
   */
  async start(server: http.Server): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Every worker accepts on the shared listening socket itself, as nginx's workers do. Round-robin
    // (SCHED_RR) had the primary accept each connection and pass it over IPC: in `npm run bench`'s burst
    // of 5,000 streams that doubled TTFB p99 against one process, and it cost CPU per connection. Idle
    // workers wake first, so connections go to the least busy (busiest share 55 % with 2 workers).
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    const started = Array.from({ length: this.count }, () => this.#fork());
    await Promise.all(started);
  }

  /** The engine's URL and keep-alive, for the workers' proxies (sent again to replaced workers). */
  setEngine(url: URL, keepAliveMs: number): void {
    this.#engine = { url: url.href, keepAliveMs };
    this.#broadcast({ type: 'nim:engine', engine: this.#engine });
  }

  /**
   * LoRA is on: workers report each proxied response whose `model` is not one
   * of `baseModels`, and `onLoraResponse` gets that name (it counts it when it
   * is an adapter, as one process does: lora/metrics.ts adapterCounter).
   * Until this is called (and never while LoRA is off) workers send nothing.
   */
  countLoraResponses(baseModels: string[], onLoraResponse: (model: string) => void): void {
    this.#onLoraResponse = onLoraResponse;
    this.#lora = { baseModels: [...baseModels] };
    this.#broadcast({ type: 'nim:lora', lora: this.#lora });
  }

  /**
   * Shutdown: resolves true once every worker reports its requests in flight
   * finished, false when `graceMs` passes first. The lifecycle is already
   * `stopping` (mirrored), so workers answer new requests 503.
   */
  drain(graceMs: number): Promise<boolean> {
    const waiting = new Set(this.pids);
    if (waiting.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      let allIdle = true;
      const finish = (idle: boolean): void => {
        clearTimeout(timer);
        this.#drainWaiters.delete(onDrained);
        resolve(idle);
      };
      const onDrained = (pid: number, idle: boolean): void => {
        allIdle &&= idle;
        waiting.delete(pid);
        if (waiting.size === 0) finish(allIdle);
      };
      // A little past the workers' own grace period, for their answers to arrive.
      const timer = setTimeout(() => finish(false), graceMs + 1000);
      this.#drainWaiters.add(onDrained);
      this.#broadcast({ type: 'nim:drain', graceMs });
    });
  }

  /**
   * Every worker's metrics (prom-client JSON), and the retired snapshot of
   * those that exited (metric-snapshots.ts): never less than a scrape before
   * showed. A worker that does not answer within the timeout (stopped, busy)
   * counts with its last answer; that is logged at debug level only.
   */
  collectMetrics(): Promise<MetricsJson[]> {
    const id = this.#nextMetricsId++;
    const asked = [...this.#members.values()].filter((m) => m.listening && m.worker.isConnected());
    const answered = new Set<number>();
    return new Promise((resolve) => {
      const finish = (timedOut: boolean): void => {
        clearTimeout(timer);
        this.#metricsWaiters.delete(id);
        // The members now, not those asked: one that exited meanwhile is in the retired snapshot already.
        const got: MetricsJson[] = [];
        const stale: number[] = [];
        for (const m of this.#members.values()) {
          const last = this.#snapshots.last(m.worker.id);
          if (last === undefined) continue;
          got.push(last);
          if (!answered.has(m.worker.id)) stale.push(m.pid);
        }
        if (this.#snapshots.retired.length > 0) got.push(this.#snapshots.retired);
        if (stale.length > 0) {
          this.#staleAnswers += stale.length;
          this.#opts.logger.debug(
            { asked: asked.length, answered: answered.size, stalePids: stale, staleTotal: this.#staleAnswers, timedOut },
            `${stale.length} proxy worker(s) did not answer a metrics scrape in time; their last metrics are used`,
          );
        }
        resolve(got);
      };
      const timer = setTimeout(() => finish(true), asked.length === 0 ? 0 : (this.#opts.metricsTimeoutMs ?? 2000));
      this.#metricsWaiters.set(id, (worker) => {
        answered.add(worker);
        if (answered.size === asked.length) finish(false);
      });
      for (const m of asked) this.#send(m.worker, { type: 'nim:metrics-request', id });
    });
  }

  /** The engine is stopped: workers close the public port and exit (SIGKILL after a timeout). */
  async close(): Promise<void> {
    this.#closing = true;
    const exits = [...this.#members.values()].map(
      (m) =>
        new Promise<void>((resolve) => {
          if (m.worker.isDead()) return resolve();
          const timer = setTimeout(() => {
            this.#opts.logger.warn({ pid: m.pid }, 'proxy worker did not exit in time; killing it');
            kill(m.pid);
          }, CLOSE_TIMEOUT_MS);
          m.worker.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          this.#send(m.worker, { type: 'nim:close' });
        }),
    );
    await Promise.all(exits);
    this.#removeDir();
  }

  /** Immediate teardown: SIGKILL every worker by pid (synchronous: safe in an exit handler). */
  destroy(): void {
    this.#closing = true;
    for (const m of this.#members.values()) if (!m.worker.isDead()) kill(m.pid);
    this.#removeDir();
  }

  #removeDir(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #snapshot(): LifecycleSnapshot {
    const l = this.#opts.lifecycle;
    return { state: l.state, reason: l.reason, since: l.since.toISOString() };
  }

  #send(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message, undefined, () => undefined);
  }

  #broadcast(message: ToWorker): void {
    for (const m of this.#members.values()) this.#send(m.worker, message);
  }

  /** Fork one worker; resolves once it listens, rejects when it cannot. */
  #fork(): Promise<void> {
    const { config, logger } = this.#opts;
    const worker = cluster.fork({ [PROXY_WORKER_ENV]: '1' });
    const member: Member = { worker, pid: worker.process.pid ?? 0, listening: false };
    this.#members.set(worker.id, member);
    return new Promise((resolve, reject) => {
      worker.on('message', (m: unknown) => {
        if (!isMessage<FromWorker>(m)) return;
        switch (m.type) {
          case 'nim:hello':
            this.#send(worker, {
              type: 'nim:init',
              socketPath: this.socketPath,
              maxInflight: shareOf(config.maxInflightRequests, this.count),
              maxConnections: shareOf(config.maxConnections, this.count),
              lifecycle: this.#snapshot(),
              engine: this.#engine,
              lora: this.#lora,
            });
            break;
          case 'nim:listening':
            member.listening = true;
            logger.debug({ worker: worker.id, pid: member.pid }, `proxy worker ${worker.id} listening`);
            resolve();
            break;
          case 'nim:listen-failed':
            reject(new SupervisorError(m.message, { exitCode: m.exitCode, ...(m.hint ? { hint: m.hint } : {}) }));
            break;
          case 'nim:drained':
            for (const w of [...this.#drainWaiters]) w(member.pid, m.idle);
            break;
          case 'nim:metrics':
            // Kept even when late for its scrape: it is this worker's newest. Not after its exit (retired).
            if (!this.#members.has(worker.id)) break;
            this.#snapshots.record(worker.id, m.metrics);
            this.#metricsWaiters.get(m.id)?.(worker.id);
            break;
          case 'nim:lora-response':
            if (typeof m.model === 'string') this.#onLoraResponse?.(m.model);
            break;
        }
      });
      worker.once('exit', (code, signal) => {
        const wasListening = member.listening;
        member.listening = false;
        this.#members.delete(worker.id);
        // Its counters and histograms stay in every later scrape (in the same tick as it leaves #members).
        this.#snapshots.retire(worker.id);
        // A drain must not wait for a worker that is gone.
        for (const w of [...this.#drainWaiters]) w(member.pid, true);
        if (this.#closing) return;
        if (!wasListening) {
          reject(new ProxyWorkerError(`proxy worker ${worker.id} (pid ${member.pid}) exited before listening (${signal ?? `code ${code}`})`));
          return;
        }
        const now = performance.now();
        const decision = decideRespawn(this.#deaths, now, this.#opts.respawn ?? RESPAWN_POLICY);
        this.#deaths.push(now);
        if (decision.respawn) {
          logger.warn({ worker: worker.id, pid: member.pid, code, signal }, `proxy worker ${worker.id} exited unexpectedly (${signal ?? `code ${code}`}); starting a new one`);
          this.#fork().catch((err: unknown) => this.#fail(err instanceof ProxyWorkerError ? err : new ProxyWorkerError(String((err as Error).message ?? err))));
        } else {
          this.#fail(
            new ProxyWorkerError(`proxy workers keep dying: ${decision.reason} (the last: pid ${member.pid}, ${signal ?? `code ${code}`})`, {
              hint: 'see the log lines before this one for why; NIM_PROXY_WORKERS=1 serves the public port from the supervisor process itself',
            }),
          );
        }
      });
    });
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/**
 * A fresh 0700 directory for the primary's socket: under TMPDIR, else the cache
 * volume (NIM_CACHE_PATH, writable in a read-only pod), else /dev/shm.
 * Throws a ConfigError (exit 2) naming them when none is writable.
 */
export function socketDirectory(candidates: string[]): string {
  const tried: string[] = [];
  for (const dir of candidates) {
    try {
      return mkdtempSync(path.join(dir, 'nim-supervisor-')); // mode 0700
    } catch (err) {
      tried.push(`${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  throw new ConfigError(`NIM_PROXY_WORKERS > 1 needs a writable directory for the primary's socket; none of these is: ${tried.join(', ')}`, {
    hint: 'mount a writable /tmp (an emptyDir) or set TMPDIR, or set NIM_PROXY_WORKERS=1',
  });
}
