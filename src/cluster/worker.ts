// A worker of a multi-node group (LWS_WORKER_INDEX >= 1): wait until the
// leader's Ray head answers, then run `ray start --address=<head> --block`
// under supervision (process group, pdeathsig, reaper) and serve only the
// health probes on NIM_SERVER_PORT. Ready = the ray process runs and has
// joined. If it exits, the worker exits non-zero (LeaderWorkerSet restarts the
// group); SIGTERM stops it and exits 0. See docs/multi-node.md.
import type http from 'node:http';
import type { Config } from '../config/env.js';
import { EngineError, describeError } from '../errors.js';
import { describeExit, exitCodeForExit } from '../process/exit.js';
import type { SupervisedProcess } from '../process/supervised-process.js';
import type { Logger } from '../log/logger.js';
import type { Redact } from '../log/redact.js';
import { closeServer } from '../server/close-server.js';
import { sendError } from '../server/errors.js';
import { PROXIED_ROUTES } from '../server/routes.js';
import { rayStatus } from './ray-cli.js';
import { RAY_STARTED_RE, resolveRay, spawnRay, WatchedLog } from './ray-process.js';
import type { ClusterRole } from './role.js';

export type WorkerPhase = 'waiting' | 'joining' | 'joined' | 'stopping' | 'stopped' | 'failed';

export interface WorkerDeps {
  config: Config;
  logger: Logger;
  role: Extract<ClusterRole, { kind: 'worker' }>;
  redact?: Redact;
  /** The public server as serve builds it (HTTP or HTTPS, timeouts). */
  createServer: (config: Config, handler: http.RequestListener) => http.Server;
  listen: (server: http.Server, config: Config) => Promise<void>;
  baseEnv?: NodeJS.ProcessEnv;
  /** How often to ask whether the head answers, before joining (default 1 s). */
  headPollMs?: number;
}

/** Paths of the inference API the leader serves (for a clearer answer than 404). */
const API_PATHS = new Set(PROXIED_ROUTES.map((r) => r.path.replace(/\/:[^/]+/g, '')));

