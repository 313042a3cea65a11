// All configuration comes from environment variables and is validated here, in
// one place, into a typed `Config`. (Plain parsers rather than zod: this module
// is on the start-up path, and zod's import alone costs ~55 ms.) Names follow NIM's where NIM has them.
// Every variable is documented in docs/configuration.md; keep the two in step.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseShell } from 'shell-quote';
import { ConfigError } from '../errors.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface Config {
  /** Model manifest file (YAML). */
  manifestPath: string;
  /** Profile id, unique id prefix or name; undefined = automatic selection. */
  modelProfile: string | undefined;
  /** Name clients use in `model`; defaults to the manifest's served name. */
  servedModelName: string | undefined;
  serverPort: number;
  serverHost: string;
  logLevel: LogLevel;
  jsonlLogging: boolean;
  maxModelLen: number | undefined;
  /** Overrides the profile's tp (and so the number of GPUs it needs). */
  tensorParallelSize: number | undefined;
  /** Overrides the profile's pp. */
  pipelineParallelSize: number | undefined;
  /** Extra raw vLLM flags, appended last to the engine command line. */
  passthroughArgs: string[];
  /** The vLLM executable (looked up on PATH unless it contains a slash). */
  engineCommand: string;
  /** VLM only: images allowed per prompt (vLLM --limit-mm-per-prompt). */
  maxImagesPerPrompt: number | undefined;
  /** Engine start-up budget before the supervisor gives up. */
  startupTimeoutMs: number;
  /** Time in-flight requests get to finish after SIGTERM. */
  shutdownGraceMs: number;
  /** Time the engine gets between SIGTERM and SIGKILL. */
  engineStopTimeoutMs: number;
  /** Opt-in restarts of a crashed engine (0 = exit and let Kubernetes restart the pod). */
  engineMaxRestarts: number;
  engineRestartBackoffMs: number;
  /** Health probe interval once ready. */
  healthIntervalMs: number;
  /** How often GPU metrics are sampled from nvidia-smi. */
  gpuMetricsIntervalMs: number;
  /** How long a /v1/metrics scrape waits for the engine's /metrics. */
  engineMetricsTimeoutMs: number;
  /** When set, clients must send `Authorization: Bearer <key>` (never logged, never in responses). */
  apiKey: string | undefined;
  /** Whether /v1/metrics also needs the API key (when one is set). */
  metricsRequireAuth: boolean;
  tls: TlsConfig;
  /** Largest request body accepted (bytes); larger → 413. */
  maxRequestBodyBytes: number;
  /** Time a client gets to send the request headers. */
  headersTimeoutMs: number;
  /** Time a client gets to send the whole request (headers and body). */
  requestTimeoutMs: number;
  /** Idle time before a keep-alive connection is closed. */
  keepAliveTimeoutMs: number;
  /** Open client connections accepted at once (0 = no cap). */
  maxConnections: number;
  /** Proxied requests in flight at once; beyond it → 429 (0 = no cap). */
  maxInflightRequests: number;
  /** CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES as given (undefined = not set). */
  cudaVisibleDevices: string | undefined;
  nvidiaVisibleDevices: string | undefined;
  /** Multi-node (LeaderWorkerSet + Ray): the group this pod belongs to. See docs/multi-node.md. */
  cluster: ClusterConfig;
}

/** A LeaderWorkerSet group: LWS_* are injected by LeaderWorkerSet, NIM_* are ours. */
export interface ClusterConfig {
  /** LWS_GROUP_SIZE: nodes (pods) in the group, leader included; 1 = a single node. */
  groupSize: number;
  /** LWS_WORKER_INDEX: 0 = the leader, 1 … groupSize-1 = workers. */
  workerIndex: number;
  /** LWS_LEADER_ADDRESS: the leader's host name or IP (required for workers). */
  leaderAddress: string | undefined;
  /** NIM_GPUS_PER_NODE: GPUs of each worker node, when they differ from what the leader sees. */
  gpusPerNode: number | undefined;
  /** NIM_RAY_PORT: the Ray head's (GCS) port on the leader. */
  rayPort: number;
  /** NIM_CLUSTER_START_TIMEOUT: time the workers get to join (leader), or the head gets to appear (worker). */
  startTimeoutMs: number;
  /** NIM_RAY_COMMAND: the `ray` executable (looked up on PATH unless it contains a slash). */
  rayCommand: string;
}

