// The IPC between the primary and its proxy workers (node:cluster's channel),
// as discriminated unions. Nothing secret travels here: each worker reads its
// configuration (the API key, TLS files) from the same environment.
import type { Registry } from 'prom-client';
import type { EngineState } from '../engine/lifecycle.js';

/** One registry's metrics as prom-client's getMetricsAsJSON() gives them (what AggregatorRegistry.aggregate takes). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** The primary's engine lifecycle, as workers mirror it. */
export interface LifecycleSnapshot {
  state: EngineState;
  reason: string;
  /** ISO time of the last change. */
  since: string;
}

/** What a worker's engine proxy needs to reach the engine. */
export interface EngineTarget {
  /** The engine's base URL on its private loopback port. */
  url: string;
  /** The engine's idle keep-alive (VLLM_HTTP_TIMEOUT_KEEP_ALIVE, ms). */
  keepAliveMs: number;
}

/**
 * LoRA is on (NIM_PEFT_SOURCE): the worker reads each proxied response's
 * `model` (lora/metrics.ts) and reports every name other than these to the
 * primary, which counts the adapters among them (`nim:lora-response`).
 */
export interface LoraCounting {
  /** The names the base model answers as (its served model names): never counted, never sent. */
  baseModels: string[];
}

export type ToWorker =
  | {
      type: 'nim:init';
      /** The primary's internal listener (a Unix socket in a 0700 directory). */
      socketPath: string;
      /** This worker's share of NIM_MAX_INFLIGHT_REQUESTS (0 = no cap). */
      maxInflight: number;
      /** This worker's share of NIM_MAX_CONNECTIONS (0 = no cap). */
      maxConnections: number;
      lifecycle: LifecycleSnapshot;
      engine: EngineTarget | undefined;
      /** Undefined while LoRA is off or not yet known (then `nim:lora` follows). */
      lora: LoraCounting | undefined;
    }
  | { type: 'nim:lifecycle'; lifecycle: LifecycleSnapshot }
  | { type: 'nim:engine'; engine: EngineTarget }
  /** LoRA is on: report adapter responses from now on. */
  | { type: 'nim:lora'; lora: LoraCounting }
  /** Shutdown began: report once every request in flight here has finished (or `graceMs` passed). */
  | { type: 'nim:drain'; graceMs: number }
  | { type: 'nim:metrics-request'; id: number }
  /** The engine is stopped: close the public port and exit. */
  | { type: 'nim:close' };

export type FromWorker =
  /** The worker is ready for its `nim:init` (a message sent before it listens for messages would be lost). */
  | { type: 'nim:hello' }
  | { type: 'nim:listening' }
  /** The public port could not be opened (exit code and hint as the primary would report them). */
  | { type: 'nim:listen-failed'; message: string; hint: string | undefined; exitCode: number }
  | { type: 'nim:drained'; idle: boolean; inFlight: number }
  | { type: 'nim:metrics'; id: number; metrics: MetricsJson }
  /** A proxied response answered as `model`, a name that is not the base model's (only while LoRA is on). */
  | { type: 'nim:lora-response'; model: string };

/** Type guard for messages on the channel (other modules, like prom-client, send their own). */
export function isMessage<T extends { type: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('nim:');
}
