// The simulator's LoRA behaviour against vLLM v0.11 (docs/simulator.md):
// --lora-modules forms and errors, LoRAConfig checks, static adapters at
// start-up, the runtime load/unload routes and their errors, /v1/models
// entries and vllm:lora_requests_info. Real processes, real adapter directories.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseLoraModules } from '../src/sim/lora.js';
import { binDir, run } from './helpers/process.js';
import { writeAdapter } from './helpers/lora.js';
import { postJson, simEnv, startSim, type RunningSim } from './helpers/sim.js';

const root = mkdtempSync(path.join(tmpdir(), 'sim-lora-'));
after(() => rmSync(root, { recursive: true, force: true }));
const sql = writeAdapter(root, 'sql', { rank: 8 });
const big = writeAdapter(root, 'big', { rank: 64 });
const noWeights = writeAdapter(root, 'no-weights', { weights: 'none' });
const dora = writeAdapter(root, 'dora', { config: { use_dora: true } });
const noRank = writeAdapter(root, 'no-rank', { config: { r: null } });

const serve = (args: string[], env: Record<string, string> = {}) =>
  run(path.join(binDir, 'vllm'), ['serve', 'm', '--port', '1', ...args], { env: simEnv({ ...env, VLLM_SIM_STARTUP_MS: '0' }), timeoutMs: 20_000 });

test('--lora-modules: name=path, JSON with base_model_name, and the argparse errors', () => {
  assert.deepEqual(parseLoraModules(['a=/p', '{"name":"b","path":"/q","base_model_name":"m"}', '']), {
    modules: [
      { name: 'a', path: '/p', baseModelName: null },
      { name: 'b', path: '/q', baseModelName: 'm' },
    ],
  });
  // "=" with a "," is not the old form: it is parsed as JSON.
  assert.deepEqual(parseLoraModules(['a=/p,q']), { error: 'Invalid JSON format for --lora-modules: a=/p,q' });
  assert.match((parseLoraModules(['{"name":"a"}']) as { error: string }).error, /missing 1 required positional argument: 'path'/);
  assert.match((parseLoraModules(['{"name":"a","path":"/p","rank":8}']) as { error: string }).error, /unexpected keyword argument 'rank'/);
});

describe('start-up', () => {
  test('bad --lora-modules and --max-lora-rank are argparse errors (exit 2)', async () => {
    const a = await serve(['--enable-lora', '--lora-modules', 'just-a-name']);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /vllm serve: error: Invalid JSON format for --lora-modules: just-a-name/);
    const b = await serve(['--enable-lora', '--max-lora-rank', '20']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /argument --max-lora-rank: invalid choice: 20 \(choose from 1, 8, 16, 32, 64, 128, 256, 320, 512\)/);
  });

  test('LoRAConfig: --max-cpu-loras below --max-loras stops the start-up', async () => {
    const r = await serve(['--enable-lora', '--max-loras', '4', '--max-cpu-loras', '2']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ValueError: max_cpu_loras \(2\) must be >= max_loras \(4\)/);
  });

  test('a static adapter that fails to load stops the start-up, naming it', async () => {
    const noLora = await serve(['--lora-modules', `sql=${sql}`]);
    assert.equal(noLora.code, 1);
    assert.match(noLora.stderr, /ValueError: Call to add_lora method failed: LoRA is not enabled/);
    const tooBig = await serve(['--enable-lora', '--lora-modules', `big=${big}`]);
    assert.equal(tooBig.code, 1);
    assert.match(tooBig.stderr, /ValueError: Call to add_lora method failed: LoRA rank 64 is greater than max_lora_rank 16\./);
    const missing = await serve(['--enable-lora', '--lora-modules', `gone=${root}/gone`]);
    assert.match(missing.stderr, new RegExp(`Loading lora gone failed: No adapter found for ${root}/gone`));
  });
});

