// Cheap GET routes: health, ping, version, load, models, metrics.
import { badRequest } from '../errors.js';
import { randomHex, sendEmpty, sendJson, type Ctx, type SimState } from '../http.js';

export function health(ctx: Ctx): void | Promise<void> {
  const delay = ctx.state.healthDelayMs();
  if (delay <= 0) {
    sendEmpty(ctx.res, ctx.state.unhealthy() ? 503 : 200);
    return;
  }
  return new Promise((resolve) =>
    setTimeout(() => {
      if (!ctx.res.destroyed) sendEmpty(ctx.res, ctx.state.unhealthy() ? 503 : 200);
      resolve();
    }, delay),
  );
}

export function version(ctx: Ctx): void {
  sendJson(ctx.res, 200, JSON.stringify({ version: ctx.state.config.version }));
}

export function load(ctx: Ctx): void {
  sendJson(ctx.res, 200, JSON.stringify({ server_load: ctx.state.load.n }));
}

/** /v1/models, rebuilt at most once a second (vLLM stamps `created` with the current time). */
export function modelsHandler(state: SimState): (ctx: Ctx) => void {
  let sec = -1;
  let version = -1;
  let body = '';
  return (ctx) => {
    const now = Math.floor(Date.now() / 1000);
    if (now !== sec || state.lora.version !== version) {
      sec = now;
      version = state.lora.version;
      body = JSON.stringify(modelList(state, now));
    }
    sendJson(ctx.res, 200, body);
  };
}

function permission(created: number) {
  return {
    id: `modelperm-${randomHex()}`,
    object: 'model_permission',
    created,
    allow_create_engine: false,
    allow_sampling: true,
    allow_logprobs: true,
    allow_search_indices: false,
    allow_view: true,
    allow_fine_tuning: false,
    organization: '*',
    group: null,
    is_blocking: false,
  };
}

export function modelList(state: SimState, created: number) {
  const { config } = state;
  const base = config.servedNames.map((name) => ({
    id: name,
    object: 'model',
    created,
    owned_by: 'vllm',
    root: config.model,
    parent: null,
    max_model_len: config.maxModelLen,
    permission: [permission(created)],
  }));
  // serving_models.py show_available_models: LoRA cards have root = lora_path,
  // parent = base_model_name or the first served name, and no max_model_len.
  const loras = [...state.lora.requests.values()].map((l) => ({
    id: l.name,
    object: 'model',
    created,
    owned_by: 'vllm',
    root: l.path,
    parent: l.baseModelName ?? config.servedNames[0],
    max_model_len: null,
    permission: [permission(created)],
  }));
  return { object: 'list', data: [...base, ...loras] };
}

export async function metrics(ctx: Ctx): Promise<void> {
  const text = await ctx.state.metrics.scrape();
  ctx.res.writeHead(200, {
    server: 'uvicorn',
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  ctx.res.end(text);
}

/** Task routes every 0.11 server has, answering 400 for a generate-only model. */
export function unsupported(api: string): (ctx: Ctx) => void {
  return () => {
    throw badRequest(`The model does not support ${api} API`);
  };
}

/**
 * GET /tokenizer_info (--enable-tokenizer-info-endpoint; same in 0.11 and
 * 0.31, serve/tokenize/serving.py@M:154-184): the tokenizer's init kwargs
 * without file paths, then tokenizer_class, then the chat template if one was
 * given. The simulated tokenizer is Llama-3's, so these are its kwargs.
 */
export function tokenizerInfo(ctx: Ctx): void {
  const info: Record<string, unknown> = {
    bos_token: '<|begin_of_text|>',
    clean_up_tokenization_spaces: true,
    eos_token: '<|eot_id|>',
    model_input_names: ['input_ids', 'attention_mask'],
    model_max_length: 131072,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  if (ctx.state.config.chatTemplate) info.chat_template = ctx.state.config.chatTemplate;
  sendJson(ctx.res, 200, JSON.stringify(info));
}
