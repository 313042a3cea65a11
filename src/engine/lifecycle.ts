// The engine's lifecycle as a small state machine. The HTTP layer reads it to
// answer readiness and gate inference; the logs record every transition.
//
//   starting → loading → ready ⇄ unhealthy
//        ↘        ↘        ↘        ↘
//                  stopping → stopped | failed
// (any state may also go straight to `failed`; a restart goes back to `starting`)
// Model-free serving fetches the model before the engine is spawned:
//   starting → downloading → starting (→ loading …)
import { EventEmitter } from 'node:events';

export type EngineState = 'starting' | 'downloading' | 'loading' | 'ready' | 'unhealthy' | 'stopping' | 'stopped' | 'failed';

const ALLOWED: Record<EngineState, readonly EngineState[]> = {
  starting: ['loading', 'downloading', 'stopping', 'failed'],
  downloading: ['starting', 'stopping', 'failed'],
  loading: ['ready', 'stopping', 'failed', 'starting'],
  ready: ['unhealthy', 'stopping', 'failed', 'starting'],
  unhealthy: ['ready', 'stopping', 'failed', 'starting'],
  stopping: ['stopped', 'failed'],
  stopped: [],
  failed: [],
};

export interface StateChange {
  from: EngineState;
  to: EngineState;
  /** Why, in words an operator understands. */
  reason: string;
  at: Date;
}

export class Lifecycle extends EventEmitter<{ change: [StateChange] }> {
  #state: EngineState = 'starting';
  #since = new Date();
  #reason = 'supervisor starting';

  get state(): EngineState {
    return this.#state;
  }
  get since(): Date {
    return this.#since;
  }
  get reason(): string {
    return this.#reason;
  }
  get isReady(): boolean {
    return this.#state === 'ready';
  }
  /** True once shutdown has begun or the engine has failed for good. */
  get isTerminal(): boolean {
    return this.#state === 'stopping' || this.#state === 'stopped' || this.#state === 'failed';
  }

  /**
   * Update the reason without changing state (progress while starting, e.g.
   * "waiting for Ray workers: 1 of 2 joined"). Emits no `change`.
   */
  note(reason: string): void {
    this.#reason = reason;
  }

  /**
   * Take the state another process reports, as it is (a proxy worker mirrors
   * the primary's lifecycle, src/workers): no transition rules apply, since the
   * primary already applied them. Emits `change` when the state changes.
   */
  mirror(state: EngineState, reason: string, since: Date): void {
    const from = this.#state;
    this.#state = state;
    this.#since = since;
    this.#reason = reason;
    if (from !== state) this.emit('change', { from, to: state, reason, at: since });
  }

  /** Move to `to`; returns false (and changes nothing) when the transition is not allowed. */
  transition(to: EngineState, reason: string): boolean {
    const from = this.#state;
    if (from === to || !ALLOWED[from].includes(to)) return false;
    this.#state = to;
    this.#since = new Date();
    this.#reason = reason;
    this.emit('change', { from, to, reason, at: this.#since });
    return true;
  }
}
