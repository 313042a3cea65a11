// Which vLLM release the simulator behaves as (VLLM_SIM_VERSION). Every
// behaviour that differs between releases is one field of `Release`, with the
// vLLM source it was read from; handlers read `config.release.<field>` and
// never compare version strings. Adding a release is one entry in RELEASES.
// docs/simulator.md lists the same differences with their sources.
//
// Sources: "@v0.11.0" is vLLM's tag (via research-vllm.md). "@M" is upstream
// main at 017e9f4448b7 (2026-08-17, mirror github:neuralmagic/vllm), the
// newest full tree available; v0.31.0 (db9527a4, 2026-10-02) is 6.5 weeks
// later and was not available as a tree (see vllm-0.31-changes.md §0).

export const RELEASE_IDS = ['0.11', '0.31'] as const;
export type ReleaseId = (typeof RELEASE_IDS)[number];
/** VLLM_SIM_VERSION's default: the newest release the simulator models. */
export const NEWEST_RELEASE: ReleaseId = '0.31';

export interface Release {
  id: ReleaseId;
  /** `vllm --version`, `/version`, the start-up banner. */
  version: string;

  // ---- command line ----
  /** `vllm` subcommands, in the top parser's order. 0.31 adds `launch` (entrypoints/cli/main.py@M:30-37). */
  subcommands: readonly string[];
  /** Default --gpu-memory-utilization. 0.11: 0.9 (`@v0.10.0 config.py:1626`); 0.31: 0.92 (`config/cache.py@M:80`, PR #38284). */
  defaultGpuMemoryUtilization: number;
  /**
   * argparse prefix abbreviations real vLLM resolves (allow_abbrev is on and
   * only one flag has the prefix). 0.31: `--device` is taken as
   * `--device-ids` (`arg_utils.py@M:1041`, PR #45026); 0.11 has no flag with
   * that prefix, so `--device` is unrecognized there (removed in v0.10.0, PR #21349).
   */
  abbreviations: Readonly<Record<string, string>>;

  // ---- HTTP surface ----
  /**
   * Task routes the model lacks. 'bad-request': registered, 400 "The model
   * does not support X API" (0.11, R§1). 'not-registered': FastAPI's 404
   * (`routers.py@M:64-67`, `pooling/factories.py@M:110-140`).
   */
  unsupportedTaskRoutes: 'bad-request' | 'not-registered';
  /** Path prefixes --api-key guards. 0.11: /v1 (R§6); 0.31: `serve/middleware/authenticate.py@M:11`. */
  authPrefixes: readonly string[];
  /** Non-streaming request on a dead engine. 0.11: empty 500 (R§2); 0.31: OpenAI-shaped InternalServerError (`handlers/vllm_error.py@M:29-69`, `v1/engine/exceptions.py@M:12-18`). */
  deadEngineBody: 'empty' | 'openai';
  /** POST /v1/chat/completions/batch for generate models (`chat_completion/api_router.py@M:77-106`, `batch_serving.py@M:104-332`). */
  chatBatchRoute: boolean;

  // ---- OpenAI bodies ----
  /** StreamOptions.include_usage default. 0.11: true (R§3); 0.31: false (`openai/engine/protocol.py@M:294-296`, PR #36379). */
  includeUsageDefault: boolean;
  /** --enable-force-include-usage: 0.11 forces usage only when stream_options is present; 0.31 forces usage and continuous usage always (`serve/utils/api_utils.py@M:275-287`). */
  forceIncludeUsageAlways: boolean;
  /** The reasoning field of messages and deltas. 0.11: reasoning_content; 0.31: reasoning (`openai/engine/protocol.py@M:404-408`, PR #33402). */
  reasoningField: 'reasoning_content' | 'reasoning';
  /** system_fingerprint: 0.11 null; 0.31 `vllm-<ver>[-tpN][-ppN]-<hash8>` (`serve/utils/fingerprint.py@M`, `--fingerprint-mode full`). */
  systemFingerprint: boolean;
  /** 0.31's ChatMessage/DeltaMessage drop an empty tool_calls list and responses carry prompt_text, ec_transfer_params, metrics (`chat_completion/protocol.py@M:62-149`). */
  responseShape: '0.11' | '0.31';

  // ---- metrics ----
  /** Families gone in this release. 0.31: time_per_output_token_seconds (PR #32661; `v1/metrics/loggers.py@M:797-883`). */
  removedMetrics: readonly string[];

  // ---- logs ----
  /** Start-up, shutdown and engine-death wording; see startupLines etc. in main.ts. */
  logWording: '0.11' | '0.31';
}

export const RELEASES: Readonly<Record<ReleaseId, Release>> = {
  '0.11': {
    id: '0.11',
    version: '0.11.0',
    subcommands: ['chat', 'complete', 'serve', 'bench', 'collect-env', 'run-batch'],
    defaultGpuMemoryUtilization: 0.9,
    abbreviations: {},
    unsupportedTaskRoutes: 'bad-request',
    authPrefixes: ['/v1'],
    deadEngineBody: 'empty',
    chatBatchRoute: false,
    includeUsageDefault: true,
    forceIncludeUsageAlways: false,
    reasoningField: 'reasoning_content',
    systemFingerprint: false,
    responseShape: '0.11',
    removedMetrics: [],
    logWording: '0.11',
  },
  '0.31': {
    id: '0.31',
    version: '0.31.0',
    subcommands: ['chat', 'complete', 'serve', 'launch', 'bench', 'collect-env', 'run-batch'],
    defaultGpuMemoryUtilization: 0.92,
    abbreviations: { '--device': '--device-ids' },
    unsupportedTaskRoutes: 'not-registered',
    authPrefixes: ['/v1', '/v2', '/inference', '/cohere'],
    deadEngineBody: 'openai',
    chatBatchRoute: true,
    includeUsageDefault: false,
    forceIncludeUsageAlways: true,
    reasoningField: 'reasoning',
    systemFingerprint: true,
    responseShape: '0.31',
    removedMetrics: ['vllm:time_per_output_token_seconds'],
    logWording: '0.31',
  },
};

/** "0.31", "0.31.0" or "v0.31.0" -> the release; null when the simulator does not model it. */
export function releaseFor(value: string): Release | null {
  const m = /^v?(\d+)\.(\d+)(?:\.\d+)?$/.exec(value.trim());
  if (!m) return null;
  return RELEASES[`${m[1]}.${m[2]}` as ReleaseId] ?? null;
}
