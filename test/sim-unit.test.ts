// Pure pieces of the simulator: argv parsing, tokenizer, chat template,
// generation and tool-argument synthesis.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseArgv, parseHumanInt } from '../src/sim/args.js';
import { parseMessages, renderChat } from '../src/sim/chat-template.js';
import { ApiError } from '../src/sim/errors.js';
import { hash32, plan } from '../src/sim/generator.js';
import { readKnobs, KnobError } from '../src/sim/knobs.js';
import { b64Problem, mmLimits } from '../src/sim/multimodal.js';
import { pyJsonDumps, pyRepr } from '../src/sim/pyrepr.js';
import { Tokenizer } from '../src/sim/tokenizer.js';
import { buildConfig } from '../src/sim/config.js';
import { silentLogger } from '../src/sim/log.js';
import { RELEASES, releaseFor } from '../src/sim/release.js';
import { createSimServer } from '../src/sim/server.js';
import { sampleValue } from '../src/sim/tools.js';

describe('args', () => {
  test('serve flags in both forms, aliases, nargs and human-readable ints', () => {
    const r = parseArgv(['serve', 'org/model', '--port=9000', '-tp', '2', '--served-model-name', 'a', 'b', '--max_model_len', '1K', '--enable-auto-tool-choice', '--no-enable-prefix-caching']);
    assert.equal(r.kind, 'serve');
    if (r.kind !== 'serve') return;
    assert.equal(r.args.model, 'org/model');
    assert.equal(r.args.port, 9000);
    assert.equal(r.args.tensor_parallel_size, 2);
    assert.deepEqual(r.args.served_model_name, ['a', 'b']);
    assert.equal(r.args.max_model_len, 1024);
    assert.equal(r.args.enable_auto_tool_choice, true);
    assert.equal(r.args.enable_prefix_caching, false);
    assert.deepEqual(
      Object.keys(r.nonDefault).sort(),
      ['enable_auto_tool_choice', 'enable_prefix_caching', 'max_model_len', 'model', 'model_tag', 'port', 'served_model_name', 'tensor_parallel_size'],
    );
    assert.equal(Object.keys(r.nonDefault)[0], 'model_tag');
  });

  test('argparse-style errors exit 2', () => {
    const cases: Array<[string[], RegExp]> = [
      [['serve', 'm', '--bogus', '1'], /vllm: error: unrecognized arguments: --bogus 1/],
      [['serve', 'm', 'extra'], /unrecognized arguments: extra/],
      [['serve', 'm', '--port'], /argument --port: expected one argument/],
      [['serve', 'm', '--gpu-memory-utilization', 'x'], /argument --gpu-memory-utilization: invalid float value: 'x'/],
      [['serve', 'm', '--trust-remote-code=yes'], /ignored explicit argument 'yes'/],
      [['serve', 'm', '--served-model-name'], /expected at least one argument/],
      [['frobnicate'], /invalid choice: 'frobnicate'/],
    ];
    for (const [argv, re] of cases) {
      const r = parseArgv(argv);
      assert.equal(r.kind, 'exit', argv.join(' '));
      if (r.kind !== 'exit') continue;
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^usage: vllm/);
      assert.match(r.stderr, re);
    }
  });

  test('per-release flags and defaults (VLLM_SIM_VERSION)', () => {
    const r11 = parseArgv(['serve', 'm', '--swap-space', '8', '--disable-log-requests', '--enable-log-requests'], RELEASES['0.11']);
    assert.equal(r11.kind, 'serve');
    if (r11.kind === 'serve') assert.equal(r11.args.gpu_memory_utilization, 0.9);
    const r31 = parseArgv(['serve', 'm', '--shutdown-timeout', '5', '--no-enable-log-requests', '--fingerprint-mode', 'hash'], RELEASES['0.31']);
    assert.equal(r31.kind, 'serve');
    if (r31.kind === 'serve') {
      assert.equal(r31.args.gpu_memory_utilization, 0.92);
      assert.equal(r31.args.shutdown_timeout, 5);
      assert.equal(r31.args.swap_space, undefined);
    }
    for (const argv of [['--swap-space', '8'], ['--disable-log-requests']]) {
      const r = parseArgv(['serve', 'm', ...argv], RELEASES['0.31']);
      assert.equal(r.kind, 'exit');
      if (r.kind === 'exit') assert.match(r.stderr, new RegExp(`unrecognized arguments: ${argv.join(' ')}`));
    }
    assert.equal(parseArgv(['serve', 'm', '--shutdown-timeout', '5'], RELEASES['0.11']).kind, 'exit');
    assert.equal(releaseFor('v0.31.0')?.id, '0.31');
    assert.equal(releaseFor('0.11')?.id, '0.11');
    assert.equal(releaseFor('0.12'), null);
  });

  test('a request on a dead engine: empty 500 (0.11), OpenAI-shaped InternalServerError (0.31)', async () => {
    for (const release of Object.values(RELEASES)) {
      const parsed = parseArgv(['serve', 'm'], release);
      assert.equal(parsed.kind, 'serve');
      if (parsed.kind !== 'serve') continue;
      const sim = createSimServer({ config: buildConfig(parsed.args, readKnobs({ VLLM_SIM_VERSION: release.id }), release), logger: silentLogger });
      const { port } = await sim.listen('127.0.0.1', 0);
      try {
        sim.markDead();
        const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages":[{"role":"user","content":"x"}]}' });
        assert.equal(res.status, 500);
        const text = await res.text();
        if (release.id === '0.11') assert.equal(text, '');
        else {
          assert.deepEqual(JSON.parse(text), {
            error: { message: 'EngineCore encountered an issue. See stack trace (above) for the root cause.', type: 'InternalServerError', param: null, code: 500 },
          });
        }
        assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 503);
      } finally {
        await sim.close();
      }
    }
  });

  test('human readable ints', () => {
    assert.equal(parseHumanInt('32k'), 32000);
    assert.equal(parseHumanInt('32K'), 32768);
    assert.equal(parseHumanInt('1.5k'), 1500);
    assert.equal(parseHumanInt('2M'), 2 * 1024 * 1024);
    assert.equal(parseHumanInt('4096'), 4096);
    assert.equal(parseHumanInt('1.5K'), null);
    assert.equal(parseHumanInt('abc'), null);
  });
});

