// POST /v1/chat/completions (and the shared prompt preparation used by
// /v1/chat/completions/render and /tokenize with messages).
import { parseMessages, renderChat, type ChatMessage } from '../chat-template.js';
import { badRequest } from '../errors.js';
import { plan, type FinishReason, type Plan } from '../generator.js';
import { idHeaders, requestId, sendJson, startEventStream, type Ctx, type SimState } from '../http.js';
import { IMAGE_ID } from '../tokenizer.js';
import { makeToolCall, type ToolCall } from '../tools.js';
import { Checker, isObject, type Json } from '../validate.js';
import { checkCommon, logReceived, readSampling, resolveModel, seedFor, usageBody } from './common.js';

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
  if (tc !== 'none' && !Array.isArray(tools)) c.valueError('When using `tool_choice`, `tools` must be set.');
  else if (named && Array.isArray(tools)) {
    const name = (tc as { function: { name: string } }).function.name;
    if (!tools.some((t) => isObject(t) && isObject(t.function) && t.function.name === name)) {
      c.valueError(`Tool '${name}' has not been passed in \`tools\`.`);
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

export function checkChatShape(body: Json): void {
  const c = new Checker(body);
  c.required('messages');
  c.list('messages');
  checkCommon(c);
  checkTools(c);
  c.bool('add_generation_prompt');
  c.bool('continue_final_message');
  if (body.add_generation_prompt === true && body.continue_final_message === true) {
    c.valueError('Cannot set both `continue_final_message` and `add_generation_prompt` to True.');
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

export function chatCompletions(ctx: Ctx): void {
  const { state, body } = ctx;
  const { config, tokenizer } = state;
  checkChatShape(body);
  const model = resolveModel(state, body);
  const s = readSampling(body);
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
  const id = requestId(ctx, 'chatcmpl-');
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
    promptIds: prep.ids,
    choiceTokens: choices.map((c) => c.tokens),
    finishReasons: choices.map((c) => (c.finish === 'length' ? 'length' : 'stop') as 'stop' | 'length'),
    maxTokens,
    sink: body.stream === true ? streamSink() : fullSink(),
  };

  function fullSink() {
    return {
      step() {},
      flush() {},
      done() {
        finished = true;
        const out = {
          id,
          object: 'chat.completion',
          created,
          model,
          choices: choices.map((c, index) => ({
            index,
            message: {
              role,
              content: c.tool ? (named !== null ? '' : null) : c.plan!.text,
              refusal: null,
              annotations: null,
              audio: null,
              function_call: null,
              tool_calls: c.tool ? [{ id: c.tool.id, type: 'function', function: { name: c.tool.name, arguments: c.tool.arguments } }] : [],
              reasoning_content: null,
            },
            logprobs: null,
            finish_reason: c.finish,
            stop_reason: c.plan?.stopReason ?? null,
            token_ids: null,
          })),
          service_tier: null,
          system_fingerprint: null,
          usage: usageBody(promptTokens, completionTokens, config.enablePromptTokensDetails),
          prompt_logprobs: null,
          prompt_token_ids: null,
          kv_transfer_params: null,
        };
        sendJson(ctx.res, 200, J(out), idHeaders(ctx));
      },
    };
  }

  function streamSink() {
    const so = isObject(body.stream_options) ? body.stream_options : null;
    const includeUsage = so !== null && (so.include_usage !== false || config.enableForceIncludeUsage);
    const continuous = includeUsage && so?.continuous_usage_stats === true;
    const head = `data: {"id":${J(id)},"object":"chat.completion.chunk","created":${created},"model":${J(model)},"choices":[`;
    const res = ctx.res;
    let buf = '';
    const tail = (step: number) => (continuous ? `],"usage":${usageJson(step)}}\n\n` : ']}\n\n');
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
            buf += `${head}{"index":${c},"delta":{"role":${J(role)},"content":""},"logprobs":null,"finish_reason":null}]${continuous ? `,"usage":${usageJson(0)}` : ''},"prompt_token_ids":null}\n\n`;
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
          buf += `${head}{"index":${c},"delta":${delta},"logprobs":null,"finish_reason":${fin},"token_ids":null}${tail(i + 1)}`;
        }
      },
      flush() {
        write(false);
      },
      done() {
        finished = true;
        if (includeUsage) buf += `${head}],"usage":${usageJson(completionTokens)}}\n\n`;
        buf += 'data: [DONE]\n\n';
        write(true);
      },
    };
  }

  const handle = state.engine.submit(state.lora.has(model) ? { ...job, lora: model } : job);
  if (!finished) watchDisconnect(ctx, handle);
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

