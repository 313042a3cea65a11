// POST /v1/completions: string, list of strings, token ids or lists of token
// ids; streaming chunks carry every field (vLLM serialises them with
// exclude_unset=False), unlike chat chunks.
import { badRequest } from '../errors.js';
import { plan, type Plan } from '../generator.js';
import { idHeaders, requestId, sendJson, startEventStream, type Ctx, type SimState } from '../http.js';
import { Checker, isObject, type Json, type ValidatorStyle } from '../validate.js';
import { watchDisconnect } from './chat.js';
import { checkCommon, logReceived, readSampling, resolveModel, seedFor, streamUsage, usageBody, validatorStyle } from './common.js';

const J = JSON.stringify;

export interface PreparedPrompt {
  text: string;
  ids: number[];
}

export function checkCompletionShape(body: Json, style: ValidatorStyle = 'value-error'): void {
  const c = new Checker(body, style);
  checkCommon(c);
  const p = body.prompt;
  if (p === undefined || p === null) c.valueError('At least one of `prompt` or `prompt_embeds` must be set.');
  else {
    const ok =
      typeof p === 'string' ||
      (Array.isArray(p) &&
        (p.every((x) => typeof x === 'string') ||
          p.every((x) => Number.isInteger(x)) ||
          p.every((x) => Array.isArray(x) && x.every((y) => Number.isInteger(y)))));
    if (!ok) c.custom('string_type', ['prompt', 'str'], 'Input should be a valid string', p);
  }
  c.done();
}

/** The prompt field as a list of prompts, tokenized (BOS added to text like a Llama tokenizer). */
export function preparePrompts(state: SimState, body: Json): PreparedPrompt[] {
  const tok = state.tokenizer;
  const p = body.prompt as string | string[] | number[] | number[][];
  const addSpecial = body.add_special_tokens !== false;
  const fromText = (text: string): PreparedPrompt => ({ text, ids: tok.encode(text, addSpecial) });
  const fromIds = (ids: number[]): PreparedPrompt => {
    for (const id of ids) if (!tok.inRange(id)) throw badRequest(`Token id ${id} is out of vocabulary`);
    return { text: tok.decode(ids), ids };
  };
  let out: PreparedPrompt[];
  if (typeof p === 'string') out = [fromText(p)];
  else if (p.length > 0 && typeof p[0] === 'number') out = [fromIds(p as number[])];
  else out = (p as Array<string | number[]>).map((x) => (typeof x === 'string' ? fromText(x) : fromIds(x)));
  if (out.length === 0 || out.some((x) => x.ids.length === 0)) throw badRequest('Prompt cannot be empty');
  return out;
}

