// The pretend inference engine: a FIFO admission queue bounded by the
// concurrency limit, then prefill (TTFT) and decode (one step per token)
// timing. With zero latencies every step runs synchronously in one burst, so
// a request costs no timers at all. It also keeps the KV-cache and prefix-cache
// books that feed /metrics.
import type { SimLogger } from './log.js';
import type { FinishedReason, SimMetrics } from './metrics.js';

export interface JobSink {
  /** Deliver token step i (0-based). Steps arrive in order. */
  step(i: number): void;
  /** Push buffered output to the client (after each burst of steps). */
  flush(): void;
  /** All steps delivered (not called after an abort). */
  done(): void;
}

export interface Job {
  id: string;
  promptTokens: number;
  /** Prompt ids for prefix-cache accounting (null: count as a miss). */
  promptIds: readonly number[] | null;
  /** Tokens each choice generates; the job runs max(choiceTokens) steps. */
  choiceTokens: number[];
  /** Finish reason of each choice when it completes normally. */
  finishReasons: Array<'stop' | 'length'>;
  maxTokens: number;
  sink: JobSink;
  /** The LoRA adapter the request runs with (its `model`), if any. */
  lora?: string | null;
}

export interface JobHandle {
  /** Cancel the job (client went away): no more steps, counted as aborted. */
  abort(): void;
}

export interface EngineOptions {
  ttftMs: number;
  tokenMs: number;
  maxConcurrency: number | null;
  kvTokens: number;
  blockSize: number;
  prefixCaching: boolean;
  metrics: SimMetrics;
  logger: SimLogger;
  now?: () => number;
  /** With LoRA on: the adapters of running and waiting requests, after each scheduling change (vllm:lora_requests_info). */
  onLoraStats?: ((running: string[], waiting: string[]) => void) | undefined;
}

interface Run {
  job: Job;
  steps: number;
  state: 'waiting' | 'running' | 'done';
  arrival: number;
  scheduled: number;
  first: number;
  last: number;
  done: number;
  kv: number;
  itl: number[];
  timer: NodeJS.Timeout | null;
}

export class Engine {
  private running = 0;
  private waiting = 0;
  private readonly queue: Run[] = [];
  private head = 0;
  private kvUsed = 0;
  private readonly live = new Set<Run>();
  private readonly blocks = new Set<number>();
  private readonly now: () => number;
  // Throughput since the last stats log line.
  private periodPrompt = 0;
  private periodGen = 0;
  private periodQueries = 0;
  private periodHits = 0;

  constructor(private readonly o: EngineOptions) {
    this.now = o.now ?? (() => performance.now());
  }

  get numRunning(): number {
    return this.running;
  }

  get numWaiting(): number {
    return this.waiting;
  }

  get kvUsage(): number {
    return Math.min(1, this.kvUsed / this.o.kvTokens);
  }

  submit(job: Job): JobHandle {
    const r: Run = {
      job,
      steps: Math.max(0, ...job.choiceTokens),
      state: 'waiting',
      arrival: this.now(),
      scheduled: 0,
      first: 0,
      last: 0,
      done: 0,
      kv: 0,
      itl: [],
      timer: null,
    };
    this.live.add(r);
    if (this.o.maxConcurrency === null || this.running < this.o.maxConcurrency) this.start(r);
    else {
      this.waiting++;
      this.queue.push(r);
      this.loraStats();
    }
    return { abort: () => this.abort(r) };
  }

  private start(r: Run): void {
    r.state = 'running';
    r.scheduled = this.now();
    this.running++;
    r.kv = r.job.promptTokens;
    this.kvUsed += r.kv;
    this.prefixLookup(r.job);
    this.loraStats();
    this.periodPrompt += r.job.promptTokens;
    if (this.o.ttftMs > 0) r.timer = setTimeout(() => this.emit(r), this.o.ttftMs);
    else this.emit(r);
  }

  private stepOnce(r: Run): void {
    const t = this.now();
    if (r.done === 0) r.first = t;
    else r.itl.push((t - r.last) / 1000);
    r.last = t;
    let active = 0;
    for (const n of r.job.choiceTokens) if (n > r.done) active++;
    r.kv += active;
    this.kvUsed += active;
    this.periodGen += active;
    r.job.sink.step(r.done++);
  }

  private emit(r: Run): void {
    r.timer = null;
    if (r.state !== 'running') return;
    if (this.o.tokenMs === 0) {
      while (r.done < r.steps) this.stepOnce(r);
    } else if (r.done < r.steps) this.stepOnce(r);
    if (r.done < r.steps) {
      r.job.sink.flush();
      r.timer = setTimeout(() => this.emit(r), this.o.tokenMs);
    } else this.finish(r, null); // done() writes whatever is still buffered
  }

