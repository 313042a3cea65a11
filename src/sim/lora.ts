// vLLM's LoRA behaviour, as the simulator reproduces it (sources: vLLM v0.11,
// recorded in docs/simulator.md):
//   - --lora-modules items (cli_args.py LoRAParserAction): `name=path` when the
//     item has "=" and no ","; otherwise JSON {"name","path","base_model_name"};
//   - LoRAConfig checks at start-up (config/lora.py): max_loras >= 1,
//     max_cpu_loras (default max_loras) >= max_loras;
//   - static adapters are loaded before the server listens (serving_models.py
//     init_static_loras); one failure stops the start-up;
//   - loading an adapter (lora/worker_manager.py _load_adapter, peft_helper.py,
//     lora/models.py from_local_checkpoint) and the errors it gives, as the
//     engine-core utility call reports them ("Call to add_lora method failed: …");
//   - /v1/load_lora_adapter and /v1/unload_lora_adapter, registered only with
//     VLLM_ALLOW_RUNTIME_LORA_UPDATING (api_server.py), and their answers;
//   - vllm:lora_requests_info (v1/metrics/loggers.py).
import { existsSync, openSync, readFileSync, readSync, closeSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { Gauge, type Registry } from 'prom-client';
import { ApiError } from './errors.js';

/** One --lora-modules entry (serving_models.py LoRAModulePath). */
export interface LoraModulePath {
  name: string;
  path: string;
  baseModelName: string | null;
}

/** One loaded adapter (lora/request.py LoRARequest, the fields the server uses). */
export interface LoraRequest {
  name: string;
  intId: number;
  path: string;
  baseModelName: string | null;
}

/**
 * Parse --lora-modules values like LoRAParserAction. Returns the modules, or
 * the argparse error message (vLLM exits 2 with it).
 */
export function parseLoraModules(values: readonly string[]): { modules: LoraModulePath[] } | { error: string } {
  const modules: LoraModulePath[] = [];
  for (const item of values) {
    if (item === '') continue;
    if (item.includes('=') && !item.includes(',')) {
      const parts = item.split('=');
      if (parts.length !== 2) {
        // Python's `name, path = item.split('=')` raises here, outside parser.error.
        return { error: `too many values to unpack (expected 2)` };
      }
      modules.push({ name: parts[0]!, path: parts[1]!, baseModelName: null });
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(item);
    } catch {
      return { error: `Invalid JSON format for --lora-modules: ${item}` };
    }
    const o = parsed as Record<string, unknown>;
    const allowed = new Set(['name', 'path', 'base_model_name']);
    const extra = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? Object.keys(o).filter((k) => !allowed.has(k)) : [];
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      return { error: `Invalid fields for --lora-modules: ${item} - vllm.entrypoints.openai.serving_models.LoRAModulePath() argument after ** must be a mapping, not ${Array.isArray(parsed) ? 'list' : parsed === null ? 'NoneType' : typeof parsed === 'string' ? 'str' : typeof parsed === 'number' ? (Number.isInteger(parsed) ? 'int' : 'float') : 'bool'}` };
    }
    if (extra.length > 0) {
      return { error: `Invalid fields for --lora-modules: ${item} - LoRAModulePath.__init__() got an unexpected keyword argument '${extra[0]}'` };
    }
    const missing = ['name', 'path'].filter((k) => !(k in o));
    if (missing.length > 0) {
      const q = missing.map((m) => `'${m}'`);
      return {
        error: `Invalid fields for --lora-modules: ${item} - LoRAModulePath.__init__() missing ${missing.length} required positional argument${missing.length > 1 ? 's' : ''}: ${q.join(' and ')}`,
      };
    }
    modules.push({ name: String(o.name), path: String(o.path), baseModelName: typeof o.base_model_name === 'string' ? o.base_model_name : null });
  }
  return { modules };
}

export interface LoraSimConfig {
  enabled: boolean;
  maxLoraRank: number;
  maxLoras: number;
  maxCpuLoras: number;
  modules: LoraModulePath[];
  runtimeUpdates: boolean;
}

