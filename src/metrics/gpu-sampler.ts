// GPU metrics for the GPUs the engine uses, sampled from nvidia-smi on an
// interval (never per scrape, so a scrape never waits on nvidia-smi) and
// exported as gauges that read the latest sample.
import { Gauge, type Registry } from 'prom-client';
import { runNvidiaSmi } from '../hardware/nvidia-smi.js';
import type { Logger } from '../log/logger.js';
import { METRIC_PREFIX } from './supervisor-metrics.js';

export const GPU_STATS_FIELDS = [
  'index',
  'uuid',
  'utilization.gpu',
  'memory.used',
  'memory.total',
  'temperature.gpu',
  'power.draw',
] as const;

export interface GpuSample {
  index: number;
  uuid: string;
  utilizationPct: number | null;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
  temperatureC: number | null;
  powerW: number | null;
}

/** A number, or null for nvidia-smi's `[N/A]`, `[Not Supported]` and the like. */
function num(raw: string | undefined): number | null {
  if (raw === undefined) return null;
  const t = raw.trim();
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : null;
}

/** Parse the sampler's query output; lines that do not fit are skipped. */
export function parseGpuStats(text: string): GpuSample[] {
  const out: GpuSample[] = [];
  for (const line of text.split(/\r?\n/)) {
    const cols = line.split(',');
    if (cols.length !== GPU_STATS_FIELDS.length) continue;
    const index = num(cols[0]);
    const uuid = cols[1]!.trim();
    if (index === null || !/^(GPU|MIG)-/.test(uuid)) continue;
    out.push({
      index,
      uuid,
      utilizationPct: num(cols[2]),
      memoryUsedMiB: num(cols[3]),
      memoryTotalMiB: num(cols[4]),
      temperatureC: num(cols[5]),
      powerW: num(cols[6]),
    });
  }
  return out;
}

export interface GpuSamplerOptions {
  registry: Registry;
  /** nvidia-smi indices of the GPUs the engine uses (a MIG instance carries its parent GPU's index, so the parent is sampled). */
  gpuIndices: readonly number[];
  intervalMs: number;
  logger: Logger;
  nvidiaSmiCommand?: string;
  env?: NodeJS.ProcessEnv;
}

const MIB = 1024 * 1024;

export class GpuSampler {
  readonly #opts: GpuSamplerOptions;
  #latest: GpuSample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #warned = false;

  constructor(opts: GpuSamplerOptions) {
    this.#opts = opts;
    const registers = [opts.registry];
    const labelNames = ['gpu', 'uuid'] as const;
    const gauge = (name: string, help: string, pick: (s: GpuSample) => number | null): void => {
      const latest = (): GpuSample[] => this.#latest;
      new Gauge({
        name: `${METRIC_PREFIX}${name}`,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const s of latest()) {
            const v = pick(s);
            if (v !== null) this.set({ gpu: String(s.index), uuid: s.uuid }, v);
          }
        },
      });
    };
    gauge('gpu_utilization_ratio', 'GPU utilisation (0-1) of each GPU the engine uses, from nvidia-smi.', (s) =>
      s.utilizationPct === null ? null : s.utilizationPct / 100,
    );
    gauge('gpu_memory_used_bytes', 'GPU memory in use on each GPU the engine uses.', (s) =>
      s.memoryUsedMiB === null ? null : s.memoryUsedMiB * MIB,
    );
    gauge('gpu_memory_total_bytes', 'Total GPU memory of each GPU the engine uses.', (s) =>
      s.memoryTotalMiB === null ? null : s.memoryTotalMiB * MIB,
    );
    gauge('gpu_temperature_celsius', 'GPU core temperature, where the driver reports it.', (s) => s.temperatureC);
    gauge('gpu_power_watts', 'GPU power draw, where the driver reports it.', (s) => s.powerW);
    new Gauge({
      name: `${METRIC_PREFIX}gpu_sample_age_seconds`,
      help: 'Seconds since the last successful nvidia-smi sample (absent before the first).',
      registers,
      collect: (() => {
        const sampler = this;
        return function (this: Gauge) {
          this.reset();
          if (sampler.lastSampleAt !== undefined) this.set((Date.now() - sampler.lastSampleAt) / 1000);
        };
      })(),
    });
  }

  lastSampleAt: number | undefined;

  get latest(): readonly GpuSample[] {
    return this.#latest;
  }

  start(): void {
    if (this.#opts.gpuIndices.length === 0) return; // a CPU profile: nothing to sample
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Take one sample now (skipped while the previous one is still running). */
  async sample(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      const r = await runNvidiaSmi([`--query-gpu=${GPU_STATS_FIELDS.join(',')}`, '--format=csv,noheader,nounits'], {
        ...(this.#opts.nvidiaSmiCommand ? { command: this.#opts.nvidiaSmiCommand } : {}),
        env: this.#opts.env ?? process.env,
        // Not tied to the interval: a sample slower than it (nvidia-smi under load) only delays the next one
        // (overlapping samples are skipped); only a hung nvidia-smi is cut.
        timeoutMs: 10_000,
      });
      if (r.status !== 'ok') {
        if (!this.#warned) this.#opts.logger.warn({ reason: r.message }, 'GPU metrics: nvidia-smi sample failed');
        this.#warned = true;
        return;
      }
      const wanted = new Set(this.#opts.gpuIndices);
      this.#latest = parseGpuStats(r.stdout).filter((s) => wanted.has(s.index));
      this.lastSampleAt = Date.now();
      this.#warned = false;
    } finally {
      this.#running = false;
    }
  }
}
