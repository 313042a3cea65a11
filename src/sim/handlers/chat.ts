// POST /v1/chat/completions (and the shared prompt preparation used by
// /v1/chat/completions/render and /tokenize with messages).
import { parseMessages, renderChat, type ChatMessage } from '../chat-template.js';
import { badRequest } from '../errors.js';
import { plan, type FinishReason, type Plan } from '../generator.js';
import { idHeaders, requestId, sendJson, startEventStream, type Ctx, type SimState } from '../http.js';
import { IMAGE_ID } from '../tokenizer.js';
import { makeToolCall, type ToolCall } from '../tools.js';
import { Checker, isObject, type Json, type ValidatorStyle } from '../validate.js';
import { checkCommon, logReceived, readSampling, resolveModel, seedFor, streamUsage, usageBody, validatorStyle, type Sampling } from './common.js';
import type { SimConfig } from '../config.js';

const J = JSON.stringify;

export interface PreparedChat {
  messages: ChatMessage[];
  prompt: string;
  /** Prompt ids with each image expanded to its placeholder tokens. */
  ids: number[];
  images: number;
}

/** Validate tool_choice / tools the way vLLM's request model does. */
function checkTools(c: Checker): void {
  const tools = c.body.tools;
  const tc = c.body.tool_choice;
  if (c.list('tools')) {
    (tools as unknown[]).forEach((t, i) => {
      if (!isObject(t) || !isObject(t.function) || typeof t.function.name !== 'string') {
        c.custom('missing', ['tools', i, 'function', 'name'], 'Field required', t);
      }
    });
  }
  if (tc === undefined || tc === null) return;
  const named = isObject(tc) && isObject(tc.function) && typeof tc.function.name === 'string';
  if (typeof tc === 'string') {
    if (!['none', 'auto', 'required'].includes(tc)) {
      c.custom('literal_error', ['tool_choice', 'literal[\'none\',\'auto\',\'required\']'], "Input should be 'none', 'auto' or 'required'", tc);
      return;
    }
  } else if (!named) {
    c.custom('missing', ['tool_choice', 'ChatCompletionNamedToolChoiceParam', 'function'], 'Field required', tc);
    return;
  }
  if (tc !== 'none' && !Array.isArray(tools)) c.modelError('When using `tool_choice`, `tools` must be set.', 'tool_choice');
  else if (named && Array.isArray(tools)) {
    const name = (tc as { function: { name: string } }).function.name;
    if (!tools.some((t) => isObject(t) && isObject(t.function) && t.function.name === name)) {
      // 0.31's wording: chat_completion/protocol.py@M:977-982.
      c.modelError(`Tool '${name}' has not been passed in \`tools\`.`, 'tool_choice', 'The tool specified in `tool_choice` does not match any of the specified `tools`');
    }
  }
}

/** Messages -> rendered prompt -> ids, shared by chat, render and tokenize. */
export function prepareChat(state: SimState, body: Json, suffix = ' None'): PreparedChat {
  const parsed = parseMessages(body.messages as unknown[], state.config.mmLimits, suffix);
  const tools = Array.isArray(body.tools) && body.tool_choice !== 'none' ? body.tools.filter(isObject) : undefined;
  const prompt = renderChat(parsed.messages, {
    addGenerationPrompt: body.add_generation_prompt !== false,
    continueFinalMessage: body.continue_final_message === true,
    tools,
    responseRole: state.config.responseRole,
  });
  let ids = state.tokenizer.encode(prompt);
  if (parsed.media.image > 0) {
    const expanded: number[] = [];
    for (const id of ids) {
      if (id === IMAGE_ID) for (let k = 0; k < state.config.imageTokens; k++) expanded.push(IMAGE_ID);
      else expanded.push(id);
    }
    ids = expanded;
  }
  return { messages: parsed.messages, prompt, ids, images: parsed.media.image };
}

export function checkChatShape(body: Json, style: ValidatorStyle = 'value-error'): void {
  const c = new Checker(body, style);
  c.required('messages');
  c.list('messages');
  checkCommon(c);
  checkTools(c);
  c.bool('add_generation_prompt');
  c.bool('continue_final_message');
  if (body.add_generation_prompt === true && body.continue_final_message === true) {
    c.modelError('Cannot set both `continue_final_message` and `add_generation_prompt` to True.');
  }
  c.done();
}