/** LoRAConfig's start-up checks (config/lora.py): the ValueError text, or the settings. */
export function loraConfig(args: Record<string, unknown>, runtimeUpdates: boolean, modules: LoraModulePath[]): LoraSimConfig | { error: string } {
  const enabled = args.enable_lora === true;
  const maxLoras = args.max_loras as number;
  const maxLoraRank = args.max_lora_rank as number;
  const cpu = args.max_cpu_loras as number | null;
  if (enabled) {
    if (maxLoras < 1) {
      return { error: `1 validation error for LoRAConfig\nmax_loras\n  Input should be greater than or equal to 1 [type=greater_than_equal, input_value=${maxLoras}, input_type=int]` };
    }
    if (cpu !== null && cpu < maxLoras) return { error: `max_cpu_loras (${cpu}) must be >= max_loras (${maxLoras})` };
  }
  return { enabled, maxLoraRank, maxLoras, maxCpuLoras: cpu ?? maxLoras, modules, runtimeUpdates };
}

/** vllm/envs.py: VLLM_ALLOW_RUNTIME_LORA_UPDATING is on for "1" or "true" (any case). */
export function runtimeLoraUpdating(env: NodeJS.ProcessEnv): boolean {
  return ['1', 'true'].includes((env.VLLM_ALLOW_RUNTIME_LORA_UPDATING ?? '0').trim().toLowerCase());
}

/** lora/utils.py get_adapter_absolute_path for a local directory (no hub download in the simulator). */
function absolutePath(p: string): string {
  const expanded = p.startsWith('~') ? path.join(homedir(), p.slice(1)) : p;
  if (path.isAbsolute(expanded)) return expanded;
  return existsSync(expanded) ? path.resolve(expanded) : p;
}

function pySet(items: string[]): string {
  return `{${items.map((s) => `'${s}'`).join(', ')}}`;
}

/** safetensors' header check: the error text safetensors_rust raises on a short or malformed file. */
function safetensorsError(file: string): string | null {
  const size = statSync(file).size;
  if (size < 8) return 'Error while deserializing header: HeaderTooSmall';
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    if (n > size - 8) return 'Error while deserializing header: InvalidHeaderLength';
    const header = Buffer.alloc(n);
    readSync(fd, header, 0, n, 8);
    let parsed: Record<string, { data_offsets?: number[] }>;
    try {
      parsed = JSON.parse(header.toString('utf8')) as Record<string, { data_offsets?: number[] }>;
    } catch {
      return 'Error while deserializing header: InvalidHeaderDeserialization';
    }
    let end = 0;
    for (const [k, v] of Object.entries(parsed)) if (k !== '__metadata__' && Array.isArray(v?.data_offsets)) end = Math.max(end, v.data_offsets[1] ?? 0);
    if (8 + n + end !== size) return 'Error while deserializing header: MetadataIncompleteBuffer';
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * The engine side of add_lora: read and check the adapter like vLLM's worker.
 * Throws an Error whose message is what the engine-core utility call reports.
 */
export function loadAdapterFiles(req: LoraRequest, cfg: LoraSimConfig): void {
  const fail = (msg: string): never => {
    throw new Error(`Call to add_lora method failed: ${msg}`);
  };
  if (!cfg.enabled) fail('LoRA is not enabled. Use --enable-lora to enable LoRA.');
  const dir = absolutePath(req.path);
  let text: string;
  try {
    text = readFileSync(path.join(dir, 'adapter_config.json'), 'utf8');
  } catch {
    // FileNotFoundError → ValueError(... "No adapter found" ...) → 404 NotFoundError.
    return fail(`Loading lora ${req.name} failed: No adapter found for ${req.path}`);
  }
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    return fail(text.trim() === '' ? 'Expecting value: line 1 column 1 (char 0)' : (e as Error).message);
  }
  const missing = ['r', 'lora_alpha', 'target_modules'].filter((k) => !(k in config)).sort();
  if (missing.length > 0) fail(`Missing required configuration fields: ${pySet(missing)}`);
  const problems: string[] = [];
  const mts = config.modules_to_save;
  if (Array.isArray(mts) ? mts.length > 0 : mts !== undefined && mts !== null && mts !== false && mts !== '') {
    problems.push('vLLM only supports modules_to_save being None.');
  }
  if (config.use_dora === true) problems.push('vLLM does not yet support DoRA.');
  const r = Number(config.r);
  if (r > cfg.maxLoraRank) problems.push(`LoRA rank ${r} is greater than max_lora_rank ${cfg.maxLoraRank}.`);
  if (config.bias !== undefined && config.bias !== 'none') problems.push('Adapter bias is not supported.');
  if (problems.length > 0) fail(problems.join(' '));
  const st = path.join(dir, 'adapter_model.safetensors');
  if (existsSync(st)) {
    const err = safetensorsError(st);
    if (err) fail(err);
    return;
  }
  if (existsSync(path.join(dir, 'adapter_model.bin')) || existsSync(path.join(dir, 'adapter_model.pt'))) return;
  fail(`${dir} doesn't contain tensors`);
}

