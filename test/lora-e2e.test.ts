// LoRA end to end: the real supervisor in front of the simulator, adapters as
// real directories under NIM_PEFT_SOURCE, added (slowly, as a copy would write
// them) and removed while serving, with NIM_PEFT_REFRESH_INTERVAL.
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { binDir, fixturesDir, freePort, pathWith, run, sleep, waitFor } from './helpers/process.js';
import { adapterConfig, safetensorsBytes, writeAdapter } from './helpers/lora.js';
import { startSupervisor, stopCleanly, type Supervisor } from './helpers/supervisor.js';

const MANIFEST = path.join(fixturesDir, 'manifests', 'lora.yaml');
const BASE = 'test/tiny-chat';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const getJson = async (url: string): Promise<any> => await (await fetch(url)).json();
const modelIds = async (sup: Supervisor): Promise<string[]> => ((await getJson(`${sup.baseUrl}/v1/models`)).data as Array<{ id: string }>).map((m) => m.id);

describe('a supervisor serving LoRA adapters from NIM_PEFT_SOURCE', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'peft-'));
  let sup: Supervisor;

  before(async () => {
    writeAdapter(root, 'sql', { rank: 8, baseModel: 'test/Tiny-Chat' });
    writeAdapter(root, 'llama-sql', { rank: 8, baseModel: 'meta-llama/Llama-3.1-8B-Instruct' });
    sup = await startSupervisor({
      NIM_MANIFEST_PATH: MANIFEST,
      NIM_PEFT_SOURCE: root,
      NIM_PEFT_REFRESH_INTERVAL: '0.2',
      NIM_MAX_LORA_RANK: '32',
    });
    await sup.waitReady(40_000);
  });

  after(async () => {
    await stopCleanly(sup);
    rmSync(root, { recursive: true, force: true });
  });

  test('starts vLLM with the LoRA flags; the base and the valid adapter are in /v1/models', async () => {
    const cmd = sup.logs().find((r) => r.msg === 'engine command')!.command as string;
    assert.match(cmd, /--enable-lora --max-lora-rank 32 --max-loras 2 --max-cpu-loras 4 --lora-modules sql=\S+\/sql/);
    assert.match(cmd, /^VLLM_ALLOW_RUNTIME_LORA_UPDATING=True /);
    const models = (await getJson(`${sup.baseUrl}/v1/models`)).data as Array<Record<string, unknown>>;
    assert.deepEqual(models.map((m) => [m.id, m.parent]), [
      [BASE, null],
      ['sql', BASE],
    ]);
    assert.equal(models[1]!.root, path.join(root, 'sql'));
  });

  test('a bad adapter is skipped with one warning naming it and why, however often the source is scanned', async () => {
    await sleep(1000); // several refresh scans
    const warnings = sup.logs().filter((r) => r.adapter === 'llama-sql' && r.level === 'WARNING');
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(String(warnings[0]!.msg), /LoRA adapter llama-sql skipped: it was trained for base model "meta-llama\/Llama-3\.1-8B-Instruct"/);
    const meta = await getJson(`${sup.baseUrl}/v1/metadata`);
    assert.deepEqual(meta.loraAdapters.map((a: { name: string }) => a.name), ['sql']);
    assert.deepEqual(meta.peft.skipped.map((s: { name: string }) => s.name), ['llama-sql']);
  });

  test('clients pick an adapter with `model`; /v1/metrics counts loaded adapters and requests per adapter', async () => {
    const client = new OpenAI({ baseURL: `${sup.baseUrl}/v1`, apiKey: 'unused', maxRetries: 0 });
    const chat = await client.chat.completions.create({ model: 'sql', messages: [{ role: 'user', content: 'SELECT?' }], max_tokens: 4 });
    assert.equal(chat.model, 'sql');
    const stream = await client.chat.completions.create({ model: 'sql', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true });
    for await (const _ of stream) {
      /* drain */
    }
    await client.chat.completions.create({ model: BASE, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    const metrics = await (await fetch(`${sup.baseUrl}/v1/metrics`)).text();
    assert.match(metrics, /^nim_supervisor_lora_requests_total\{adapter="sql"\} 2$/m);
    assert.match(metrics, /^nim_supervisor_lora_adapters\{state="loaded"\} 1$/m);
    assert.match(metrics, /^nim_supervisor_lora_adapters\{state="skipped"\} 1$/m);
    assert.match(metrics, /^vllm:lora_requests_info\{max_lora="2",/m);
  });

  test("vLLM's runtime LoRA routes are not reachable through the public port", async () => {
    for (const route of ['/v1/load_lora_adapter', '/v1/unload_lora_adapter']) {
      const r = await fetch(`${sup.baseUrl}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ lora_name: 'evil', lora_path: '/etc' }),
      });
      assert.equal(r.status, 404, route);
      await r.arrayBuffer();
    }
  });

  test('an adapter copied in while serving is loaded once complete, never half-written', async () => {
    const dir = path.join(root, 'math');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(adapterConfig({ rank: 16, baseModel: 'test/Tiny-Chat' })));
    // The weights arrive in pieces, as a slow copy would write them.
    const bytes = safetensorsBytes(16);
    const pieces = 8;
    const step = Math.ceil(bytes.length / pieces);
    for (let i = 0; i < pieces; i++) {
      appendFileSync(path.join(dir, 'adapter_model.safetensors'), bytes.subarray(i * step, (i + 1) * step));
      if (i < pieces - 1) {
        await sleep(60);
        assert.ok(!(await modelIds(sup)).includes('math'), `math listed after ${i + 1} of ${pieces} pieces`);
      }
    }
    await waitFor(async () => (await modelIds(sup)).includes('math'), { timeoutMs: 15_000, what: 'math in /v1/models' });
    // The engine was only ever asked to load it whole: every load request it saw succeeded.
    // (The simulator's access log, relayed by the supervisor, shows each request the engine got; its
    // line can reach the supervisor's output just after /v1/models lists the adapter.)
    const loads = await waitFor(
      () => {
        const seen = sup
          .logs()
          .map((r) => String(r.msg))
          .flatMap((m) => m.match(/"POST \/v1\/load_lora_adapter HTTP\/1\.1" \d+/g) ?? []);
        return seen.length >= 1 ? seen : undefined;
      },
      { timeoutMs: 5_000, what: "the engine's access-log line for loading math" },
    );
    assert.ok(loads.every((l) => l.endsWith(' 200')), loads.join('\n'));
    const loaded = sup.logs().filter((r) => r.msg === 'LoRA adapter math loaded');
    assert.equal(loaded.length, 1);
    const client = new OpenAI({ baseURL: `${sup.baseUrl}/v1`, apiKey: 'unused', maxRetries: 0 });
    assert.equal((await client.completions.create({ model: 'math', prompt: '1+1=', max_tokens: 2 })).model, 'math');
  });

  test('an adapter removed while serving is unloaded and leaves /v1/models', async () => {
    rmSync(path.join(root, 'sql'), { recursive: true, force: true });
    await waitFor(async () => !(await modelIds(sup)).includes('sql'), { timeoutMs: 15_000, what: 'sql to leave /v1/models' });
    assert.ok(sup.logs().some((r) => r.msg === `LoRA adapter sql unloaded: its directory ${path.join(root, 'sql')} is gone`));
    const r = await fetch(`${sup.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sql', prompt: 'x', max_tokens: 1 }),
    });
    assert.equal(r.status, 404);
    await r.arrayBuffer();
    const meta = await getJson(`${sup.baseUrl}/v1/metadata`);
    assert.deepEqual(meta.loraAdapters.map((a: { name: string }) => a.name), ['math']);
  });
});

describe('LoRA configuration that cannot be served fails fast (exit 2)', () => {
  const serve = async (extra: Record<string, string>) =>
    await run(process.execPath, ['dist/src/cli/main.js', 'serve'], {
      env: { ...process.env, PATH: pathWith(binDir), NIM_SERVER_HOST: '127.0.0.1', NIM_SERVER_PORT: String(await freePort()), ...extra },
      timeoutMs: 30_000,
    });

  test('a manifest without a LoRA profile: selection says why', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'peft-'));
    try {
      const r = await serve({ NIM_PEFT_SOURCE: root });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /NIM_PEFT_SOURCE is set, but no profile of nvidia\/nemotron-3-content-safety \(.*\) supports LoRA \(feat_lora: true\)/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a source that is not a directory', async () => {
    const r = await serve({ NIM_MANIFEST_PATH: MANIFEST, NIM_PEFT_SOURCE: path.join(tmpdir(), 'no-such-peft-dir') });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /NIM_PEFT_SOURCE=".*no-such-peft-dir" cannot be read: ENOENT/);
  });
});
