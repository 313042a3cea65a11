// Why the engine failed, in one line an operator can act on: the root cause
// vLLM printed (not its "See root cause above" wrapper), and a hint that fits
// that cause. Pure: the caller passes what the engine's output showed.

export interface EngineOutputSummary {
  /** RootCauseReader.rootCause: the first exception line of a traceback, or argparse's error line. */
  rootCause: string | undefined;
  /** True when vLLM rejected its command line (argparse, exit 2). */
  usageError: boolean;
  /** The engine's last line, for when nothing looked like a cause. */
  lastLine: string | undefined;
}

export interface FailureExplanation {
  /** Appended to "engine exited with code N while loading the model". */
  detail: string;
  hint: string | undefined;
}

// A long root cause (CUDA OOM lines run to ~350 characters) is kept whole up to this length.
const MAX_CAUSE = 600;

function clip(line: string): string {
  return line.length > MAX_CAUSE ? `${line.slice(0, MAX_CAUSE - 1)}…` : line;
}

/** Hints by the kind of root cause (vLLM's own wording; see docs/troubleshooting.md). */
const HINTS: Array<[RegExp, string]> = [
  [
    /out of memory|OutOfMemoryError|No available memory for the cache blocks|larger than the available KV cache memory|KV cache/i,
    'the model does not fit the GPU memory: lower NIM_MAX_MODEL_LEN, use more GPUs or a quantized profile (docs/troubleshooting.md#out-of-gpu-memory)',
  ],
  [
    /\b40[134]\b|gated|GatedRepoError|Unauthorized|RepositoryNotFoundError|404 Client Error/i,
    'the model cannot be downloaded: set HF_TOKEN for a gated model, or check the manifest\'s source',
  ],
  [/Permission denied|PermissionError|Read-only file system/i, 'a path the engine writes is not writable: check the cache volume\'s owner (docs/troubleshooting.md#the-engine-crashes-on-start)'],
  [/Address already in use/i, 'another process took the engine\'s private port: start again'],
  [/NCCL|shm|shared memory/i, 'shared memory or NCCL: give the container a larger /dev/shm (docs/troubleshooting.md#the-engine-crashes-on-start)'],
];

/**
 * The detail and hint for an engine that failed while loading (or serving).
 * A usage error never suggests a longer start-up timeout: vLLM refused its flags.
 */
export function explainEngineFailure(out: EngineOutputSummary): FailureExplanation {
  if (out.usageError && out.rootCause) {
    return {
      detail: `vLLM rejected its command line: ${clip(out.rootCause)}`,
      hint:
        'a flag from NIM_PASSTHROUGH_ARGS or the profile\'s engine_args is not valid for this vLLM version; ' +
        '`nim-supervisor select-profile` prints the command line, compare it with `vllm serve --help` in the same image',
    };
  }
  if (out.rootCause) {
    const hint = HINTS.find(([re]) => re.test(out.rootCause!))?.[1];
    return { detail: `root cause: ${clip(out.rootCause)}`, hint: hint ?? 'the engine\'s output above has the traceback' };
  }
  return {
    detail: `it last logged: ${clip(out.lastLine ?? '(the engine printed nothing)')}`,
    hint: 'check the engine log above (out of GPU memory? wrong model path?)',
  };
}