interface ChoicePlan {
  plan: Plan | null;
  tool: ToolCall | null;
  /** Argument fragments streamed after the name. */
  fragments: string[];
  tokens: number;
  finish: FinishReason;
}

/** One conversation, planned: prompt, per-choice outputs, role. Throws vLLM's 400s. */
interface ChatPlan {
  prep: PreparedChat;
  promptTokens: number;
  maxTokens: number;
  choices: ChoicePlan[];
  role: string;
  /** A named tool_choice (its content is "" rather than null). */
  named: string | null;
}

function planChat(ctx: Ctx, body: Json, s: Sampling, id: string): ChatPlan {
  const { state } = ctx;
  const { config, tokenizer } = state;
  const tools = Array.isArray(body.tools) ? body.tools.filter(isObject) : [];
  const toolChoice = body.tool_choice ?? (tools.length ? 'auto' : 'none');
  if (toolChoice === 'auto' && tools.length > 0 && !(config.enableAutoToolChoice && config.toolCallParser)) {
    throw badRequest('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set');
  }
  const prep = prepareChat(state, body);
  const promptTokens = prep.ids.length;
  if (promptTokens >= config.maxModelLen) {
    throw badRequest(
      `This model's maximum context length is ${config.maxModelLen} tokens. However, your request has ${promptTokens} input tokens. Please reduce the length of the input messages. None`,
    );
  }
  if (s.requestedMaxTokens !== null && promptTokens + s.requestedMaxTokens > config.maxModelLen) {
    throw badRequest(
      `'max_tokens' or 'max_completion_tokens' is too large: ${s.requestedMaxTokens}. This model's maximum context length is ${config.maxModelLen} tokens and your request has ${promptTokens} input tokens (${s.requestedMaxTokens} > ${config.maxModelLen} - ${promptTokens}). None`,
    );
  }
  const maxTokens = s.requestedMaxTokens ?? config.maxModelLen - promptTokens;
  logReceived(ctx, id, prep.prompt, s, maxTokens);

  const named = isObject(toolChoice) ? String((toolChoice.function as Json).name) : null;
  const lastRole = prep.messages[prep.messages.length - 1]?.role;
  // An "auto" model answers a tool result in words and calls a tool otherwise.
  const wantsTool = tools.length > 0 && (named !== null || toolChoice === 'required' || (toolChoice === 'auto' && lastRole !== 'tool'));
  const echoText = config.mode === 'echo' ? lastUserText(prep.messages) : undefined;
  const choices: ChoicePlan[] = [];
  for (let i = 0; i < s.n; i++) {
    if (wantsTool) {
      const tool = named !== null ? tools.find((t) => (t.function as Json).name === named)! : tools[0]!;
      const call = makeToolCall(tool);
      const fragments = tokenizer.pieces(call.arguments);
      choices.push({ plan: null, tool: call, fragments, tokens: 1 + fragments.length, finish: named !== null ? 'stop' : 'tool_calls' });
    } else {
      const p = plan(tokenizer, {
        seedKey: seedFor(s, prep.prompt, i),
        maxTokens,
        minTokens: s.minTokens,
        ignoreEos: s.ignoreEos,
        stop: s.stop,
        includeStopStr: s.includeStopStr,
        echo: echoText,
      });
      choices.push({ plan: p, tool: null, fragments: [], tokens: p.pieces.length, finish: p.finishReason });
    }
  }
  const role = body.add_generation_prompt === false ? (lastRole ?? config.responseRole) : config.responseRole;
  return { prep, promptTokens, maxTokens, choices, role, named };
}

/** A non-streaming choice in the release's shape (ChatCompletionResponseChoice). */
function choiceBody(config: SimConfig, p: ChatPlan, c: ChoicePlan, index: number): Json {
  const v031 = config.release.responseShape === '0.31';
  const message: Json = {
    role: p.role,
    content: c.tool ? (p.named !== null ? '' : null) : c.plan!.text,
    refusal: null,
    annotations: null,
    audio: null,
    function_call: null,
  };
  const calls = c.tool ? [{ id: c.tool.id, type: 'function', function: { name: c.tool.name, arguments: c.tool.arguments } }] : [];
  // 0.31's ChatMessage serializer drops an empty tool_calls list (chat_completion/protocol.py@M:74-79).
  if (!v031 || calls.length) message.tool_calls = calls;
  message[config.release.reasoningField] = null;
  const out: Json = {
    index,
    message,
    logprobs: null,
    finish_reason: c.finish,
    stop_reason: c.plan?.stopReason ?? null,
    token_ids: null,
  };
  if (v031) out.routed_experts = null;
  return out;
}