export function completions(ctx: Ctx): void {
  const { state, body } = ctx;
  const { config, tokenizer } = state;
  checkCompletionShape(body, validatorStyle(config));
  const model = resolveModel(state, body);
  const s = readSampling(body);
  const prompts = preparePrompts(state, body);
  const maxTokens = s.requestedMaxTokens ?? 16;
  for (const p of prompts) {
    if (p.ids.length + maxTokens > config.maxModelLen) {
      throw badRequest(
        `This model's maximum context length is ${config.maxModelLen - maxTokens} tokens. However, your request has ${p.ids.length} input tokens. Please reduce the length of the input messages.`,
      );
    }
  }
  const id = requestId(ctx, 'cmpl-');
  logReceived(ctx, id, prompts[0]!.text, s, maxTokens);
  const echo = body.echo === true;
  const choices: Array<{ plan: Plan; prompt: PreparedPrompt }> = [];
  for (const p of prompts) {
    for (let i = 0; i < s.n; i++) {
      choices.push({
        prompt: p,
        plan: plan(tokenizer, {
          seedKey: seedFor(s, p.text, i),
          maxTokens,
          minTokens: s.minTokens,
          ignoreEos: s.ignoreEos,
          stop: s.stop,
          includeStopStr: s.includeStopStr,
          echo: config.mode === 'echo' ? p.text : undefined,
          continuation: true,
        }),
      });
    }
  }
  const promptTokens = prompts.reduce((a, p) => a + p.ids.length, 0);
  const completionTokens = choices.reduce((a, c) => a + c.plan.pieces.length, 0);
  const created = Math.floor(Date.now() / 1000);
  let finished = false;

  const fullSink = {
    step() {},
    flush() {},
    done() {
      finished = true;
      const out = {
        id,
        object: 'text_completion',
        created,
        model,
        choices: choices.map((c, index) => ({
          index,
          text: (echo ? c.prompt.text : '') + c.plan.text,
          logprobs: null,
          finish_reason: c.plan.finishReason,
          stop_reason: c.plan.stopReason,
          prompt_logprobs: null,
          prompt_token_ids: null,
          token_ids: null,
        })),
        service_tier: null,
        system_fingerprint: config.systemFingerprint,
        usage: usageBody(promptTokens, completionTokens, config.enablePromptTokensDetails, config.release.responseShape),
        kv_transfer_params: null,
        ...(config.release.responseShape === '0.31' ? { ec_transfer_params: null, metrics: null } : {}),
      };
      sendJson(ctx.res, 200, J(out), idHeaders(ctx));
    },
  };

  const streamSink = () => {
    const { include: includeUsage, continuous } = streamUsage(config, body.stream_options);
    // 0.11 serializes chunks with exclude_unset=False (every field, usage:null);
    // 0.31 with exclude_unset=True and the fingerprint on the terminal chunk
    // unless a usage chunk follows (completion/serving.py@M:404-442).
    const v031 = config.release.responseShape === '0.31';
    const fp = config.systemFingerprint === null ? '' : `,"system_fingerprint":${J(config.systemFingerprint)}`;
    const head = `data: {"id":${J(id)},"object":"text_completion","created":${created},"model":${J(model)},"choices":[`;
    const res = ctx.res;
    startEventStream(ctx);
    let buf = '';
    const write = (final: boolean) => {
      if (res.destroyed) return;
      if (!res.headersSent) res.writeHead(200, { server: 'uvicorn', 'content-type': 'text/event-stream; charset=utf-8', ...idHeaders(ctx) });
      if (final) res.end(buf);
      else if (buf) res.write(buf);
      buf = '';
    };
    return {
      step(i: number) {
        choices.forEach((c, index) => {
          const pieces = c.plan.pieces;
          if (i >= pieces.length) return;
          const last = i === pieces.length - 1;
          const text = (i === 0 && echo ? c.prompt.text : '') + pieces[i]!;
          const usage = continuous
            ? `{"prompt_tokens":${c.prompt.ids.length},"total_tokens":${c.prompt.ids.length + i + 1},"completion_tokens":${i + 1}}`
            : 'null';
          const rest = v031 ? (continuous ? `,"usage":${usage}` : '') + (last && !includeUsage ? fp : '') : `,"usage":${usage}`;
          buf +=
            `${head}{"index":${index},"text":${J(text)},"logprobs":null,"finish_reason":${last ? J(c.plan.finishReason) : 'null'},` +
            `"stop_reason":${last ? J(c.plan.stopReason) : 'null'},"prompt_token_ids":null,"token_ids":null}]${rest}}\n\n`;
        });
      },
      flush() {
        write(false);
      },
      done() {
        finished = true;
        if (includeUsage) {
          buf += `${head}],"usage":{"prompt_tokens":${promptTokens},"total_tokens":${promptTokens + completionTokens},"completion_tokens":${completionTokens}}${fp}}\n\n`;
        }
        buf += 'data: [DONE]\n\n';
        write(true);
      },
    };
  };

  const handle = state.engine.submit({
    id,
    promptTokens,
    promptIds: prompts.length === 1 ? prompts[0]!.ids : null,
    choiceTokens: choices.map((c) => c.plan.pieces.length),
    finishReasons: choices.map((c) => (c.plan.finishReason === 'length' ? 'length' : 'stop')),
    maxTokens,
    sink: body.stream === true ? streamSink() : fullSink,
    lora: state.lora.has(model) ? model : null,
  });
  if (!finished) watchDisconnect(ctx, handle);
}
