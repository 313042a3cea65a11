// Whether a proxied inference request may go to the engine now: the one
// decision both request paths (the edge's fast path, src/edge, and the
// node:http path, proxy.ts) take before forwarding. Pure: the answer is data.
import type { EngineState } from '../engine/lifecycle.js';

export interface AdmissionInput {
  state: EngineState;
  /** The lifecycle's reason (said in the 503 of a failed or unhealthy engine). */
  reason: string;
  /** An engine runs and has a base URL. */
  hasTarget: boolean;
  /** Proxied requests in flight now, and the cap (0 = none). */
  inflight: number;
  maxInflight: number;
  /** How the 429 names the cap (default `NIM_MAX_INFLIGHT_REQUESTS=<maxInflight>`; a proxy worker's is a share of it). */
  maxInflightLabel?: string | undefined;
  /** The declared Content-Length (undefined for none or chunked), and the limit. */
  declaredLength: number | undefined;
  maxBodyBytes: number;
}

export type Refusal = {
  status: 503 | 429 | 413;
  /** The metric (and log) name of the refusal. */
  kind: 'not_ready' | 'overloaded' | 'too_large';
  message: string;
  headers: Record<string, string>;
};

const TERMINAL: ReadonlySet<EngineState> = new Set(['stopping', 'stopped', 'failed']);

/** The 503 message for a request that arrives while the engine cannot take it. */
export function notReadyMessage(state: EngineState, reason: string): string {
  switch (state) {
    case 'stopping':
    case 'stopped':
      return 'The server is shutting down.';
    case 'failed':
      return `The model failed and is not available: ${reason}`;
    case 'unhealthy':
      return `The model is temporarily unavailable: ${reason}`;
    default:
      return `The model is not ready yet (state: ${state}). Retry once /v1/health/ready answers 200.`;
  }
}

/** undefined: forward it. Otherwise the answer to give instead, in this order: 503, 429, 413. */
export function admitProxied(a: AdmissionInput): Refusal | undefined {
  if (a.state !== 'ready' || !a.hasTarget) {
    const retry = a.state !== 'ready' && TERMINAL.has(a.state) ? '30' : '5';
    return { status: 503, kind: 'not_ready', message: notReadyMessage(a.state, a.reason), headers: { 'retry-after': retry } };
  }
  if (a.maxInflight > 0 && a.inflight >= a.maxInflight) {
    return {
      status: 429,
      kind: 'overloaded',
      message: `Too many requests in flight (${a.maxInflightLabel ?? `NIM_MAX_INFLIGHT_REQUESTS=${a.maxInflight}`}); retry shortly.`,
      headers: { 'retry-after': '1' },
    };
  }
  if (a.declaredLength !== undefined && a.declaredLength > a.maxBodyBytes) {
    return { status: 413, kind: 'too_large', message: tooLargeMessage(a.maxBodyBytes), headers: {} };
  }
  return undefined;
}

export function tooLargeMessage(max: number): string {
  return `Request body too large: the limit is ${max} bytes (NIM_MAX_REQUEST_BODY).`;
}