/** The non-streaming ChatCompletionResponse around `choices`, in the release's field order. */
function chatResponse(config: SimConfig, id: string, created: number, model: string, choices: Json[], usage: Json): Json {
  const v031 = config.release.responseShape === '0.31';
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices,
    service_tier: null,
    system_fingerprint: config.systemFingerprint,
    usage,
    prompt_logprobs: null,
    prompt_token_ids: null,
    ...(v031 ? { prompt_text: null } : {}),
    kv_transfer_params: null,
    ...(v031 ? { ec_transfer_params: null, metrics: null } : {}),
  };
}

export function chatCompletions(ctx: Ctx): void {
  const { state, body } = ctx;
  const { config } = state;
  checkChatShape(body, validatorStyle(config));
  const model = resolveModel(state, body);
  const s = readSampling(body);
  const id = requestId(ctx, 'chatcmpl-');
  const p = planChat(ctx, body, s, id);
  const { choices, promptTokens, role } = p;
  const created = Math.floor(Date.now() / 1000);
  const completionTokens = choices.reduce((a, c) => a + c.tokens, 0);
  const usageJson = (completion: number) =>
    `{"prompt_tokens":${promptTokens},"total_tokens":${promptTokens + completion},"completion_tokens":${completion}` +
    (config.enablePromptTokensDetails ? `,"prompt_tokens_details":{"cached_tokens":0}` : '') +
    '}';

  let finished = false;
  const job = {
    id,
    promptTokens,
    promptIds: p.prep.ids,
    choiceTokens: choices.map((c) => c.tokens),
    finishReasons: choices.map((c) => (c.finish === 'length' ? 'length' : 'stop') as 'stop' | 'length'),
    maxTokens: p.maxTokens,
    sink: body.stream === true ? streamSink() : fullSink(),
  };

  function fullSink() {
    return {
      step() {},
      flush() {},
      done() {
        finished = true;
        const out = chatResponse(
          config,
          id,
          created,
          model,
          choices.map((c, index) => choiceBody(config, p, c, index)),
          usageBody(promptTokens, completionTokens, config.enablePromptTokensDetails, config.release.responseShape),
        );
        sendJson(ctx.res, 200, J(out), idHeaders(ctx));
      },
    };
  }

  function streamSink() {
    const { include: includeUsage, continuous } = streamUsage(config, body.stream_options);
    const v031 = config.release.responseShape === '0.31';
    // 0.31 stamps system_fingerprint on the terminal chunk, or on the usage chunk when one follows (chat_completion/serving.py@M:767-776,833-842).
    const fp = config.systemFingerprint === null ? '' : `,"system_fingerprint":${J(config.systemFingerprint)}`;
    const head = `data: {"id":${J(id)},"object":"chat.completion.chunk","created":${created},"model":${J(model)},"choices":[`;
    const res = ctx.res;
    let buf = '';
    const tail = (step: number, last: boolean) =>
      (continuous ? `],"usage":${usageJson(step)}` : ']') + (last && !includeUsage ? fp : '') + '}\n\n';
    startEventStream(ctx);
    const write = (final: boolean) => {
      if (res.destroyed) return;
      if (!res.headersSent) {
        res.writeHead(200, { server: 'uvicorn', 'content-type': 'text/event-stream; charset=utf-8', ...idHeaders(ctx) });
      }
      if (final) res.end(buf);
      else if (buf) res.write(buf);
      buf = '';
    };
    return {
      step(i: number) {
        if (i === 0) {
          for (let c = 0; c < choices.length; c++) {
            buf += `${head}{"index":${c},"delta":{"role":${J(role)},"content":""},"logprobs":null,"finish_reason":null}]${continuous ? `,"usage":${usageJson(0)}` : ''},"prompt_token_ids":null${v031 ? ',"prompt_text":null' : ''}}\n\n`;
          }
        }
        for (let c = 0; c < choices.length; c++) {
          const ch = choices[c]!;
          if (i >= ch.tokens) continue;
          const last = i === ch.tokens - 1;
          let delta: string;
          if (ch.tool) {
            delta =
              i === 0
                ? `{"tool_calls":[{"id":${J(ch.tool.id)},"type":"function","index":0,"function":{"name":${J(ch.tool.name)}}}]}`
                : `{"tool_calls":[{"index":0,"function":{"arguments":${J(ch.fragments[i - 1])}}}]}`;
          } else delta = `{"content":${J(ch.plan!.pieces[i])}}`;
          const fin = last ? `${J(ch.finish)},"stop_reason":${J(ch.plan?.stopReason ?? null)}` : 'null';
          buf += `${head}{"index":${c},"delta":${delta},"logprobs":null,"finish_reason":${fin},"token_ids":null}${tail(i + 1, last)}`;
        }
      },
      flush() {
        write(false);
      },
      done() {
        finished = true;
        if (includeUsage) buf += `${head}],"usage":${usageJson(completionTokens)}${fp}}\n\n`;
        buf += 'data: [DONE]\n\n';
        write(true);
      },
    };
  }

  const handle = state.engine.submit(state.lora.has(model) ? { ...job, lora: model } : job);
  if (!finished) watchDisconnect(ctx, handle);
}