export type TlsMode = 'DISABLED' | 'TLS' | 'MTLS';

export interface TlsConfig {
  mode: TlsMode;
  /** PEM private key (NIM_SSL_KEY_PATH). */
  keyPath: string | undefined;
  /** PEM certificate chain (NIM_SSL_CERTS_PATH). */
  certPath: string | undefined;
  /** PEM CA bundle that client certificates must chain to (NIM_SSL_CA_CERTS_PATH; MTLS). */
  caPath: string | undefined;
}

/** The repository (or installed package) root: manifests/ and profiles/ live here. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_MANIFEST = path.join(packageRoot, 'manifests', 'nemotron-3-content-safety.yaml');

const LOG_LEVELS: Record<string, LogLevel> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  WARN: 'warn',
  ERROR: 'error',
  CRITICAL: 'fatal',
};

const BOOLS: Record<string, boolean> = {
  '1': true,
  true: true,
  yes: true,
  on: true,
  '0': false,
  false: false,
  no: false,
  off: false,
};

/** One variable: how to turn its text into a value, and what it accepts (for the error message). */
interface VarSpec<T> {
  accepts: string;
  parse: (raw: string) => T | undefined;
}

function intVar(min: number, max: number = Number.MAX_SAFE_INTEGER): VarSpec<number> {
  return {
    accepts: max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`,
    parse: (raw) => {
      if (!/^\s*-?\d+\s*$/.test(raw)) return undefined;
      const n = Number(raw.trim());
      return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
    },
  };
}

/** Seconds as a decimal number, returned as milliseconds. */
function secondsVar(min: number): VarSpec<number> {
  return {
    accepts: `a number of seconds >= ${min}`,
    parse: (raw) => {
      if (!/^\s*\d+(\.\d+)?\s*$/.test(raw)) return undefined;
      const n = Number(raw);
      return n >= min ? Math.round(n * 1000) : undefined;
    },
  };
}

const boolVar: VarSpec<boolean> = {
  accepts: '1, 0, true, false, yes, no, on or off',
  parse: (raw) => BOOLS[raw.trim().toLowerCase()],
};

const stringVar: VarSpec<string> = {
  accepts: 'a non-empty string',
  parse: (raw) => (raw.trim() === '' ? undefined : raw.trim()),
};

/** vLLM's human-readable ints: 32k = 32000, 32K = 32768, 1m = 1e6, 1M = 2^20. */
const contextLenVar: VarSpec<number> = {
  accepts: 'a positive integer, optionally with k/K/m/M like vLLM (32k = 32000, 32K = 32768)',
  parse: (raw) => {
    const m = /^\s*(\d+)([kKmM]?)\s*$/.exec(raw);
    if (!m) return undefined;
    const mult = { '': 1, k: 1e3, K: 1024, m: 1e6, M: 1024 * 1024 }[m[2] as '' | 'k' | 'K' | 'm' | 'M'];
    const n = Number(m[1]) * mult;
    return n > 0 && Number.isSafeInteger(n) ? n : undefined;
  },
};

const logLevelVar: VarSpec<LogLevel> = {
  accepts: 'DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)',
  parse: (raw) => LOG_LEVELS[raw.trim().toUpperCase()],
};

const argsVar: VarSpec<string[]> = {
  accepts: 'vLLM flags as a shell would split them, e.g. "--max-num-seqs 8 --enforce-eager"',
  parse: (raw) => {
    const parts = parseShell(raw);
    // shell-quote returns objects for operators (|, ;, >) and globs: those are not flags.
    if (!parts.every((p): p is string => typeof p === 'string')) return undefined;
    return parts;
  },
};

const tlsModeVar: VarSpec<TlsMode> = {
  accepts: 'DISABLED, TLS or MTLS',
  parse: (raw) => {
    const v = raw.trim().toUpperCase();
    return v === 'DISABLED' || v === 'TLS' || v === 'MTLS' ? v : undefined;
  },
};

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
};

const sizeVar: VarSpec<number> = {
  accepts: 'a size in bytes, optionally with a unit (e.g. 67108864, 64MiB, 100MB)',
  parse: (raw) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw);
    const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
    if (!m || unit === undefined) return undefined;
    const n = Math.floor(Number(m[1]) * unit);
    return n > 0 ? n : undefined;
  },
};

/** A host name or an IP address, without a port (LWS_LEADER_ADDRESS). */
const hostVar: VarSpec<string> = {
  accepts: 'a host name or IP address without a port, e.g. my-lws-0.my-lws.default or 10.0.0.5',
  parse: (raw) => {
    const v = raw.trim();
    if (/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/.test(v) && v.length <= 253) return v;
    return isIP(v) !== 0 ? v : undefined; // IPv4 (also matched above) or IPv6
  },
};

/** The LeaderWorkerSet group (LWS_*) and our multi-node settings, checked together. */
function readCluster(env: NodeJS.ProcessEnv): ClusterConfig {
  const groupSize = read(env, 'LWS_GROUP_SIZE', intVar(1, 1024), 1);
  const workerIndex = read(env, 'LWS_WORKER_INDEX', intVar(0, 1023), 0);
  if (workerIndex >= groupSize) {
    throw new ConfigError(
      `LWS_WORKER_INDEX=${JSON.stringify(env.LWS_WORKER_INDEX)} is invalid: expected an integer from 0 to ${groupSize - 1} (LWS_GROUP_SIZE=${groupSize}; 0 is the leader)`,
      { hint: 'LeaderWorkerSet sets LWS_GROUP_SIZE and LWS_WORKER_INDEX itself; do not set them in the pod template' },
    );
  }
  const leaderAddress = read(env, 'LWS_LEADER_ADDRESS', hostVar);
  if (workerIndex > 0 && leaderAddress === undefined) {
    throw new ConfigError(`LWS_LEADER_ADDRESS is not set: a worker (LWS_WORKER_INDEX=${workerIndex}) needs the leader's address to join its Ray head`, {
      hint: 'run the worker under a LeaderWorkerSet (it injects LWS_LEADER_ADDRESS), or set it to the leader\'s host name or IP',
    });
  }
  return {
    groupSize,
    workerIndex,
    leaderAddress,
    gpusPerNode: read(env, 'NIM_GPUS_PER_NODE', intVar(1, 1024)),
    rayPort: read(env, 'NIM_RAY_PORT', intVar(1, 65535), 6379),
    startTimeoutMs: read(env, 'NIM_CLUSTER_START_TIMEOUT', secondsVar(1), 300_000),
    rayCommand: read(env, 'NIM_RAY_COMMAND', stringVar, 'ray'),
  };
}

