// All configuration comes from environment variables, declared once in the
// table of variables (src/config/variables.ts) and validated here, in one
// place, into a typed `Config`. Cross-variable rules (an API key given twice,
// a worker index beyond the group) live here too. Names follow NIM's where NIM
// has them; docs/configuration.md is generated from the table.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { readTracingSettings, type TracingSettings } from '../tracing/settings.js';
import { defaultCacheRoot } from '../cache/layout.js';
import { parseModelLocation, type ModelLocation } from '../hub/uri.js';
import { PYTHON_LEVEL } from './kinds.js';
import { checkEngineFlags } from '../engine/flag-list.js';
import { readVariables, type ReadResult } from './read.js';
import { unknownVariableWarnings } from './unknown.js';
import type { Values, VariableName } from './variables.js';

export type { LogLevel, TlsMode } from './kinds.js';
import type { LogLevel, TlsMode } from './kinds.js';

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
  /** Interval of the "still loading" start-up lines (0 = none). */
  progressIntervalMs: number;
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
  /** One health probe's time limit (Kubernetes' timeoutSeconds). */
  healthTimeoutMs: number;
  /** Consecutive failed probes before ready → unhealthy (Kubernetes' failureThreshold); one success → ready. */
  healthFailureThreshold: number;
  /** Once ready, continuous failure after which the engine's group is killed and restarted (0 = never). */
  engineUnhealthyTimeoutMs: number;
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
  /** Idle time before a keep-alive connection is closed (above load balancers' 60 s idle timeouts). */
  keepAliveTimeoutMs: number;
  /** Silence on a proxied event stream before a `: keep-alive` comment is written (0 = never). */
  sseKeepAliveIntervalMs: number;
  /** CORS: the supervisor answers preflights and owns every response's CORS headers. */
  cors: CorsSettings;
  /** Open client connections accepted at once (0 = no cap). */
  maxConnections: number;
  /** The public port's listen backlog (NIM_LISTEN_BACKLOG). */
  listenBacklog: number;
  /** NIM_PROXY_WORKERS: processes serving the public port; undefined = from the CPU quota (src/workers/count.ts). */
  proxyWorkers: number | undefined;
  /** Proxied requests in flight at once; beyond it → 429 (0 = no cap). */
  maxInflightRequests: number;
  /** CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES as given (undefined = not set). */
  cudaVisibleDevices: string | undefined;
  nvidiaVisibleDevices: string | undefined;
  /** Multi-node (LeaderWorkerSet + Ray): the group this pod belongs to. See docs/multi-node.md. */
  cluster: ClusterConfig;
  /** NIM's engine-setting variables (src/engine/argv.ts maps them to vLLM flags), each with the variable that set it. */
  engine: EngineVariables;
  /** vLLM flags from the command line (`serve --max-num-seqs 8`): the highest layer. */
  cliArgs: string[];
  /** NIM_HEALTH_PORT: live/ready also on this plain-HTTP port. */
  healthPort: number | undefined;
  /** The variables the environment set (for provenance: which layer set an engine flag). */
  variablesSet: ReadonlySet<VariableName>;
  /** Warnings to log once at start (older names read as new ones; unknown NIM_* variables). */
  warnings: string[];
  /** NIM_ENABLE_OTEL and the OTEL_* variables (src/tracing/settings.ts). */
  tracing: TracingSettings;
  /** NIM_METRICS_COMPAT: `1x` adds NIM 1.x's unprefixed metric names to the scrape. */
  metricsCompat: 'none' | '1x';
  /** LoRA adapters served next to the base model (NIM_PEFT_*, NIM_MAX_*LORA*). See docs/lora.md. */
  lora: LoraConfig;
  /** Model-free serving and the model cache. See docs/model-cache.md. */
  model: ModelConfig;
}

/** NIM's PEFT variables. All optional: without NIM_PEFT_SOURCE no adapter is served. */
export interface LoraConfig {
  /** NIM_PEFT_SOURCE: a local directory with one sub-directory per adapter (absolute). */
  peftSource: string | undefined;
  /** NIM_PEFT_REFRESH_INTERVAL: re-scan the source this often while serving (undefined = scan once at start). */
  refreshIntervalMs: number | undefined;
  /** NIM_PEFT_API_TIMEOUT_SECS: how long one runtime load/unload call to the engine may take. */
  apiTimeoutMs: number;
  /** NIM_MAX_LORA_RANK: adapters of a larger rank are skipped. */
  maxLoraRank: number | undefined;
  /** NIM_MAX_GPU_LORAS: vLLM --max-loras (adapters in one batch). */
  maxGpuLoras: number | undefined;
  /** NIM_MAX_CPU_LORAS: vLLM --max-cpu-loras (adapters cached in host memory). */
  maxCpuLoras: number | undefined;
}