/**
 * POST /v1/chat/completions/batch (0.31; chat_completion/batch_serving.py@M:104-332):
 * `messages` is a list of conversations; each runs as its own engine request
 * (`<id>_<i>`) and the answer is one ChatCompletionResponse with one choice per
 * conversation, indexed in order, and the usage summed. Not streamed; n must be 1.
 */
export function batchChatCompletions(ctx: Ctx): void {
  const { state, body } = ctx;
  const { config } = state;
  // Not fields of BatchChatCompletionRequest: ignored, as pydantic ignores extras.
  const { tools: _tools, tool_choice: _tc, stream: _stream, stream_options: _so, ...shared } = body;
  const c = new Checker(shared, validatorStyle(config));
  c.required('messages');
  if (c.list('messages')) {
    const convs = body.messages as unknown[];
    if (convs.length === 0) c.custom('too_short', ['messages'], 'List should have at least 1 item after validation, not 0', convs);
    convs.forEach((conv, i) => {
      if (!Array.isArray(conv)) c.custom('list_type', ['messages', i], 'Input should be a valid list', conv);
      else if (conv.length === 0) c.custom('too_short', ['messages', i], 'List should have at least 1 item after validation, not 0', conv);
    });
  }
  checkCommon(c);
  c.bool('add_generation_prompt');
  c.done();
  const n = typeof body.n === 'number' ? body.n : 1;
  if (n !== 1) throw badRequest(`Batch chat completions do not support \`n > 1\`. Please set \`n\` to 1. (parameter=n, value=${n})`, 'n');
  const model = resolveModel(state, body);
  const s = readSampling(body);
  const id = requestId(ctx, 'chatcmpl-');
  const plans = (body.messages as Json[][]).map((conv, i) => planChat(ctx, { ...shared, messages: conv }, s, `${id}_${i}`));
  const created = Math.floor(Date.now() / 1000);
  let pending = plans.length;
  const handles = plans.map((p, i) =>
    state.engine.submit({
      id: `${id}_${i}`,
      promptTokens: p.promptTokens,
      promptIds: p.prep.ids,
      choiceTokens: p.choices.map((ch) => ch.tokens),
      finishReasons: p.choices.map((ch) => (ch.finish === 'length' ? 'length' : 'stop') as 'stop' | 'length'),
      maxTokens: p.maxTokens,
      sink: {
        step() {},
        flush() {},
        done() {
          if (--pending > 0) return;
          const promptTokens = plans.reduce((a, q) => a + q.promptTokens, 0);
          const completionTokens = plans.reduce((a, q) => a + q.choices[0]!.tokens, 0);
          const out = chatResponse(
            config,
            id,
            created,
            model,
            plans.map((q, index) => choiceBody(config, q, q.choices[0]!, index)),
            usageBody(promptTokens, completionTokens, false, config.release.responseShape),
          );
          sendJson(ctx.res, 200, J(out), idHeaders(ctx));
        },
      },
    }),
  );
  if (pending > 0) watchDisconnect(ctx, { abort: () => handles.forEach((h) => h.abort()) });
}

/** A client that goes away before the response is complete aborts its generation. */
export function watchDisconnect(ctx: Ctx, handle: { abort(): void }): void {
  ctx.res.on('close', () => {
    if (!ctx.res.writableFinished) handle.abort();
  });
}

function lastUserText(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === 'user') return messages[i]!.text;
  return '';
}