/** NIM_API_KEY, or the contents of the file NIM_API_KEY_FILE names (a mounted Kubernetes secret). */
function readApiKey(env: NodeJS.ProcessEnv): string | undefined {
  const direct = env.NIM_API_KEY;
  const file = env.NIM_API_KEY_FILE;
  if (direct && file) {
    throw new ConfigError('NIM_API_KEY and NIM_API_KEY_FILE are both set', { hint: 'set only one of them' });
  }
  if (direct !== undefined && direct !== '') {
    if (direct.trim() === '') throw new ConfigError('NIM_API_KEY is blank: expected a non-empty key');
    return direct.trim();
  }
  if (file === undefined || file === '') return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`NIM_API_KEY_FILE=${JSON.stringify(file)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: 'mount the secret at that path or fix the variable',
    });
  }
  const key = text.trim();
  if (key === '') throw new ConfigError(`NIM_API_KEY_FILE=${JSON.stringify(file)} is empty: expected the API key`);
  return key;
}

/** Read one variable; throws a ConfigError that names it, its value and what it accepts. */
function read<T>(env: NodeJS.ProcessEnv, name: string, spec: VarSpec<T>): T | undefined;
function read<T>(env: NodeJS.ProcessEnv, name: string, spec: VarSpec<T>, fallback: T): T;
function read<T>(env: NodeJS.ProcessEnv, name: string, spec: VarSpec<T>, fallback?: T): T | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = spec.parse(raw);
  if (value === undefined) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected ${spec.accepts}`);
  }
  return value;
}

