// End-to-end: a ready supervisor in front of the simulator (bin/vllm), real
// HTTP on 127.0.0.1, once per simulated vLLM release (VLLM_SIM_VERSION): the
// curl examples, the openai client, management endpoints, current vLLM's
// public routes and the engine version. (Its own file: each test file has a
// time budget, and the matrix doubles this part.)
import assert from 'node:assert/strict';
import { describe, test, before, after } from 'node:test';
import OpenAI from 'openai';
import { run, waitFor } from './helpers/process.js';
import { SIM_VERSIONS } from './helpers/sim.js';
import { DEFAULT_MODEL, startSupervisor, stopCleanly, type Supervisor } from './helpers/supervisor.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (r: Response): Promise<any> => await r.json();

// A 1×1 transparent PNG.
const PNG_1PX =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

// The core end-to-end flow runs once per simulated vLLM release (a matrix).
for (const version of SIM_VERSIONS) describe(`a ready supervisor in front of the simulator (vLLM ${version})`, () => {
  let sup: Supervisor;
  let client: OpenAI;
  const v031 = version === '0.31';

  before(async () => {
    sup = await startSupervisor({ NIM_MAX_IMAGES_PER_PROMPT: '2', VLLM_SIM_VERSION: version, NIM_PASSTHROUGH_ARGS: '--enable-tokenizer-info-endpoint' });
    await sup.waitReady();
    client = new OpenAI({ baseURL: `${sup.baseUrl}/v1`, apiKey: 'not-used', maxRetries: 0 });
  });

  after(async () => {
    await stopCleanly(sup);
  });

  test("the seed's curl examples work as written", async () => {
    const sh = (script: string) =>
      run('bash', ['-c', `set -euo pipefail\nexport MODEL_NAME="${DEFAULT_MODEL}"\n${script}`], { timeoutMs: 20_000 });
    const base = sup.baseUrl;
    const models = await sh(`curl -s ${base}/v1/models`);
    assert.equal(models.code, 0);
    assert.equal(JSON.parse(models.stdout).data[0].id, DEFAULT_MODEL);

    const chat = await sh(`curl -s ${base}/v1/chat/completions \\
-H "Content-Type: application/json" \\
-d "{
\\"model\\": \\"\${MODEL_NAME}\\",
\\"messages\\": [{\\"role\\": \\"user\\", \\"content\\": \\"What is GPU computing?\\"}],
\\"max_tokens\\": 256
}"`);
    const completion = JSON.parse(chat.stdout);
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, DEFAULT_MODEL);
    assert.ok(completion.choices[0].message.content.length > 0);
    assert.ok(completion.usage.completion_tokens <= 256);

    const stream = await sh(`curl -s ${base}/v1/chat/completions \\
-H "Content-Type: application/json" \\
-d "{
\\"model\\": \\"\${MODEL_NAME}\\",
\\"messages\\": [{\\"role\\": \\"user\\", \\"content\\": \\"Explain transformers briefly.\\"}],
\\"max_tokens\\": 256,
\\"stream\\": true
}"`);
    const events = stream.stdout.split('\n\n').filter((e) => e.startsWith('data: '));
    assert.equal(events.at(-1), 'data: [DONE]');
    assert.equal(JSON.parse(events[0]!.slice(6)).choices[0].delta.role, 'assistant');

    const tok = await sh(`curl -s ${base}/tokenize \\
-H "Content-Type: application/json" \\
-d "{
\\"model\\": \\"\${MODEL_NAME}\\",
\\"prompt\\": \\"Hello world\\"
}"`);
    const tokens = JSON.parse(tok.stdout);
    assert.ok(tokens.count > 0);
    assert.equal(tokens.tokens.length, tokens.count);
    assert.deepEqual(tokens.tokens.slice(-2), [9906, 1917]);

    const detok = await sh(`curl -s ${base}/detokenize \\
-H "Content-Type: application/json" \\
-d "{
\\"model\\": \\"\${MODEL_NAME}\\",
\\"tokens\\": [9906, 1917]
}"`);
    assert.equal(JSON.parse(detok.stdout).prompt, 'Hello world');

    const live = await sh(`curl -s ${base}/v1/health/live`);
    assert.equal(JSON.parse(live.stdout).status, 'live');
    const ready = await sh(`curl -s ${base}/v1/health/ready`);
    assert.equal(JSON.parse(ready.stdout).status, 'ready');
    const metadata = JSON.parse((await sh(`curl -s ${base}/v1/metadata`)).stdout);
    assert.match(metadata.selectedModelProfileId, /^[0-9a-f]{64}$/);
    assert.equal(metadata.modelInfo[0].shortName.split(':')[0], DEFAULT_MODEL);
    const version = JSON.parse((await sh(`curl -s ${base}/v1/version`)).stdout);
    assert.equal(typeof version.release, 'string');
    assert.equal(typeof version.api, 'string');
  });

  test('the openai client: models, chat, stream, tools and an image', async () => {
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [DEFAULT_MODEL],
    );

    const chat = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: 'Say something.' }],
      max_tokens: 16,
      seed: 7,
    });
    assert.equal(chat.choices[0]!.finish_reason === 'length' || chat.choices[0]!.finish_reason === 'stop', true);
    assert.ok(chat.usage!.prompt_tokens > 0);

    const stream = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: 'Stream please.' }],
      max_tokens: 20,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        finish = c.finish_reason ?? finish;
      }
    }
    assert.ok(text.length > 0);
    assert.ok(finish === 'length' || finish === 'stop');
    assert.equal(usage!.completion_tokens > 0, true);

    const tools = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const call = tools.choices[0]!.message.tool_calls![0]!;
    assert.equal(call.type, 'function');
    assert.equal((call as { function: { name: string } }).function.name, 'get_weather');
    assert.equal(typeof JSON.parse((call as { function: { arguments: string } }).function.arguments).city, 'string');

    const image = await client.chat.completions.create({
      model: DEFAULT_MODEL,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Is this image safe?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_1PX}` } },
          ],
        },
      ],
      max_tokens: 8,
    });
    assert.ok(image.usage!.prompt_tokens > 0);

    // NIM_MAX_IMAGES_PER_PROMPT=2 reached the engine as --limit-mm-per-prompt.
    const three = { type: 'image_url' as const, image_url: { url: `data:image/png;base64,${PNG_1PX}` } };
    await assert.rejects(
      client.chat.completions.create({
        model: DEFAULT_MODEL,
        messages: [{ role: 'user', content: [three, three, three] }],
        max_tokens: 8,
      }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && /At most 2 image/.test(err.message),
    );
  });

  test('management endpoints answer from the supervisor, engine internals stay private', async () => {
    const license = await json(await fetch(`${sup.baseUrl}/v1/license`));
    assert.equal(typeof license.name, 'string');
    assert.ok(license.content.length > 0);
    assert.match(license.sha, /^[0-9a-f]{40}$/);

    const manifest = await json(await fetch(`${sup.baseUrl}/v1/manifest`));
    const selected = manifest.profiles.filter((p: { selected: boolean }) => p.selected);
    assert.equal(selected.length, 1);
    assert.equal(selected[0].id, manifest.selected_profile_id);

    const metrics = await fetch(`${sup.baseUrl}/v1/metrics`);
    assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/);
    const text = await metrics.text();
    assert.match(text, /nim_supervisor_http_requests_total\{route="\/v1\/chat\/completions",method="POST",status="200"\} [1-9]/);
    assert.match(text, /nim_supervisor_engine_state\{state="ready"\} 1/);

    for (const path of ['/health', '/sleep', '/wake_up', '/load', '/server_info', '/nope']) {
      const r = await fetch(`${sup.baseUrl}${path}`, { method: path === '/sleep' || path === '/wake_up' ? 'POST' : 'GET' });
      assert.equal(r.status, 404, path);
      const body = await json(r);
      assert.equal(body.error.code, 404);
    }
  });

  test("current vLLM's public routes pass through; its /version is folded into /v1/version and /v1/metadata; admin routes stay internal", async () => {
    const engineVersion = v031 ? '0.31.0' : '0.11.0';
    // Read from the engine once it is ready (asynchronously, so wait for it).
    const ver = await waitFor(async () => {
      const v = await json(await fetch(`${sup.baseUrl}/v1/version`));
      return v.engine?.version ? v : undefined;
    }, { what: 'the engine version in /v1/version' });
    assert.deepEqual(ver.engine, { name: 'vllm', version: engineVersion });
    assert.equal(typeof ver.release, 'string');
    assert.deepEqual((await json(await fetch(`${sup.baseUrl}/v1/metadata`))).engine, { name: 'vllm', version: engineVersion });

    const post = (path: string, body: unknown) =>
      fetch(`${sup.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const batch = await post('/v1/chat/completions/batch', { model: DEFAULT_MODEL, messages: [[{ role: 'user', content: 'One' }], [{ role: 'user', content: 'Two' }]], max_tokens: 3 });
    if (v031) {
      assert.equal(batch.status, 200);
      const b = await json(batch);
      assert.deepEqual(b.choices.map((c: { index: number }) => c.index), [0, 1]);
    } else {
      // Proxied: 0.11 has no such route, and the answer is vLLM's own 404, not the supervisor's.
      assert.equal(batch.status, 404);
      assert.deepEqual(await json(batch), { detail: 'Not Found' });
    }
    // /v2/embed reaches the engine; this generate-only model does not register it.
    const embed = await post('/v2/embed', { model: DEFAULT_MODEL, texts: ['x'], input_type: 'search_document' });
    assert.equal(embed.status, 404);
    assert.deepEqual(await json(embed), { detail: 'Not Found' });
    const info = await fetch(`${sup.baseUrl}/tokenizer_info`);
    assert.equal(info.status, 200);
    assert.equal((await json(info)).tokenizer_class, 'PreTrainedTokenizerFast');

    const internal: Array<[string, string]> = [
      ['GET', '/version'],
      ['POST', '/v1/load_lora_adapter'],
      ['POST', '/v1/unload_lora_adapter'],
      ['POST', '/inference/v1/generate'],
      ['POST', '/v1/chat/completions/derender'],
      ['POST', '/v1/completions/derender'],
      ['POST', '/abort_requests'],
      ['POST', '/scale_elastic_ep'],
      ['POST', '/start_profile'],
      ['GET', '/fault_tolerance/status'],
      ['POST', '/generative_scoring'],
      ['POST', '/cohere/v2/chat'],
      ['POST', '/reset_prefix_cache'],
    ];
    for (const [method, path] of internal) {
      const r = await fetch(`${sup.baseUrl}${path}`, { method, ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}) });
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.equal((await json(r)).error.code, 404, `${method} ${path}: the supervisor's own 404`);
    }
  });
});

