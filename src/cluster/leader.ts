// The leader of a multi-node group (LWS_WORKER_INDEX=0, LWS_GROUP_SIZE > 1):
// start the Ray head (`ray start --head --port P --block`, supervised like the
// engine), wait until every worker has joined (`ray status`), then let vLLM
// start with --distributed-executor-backend ray; afterwards keep checking that
// every node is still there. A lost node, a head that exits or a group that
// does not form in time fails the leader (non-zero exit: LeaderWorkerSet
// restarts the group). See docs/multi-node.md.
import { EngineError } from '../errors.js';
import type { Lifecycle } from '../engine/lifecycle.js';
import { describeExit, exitCodeForExit } from '../process/exit.js';
import type { SupervisedProcess } from '../process/supervised-process.js';
import type { Config } from '../config/env.js';
import type { Logger } from '../log/logger.js';
import type { Redact } from '../log/redact.js';
import { rayStatus } from './ray-cli.js';
import { resolveRay, spawnRay, WatchedLog } from './ray-process.js';
import { clusterRole } from './role.js';

export interface ClusterLeaderOptions {
  config: Pick<Config, 'cluster' | 'engineStopTimeoutMs' | 'healthIntervalMs'>;
  logger: Logger;
  redact?: Redact;
  /** Extra environment for the Ray head (the engine's CUDA_VISIBLE_DEVICES, so Ray offers the selected GPUs). */
  env?: Record<string, string>;
  baseEnv?: NodeJS.ProcessEnv;
  /** `ray status` poll interval while the group forms (default 500 ms). */
  formationPollMs?: number;
  /** Consecutive failed `ray status` calls, once formed, that count as losing the head (default 3). */
  maxStatusFailures?: number;
}

export interface ClusterLeaderStart {
  lifecycle: Lifecycle;
  /** Every worker has joined: start the engine. */
  onFormed: () => void;
  /** The group failed (not formed in time, a node lost, the head gone): fail the supervisor. */
  onFailed: (error: EngineError) => void;
}

export class ClusterLeader {
  readonly #opts: ClusterLeaderOptions;
  readonly #ray: string;
  readonly #address: string;
  readonly #expected: number;
  readonly #logger: Logger;
  readonly log: WatchedLog;
  #head: SupervisedProcess | undefined;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #abort = new AbortController();
  #stopping = false;
  #done = false;
  #formed = false;
  #joined = -1;
  #statusFailures = 0;
  #lastProgressLog = 0;

  /** Throws a ConfigError when the ray executable is missing. */
  constructor(opts: ClusterLeaderOptions) {
    const role = clusterRole(opts.config.cluster);
    if (role.kind !== 'leader') throw new Error('ClusterLeader needs LWS_GROUP_SIZE > 1 and LWS_WORKER_INDEX=0');
    this.#opts = opts;
    this.#address = role.headAddress;
    this.#expected = role.groupSize;
    this.#logger = opts.logger.child({ component: 'cluster' });
    this.#ray = resolveRay(opts.config.cluster.rayCommand, (opts.baseEnv ?? process.env).PATH);
    this.log = new WatchedLog(() => undefined, opts.redact ? { redact: opts.redact } : {});
  }

  get formed(): boolean {
    return this.#formed;
  }

  get headAddress(): string {
    return this.#address;
  }