function isApiPath(p: string): boolean {
  if (API_PATHS.has(p)) return true;
  return PROXIED_ROUTES.some((r) => r.path.includes(':') && new RegExp(`^${r.path.replace(/:[^/]+/g, '[^/]+')}$`).test(p));
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Run the worker until SIGTERM/SIGINT or a failure; returns the exit code. */
export async function serveWorker(deps: WorkerDeps): Promise<number> {
  const { config, role } = deps;
  const logger = deps.logger.child({ component: 'cluster' });
  const baseEnv = deps.baseEnv ?? process.env;
  const ray = resolveRay(config.cluster.rayCommand, baseEnv.PATH);
  const who = `worker ${role.index} of ${role.groupSize}`;

  let phase: WorkerPhase = 'waiting';
  let reason = `waiting for the Ray head at ${role.headAddress}`;
  let since = new Date();
  const setPhase = (p: WorkerPhase, why: string): void => {
    if (phase === p && reason === why) return;
    const from = phase;
    phase = p;
    reason = why;
    since = new Date();
    if (from !== p) logger.info({ from, to: p, reason: why }, `worker state ${from} -> ${p}`);
  };

  const handler: http.RequestListener = (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const p = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    if ((method === 'GET' || method === 'HEAD') && p === '/v1/health/live') {
      sendJson(res, 200, { object: 'health.response', message: 'live', status: 'live' });
      return;
    }
    if ((method === 'GET' || method === 'HEAD') && p === '/v1/health/ready') {
      if (phase === 'joined') {
        sendJson(res, 200, { object: 'health.response', message: `ready: ${who}, joined the Ray head at ${role.headAddress}`, status: 'ready' });
      } else {
        sendJson(res, 503, {
          object: 'health.response',
          message: reason,
          status: phase,
          worker: { index: role.index, group_size: role.groupSize, head_address: role.headAddress, phase, since: since.toISOString(), last_log: log.lastLine ?? null },
        });
      }
      return;
    }
    const where = `this pod is Ray ${who} of a multi-node group (LWS_WORKER_INDEX=${role.index}) and serves only /v1/health/live and /v1/health/ready; the API is served by the leader (${config.cluster.leaderAddress ?? 'LWS_LEADER_ADDRESS'})`;
    if (isApiPath(p)) sendError(res, 503, `Service unavailable: ${where}.`);
    else sendError(res, 404, `Route ${method} ${p} not found: ${where}.`);
  };

  let rayProc: SupervisedProcess | undefined;
  let joinedResolve!: () => void;
  const joined = new Promise<void>((r) => (joinedResolve = r));
  const log = new WatchedLog(
    (line) => {
      if (phase === 'joining' && RAY_STARTED_RE.test(line)) {
        setPhase('joined', `joined the Ray head at ${role.headAddress}`);
        joinedResolve();
      }
    },
    deps.redact ? { redact: deps.redact } : {},
  );

  const server = deps.createServer(config, handler);
  await deps.listen(server, config);
  logger.info(
    { host: config.serverHost, port: config.serverPort, index: role.index, groupSize: role.groupSize, headAddress: role.headAddress },
    `Ray ${who}: serving health on ${config.serverHost}:${config.serverPort}`,
  );
  process.once('exit', () => rayProc?.destroy());

  // One outcome: a signal, a failure, or the ray process ending.
  let settle!: (o: { exitCode: number; error?: EngineError; signal?: NodeJS.Signals }) => void;
  const outcome = new Promise<{ exitCode: number; error?: EngineError; signal?: NodeJS.Signals }>((r) => (settle = r));
  const onSignal = (signal: NodeJS.Signals): void => settle({ exitCode: 0, signal });
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const abort = new AbortController();
  let over = false;
  void outcome.then(() => {
    over = true;
    abort.abort();
  });

  const secs = Math.round(config.cluster.startTimeoutMs / 1000);
  const deadline = setTimeout(() => {
    if (phase === 'joined') return;
    settle({
      exitCode: 1,
      error: new EngineError(`did not join the Ray head at ${role.headAddress} within ${secs} s (NIM_CLUSTER_START_TIMEOUT): ${reason}`, {
        hint: 'check that the leader pod runs and that this pod reaches LWS_LEADER_ADDRESS on NIM_RAY_PORT',
      }),
    });
  }, config.cluster.startTimeoutMs);

  // 1. Wait until the head answers: pods of a group start in any order.
  void (async () => {
    let lastLog = 0;
    while (!over) {
      const r = await rayStatus({ ray, address: role.headAddress, env: baseEnv, timeoutMs: 10_000, signal: abort.signal });
      if (over) return;
      if (r.ok) break;
      if (Date.now() - lastLog > 10_000) {
        logger.info({ reason: r.reason }, `waiting for the Ray head at ${role.headAddress}`);
        lastLog = Date.now();
      }
      await new Promise((res) => setTimeout(res, deps.headPollMs ?? 1000));
    }
    if (over) return;
    // 2. Join it.
    setPhase('joining', `joining the Ray head at ${role.headAddress}`);
    try {
      rayProc = spawnRay({ ray, args: ['start', `--address=${role.headAddress}`, '--block'], baseEnv, logger: deps.logger, log });
    } catch (err) {
      settle({ exitCode: 1, error: new EngineError(`could not start ray: ${(err as Error).message}`) });
      return;
    }
    logger.info({ pid: rayProc.pid, headAddress: role.headAddress }, 'ray process spawned');
    const proc = rayProc;
    void proc.exited.then((exit) => {
      const code = exitCodeForExit(exit);
      settle({
        exitCode: code,
        error: new EngineError(
          `the ray process ${describeExit(exit)} ${phase === 'joined' ? 'after joining' : 'before joining'} the head at ${role.headAddress}; it last logged: ${log.lastLine ?? '(nothing)'}`,
          { exitCode: code, hint: 'the leader or the network went away, or Ray failed on this node; LeaderWorkerSet restarts the group' },
        ),
      });
    });
    await joined;
    logger.info({ headAddress: role.headAddress }, `joined the Ray cluster as ${who}`);
  })().catch((err: unknown) => settle({ exitCode: 1, error: new EngineError(`worker failed: ${describeError(err)}`) }));

  const result = await outcome;
  clearTimeout(deadline);
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  let exitCode = result.exitCode;
  if (result.signal) {
    logger.info({ signal: result.signal }, `received ${result.signal}; stopping ray`);
    setPhase('stopping', `received ${result.signal}`);
  } else {
    setPhase('failed', result.error?.message ?? 'failed');
  }
  if (rayProc) {
    const { exit, killed } = await rayProc.close(config.engineStopTimeoutMs);
    if (result.signal) logger.info({ exit, killed }, `ray ${describeExit(exit)}`);
    if (killed && exitCode === 0) exitCode = 1;
    await Promise.race([rayProc.drained, new Promise((r) => setTimeout(r, 500))]);
  }
  await closeServer(server);
  if (result.error) {
    // The one closing error line (main prints it) with this exit code.
    throw new EngineError(result.error.message, { exitCode, hint: result.error.hint, cause: result.error });
  } else {
    setPhase('stopped', 'stopped');
    logger.info('worker stopped cleanly');
  }
  return exitCode;
}