describe('a simulator serving adapters with runtime updates', () => {
  let sim: RunningSim;
  before(async () => {
    sim = await startSim(
      ['--enable-lora', '--max-loras', '2', '--lora-modules', `sql=${sql}`, JSON.stringify({ name: 'sql-base', path: sql, base_model_name: 'meta/llama-3.1-8b-instruct' })],
      { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' },
    );
  });
  after(() => sim.proc.kill('SIGTERM'));

  test('/v1/models: base first, then adapters with root = path and parent = base', async () => {
    const models = (await (await fetch(`${sim.base}/v1/models`)).json()) as { data: Array<Record<string, unknown>> };
    assert.deepEqual(models.data.map((m) => [m.id, m.root, m.parent, m.max_model_len]), [
      ['meta/llama-3.1-8b-instruct', 'meta/llama-3.1-8b-instruct', null, 4096],
      ['sql', sql, 'meta/llama-3.1-8b-instruct', null],
      ['sql-base', sql, 'meta/llama-3.1-8b-instruct', null],
    ]);
  });

  test('load and unload: success texts, and the errors vLLM gives', async () => {
    const ok = await postJson(sim.base, '/v1/load_lora_adapter', { lora_name: 'sql2', lora_path: sql });
    assert.deepEqual([ok.status, ok.text, ok.headers.get('content-type')], [200, "Success: LoRA adapter 'sql2' added successfully.", null]);
    const cases: Array<[unknown, number, string, RegExp]> = [
      [{ lora_name: 'sql2', lora_path: sql }, 400, 'InvalidUserInput', /The lora adapter 'sql2' has already been loaded\./],
      [{ lora_name: '', lora_path: sql }, 400, 'InvalidUserInput', /Both 'lora_name' and 'lora_path' must be provided\./],
      [{ lora_name: 'x', lora_path: `${root}/nothing` }, 404, 'NotFoundError', /Call to add_lora method failed: Loading lora x failed: No adapter found for /],
      [{ lora_name: 'x', lora_path: big }, 400, 'BadRequestError', /LoRA rank 64 is greater than max_lora_rank 16\./],
      [{ lora_name: 'x', lora_path: noWeights }, 400, 'BadRequestError', /no-weights doesn't contain tensors/],
      [{ lora_name: 'x', lora_path: dora }, 400, 'BadRequestError', /vLLM does not yet support DoRA\./],
      [{ lora_name: 'x', lora_path: noRank }, 400, 'BadRequestError', /Missing required configuration fields: \{'r'\}/],
      [{ lora_name: 'x' }, 400, 'Bad Request', /Field required/],
    ];
    for (const [body, status, type, re] of cases) {
      const r = await postJson(sim.base, '/v1/load_lora_adapter', body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.equal(r.json.error.type, type);
      assert.match(r.json.error.message, re);
    }
    const gone = await postJson(sim.base, '/v1/unload_lora_adapter', { lora_name: 'nope' });
    assert.deepEqual([gone.status, gone.json.error.message], [404, "The lora adapter 'nope' cannot be found."]);
    const un = await postJson(sim.base, '/v1/unload_lora_adapter', { lora_name: 'sql2' });
    assert.deepEqual([un.status, un.text], [200, "Success: LoRA adapter 'sql2' removed successfully."]);
  });

  test('requests name an adapter in `model`; vllm:lora_requests_info shows it running', async () => {
    const r = await postJson(sim.base, '/v1/completions', { model: 'sql', prompt: 'hello', max_tokens: 2 });
    assert.equal(r.status, 200);
    assert.equal(r.json.model, 'sql');
    const metrics = await (await fetch(`${sim.base}/metrics`)).text();
    assert.match(metrics, /^vllm:lora_requests_info\{max_lora="2",waiting_lora_adapters="",running_lora_adapters="sql"\} \d+(\.\d+)?$/m);
    const unknown = await postJson(sim.base, '/v1/completions', { model: 'sql2', prompt: 'hello', max_tokens: 2 });
    assert.equal(unknown.status, 404);
  });
});

test('without VLLM_ALLOW_RUNTIME_LORA_UPDATING the runtime routes do not exist', async () => {
  const sim = await startSim(['--enable-lora']);
  try {
    const r = await postJson(sim.base, '/v1/load_lora_adapter', { lora_name: 'sql', lora_path: sql });
    assert.deepEqual([r.status, r.text], [404, '{"detail":"Not Found"}']);
  } finally {
    sim.proc.kill('SIGTERM');
  }
});
