// The simulator's OpenAI-compatible API, driven as a real process through
// bin/vllm and the official openai client (plus raw HTTP where shapes matter),
// once per simulated vLLM release (VLLM_SIM_VERSION): one test matrix, where
// `v031` marks the expectations that differ between releases.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { SIM_VERSIONS, postJson, sseEvents, startSimVersion, type RunningSim } from './helpers/sim.js';

const KEY = 'x';
// 1x1 transparent PNG.
const PNG_B64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';
const PNG_URL = `data:image/png;base64,${PNG_B64}`;

const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        days: { type: 'integer', minimum: 1, maximum: 7 },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        detailed: { type: 'boolean' },
        hours: { type: 'array', items: { type: 'number' } },
      },
      required: ['city'],
    },
  },
};

for (const version of SIM_VERSIONS) describe(`vLLM ${version}`, () => {
  const v031 = version === '0.31';
  let sim: RunningSim;
  let client: OpenAI;
  const MODEL = 'meta/llama-3.1-8b-instruct';

  before(async () => {
    sim = await startSimVersion(version, [
      '--served-model-name', MODEL, 'alias',
      '--max-model-len', '2K',
      '--api-key', KEY, 'second-key',
      '--enable-auto-tool-choice', '--tool-call-parser', 'llama3_json',
      '--limit-mm-per-prompt', '{"image":2}',
    ]);
    client = new OpenAI({ baseURL: `${sim.base}/v1`, apiKey: KEY, maxRetries: 0 });
  });

  after(() => sim.proc.kill('SIGKILL'));

  describe('chat completions via the openai client', () => {
    test('non-streaming: message, usage and finish reason', async () => {
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello world' }], max_tokens: 5, ignore_eos: true } as never);
      assert.equal(r.object, 'chat.completion');
      assert.match(r.id, /^chatcmpl-[0-9a-f]{32}$/);
      assert.equal(r.model, MODEL);
      assert.equal(r.choices.length, 1);
      const c = r.choices[0]!;
      assert.equal(c.message.role, 'assistant');
      assert.equal(typeof c.message.content, 'string');
      assert.ok(c.message.content!.length > 0);
      assert.equal(c.finish_reason, 'length');
      assert.equal(r.usage?.completion_tokens, 5);
      assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + 5);
      // Prompt tokens agree with /tokenize over the same messages.
      const tok = await postJson(sim.base, '/tokenize', { model: MODEL, messages: [{ role: 'user', content: 'Hello world' }] });
      assert.equal(r.usage!.prompt_tokens, tok.json.count);
    });

    test('same seed and prompt give the same text; n gives several choices', async () => {
      const req = { model: 'alias', messages: [{ role: 'user' as const, content: 'Tell me a story' }], seed: 7, max_tokens: 30 };
      const a = await client.chat.completions.create(req);
      const b = await client.chat.completions.create(req);
      assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
      assert.equal(a.model, 'alias');
      const other = await client.chat.completions.create({ ...req, seed: 8 });
      assert.notEqual(other.choices[0]!.message.content, a.choices[0]!.message.content);
      const many = await client.chat.completions.create({ ...req, n: 3 });
      assert.deepEqual(many.choices.map((c) => c.index), [0, 1, 2]);
    });

    test('stop strings end the text with finish_reason stop and the matched stop_reason', async () => {
      const base = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'stop test' }], max_tokens: 40, ignore_eos: true } as never);
      const text = base.choices[0]!.message.content!;
      const word = text.split(' ')[3]!; // a word from the middle of the deterministic output
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'stop test' }], max_tokens: 40, ignore_eos: true, stop: [` ${word}`] } as never);
      const c = r.choices[0]! as unknown as { message: { content: string }; finish_reason: string; stop_reason: string };
      assert.equal(c.finish_reason, 'stop');
      assert.equal(c.stop_reason, ` ${word}`);
      assert.equal(c.message.content, text.slice(0, text.indexOf(` ${word}`)));
    });

    test('streaming: role chunk, content, finish chunk, usage chunk, [DONE]', async () => {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'Stream to me' }],
        max_tokens: 6,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      } as never);
      const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
      for await (const ch of stream as unknown as AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) chunks.push(ch);
      assert.ok(chunks.length >= 8);
      assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: 'assistant', content: '' });
      const ids = new Set(chunks.map((c) => c.id));
      assert.equal(ids.size, 1);
      const content = chunks.slice(1, -1).map((c) => c.choices[0]!.delta.content ?? '').join('');
      assert.ok(content.length > 0);
      const finish = chunks[chunks.length - 2]!;
      assert.equal(finish.choices[0]!.finish_reason, 'length');
      const usage = chunks[chunks.length - 1]!;
      assert.deepEqual(usage.choices, []);
      assert.equal(usage.usage?.completion_tokens, 6);
      // Non-streamed text for the same request is the same text.
      const whole = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Stream to me' }], max_tokens: 6, ignore_eos: true } as never);
      assert.equal(whole.choices[0]!.message.content, content);
    });

    test('raw SSE framing matches vLLM (data: lines, exclude_unset chunks, [DONE]); stream_options {} gives usage only in 0.11', async () => {
      const res = await postJson(
        sim.base,
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ignore_eos: true, stream: true, stream_options: {} },
        { authorization: `Bearer ${KEY}` },
      );
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      const events = sseEvents(res.text);
      assert.equal(events[events.length - 1], '[DONE]');
      const role = JSON.parse(events[0]!);
      assert.deepEqual(Object.keys(role), ['id', 'object', 'created', 'model', 'choices', 'prompt_token_ids', ...(v031 ? ['prompt_text'] : [])]);
      assert.deepEqual(role.choices[0], { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null });
      const last = JSON.parse(events[2]!);
      assert.deepEqual(Object.keys(last.choices[0]), ['index', 'delta', 'logprobs', 'finish_reason', 'stop_reason', 'token_ids']);
      if (v031) {
        // include_usage now defaults to false; the terminal chunk carries the fingerprint.
        assert.match(last.system_fingerprint, /^vllm-0\.31\.0-[0-9a-f]{8}$/);
        assert.equal(events.length, 4);
      } else {
        assert.equal(last.system_fingerprint, undefined);
        const usage = JSON.parse(events[3]!);
        assert.deepEqual(Object.keys(usage.usage), ['prompt_tokens', 'total_tokens', 'completion_tokens']);
        assert.equal(events.length, 5);
      }
      // Asked for explicitly, both releases send it; 0.31 moves the fingerprint onto it.
      const asked = sseEvents((await postJson(sim.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ignore_eos: true, stream: true, stream_options: { include_usage: true } }, { authorization: `Bearer ${KEY}` })).text);
      assert.equal(asked.length, 5);
      assert.equal(JSON.parse(asked[2]!).system_fingerprint, undefined);
      assert.equal(JSON.parse(asked[3]!).system_fingerprint, v031 ? last.system_fingerprint : undefined);
    });

    test('non-streaming message fields: reasoning_content (0.11) or reasoning (0.31), system_fingerprint', async () => {
      const r = await postJson(sim.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }, { authorization: `Bearer ${KEY}` });
      const msg = r.json.choices[0].message;
      if (v031) {
        assert.deepEqual(Object.keys(msg), ['role', 'content', 'refusal', 'annotations', 'audio', 'function_call', 'reasoning']);
        assert.match(r.json.system_fingerprint, /^vllm-0\.31\.0-[0-9a-f]{8}$/);
        assert.deepEqual(Object.keys(r.json.usage), ['prompt_tokens', 'total_tokens', 'completion_tokens', 'prompt_tokens_details', 'completion_tokens_details']);
      } else {
        assert.deepEqual(Object.keys(msg), ['role', 'content', 'refusal', 'annotations', 'audio', 'function_call', 'tool_calls', 'reasoning_content']);
        assert.equal(r.json.system_fingerprint, null);
      }
      const c = await postJson(sim.base, '/v1/completions', { prompt: 'hi', max_tokens: 2 }, { authorization: `Bearer ${KEY}` });
      assert.equal(c.json.system_fingerprint, v031 ? r.json.system_fingerprint : null);
    });

    test('POST /v1/chat/completions/batch: one choice per conversation (0.31), absent in 0.11', async () => {
      const body = { model: MODEL, messages: [[{ role: 'user', content: 'Hello world' }], [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Tell me a story' }]], max_tokens: 4, ignore_eos: true, seed: 3 };
      const r = await postJson(sim.base, '/v1/chat/completions/batch', body, { authorization: `Bearer ${KEY}` });
      if (!v031) {
        assert.equal(r.status, 404);
        assert.deepEqual(r.json, { detail: 'Not Found' });
        return;
      }
      assert.equal(r.status, 200);
      assert.equal(r.json.object, 'chat.completion');
      assert.deepEqual(r.json.choices.map((c: { index: number }) => c.index), [0, 1]);
      // Each choice is what the single-conversation endpoint answers for that conversation.
      for (const [i, conv] of body.messages.entries()) {
        const one = await client.chat.completions.create({ model: MODEL, messages: conv as never, max_tokens: 4, ignore_eos: true, seed: 3 } as never);
        assert.equal(r.json.choices[i].message.content, one.choices[0]!.message.content);
        assert.equal(r.json.choices[i].finish_reason, 'length');
      }
      const prompts = await Promise.all(body.messages.map(async (m) => (await postJson(sim.base, '/tokenize', { messages: m })).json.count as number));
      assert.deepEqual(r.json.usage.prompt_tokens, prompts[0]! + prompts[1]!);
      assert.equal(r.json.usage.completion_tokens, 8);
      const n2 = await postJson(sim.base, '/v1/chat/completions/batch', { ...body, n: 2 }, { authorization: `Bearer ${KEY}` });
      assert.equal(n2.status, 400);
      assert.equal(n2.json.error.param, 'n');
      assert.match(n2.json.error.message, /Batch chat completions do not support `n > 1`/);
      const empty = await postJson(sim.base, '/v1/chat/completions/batch', { messages: [] }, { authorization: `Bearer ${KEY}` });
      assert.equal(empty.status, 400);
      assert.equal((await postJson(sim.base, '/v1/chat/completions/batch', body)).status, 401);
    });

    test('tool calls, non-streaming: valid JSON arguments from the schema', async () => {
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [WEATHER_TOOL] });
      const c = r.choices[0]!;
      assert.equal(c.finish_reason, 'tool_calls');
      assert.equal(c.message.content, null);
      const calls = c.message.tool_calls!;
      assert.equal(calls.length, 1);
      const call = calls[0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
      assert.match(call.id, /^chatcmpl-tool-[0-9a-f]{32}$/);
      assert.equal(call.type, 'function');
      assert.equal(call.function.name, 'get_weather');
      const args = JSON.parse(call.function.arguments);
      assert.equal(typeof args.city, 'string');
      assert.ok(Number.isInteger(args.days) && args.days >= 1 && args.days <= 7);
      assert.equal(args.unit, 'celsius');
      assert.equal(args.detailed, true);
      assert.ok(Array.isArray(args.hours) && typeof args.hours[0] === 'number');
      // After a tool result the model answers in words.
      const follow = await client.chat.completions.create({
        model: MODEL,
        tools: [WEATHER_TOOL],
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', tool_calls: [call] },
          { role: 'tool', tool_call_id: call.id, content: '{"temp": 21}' },
        ],
      });
      assert.equal(follow.choices[0]!.finish_reason, 'stop');
      assert.ok(follow.choices[0]!.message.content);
    });

    test('tool calls, streaming: deltas reassemble into the call', async () => {
      const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Weather?' }], tools: [WEATHER_TOOL], stream: true });
      let id = '';
      let name = '';
      let args = '';
      let finish: string | null = null;
      let pieces = 0;
      for await (const ch of stream) {
        const c = ch.choices[0];
        if (!c) continue;
        for (const tc of c.delta.tool_calls ?? []) {
          assert.equal(tc.index, 0);
          if (tc.id) id = tc.id;
          if (tc.function?.name) name += tc.function.name;
          if (tc.function?.arguments) {
            args += tc.function.arguments;
            pieces++;
          }
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
      assert.match(id, /^chatcmpl-tool-[0-9a-f]{32}$/);
      assert.equal(name, 'get_weather');
      assert.ok(pieces > 1, 'arguments arrive in several fragments');
      assert.equal(typeof JSON.parse(args).city, 'string');
      assert.equal(finish, 'tool_calls');
    });

    test('named tool_choice works and unknown tool names are rejected', async () => {
      const r = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'x' }],
        tools: [WEATHER_TOOL],
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
      });
      assert.equal((r.choices[0]!.message.tool_calls![0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall).function.name, 'get_weather');
      const wording = v031 ? /The tool specified in `tool_choice` does not match any of the specified `tools` \(parameter=tool_choice\)/ : /Tool 'nope' has not been passed in `tools`/;
      await assert.rejects(
        client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], tools: [WEATHER_TOOL], tool_choice: { type: 'function', function: { name: 'nope' } } }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && wording.test(e.message),
      );
    });

    test('image input counts tokens; over the limit and malformed data URLs are 400', async () => {
      const img = { type: 'image_url' as const, image_url: { url: PNG_URL } };
      const text = { type: 'text' as const, text: 'What is this?' };
      const one = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [text, img] }], max_tokens: 3 });
      const none = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [text] }], max_tokens: 3 });
      assert.ok(one.usage!.prompt_tokens > none.usage!.prompt_tokens + 100, 'an image adds its placeholder tokens');
      await assert.rejects(
        client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [text, img, img, img] }] }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && e.status === 400 && /At most 2 image\(s\) may be provided in one prompt\./.test(e.message),
      );
      const bad = async (url: string, re: RegExp) =>
        assert.rejects(
          client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [text, { type: 'image_url', image_url: { url } }] }] }),
          (e: unknown) => e instanceof OpenAI.BadRequestError && re.test(e.message),
        );
      await bad('data:image/png;base64,iVBORw0K!!x', /Incorrect padding|Invalid base64/);
      await bad('data:image/png,rawbytes', /Only base64 data URLs are supported for now\./);
      await bad(`data:text/plain;base64,${PNG_B64}`, /image\/\*/);
      await bad('https://example.com/cat.png', /not available in the vLLM simulator/);
      await bad(`data:image/png;base64,${Buffer.from('not an image at all').toString('base64')}`, /cannot identify image file/);
    });

    test('models list: one card per served name, vLLM fields', async () => {
      const page = await client.models.list();
      const ids = page.data.map((m) => m.id);
      assert.deepEqual(ids, [MODEL, 'alias']);
      const raw = await fetch(`${sim.base}/v1/models`, { headers: { authorization: `Bearer second-key` } });
      const body = (await raw.json()) as { object: string; data: Array<Record<string, any>> };
      assert.equal(body.object, 'list');
      const card = body.data[0]!;
      assert.deepEqual(Object.keys(card), ['id', 'object', 'created', 'owned_by', 'root', 'parent', 'max_model_len', 'permission']);
      assert.equal(card.owned_by, 'vllm');
      assert.equal(card.root, 'meta/llama-3.1-8b-instruct');
      assert.equal(card.parent, null);
      assert.equal(card.max_model_len, 2048);
      assert.match(card.permission[0].id, /^modelperm-[0-9a-f]{32}$/);
      assert.equal(card.permission[0].object, 'model_permission');
    });

    test('completions: default max_tokens 16, echo, several prompts, full-field stream chunks', async () => {
      const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', ignore_eos: true } as never);
      assert.equal(r.object, 'text_completion');
      assert.match(r.id, /^cmpl-[0-9a-f]{32}$/);
      assert.equal(r.usage?.completion_tokens, 16);
      assert.equal(r.choices[0]!.finish_reason, 'length');
      const e = await client.completions.create({ model: MODEL, prompt: 'Echo this', echo: true, max_tokens: 3 });
      assert.ok(e.choices[0]!.text.startsWith('Echo this '));
      const many = await client.completions.create({ model: MODEL, prompt: ['a', 'b'], n: 2, max_tokens: 2 });
      assert.deepEqual(many.choices.map((c) => c.index), [0, 1, 2, 3]);
      const res = await postJson(sim.base, '/v1/completions', { prompt: [9906, 1917], max_tokens: 2, ignore_eos: true, stream: true, stream_options: { include_usage: true } }, { authorization: `Bearer ${KEY}` });
      const events = sseEvents(res.text);
      const first = JSON.parse(events[0]!);
      // 0.11 serializes every field (usage:null); 0.31 only the fields set.
      assert.deepEqual(Object.keys(first), ['id', 'object', 'created', 'model', 'choices', ...(v031 ? [] : ['usage'])]);
      assert.deepEqual(Object.keys(first.choices[0]), ['index', 'text', 'logprobs', 'finish_reason', 'stop_reason', 'prompt_token_ids', 'token_ids']);
      assert.equal(first.usage, v031 ? undefined : null);
      assert.equal(JSON.parse(events[1]!).choices[0].finish_reason, 'length');
      assert.deepEqual(JSON.parse(events[2]!).usage, { prompt_tokens: 2, total_tokens: 4, completion_tokens: 2 });
      assert.equal(events[3], '[DONE]');
    });
  });

  describe('tokenizer and render routes', () => {
    test('tokenize / detokenize round trip, unicode included', async () => {
      const hello = await postJson(sim.base, '/tokenize', { prompt: 'Hello world', add_special_tokens: false });
      assert.deepEqual(hello.json, { count: 2, max_model_len: 2048, tokens: [9906, 1917], token_strs: null });
      const samples = ['Hello world', 'Grüße, 世界! 👋🏽 emoji — “quotes”\n\ttabs  and   spaces', '  leading', 'trailing  ', '', 'ünïcödé ℵ₀ 🧪', '<|eot_id|> literal specials'];
      for (const text of samples) {
        const t = await postJson(sim.base, '/tokenize', { prompt: text, add_special_tokens: false, return_token_strs: true });
        assert.equal(t.status, 200);
        assert.equal(t.json.count, t.json.tokens.length);
        assert.equal(t.json.token_strs.length, t.json.tokens.length);
        const d = await postJson(sim.base, '/detokenize', { tokens: t.json.tokens });
        assert.equal(d.status, 200);
        assert.equal(d.json.prompt, text);
      }
      const bos = await postJson(sim.base, '/tokenize', { prompt: 'Hello world' });
      assert.deepEqual(bos.json.tokens, [128000, 9906, 1917]);
      const bad = await postJson(sim.base, '/detokenize', { tokens: [1, 99999999] });
      assert.equal(bad.status, 400);
    });

    test('tokenize with messages equals the chat render prompt ids', async () => {
      const messages = [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi there' },
      ];
      const t = await postJson(sim.base, '/tokenize', { messages });
      const r = await postJson(sim.base, '/v1/chat/completions/render', { model: MODEL, messages }, { authorization: `Bearer ${KEY}` });
      assert.equal(r.status, 200);
      assert.ok(Array.isArray(r.json) && r.json.length === 2);
      const [conversation, prompts] = r.json;
      assert.deepEqual(conversation, messages);
      assert.deepEqual(prompts[0].prompt_token_ids, t.json.tokens);
      assert.equal(
        prompts[0].prompt,
        '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
      );
      const c = await postJson(sim.base, '/v1/completions/render', { model: MODEL, prompt: ['Hello world', 'x'] }, { authorization: `Bearer ${KEY}` });
      assert.deepEqual(c.json[0], { prompt_token_ids: [128000, 9906, 1917], prompt: 'Hello world' });
      assert.equal(c.json.length, 2);
    });
  });

  describe('errors in vLLM shapes', () => {
    const auth = { authorization: `Bearer ${KEY}` };
    test('unknown model is 404 NotFoundError', async () => {
      const r = await postJson(sim.base, '/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'x' }] }, auth);
      assert.equal(r.status, 404);
      assert.deepEqual(r.json, { error: { message: 'The model `nope` does not exist.', type: 'NotFoundError', param: 'model', code: 404 } });
      await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }), OpenAI.NotFoundError);
    });

    test('bad JSON, wrong content type and missing fields are 400 "Bad Request"', async () => {
      const badJson = await postJson(sim.base, '/v1/chat/completions', '{"messages": [', auth);
      assert.equal(badJson.status, 400);
      assert.equal(badJson.json.error.type, 'Bad Request');
      assert.equal(badJson.json.error.code, 400);
      assert.match(badJson.json.error.message, /JSON decode error/);
      const ct = await fetch(`${sim.base}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: '{}' });
      assert.equal(ct.status, 400);
      const ctBody = (await ct.json()) as { error: { message: string; type: string } };
      assert.equal(ctBody.error.type, 'Bad Request');
      assert.match(ctBody.error.message, /Unsupported Media Type: Only 'application\/json' is allowed/);
      const missing = await postJson(sim.base, '/v1/chat/completions', { model: MODEL }, auth);
      assert.equal(missing.status, 400);
      assert.match(missing.json.error.message, /'loc': \('body', 'messages'\), 'msg': 'Field required'/);
      // `data.get("stream_options") and not data.get("stream")`: {} is falsy, so only a non-empty object fails.
      assert.equal((await postJson(sim.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], max_tokens: 1, stream_options: {} }, auth)).status, 200);
      const so = await postJson(sim.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], stream_options: { include_usage: true } }, auth);
      assert.equal(so.status, 400);
      assert.match(so.json.error.message, /Stream options can only be defined when `stream=True`/);
      // 0.31 raises VLLMValidationError: a plain BadRequestError naming the parameter.
      assert.equal(so.json.error.type, v031 ? 'BadRequestError' : 'Bad Request');
      assert.equal(so.json.error.param, v031 ? 'stream_options' : null);
    });

    test('context length exceeded: exact vLLM messages', async () => {
      const long = 'zq '.repeat(3000);
      const r = await postJson(sim.base, '/v1/chat/completions', { messages: [{ role: 'user', content: long }] }, auth);
      assert.equal(r.status, 400);
      assert.equal(r.json.error.type, 'BadRequestError');
      const n = (await postJson(sim.base, '/tokenize', { messages: [{ role: 'user', content: long }] })).json.count;
      assert.ok(n >= 2048);
      assert.equal(
        r.json.error.message,
        `This model's maximum context length is 2048 tokens. However, your request has ${n} input tokens. Please reduce the length of the input messages. None`,
      );
      const m = await postJson(sim.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 5000 }, auth);
      const p = (await postJson(sim.base, '/tokenize', { messages: [{ role: 'user', content: 'hi' }] })).json.count;
      assert.equal(
        m.json.error.message,
        `'max_tokens' or 'max_completion_tokens' is too large: 5000. This model's maximum context length is 2048 tokens and your request has ${p} input tokens (5000 > 2048 - ${p}). None`,
      );
      const c = await postJson(sim.base, '/v1/completions', { prompt: long }, auth);
      assert.equal(c.status, 400);
      assert.match(c.json.error.message, /^This model's maximum context length is 2032 tokens\. However, your request has \d+ input tokens\. Please reduce the length of the input messages\.$/);
    });

    test('--api-key guards /v1 (and /v2, /inference, /cohere in 0.31), with any of several keys', async () => {
      const body = { messages: [{ role: 'user', content: 'x' }], max_tokens: 1 };
      const none = await postJson(sim.base, '/v1/chat/completions', body);
      assert.equal(none.status, 401);
      assert.equal(none.text, '{"error":"Unauthorized"}');
      assert.equal((await postJson(sim.base, '/v1/chat/completions', body, { authorization: 'Bearer wrong' })).status, 401);
      assert.equal((await postJson(sim.base, '/v1/chat/completions', body, { authorization: 'Bearer second-key' })).status, 200);
      assert.equal((await fetch(`${sim.base}/v1/models`)).status, 401);
      assert.equal((await fetch(`${sim.base}/v1/unknown`)).status, 401, 'the middleware runs before routing');
      assert.equal((await postJson(sim.base, '/tokenize', { prompt: 'x' })).status, 200);
      assert.equal((await fetch(`${sim.base}/health`)).status, 200);
      assert.equal((await fetch(`${sim.base}/metrics`)).status, 200);
      // 0.31 guards /v2 too (authenticate.py@M:11); 0.11 lets it through to the route.
      assert.equal((await postJson(sim.base, '/v2/rerank', { query: 'x', documents: ['y'] })).status, v031 ? 401 : 400);
      await assert.rejects(new OpenAI({ baseURL: `${sim.base}/v1`, apiKey: 'nope', maxRetries: 0 }).models.list(), OpenAI.AuthenticationError);
    });

    test('unknown path 404, wrong method 405, embeddings 400 (0.11) or 404 (0.31), version, docs', async () => {
      const nf = await fetch(`${sim.base}/nope`);
      assert.equal(nf.status, 404);
      assert.deepEqual(await nf.json(), { detail: 'Not Found' });
      const na = await fetch(`${sim.base}/health`, { method: 'POST' });
      assert.equal(na.status, 405);
      assert.deepEqual(await na.json(), { detail: 'Method Not Allowed' });
      const emb = await postJson(sim.base, '/v1/embeddings', { input: 'x' }, auth);
      if (v031) {
        // Task routes the model lacks are not registered at all.
        assert.equal(emb.status, 404);
        assert.deepEqual(emb.json, { detail: 'Not Found' });
      } else {
        assert.equal(emb.status, 400);
        assert.equal(emb.json.error.message, 'The model does not support Embeddings API');
      }
      assert.deepEqual(await (await fetch(`${sim.base}/version`)).json(), { version: v031 ? '0.31.0' : '0.11.0' });
      const spec = (await (await fetch(`${sim.base}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
      assert.match(spec.openapi, /^3\./);
      assert.ok(spec.paths['/v1/chat/completions']?.post);
      assert.ok(spec.paths['/health']?.get);
      const docs = await fetch(`${sim.base}/docs`);
      assert.match(docs.headers.get('content-type') ?? '', /text\/html/);
      assert.match(await docs.text(), /openapi\.json/);
    });
  });
});