describe('knobs', () => {
  test('defaults and validation', () => {
    const k = readKnobs({});
    assert.equal(k.VLLM_SIM_STARTUP_MS, 200);
    assert.equal(k.VLLM_SIM_EXIT_CODE, 1);
    assert.equal(k.VLLM_SIM_MODE, 'random');
    assert.equal(readKnobs({ VLLM_SIM_HANG_ON_SIGTERM: 'true' }).VLLM_SIM_HANG_ON_SIGTERM, true);
    assert.throws(() => readKnobs({ VLLM_SIM_TOKEN_MS: '-1' }), (e: unknown) => e instanceof KnobError && /VLLM_SIM_TOKEN_MS/.test(e.message));
    assert.throws(() => readKnobs({ VLLM_SIM_EXIT_CODE: '300' }), /VLLM_SIM_EXIT_CODE/);
    assert.throws(() => readKnobs({ VLLM_SIM_MODE: 'loud' }), /VLLM_SIM_MODE/);
  });
});

describe('tokenizer', () => {
  const tok = new Tokenizer();
  test('Llama-3 ids for the reference prompt', () => {
    assert.deepEqual(tok.encode('Hello world'), [9906, 1917]);
    assert.deepEqual(tok.encode('Hello world', true), [128000, 9906, 1917]);
  });

  test('decode(encode(s)) === s for random strings, and count() agrees', () => {
    const alphabet = ['a', 'Z', ' ', '  ', '\n', '\t', '.', ',', '7', '42', 'é', 'ß', '世', '界', '👋', '🏽', '—', '"', '<|', '|>', '<|eot_id|>', 'the', ' world'];
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 500; i++) {
      let s = '';
      const n = Math.floor(rnd() * 40);
      for (let j = 0; j < n; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      const ids = tok.encode(s);
      assert.equal(tok.decode(ids), s, JSON.stringify(s));
      assert.equal(tok.count(s), ids.length);
      for (const id of ids) assert.ok(id >= 0 && id < tok.vocabSize);
    }
  });

  test('out-of-range ids are rejected', () => {
    assert.throws(() => tok.decode([tok.vocabSize]), /out of vocabulary/);
  });
});