  /** Start the head and wait for the workers in the background; `onFormed` or `onFailed` follows. */
  start(s: ClusterLeaderStart): void {
    const { cluster } = this.#opts.config;
    const workers = this.#expected - 1;
    const note = (reason: string): void => {
      if (!s.lifecycle.isTerminal) s.lifecycle.note(reason);
    };
    const fail = (error: EngineError): void => {
      // Once shutdown has begun, nodes leaving (workers get SIGTERM too) is expected.
      if (this.#done || this.#stopping || s.lifecycle.state === 'stopping' || s.lifecycle.state === 'stopped') return;
      this.#done = true;
      clearTimeout(this.#timer);
      clearTimeout(this.#deadline);
      this.#logger.error({ headAddress: this.#address }, error.message);
      s.onFailed(error);
    };

    let head: SupervisedProcess;
    try {
      head = spawnRay({
        ray: this.#ray,
        args: ['start', '--head', '--port', String(cluster.rayPort), '--block'],
        ...(this.#opts.env ? { env: this.#opts.env } : {}),
        baseEnv: this.#opts.baseEnv ?? process.env,
        logger: this.#opts.logger,
        log: this.log,
      });
    } catch (err) {
      fail(new EngineError(`could not start the Ray head: ${(err as Error).message}`));
      return;
    }
    this.#head = head;
    this.#logger.info(
      { pid: head.pid, port: cluster.rayPort, groupSize: this.#expected, headAddress: this.#address },
      `Ray head spawned; waiting for ${workers} worker${workers === 1 ? '' : 's'} to join (LWS_GROUP_SIZE=${this.#expected})`,
    );
    note(`starting the Ray head; waiting for Ray workers: 0 of ${workers} joined`);
    void head.exited.then((exit) => {
      if (this.#stopping) return;
      fail(
        new EngineError(`the Ray head ${describeExit(exit)}${this.#formed ? '' : ' before the group formed'}; it last logged: ${this.log.lastLine ?? '(nothing)'}`, {
          exitCode: exitCodeForExit(exit),
          hint: 'check the Ray log lines above (port NIM_RAY_PORT in use? not enough shared memory?)',
        }),
      );
    });

    const secs = Math.round(cluster.startTimeoutMs / 1000);
    this.#deadline = setTimeout(() => {
      if (this.#formed) return;
      const joined = Math.max(0, this.#joined);
      fail(
        new EngineError(
          `Ray workers did not join within ${secs} s (NIM_CLUSTER_START_TIMEOUT): ${joined} of ${workers} joined the head at ${this.#address}`,
          {
            hint: `check the worker pods (LWS_WORKER_INDEX 1 … ${workers}) are running and reach ${this.#address} (LWS_LEADER_ADDRESS, NIM_RAY_PORT); raise NIM_CLUSTER_START_TIMEOUT if they start slowly`,
          },
        ),
      );
    }, cluster.startTimeoutMs);

    const poll = async (): Promise<void> => {
      if (this.#done || this.#stopping) return;
      const r = await rayStatus({
        ray: this.#ray,
        address: this.#address,
        env: this.#opts.baseEnv ?? process.env,
        timeoutMs: Math.max(2000, Math.min(10_000, this.#opts.config.healthIntervalMs * 2)),
        signal: this.#abort.signal,
      });
      if (this.#done || this.#stopping) return;
      if (!this.#formed) {
        if (r.ok) {
          const joined = Math.max(0, r.summary.nodes - 1);
          const now = Date.now();
          if (joined !== this.#joined || now - this.#lastProgressLog > 10_000) {
            this.#logger.info({ joined, expected: workers, nodes: r.summary.nodes }, `waiting for Ray workers: ${joined} of ${workers} joined`);
            this.#lastProgressLog = now;
          }
          this.#joined = joined;
          note(`waiting for Ray workers: ${Math.min(joined, workers)} of ${workers} joined`);
          if (r.summary.nodes >= this.#expected) {
            this.#formed = true;
            clearTimeout(this.#deadline);
            this.#logger.info({ nodes: r.summary.nodes, headAddress: this.#address }, `Ray cluster formed: ${r.summary.nodes} nodes; starting the engine`);
            note(`Ray cluster formed (${r.summary.nodes} nodes); starting the engine`);
            if (!s.lifecycle.isTerminal) s.onFormed();
          }
        } else if (Date.now() - this.#lastProgressLog > 10_000) {
          this.#logger.info({ reason: r.reason }, 'waiting for the Ray head to answer');
          this.#lastProgressLog = Date.now();
        }
      } else if (r.ok) {
        this.#statusFailures = 0;
        if (r.summary.nodes < this.#expected) {
          fail(
            new EngineError(
              `the Ray cluster lost a node: ${r.summary.nodes} of ${this.#expected} nodes active (LWS_GROUP_SIZE=${this.#expected})`,
              { hint: 'a worker pod stopped or lost its connection to the Ray head; LeaderWorkerSet restarts the group' },
            ),
          );
          return;
        }
      } else if (++this.#statusFailures >= (this.#opts.maxStatusFailures ?? 3)) {
        fail(new EngineError(`the Ray head stopped answering: ${r.reason}`, { hint: 'LeaderWorkerSet restarts the group' }));
        return;
      }
      const next = this.#formed ? this.#opts.config.healthIntervalMs : (this.#opts.formationPollMs ?? 500);
      this.#timer = setTimeout(() => void poll(), next);
    };
    this.#timer = setTimeout(() => void poll(), 0);
  }

  /** Graceful teardown: stop watching and stop the Ray head (after the engine: vLLM's Ray workers need it until then). */
  async close(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    this.#abort.abort();
    const head = this.#head;
    if (!head) return;
    const { exit, killed } = await head.close(this.#opts.config.engineStopTimeoutMs);
    this.#logger.info({ exit, killed }, `Ray head ${describeExit(exit)}`);
    await Promise.race([head.drained, new Promise((r) => setTimeout(r, 500))]);
  }

  /** Immediate teardown, synchronous: SIGKILL the Ray head's group (last resort for `process.on('exit')`). */
  destroy(): void {
    this.#stopping = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    this.#abort.abort();
    this.#head?.destroy();
  }
}