/** NIM_MODEL_PATH, the cache and the downloader. */
export interface ModelConfig {
  /** NIM_MODEL_PATH (or NIM 1.x's NIM_MODEL_NAME): serve this model with a generated manifest; undefined = use the manifest. */
  location: ModelLocation | undefined;
  /** NIM_CACHE_PATH: the one cache root (the Hugging Face hub cache lives under it). */
  cachePath: string;
  /** NIM_DISABLE_MODEL_DOWNLOAD: never touch the network; serve from the cache or fail listing what is missing. */
  disableDownload: boolean;
  /** NIM_DOWNLOAD_STALL_TIMEOUT: an attempt fails when no byte arrives for this long. */
  stallTimeoutMs: number;
  /** NIM_SDK_MAX_PARALLEL_DOWNLOAD_REQUESTS: files downloaded at once. */
  downloadConcurrency: number;
  /** NIM_DOWNLOAD_LOG_INTERVAL: time between progress lines. */
  logIntervalMs: number;
  /** HF_ENDPOINT: the hub or a mirror (no trailing slash). */
  hfEndpoint: string;
  /** HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN); never logged. */
  hfToken: string | undefined;
}

/** A value and the variable that set it, as the operator wrote its name (an older 1.x name shows as such). */
export interface Sourced<T> {
  value: T;
  variable: string;
}