describe('chat template and media', () => {
  test('Llama-3 layout with generation prompt and images as placeholders', () => {
    const limits = mmLimits({ image: 1 });
    const png = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';
    const { messages, media } = parseMessages([{ role: 'user', content: [{ type: 'image_url', image_url: { url: png } }, { type: 'text', text: 'hi' }] }], limits);
    assert.equal(media.image, 1);
    assert.equal(
      renderChat(messages, { addGenerationPrompt: true, continueFinalMessage: false }),
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|>hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    assert.throws(
      () => parseMessages([{ role: 'user', content: [{ type: 'image_url', image_url: { url: png } }, { type: 'image_url', image_url: { url: png } }] }], limits),
      (e: unknown) => e instanceof ApiError && e.status === 400 && e.message.startsWith('At most 1 image(s) may be provided in one prompt.'),
    );
    assert.throws(() => parseMessages([{ role: 'user', content: [{ type: 'hologram' }] }], limits), /Unknown part type: hologram/);
    assert.throws(() => parseMessages([{ content: 'no role' }], limits), (e: unknown) => e instanceof ApiError && e.type === 'Bad Request');
  });

  test('base64 checks follow Python b64decode', () => {
    assert.equal(b64Problem('aGVsbG8='), null);
    assert.equal(b64Problem('aGVsbG8'), 'Incorrect padding');
    assert.match(b64Problem('aGVsb')!, /cannot be 1 more than a multiple of 4/);
  });
});

describe('generation', () => {
  const tok = new Tokenizer();
  const base = { seedKey: hash32('p'), maxTokens: 1000, minTokens: 0, ignoreEos: false, stop: [], includeStopStr: false };
  test('deterministic per seed; every piece is one token; EOS ends a natural stop', () => {
    const a = plan(tok, base);
    const b = plan(tok, base);
    assert.deepEqual(a, b);
    assert.notDeepEqual(plan(tok, { ...base, seedKey: hash32('q') }).text, a.text);
    assert.equal(a.finishReason, 'stop');
    assert.equal(a.pieces[a.pieces.length - 1], '');
    for (const p of a.pieces.slice(0, -1)) assert.equal(tok.encode(p).length, 1, JSON.stringify(p));
  });

  test('max_tokens, ignore_eos and stop strings', () => {
    const l = plan(tok, { ...base, maxTokens: 5 });
    assert.equal(l.pieces.length, 5);
    assert.equal(l.finishReason, 'length');
    const long = plan(tok, { ...base, maxTokens: 300, ignoreEos: true });
    assert.equal(long.pieces.length, 300);
    const stopAt = long.text.slice(20, 24);
    const s = plan(tok, { ...base, maxTokens: 300, ignoreEos: true, stop: [stopAt] });
    assert.equal(s.finishReason, 'stop');
    assert.equal(s.stopReason, stopAt);
    assert.equal(s.text, long.text.slice(0, long.text.indexOf(stopAt)));
    const inc = plan(tok, { ...base, maxTokens: 300, ignoreEos: true, stop: [stopAt], includeStopStr: true });
    assert.ok(inc.text.endsWith(stopAt));
  });

  test('echo mode repeats the prompt', () => {
    const e = plan(tok, { ...base, echo: 'say this back' });
    assert.equal(e.text, 'say this back');
  });
});

describe('tool arguments and Python reprs', () => {
  test('schema-driven values', () => {
    const v = sampleValue(
      {
        type: 'object',
        properties: {
          s: { type: 'string' },
          e: { enum: ['x', 'y'] },
          i: { type: 'integer', minimum: 100 },
          n: { type: ['number', 'null'] },
          b: { type: 'boolean' },
          a: { type: 'array', items: { type: 'string' }, minItems: 2 },
          o: { type: 'object', properties: { d: { type: 'string', format: 'date' } } },
          u: { anyOf: [{ type: 'null' }, { type: 'integer' }] },
        },
      },
      'f',
    );
    assert.deepEqual(v, { s: 'example s', e: 'x', i: 100, n: 3.5, b: true, a: ['example a', 'example a'], o: { d: '2024-01-01' }, u: 42 });
    assert.equal(pyJsonDumps({ a: [1, 'x'], b: null }), '{"a": [1, "x"], "b": null}');
    assert.equal(pyRepr({ a: ["it's"], b: true, c: null }), `{'a': ["it's"], 'b': True, 'c': None}`);
  });
});