/** OpenAIServingModels' adapter book-keeping (serving_models.py), with the engine load of loadAdapterFiles. */
export class SimLora {
  /** Loaded adapters by name, in load order (the order of /v1/models). */
  readonly requests = new Map<string, LoraRequest>();
  /** Bumped on every load and unload (cache key of /v1/models). */
  version = 0;
  #counter = 0;

  constructor(
    readonly config: LoraSimConfig,
    private readonly baseNames: readonly string[],
  ) {}

  has(name: string): boolean {
    return this.requests.has(name);
  }

  /** load_lora_adapter: the success text, or an ApiError with vLLM's status, type and message. */
  load(name: string, lora_path: string, baseModelName: string | null = null): string {
    if (!name || !lora_path) throw new ApiError(400, 'InvalidUserInput', "Both 'lora_name' and 'lora_path' must be provided.");
    if (this.requests.has(name)) throw new ApiError(400, 'InvalidUserInput', `The lora adapter '${name}' has already been loaded.`);
    const req: LoraRequest = {
      name,
      intId: ++this.#counter,
      path: lora_path,
      baseModelName: baseModelName !== null && this.baseNames.includes(baseModelName) ? baseModelName : null,
    };
    try {
      loadAdapterFiles(req, this.config);
    } catch (e) {
      const msg = (e as Error).message;
      if (msg.includes('No adapter found')) throw new ApiError(404, 'NotFoundError', msg);
      throw new ApiError(400, 'BadRequestError', msg);
    }
    this.requests.set(name, req);
    this.version++;
    return `Success: LoRA adapter '${name}' added successfully.`;
  }

  /** unload_lora_adapter (v0.11: lora_name is required; an unknown name is 404). */
  unload(name: string): string {
    if (!name) throw new ApiError(400, 'InvalidUserInput', "'lora_name' needs to be provided to unload a LoRA adapter.");
    if (!this.requests.has(name)) throw new ApiError(404, 'NotFoundError', `The lora adapter '${name}' cannot be found.`);
    this.requests.delete(name);
    this.version++;
    return `Success: LoRA adapter '${name}' removed successfully.`;
  }
}

/**
 * vllm:lora_requests_info: one series per distinct (max_lora, waiting, running)
 * label set, its value the time it was last seen (set_to_current_time);
 * prometheus_client keeps every label set it has seen.
 */
export function loraRequestsInfo(registry: Registry, maxLoras: number): (running: string[], waiting: string[]) => void {
  const g = new Gauge({
    name: 'vllm:lora_requests_info',
    help: 'Running stats on lora requests.',
    labelNames: ['max_lora', 'waiting_lora_adapters', 'running_lora_adapters'],
    registers: [registry],
  });
  return (running, waiting) => {
    g.set({ max_lora: String(maxLoras), waiting_lora_adapters: waiting.join(','), running_lora_adapters: running.join(',') }, Date.now() / 1000);
  };
}