/** NIM's engine settings (docs/configuration.md, "Engine settings"); absent = not set. */
export interface EngineVariables {
  gpuMemoryUtilization?: Sourced<number>;
  maxNumSeqs?: Sourced<number>;
  relaxMemConstraints: boolean;
  /** Only with relaxMemConstraints (else a warning and undefined). */
  numKvCacheSeqLens?: Sourced<number>;
  enableKvCacheReuse?: Sourced<boolean>;
  disableCudaGraph?: Sourced<boolean>;
  enableAutoToolChoice?: Sourced<boolean>;
  toolCallParser?: Sourced<string>;
  toolParserPlugin?: Sourced<string>;
  chatTemplate?: Sourced<string>;
  trustCustomCode?: Sourced<boolean>;
  guidedDecodingBackend?: Sourced<string>;
  maxVideosPerPrompt?: Sourced<number>;
  disableLogRequests?: Sourced<boolean>;
  /** VLLM_LOGGING_LEVEL for the engine: from NIM_LOG_LEVEL when that is set and VLLM_LOGGING_LEVEL is not. */
  logLevel?: Sourced<string>;
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

/** NIM 2.x's NIM_CORS_* variables. `'*'` = any. */
export interface CorsSettings {
  /** NIM_CORS_ALLOW_ORIGINS: `*` or exact origins (`scheme://host[:port]`, lower case). */
  allowOrigins: '*' | string[];
  /** NIM_CORS_ALLOW_METHODS: `*` or upper-case method names. */
  allowMethods: '*' | string[];
  /** NIM_CORS_ALLOW_HEADERS: `*` (whatever the preflight asks for) or lower-case header names. */
  allowHeaders: '*' | string[];
  /** NIM_CORS_EXPOSE_HEADERS: lower-case response header names a page may read (`*` = all). */
  exposeHeaders: '*' | string[];
  /** NIM_CORS_MAX_AGE: seconds a browser may cache a preflight answer. */
  maxAgeSeconds: number;
}

export interface TlsConfig {
  mode: TlsMode;
  /** PEM private key (NIM_SSL_KEY_PATH). */
  keyPath: string | undefined;
  /** PEM certificate chain (NIM_SSL_CERTS_PATH). */
  certPath: string | undefined;
  /** PEM CA bundle that client certificates must chain to (NIM_SSL_CA_CERTS_PATH; MTLS). */
  caPath: string | undefined;
}

export { DEFAULT_MANIFEST, packageRoot } from './paths.js';

/** The LeaderWorkerSet group (LWS_*) and our multi-node settings, checked together. */
function readCluster(v: Values, env: NodeJS.ProcessEnv): ClusterConfig {
  const groupSize = v.LWS_GROUP_SIZE;
  const workerIndex = v.LWS_WORKER_INDEX;
  if (workerIndex >= groupSize) {
    throw new ConfigError(
      `LWS_WORKER_INDEX=${JSON.stringify(env.LWS_WORKER_INDEX)} is invalid: expected an integer from 0 to ${groupSize - 1} (LWS_GROUP_SIZE=${groupSize}; 0 is the leader)`,
      { hint: 'LeaderWorkerSet sets LWS_GROUP_SIZE and LWS_WORKER_INDEX itself; do not set them in the pod template' },
    );
  }
  const leaderAddress = v.LWS_LEADER_ADDRESS;
  if (workerIndex > 0 && leaderAddress === undefined) {
    throw new ConfigError(`LWS_LEADER_ADDRESS is not set: a worker (LWS_WORKER_INDEX=${workerIndex}) needs the leader's address to join its Ray head`, {
      hint: 'run the worker under a LeaderWorkerSet (it injects LWS_LEADER_ADDRESS), or set it to the leader\'s host name or IP',
    });
  }
  return {
    groupSize,
    workerIndex,
    leaderAddress,
    gpusPerNode: v.NIM_GPUS_PER_NODE,
    rayPort: v.NIM_RAY_PORT,
    startTimeoutMs: v.NIM_CLUSTER_START_TIMEOUT,
    rayCommand: v.NIM_RAY_COMMAND,
  };
}

/** The PEFT variables, checked together (vLLM refuses --max-cpu-loras below --max-loras). */
function readLora(v: Values): LoraConfig {
  const peftSource = v.NIM_PEFT_SOURCE;
  if (peftSource !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(peftSource)) {
    throw new ConfigError(
      `NIM_PEFT_SOURCE=${JSON.stringify(peftSource)} is a remote URI: only a local directory is supported (one sub-directory per adapter)`,
      { hint: 'download the adapters into a directory (e.g. with `huggingface-cli download`), mount it and point NIM_PEFT_SOURCE at it' },
    );
  }
  const maxGpuLoras = v.NIM_MAX_GPU_LORAS;
  const maxCpuLoras = v.NIM_MAX_CPU_LORAS;
  if (maxGpuLoras !== undefined && maxCpuLoras !== undefined && maxCpuLoras < maxGpuLoras) {
    throw new ConfigError(`NIM_MAX_CPU_LORAS=${maxCpuLoras} is smaller than NIM_MAX_GPU_LORAS=${maxGpuLoras}`, {
      hint: 'the host-memory cache must hold at least the adapters of one batch (vLLM: max_cpu_loras >= max_loras)',
    });
  }
  return {
    peftSource: peftSource === undefined ? undefined : path.resolve(peftSource),
    refreshIntervalMs: v.NIM_PEFT_REFRESH_INTERVAL,
    apiTimeoutMs: v.NIM_PEFT_API_TIMEOUT_SECS,
    maxLoraRank: v.NIM_MAX_LORA_RANK,
    maxGpuLoras,
    maxCpuLoras,
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

/** NIM_MODEL_PATH (NIM 2.x; NIM_MODEL_NAME is its 1.x name), the cache and the downloader. */
function readModel(v: Values, from: ReadonlyMap<VariableName, string>, env: NodeJS.ProcessEnv): ModelConfig {
  const variable = from.get('NIM_MODEL_PATH') ?? 'NIM_MODEL_PATH';
  const location = v.NIM_MODEL_PATH !== undefined ? parseModelLocation(v.NIM_MODEL_PATH, variable) : undefined;
  if (location && env.NIM_MANIFEST_PATH) {
    throw new ConfigError(`${variable} and NIM_MANIFEST_PATH are both set`, {
      hint: `${variable} serves a model with a manifest generated from its files; NIM_MANIFEST_PATH serves a written manifest. Set one of them`,
    });
  }
  return {
    location,
    cachePath: path.resolve(v.NIM_CACHE_PATH ?? defaultCacheRoot(env)),
    disableDownload: v.NIM_DISABLE_MODEL_DOWNLOAD,
    stallTimeoutMs: v.NIM_DOWNLOAD_STALL_TIMEOUT,
    downloadConcurrency: v.NIM_SDK_MAX_PARALLEL_DOWNLOAD_REQUESTS,
    logIntervalMs: v.NIM_DOWNLOAD_LOG_INTERVAL,
    hfEndpoint: v.HF_ENDPOINT,
    hfToken: v.HF_TOKEN,
  };
}

/**
 * Build the typed configuration from an environment (default: this process's).
 * Throws a ConfigError (exit 2) naming the first bad variable. `warnings`
 * holds what the caller should log once its logger exists: older names read
 * in place of new ones, and NIM_* variables the supervisor does not know.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cliArgs: readonly string[] = []): Config {
  const read = readVariables(env);
  const v = read.values;
  const engine = readEngineVariables(read);
  if (v.NIM_HEALTH_PORT !== undefined && v.NIM_HEALTH_PORT === v.NIM_SERVER_PORT) {
    throw new ConfigError(`NIM_HEALTH_PORT=${v.NIM_HEALTH_PORT} is the same port as NIM_SERVER_PORT`, {
      hint: 'give the health endpoints a port of their own, or unset NIM_HEALTH_PORT to serve them on the public port only',
    });
  }
  checkEngineFlags(cliArgs, 'the command line');
  checkEngineFlags(v.NIM_PASSTHROUGH_ARGS, 'NIM_PASSTHROUGH_ARGS');
  return {
    manifestPath: path.resolve(v.NIM_MANIFEST_PATH),
    modelProfile: v.NIM_MODEL_PROFILE,
    servedModelName: v.NIM_SERVED_MODEL_NAME,
    serverPort: v.NIM_SERVER_PORT,
    serverHost: v.NIM_SERVER_HOST,
    logLevel: v.NIM_LOG_LEVEL,
    jsonlLogging: v.NIM_JSONL_LOGGING,
    progressIntervalMs: v.NIM_LOG_PROGRESS_INTERVAL,
    maxModelLen: v.NIM_MAX_MODEL_LEN,
    tensorParallelSize: v.NIM_TENSOR_PARALLEL_SIZE,
    pipelineParallelSize: v.NIM_PIPELINE_PARALLEL_SIZE,
    passthroughArgs: v.NIM_PASSTHROUGH_ARGS,
    engineCommand: v.NIM_ENGINE_COMMAND,
    maxImagesPerPrompt: v.NIM_MAX_IMAGES_PER_PROMPT,
    startupTimeoutMs: v.NIM_STARTUP_TIMEOUT,
    shutdownGraceMs: v.NIM_SHUTDOWN_GRACE_PERIOD,
    engineStopTimeoutMs: v.NIM_ENGINE_STOP_TIMEOUT,
    engineMaxRestarts: v.NIM_ENGINE_MAX_RESTARTS,
    engineRestartBackoffMs: v.NIM_ENGINE_RESTART_BACKOFF,
    healthIntervalMs: v.NIM_HEALTH_CHECK_INTERVAL,
    healthTimeoutMs: v.NIM_HEALTH_CHECK_TIMEOUT,
    healthFailureThreshold: v.NIM_HEALTH_FAILURE_THRESHOLD,
    engineUnhealthyTimeoutMs: v.NIM_ENGINE_UNHEALTHY_TIMEOUT,
    gpuMetricsIntervalMs: v.NIM_GPU_METRICS_INTERVAL,
    engineMetricsTimeoutMs: v.NIM_ENGINE_METRICS_TIMEOUT,
    apiKey: readApiKey(env),
    metricsRequireAuth: v.NIM_METRICS_REQUIRE_AUTH,
    tls: {
      mode: v.NIM_SSL_MODE,
      keyPath: v.NIM_SSL_KEY_PATH,
      certPath: v.NIM_SSL_CERTS_PATH,
      caPath: v.NIM_SSL_CA_CERTS_PATH,
    },
    maxRequestBodyBytes: v.NIM_MAX_REQUEST_BODY,
    headersTimeoutMs: v.NIM_HEADERS_TIMEOUT,
    requestTimeoutMs: v.NIM_REQUEST_TIMEOUT,
    keepAliveTimeoutMs: v.NIM_KEEP_ALIVE_TIMEOUT,
    sseKeepAliveIntervalMs: v.NIM_SSE_KEEPALIVE_INTERVAL,
    cors: {
      allowOrigins: v.NIM_CORS_ALLOW_ORIGINS,
      allowMethods: v.NIM_CORS_ALLOW_METHODS,
      allowHeaders: v.NIM_CORS_ALLOW_HEADERS,
      exposeHeaders: v.NIM_CORS_EXPOSE_HEADERS,
      maxAgeSeconds: v.NIM_CORS_MAX_AGE,
    },
    maxConnections: v.NIM_MAX_CONNECTIONS,
    listenBacklog: v.NIM_LISTEN_BACKLOG,
    proxyWorkers: v.NIM_PROXY_WORKERS,
    maxInflightRequests: v.NIM_MAX_INFLIGHT_REQUESTS,
    cudaVisibleDevices: v.CUDA_VISIBLE_DEVICES,
    nvidiaVisibleDevices: v.NVIDIA_VISIBLE_DEVICES,
    cluster: readCluster(v, env),
    lora: readLora(v),
    engine: engine.settings,
    cliArgs: [...cliArgs],
    healthPort: v.NIM_HEALTH_PORT,
    variablesSet: read.set,
    warnings: [...read.warnings, ...engine.warnings, ...unknownVariableWarnings(env)],
    tracing: readTracingSettings(v),
    metricsCompat: v.NIM_METRICS_COMPAT,
    model: readModel(v, read.from, env),
  };
}

/** The value of `name` with the name it was read under, when the environment set it. */
function sourced<K extends VariableName>(read: ReadResult, name: K): Sourced<NonNullable<Values[K]>> | undefined {
  const value = read.values[name];
  if (!read.set.has(name) || value === undefined || value === null) return undefined;
  return { value: value as NonNullable<Values[K]>, variable: read.from.get(name) ?? name };
}

/** Two names for one setting (NIM_GPU_MEM_FRACTION / NIM_KVCACHE_PERCENT …): the first wins, with a warning when they differ. */
function either<T>(a: Sourced<T> | undefined, b: Sourced<T> | undefined, warnings: string[]): Sourced<T> | undefined {
  if (a && b && a.value !== b.value) {
    warnings.push(`${a.variable}=${String(a.value)} and ${b.variable}=${String(b.value)} set the same thing; ${a.variable} wins`);
  }
  return a ?? b;
}

function readEngineVariables(read: ReadResult): { settings: EngineVariables; warnings: string[] } {
  const warnings: string[] = [];
  const relax = read.values.NIM_RELAX_MEM_CONSTRAINTS;
  let seqLens = sourced(read, 'NIM_NUM_KV_CACHE_SEQ_LENS');
  if (seqLens && !relax) {
    warnings.push(`${seqLens.variable}=${seqLens.value} is ignored: it sizes the KV cache only with NIM_RELAX_MEM_CONSTRAINTS=1 (as in NIM 1.x)`);
    seqLens = undefined;
  }
  const chatTemplate = sourced(read, 'NIM_CHAT_TEMPLATE');
  // An inline template holds Jinja markup; anything else is a file, and a missing file would only fail inside vLLM.
  if (chatTemplate && !/[{][{%]/.test(chatTemplate.value)) mustExist(chatTemplate, 'a Jinja chat template file or an inline template');
  const plugin = sourced(read, 'NIM_TOOL_PARSER_PLUGIN');
  if (plugin) mustExist(plugin, 'a Python file that registers a tool parser');
  const logLevel = read.set.has('NIM_LOG_LEVEL') && !read.set.has('VLLM_LOGGING_LEVEL')
    ? { value: PYTHON_LEVEL[read.values.NIM_LOG_LEVEL], variable: read.from.get('NIM_LOG_LEVEL') ?? 'NIM_LOG_LEVEL' }
    : undefined;
  const settings: EngineVariables = {
    gpuMemoryUtilization: either(sourced(read, 'NIM_GPU_MEM_FRACTION'), sourced(read, 'NIM_KVCACHE_PERCENT'), warnings),
    maxNumSeqs: either(sourced(read, 'NIM_MAX_NUM_SEQS'), sourced(read, 'NIM_MAX_BATCH_SIZE'), warnings),
    relaxMemConstraints: relax,
    numKvCacheSeqLens: seqLens,
    enableKvCacheReuse: sourced(read, 'NIM_ENABLE_KV_CACHE_REUSE'),
    disableCudaGraph: sourced(read, 'NIM_DISABLE_CUDA_GRAPH'),
    enableAutoToolChoice: sourced(read, 'NIM_ENABLE_AUTO_TOOL_CHOICE'),
    toolCallParser: sourced(read, 'NIM_TOOL_CALL_PARSER'),
    toolParserPlugin: plugin,
    chatTemplate,
    trustCustomCode: sourced(read, 'NIM_TRUST_CUSTOM_CODE'),
    guidedDecodingBackend: sourced(read, 'NIM_GUIDED_DECODING_BACKEND'),
    maxVideosPerPrompt: sourced(read, 'NIM_MAX_VIDEOS_PER_PROMPT'),
    disableLogRequests: sourced(read, 'NIM_DISABLE_LOG_REQUESTS'),
    logLevel,
  };
  return { settings, warnings };
}

function mustExist(s: Sourced<string>, what: string): void {
  if (!existsSync(s.value)) {
    throw new ConfigError(`${s.variable}=${JSON.stringify(s.value)} is invalid: expected ${what}, and no such file exists`, {
      hint: 'mount the file into the container at that path, or fix the variable',
    });
  }
}