  private finish(r: Run, reason: FinishedReason | null): void {
    const wasRunning = r.state === 'running';
    r.state = 'done';
    this.live.delete(r);
    if (r.timer) clearTimeout(r.timer);
    r.timer = null;
    const t = this.now();
    if (wasRunning) {
      this.running--;
      this.kvUsed -= r.kv;
    } else r.scheduled = t;
    const j = r.job;
    j.choiceTokens.forEach((tokens, c) => {
      const made = Math.min(tokens, r.done);
      const finished = reason === null || made >= tokens;
      this.o.metrics.record({
        reason: finished ? j.finishReasons[c] ?? 'stop' : (reason ?? 'abort'),
        promptTokens: j.promptTokens,
        generationTokens: made,
        maxTokens: j.maxTokens,
        n: j.choiceTokens.length,
        queue: (r.scheduled - r.arrival) / 1000,
        prefill: r.done > 0 ? (r.first - r.scheduled) / 1000 : (t - r.scheduled) / 1000,
        decode: r.done > 0 ? (r.last - r.first) / 1000 : 0,
        e2e: (t - r.arrival) / 1000,
        ttft: r.done > 0 ? (r.first - r.arrival) / 1000 : null,
        itl: made > 1 ? r.itl.slice(0, made - 1) : [],
      });
    });
    if (reason === null) j.sink.done();
    this.drain();
    this.loraStats();
  }

  /** IterationStats.running_lora_adapters / waiting_lora_adapters: adapter names in first-seen order. */
  private loraStats(): void {
    const report = this.o.onLoraStats;
    if (!report) return;
    const running = new Set<string>();
    const waiting = new Set<string>();
    for (const r of this.live) {
      if (!r.job.lora) continue;
      if (r.state === 'running') running.add(r.job.lora);
      else if (r.state === 'waiting') waiting.add(r.job.lora);
    }
    report([...running], [...waiting]);
  }

  private abort(r: Run): void {
    if (r.state === 'done') return;
    if (r.state === 'waiting') this.waiting--;
    this.o.logger.log('INFO', 'async_llm.py:414', `Request ${r.job.id} aborted.`);
    this.finish(r, 'abort');
  }

  /** Admit queued jobs while there is room (skipping ones aborted while queued). */
  private drain(): void {
    while (this.head < this.queue.length && (this.o.maxConcurrency === null || this.running < this.o.maxConcurrency)) {
      const next = this.queue[this.head++]!;
      if (next.state !== 'waiting') continue;
      this.waiting--;
      this.start(next);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Chained block hashes, like vLLM's prefix cache: hits = leading full blocks seen before. */
  private prefixLookup(job: Job): void {
    if (!this.o.prefixCaching) return;
    const ids = job.promptIds;
    const bs = this.o.blockSize;
    let hits = 0;
    let missed = ids === null;
    if (ids) {
      let h = 0x811c9dc5;
      for (let b = 0; b + bs <= ids.length; b += bs) {
        for (let i = b; i < b + bs; i++) h = Math.imul(h ^ ids[i]!, 0x01000193) >>> 0;
        if (!missed && this.blocks.has(h)) hits += bs;
        else {
          missed = true;
          this.blocks.add(h);
        }
      }
      // Crude eviction: forget everything when the pretend cache is full.
      if (this.blocks.size * bs > this.o.kvTokens) this.blocks.clear();
    }
    this.o.metrics.prefixCache(job.promptTokens, hits);
    this.periodQueries += job.promptTokens;
    this.periodHits += hits;
  }

  /** vLLM's periodic "Engine 000: Avg prompt throughput ..." line; returns false when idle. */
  statsLine(intervalS: number): string | null {
    const idle = this.periodPrompt === 0 && this.periodGen === 0 && this.running === 0 && this.waiting === 0;
    const line =
      `Engine 000: Avg prompt throughput: ${(this.periodPrompt / intervalS).toFixed(1)} tokens/s, ` +
      `Avg generation throughput: ${(this.periodGen / intervalS).toFixed(1)} tokens/s, ` +
      `Running: ${this.running} reqs, Waiting: ${this.waiting} reqs, ` +
      `GPU KV cache usage: ${(this.kvUsage * 100).toFixed(1)}%, ` +
      `Prefix cache hit rate: ${this.periodQueries ? ((this.periodHits / this.periodQueries) * 100).toFixed(1) : '0.0'}%`;
    this.periodPrompt = this.periodGen = this.periodQueries = this.periodHits = 0;
    return idle ? null : line;
  }

  /** Stop every job without further output (shutdown / engine death). */
  abortAll(): void {
    for (const r of [...this.live]) {
      if (r.timer) clearTimeout(r.timer);
      r.timer = null;
      r.state = 'done';
    }
    this.live.clear();
  }
}
