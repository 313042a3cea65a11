// POST /tokenize, POST /detokenize and the render routes (vLLM 0.15 shapes).
import { badRequest } from '../errors.js';
import { sendJson, type Ctx } from '../http.js';
import { conversationOf } from '../chat-template.js';
import { Checker } from '../validate.js';
import { checkChatShape, prepareChat } from './chat.js';
import { checkCompletionShape, preparePrompts } from './completions.js';
import { resolveModel, validatorStyle } from './common.js';

export function tokenize(ctx: Ctx): void {
  const { state, body } = ctx;
  const c = new Checker(body);
  c.str('model');
  c.bool('add_special_tokens');
  c.bool('return_token_strs');
  if (body.messages !== undefined) {
    c.list('messages');
    c.bool('add_generation_prompt');
    c.bool('continue_final_message');
    if (body.add_generation_prompt === true && body.continue_final_message === true) {
      c.valueError('Cannot set both `continue_final_message` and `add_generation_prompt` to True.');
    }
  } else {
    c.required('prompt');
    c.str('prompt');
  }
  c.done();
  resolveModel(state, body);
  let ids: number[];
  if (body.messages !== undefined) ids = prepareChat(state, body).ids;
  else ids = state.tokenizer.encode(body.prompt as string, body.add_special_tokens !== false);
  const out = {
    count: ids.length,
    max_model_len: state.config.maxModelLen,
    tokens: ids,
    token_strs: body.return_token_strs === true ? state.tokenizer.tokenStrings(ids) : null,
  };
  sendJson(ctx.res, 200, JSON.stringify(out));
}

export function detokenize(ctx: Ctx): void {
  const { state, body } = ctx;
  const c = new Checker(body);
  c.str('model');
  c.required('tokens');
  if (c.list('tokens')) {
    (body.tokens as unknown[]).forEach((t, i) => {
      if (!Number.isInteger(t)) c.custom('int_type', ['tokens', i], 'Input should be a valid integer', t);
    });
  }
  c.done();
  resolveModel(state, body);
  const ids = body.tokens as number[];
  for (const id of ids) if (!state.tokenizer.inRange(id)) throw badRequest(`Token id ${id} is out of vocabulary`);
  sendJson(ctx.res, 200, JSON.stringify({ prompt: state.tokenizer.decode(ids) }));
}

/** POST /v1/chat/completions/render -> [conversation, engine_prompts] (vLLM 0.15). */
export function renderChat(ctx: Ctx): void {
  const { state, body } = ctx;
  checkChatShape(body, validatorStyle(ctx.state.config));
  resolveModel(state, body);
  const prep = prepareChat(state, body);
  const out = [conversationOf(prep.messages), [{ prompt_token_ids: prep.ids, prompt: prep.prompt }]];
  sendJson(ctx.res, 200, JSON.stringify(out));
}

/** POST /v1/completions/render -> engine_prompts (vLLM 0.15). */
export function renderCompletion(ctx: Ctx): void {
  const { state, body } = ctx;
  checkCompletionShape(body, validatorStyle(ctx.state.config));
  resolveModel(state, body);
  const out = preparePrompts(state, body).map((p) => ({ prompt_token_ids: p.ids, prompt: p.text }));
  sendJson(ctx.res, 200, JSON.stringify(out));
}