/** Build the typed configuration from an environment (default: this process's). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const manifestPath = read(env, 'NIM_MANIFEST_PATH', stringVar, DEFAULT_MANIFEST);
  return {
    manifestPath: path.resolve(manifestPath),
    modelProfile: read(env, 'NIM_MODEL_PROFILE', stringVar),
    servedModelName: read(env, 'NIM_SERVED_MODEL_NAME', stringVar),
    serverPort: read(env, 'NIM_SERVER_PORT', intVar(1, 65535), 8000),
    serverHost: read(env, 'NIM_SERVER_HOST', stringVar, '0.0.0.0'),
    logLevel: read(env, 'NIM_LOG_LEVEL', logLevelVar, 'info'),
    jsonlLogging: read(env, 'NIM_JSONL_LOGGING', boolVar, false),
    maxModelLen: read(env, 'NIM_MAX_MODEL_LEN', contextLenVar),
    tensorParallelSize: read(env, 'NIM_TENSOR_PARALLEL_SIZE', intVar(1, 1024)),
    pipelineParallelSize: read(env, 'NIM_PIPELINE_PARALLEL_SIZE', intVar(1, 1024)),
    passthroughArgs: read(env, 'NIM_PASSTHROUGH_ARGS', argsVar, []),
    engineCommand: read(env, 'NIM_ENGINE_COMMAND', stringVar, 'vllm'),
    maxImagesPerPrompt: read(env, 'NIM_MAX_IMAGES_PER_PROMPT', intVar(0, 1000)),
    startupTimeoutMs: read(env, 'NIM_STARTUP_TIMEOUT', secondsVar(1), 3600_000),
    shutdownGraceMs: read(env, 'NIM_SHUTDOWN_GRACE_PERIOD', secondsVar(0), 30_000),
    engineStopTimeoutMs: read(env, 'NIM_ENGINE_STOP_TIMEOUT', secondsVar(0), 15_000),
    engineMaxRestarts: read(env, 'NIM_ENGINE_MAX_RESTARTS', intVar(0, 1000), 0),
    engineRestartBackoffMs: read(env, 'NIM_ENGINE_RESTART_BACKOFF', secondsVar(0), 5_000),
    healthIntervalMs: read(env, 'NIM_HEALTH_CHECK_INTERVAL', secondsVar(0.05), 5_000),
    gpuMetricsIntervalMs: read(env, 'NIM_GPU_METRICS_INTERVAL', secondsVar(0.1), 5_000),
    engineMetricsTimeoutMs: read(env, 'NIM_ENGINE_METRICS_TIMEOUT', secondsVar(0.05), 2_000),
    apiKey: readApiKey(env),
    metricsRequireAuth: read(env, 'NIM_METRICS_REQUIRE_AUTH', boolVar, true),
    tls: {
      mode: read(env, 'NIM_SSL_MODE', tlsModeVar, 'DISABLED'),
      keyPath: read(env, 'NIM_SSL_KEY_PATH', stringVar),
      certPath: read(env, 'NIM_SSL_CERTS_PATH', stringVar),
      caPath: read(env, 'NIM_SSL_CA_CERTS_PATH', stringVar),
    },
    maxRequestBodyBytes: read(env, 'NIM_MAX_REQUEST_BODY', sizeVar, 64 * 1024 * 1024),
    headersTimeoutMs: read(env, 'NIM_HEADERS_TIMEOUT', secondsVar(0.1), 30_000),
    requestTimeoutMs: read(env, 'NIM_REQUEST_TIMEOUT', secondsVar(0.1), 300_000),
    keepAliveTimeoutMs: read(env, 'NIM_KEEP_ALIVE_TIMEOUT', secondsVar(0.1), 5_000),
    maxConnections: read(env, 'NIM_MAX_CONNECTIONS', intVar(0), 0),
    maxInflightRequests: read(env, 'NIM_MAX_INFLIGHT_REQUESTS', intVar(0), 10_000),
    cudaVisibleDevices: env.CUDA_VISIBLE_DEVICES,
    nvidiaVisibleDevices: env.NVIDIA_VISIBLE_DEVICES,
    cluster: readCluster(env),
  };
}
