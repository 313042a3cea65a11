// LoRA decisions without processes: adapter checks, the scan on real
// directories, reconcile (load/unload/pending), the launch flags, the
// configuration variables and the selection rule.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../src/config/env.js';
import { buildEngineCommand } from '../src/engine/argv.js';
import { ConfigError, SelectionError } from '../src/errors.js';
import { checkAdapter, type AdapterFiles, type LoraAdapter } from '../src/lora/adapter.js';
import { loraModuleArg, planLoraLaunch, setLoraModules } from '../src/lora/flags.js';
import { reconcile } from '../src/lora/reconcile.js';
import { safetensorsProblem, scanPeftSource, type ScanEntry } from '../src/lora/scan.js';
import { parseManifest } from '../src/manifest/load.js';
import { evaluateProfiles } from '../src/selection/evaluate.js';
import { selectProfile } from '../src/selection/select.js';
import { adapterConfig, safetensorsBytes, writeAdapter } from './helpers/lora.js';

const names = { servedModelName: 'test/tiny-chat', modelName: 'test/tiny-chat', source: 'test/Tiny-Chat' };
const tmp = mkdtempSync(path.join(tmpdir(), 'lora-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function files(over: Partial<AdapterFiles> & { config?: Record<string, unknown> } = {}): AdapterFiles {
  return {
    name: 'sql',
    path: '/adapters/sql',
    configText: JSON.stringify(over.config ?? adapterConfig({ baseModel: 'test/Tiny-Chat' })),
    weights: { file: 'adapter_model.safetensors', size: 100 },
    weightsProblem: undefined,
    fingerprint: 'fp',
    ...over,
  };
}

describe('checkAdapter', () => {
  const cases: Array<[string, AdapterFiles, RegExp]> = [
    ['no adapter_config.json', files({ configText: undefined }), /no adapter_config\.json in \/adapters\/sql/],
    ['half-written JSON', files({ configText: '{"r": 8, "lora_al' }), /adapter_config\.json is not valid JSON/],
    ['not an object', files({ configText: '[1]' }), /is not a JSON object/],
    ['missing r', files({ config: adapterConfig({ config: { r: null } }) }), /lacks r \(vLLM requires r, lora_alpha and target_modules\)/],
    ['rank not an integer', files({ config: adapterConfig({ config: { r: 'eight' } }) }), /field r \(the rank\) is "eight"/],
    ['DoRA', files({ config: adapterConfig({ config: { use_dora: true } }) }), /DoRA/],
    ['modules_to_save', files({ config: adapterConfig({ config: { modules_to_save: ['lm_head'] } }) }), /modules_to_save/],
    ['bias', files({ config: adapterConfig({ config: { bias: 'all' } }) }), /bias "all": vLLM supports only "none"/],
    ['not LoRA', files({ config: adapterConfig({ config: { peft_type: 'PREFIX_TUNING' } }) }), /peft_type "PREFIX_TUNING"/],
    ['rank above 512', files({ config: adapterConfig({ rank: 1024 }) }), /rank 1024 is above 512/],
    ['another base model', files({ config: adapterConfig({ baseModel: 'meta-llama/Llama-3.1-8B' }) }), /trained for base model "meta-llama\/Llama-3\.1-8B"/],
    ['no weights', files({ weights: undefined }), /no weights file \(adapter_model\.safetensors, adapter_model\.bin, adapter_model\.pt\)/],
    ['empty weights', files({ weights: { file: 'adapter_model.bin', size: 0 } }), /adapter_model\.bin is empty/],
    ['broken weights', files({ weightsProblem: 'adapter_model.safetensors is truncated (10 bytes, expected 99)' }), /truncated/],
    ['named like the base model', files({ name: 'test/tiny-chat' }), /the base model's served name/],
  ];
  for (const [what, f, re] of cases) {
    test(`refuses an adapter: ${what}`, () => {
      const r = checkAdapter(f, names);
      assert.equal(r.ok, false);
      assert.match((r as { reason: string }).reason, re);
    });
  }

  test('accepts the base model by its HF id, a local copy or no base at all', () => {
    for (const base of ['test/Tiny-Chat', '/models/tiny-chat/', 'TEST/TINY-CHAT', null]) {
      const r = checkAdapter(files({ config: adapterConfig({ baseModel: base, rank: 16 }) }), names);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.adapter.rank, 16);
    }
  });
});

describe('scanning NIM_PEFT_SOURCE', () => {
  test('safetensors files are checked against their header: whole passes, truncated fails', async () => {
    const dir = writeAdapter(tmp, 'st-check', { rank: 8, baseModel: 'test/Tiny-Chat' });
    const file = path.join(dir, 'adapter_model.safetensors');
    assert.equal(await safetensorsProblem(file, statSync(file).size), undefined);
    truncateSync(file, statSync(file).size - 100);
    assert.match((await safetensorsProblem(file, statSync(file).size))!, /is truncated \(\d+ bytes, expected \d+\)/);
  });

  test('one entry per adapter directory; hidden entries, plain files and dangling links are not adapters', async () => {
    const root = path.join(tmp, 'scan');
    mkdirSync(root);
    writeAdapter(root, 'sql', { baseModel: 'test/Tiny-Chat' });
    writeAdapter(root, '.uploading', { baseModel: 'test/Tiny-Chat' });
    writeAdapter(tmp, 'linked-target', { baseModel: 'test/Tiny-Chat', weights: 'bin' });
    symlinkSync(path.join(tmp, 'linked-target'), path.join(root, 'linked'));
    symlinkSync(path.join(tmp, 'nowhere'), path.join(root, 'dangling'));
    writeFileSync(path.join(root, 'README.md'), 'adapters');
    const scan = await scanPeftSource(root, names);
    assert.deepEqual([...scan.keys()], ['linked', 'sql']);
    assert.ok(scan.get('sql')!.check.ok);
    assert.equal((scan.get('linked')!.check as { adapter: LoraAdapter }).adapter.weightsFile, 'adapter_model.bin');
    // The fingerprint moves when a file changes.
    const before = scan.get('sql')!.fingerprint;
    writeFileSync(path.join(root, 'sql', 'adapter_model.safetensors'), safetensorsBytes(16));
    assert.notEqual((await scanPeftSource(root, names)).get('sql')!.fingerprint, before);
  });
});

function entry(name: string, fp: string, ok = true, rank = 8): ScanEntry {
  const adapter: LoraAdapter = { name, path: `/a/${name}`, rank, baseModel: undefined, weightsFile: 'adapter_model.safetensors', fingerprint: fp };
  return { name, path: adapter.path, fingerprint: fp, check: ok ? { ok: true, adapter } : { ok: false, reason: 'broken' } };
}

describe('reconcile', () => {
  const base = { failed: new Map<string, string>(), rankLimit: 32, rankLimitSource: 'NIM_MAX_LORA_RANK' };
  test('an adapter seen for the first time, or changed since the last scan, waits (pending)', () => {
    const r = reconcile({ ...base, previous: new Map(), current: new Map([['a', entry('a', '1')]]), loaded: new Map() });
    assert.deepEqual(r, { load: [], unload: [], skip: [], pending: ['a'] });
  });
  test('a stable valid adapter loads; a vanished one unloads; a stable broken one is skipped', () => {
    const loaded = new Map([['gone', entry('gone', 'g').check.ok ? (entry('gone', 'g').check as { adapter: LoraAdapter }).adapter : undefined!]]);
    const r = reconcile({
      ...base,
      previous: new Map([['a', '1'], ['b', '2']]),
      current: new Map([['a', entry('a', '1')], ['b', entry('b', '2', false)]]),
      loaded,
    });
    assert.deepEqual(r.load.map((a) => a.name), ['a']);
    assert.deepEqual(r.unload.map((u) => u.name), ['gone']);
    assert.deepEqual(r.skip, [{ name: 'b', reason: 'broken' }]);
  });
  test('an adapter rewritten in place keeps serving until it holds still, then reloads', () => {
    const old = (entry('a', '1').check as { adapter: LoraAdapter }).adapter;
    const moving = reconcile({ ...base, previous: new Map([['a', '1']]), current: new Map([['a', entry('a', '2')]]), loaded: new Map([['a', old]]) });
    assert.deepEqual(moving, { load: [], unload: [], skip: [], pending: ['a'] });
    const settled = reconcile({ ...base, previous: new Map([['a', '2']]), current: new Map([['a', entry('a', '2')]]), loaded: new Map([['a', old]]) });
    assert.deepEqual(settled.unload.map((u) => u.name), ['a']);
    assert.deepEqual(settled.load.map((a) => a.fingerprint), ['2']);
  });
  test('over the rank limit: skipped with the limit named; a failed load is not retried until the files change', () => {
    const r = reconcile({ ...base, previous: new Map([['big', '1']]), current: new Map([['big', entry('big', '1', true, 64)]]), loaded: new Map() });
    assert.match(r.skip[0]!.reason, /rank 64 is above the limit 32 \(NIM_MAX_LORA_RANK\)/);
    const failed = new Map([['a', '1']]);
    assert.deepEqual(reconcile({ ...base, failed, previous: new Map([['a', '1']]), current: new Map([['a', entry('a', '1')]]), loaded: new Map() }).load, []);
    assert.equal(reconcile({ ...base, failed, previous: new Map([['a', '3']]), current: new Map([['a', entry('a', '3')]]), loaded: new Map() }).load.length, 1);
  });
});

const MANIFEST = `schema_version: "1.0"
model: {name: test/tiny-chat, source: hf://test/Tiny-Chat, modality: llm, release: "1", license: {name: MIT, path: ${path.resolve('manifests/licenses/Apache-2.0.txt')}}}
profiles:
  - tags: {llm_engine: vllm, precision: bf16, tp: 1, pp: 1, device: cpu}
  - tags: {llm_engine: vllm, precision: bf16, tp: 1, pp: 1, device: cpu, feat_lora: true, feat_lora_max_rank: 32}
    engine_args: {max-loras: 2, max-cpu-loras: 4}
`;

function adapter(name: string, rank: number, p = `/a/${name}`): LoraAdapter {
  return { name, path: p, rank, baseModel: undefined, weightsFile: 'adapter_model.safetensors', fingerprint: 'x' };
}

describe('the LoRA launch', () => {
  const manifest = parseManifest(MANIFEST, '/m.yaml');
  const loraProfile = manifest.profiles.find((p) => p.tags.lora)!;
  const lora = (over: Record<string, string> = {}) => loadConfig({ NIM_PEFT_SOURCE: tmp, ...over }).lora;

  test('--max-lora-rank holds the largest adapter; max-loras from the profile; NIM variables and passthrough win', () => {
    const l = planLoraLaunch({ lora: lora(), profile: loraProfile, passthroughArgs: [], adapters: [adapter('a', 8), adapter('b', 12)] });
    assert.deepEqual([l.maxLoraRank, l.maxLoras, l.maxCpuLoras, l.rankLimit, l.runtimeUpdates], [16, 2, 4, 32, false]);
    const env = planLoraLaunch({ lora: lora({ NIM_MAX_GPU_LORAS: '6', NIM_MAX_CPU_LORAS: '12' }), profile: loraProfile, passthroughArgs: [], adapters: [] });
    assert.deepEqual([env.maxLoras, env.maxCpuLoras], [6, 12]);
    const raised = planLoraLaunch({ lora: lora({ NIM_MAX_GPU_LORAS: '9' }), profile: loraProfile, passthroughArgs: [], adapters: [] });
    assert.equal(raised.maxCpuLoras, 9, 'max_cpu_loras is never below max_loras');
    const pt = planLoraLaunch({ lora: lora(), profile: loraProfile, passthroughArgs: ['--max-lora-rank', '64'], adapters: [adapter('a', 8)] });
    assert.deepEqual([pt.maxLoraRank, pt.rankLimit], [64, 64]);
  });

  test('with refresh, the engine gets room for adapters up to the limit', () => {
    const l = planLoraLaunch({ lora: lora({ NIM_PEFT_REFRESH_INTERVAL: '5', NIM_MAX_LORA_RANK: '64' }), profile: loraProfile, passthroughArgs: [], adapters: [adapter('a', 8)] });
    assert.deepEqual([l.maxLoraRank, l.rankLimit, l.runtimeUpdates], [64, 64, true]);
    const odd = planLoraLaunch({ lora: lora({ NIM_PEFT_REFRESH_INTERVAL: '5', NIM_MAX_LORA_RANK: '40' }), profile: loraProfile, passthroughArgs: [], adapters: [] });
    assert.equal(odd.maxLoraRank, 64, 'the next rank vLLM accepts');
  });

  test('the engine command: LoRA flags replace the profile\'s, the runtime API is enabled only for refresh', () => {
    const selection = selectProfile(manifest, { gpus: [], nvidiaSmi: 'missing', warnings: [] } as never, { ...loadConfig({}), lora: { peftSource: tmp } } as never);
    const launch = planLoraLaunch({ lora: lora({ NIM_PEFT_REFRESH_INTERVAL: '1' }), profile: selection.profile, passthroughArgs: [], adapters: [adapter('sql', 8), adapter('odd', 8, '/a/x=y')] });
    const cmd = buildEngineCommand({ manifest, selection, config: loadConfig({}), host: '127.0.0.1', port: 1, lora: launch });
    const i = cmd.args.indexOf('--enable-lora');
    assert.deepEqual(cmd.args.slice(i), [
      '--enable-lora', '--max-lora-rank', '32', '--max-loras', '2', '--max-cpu-loras', '4',
      '--lora-modules', 'sql=/a/sql', '{"name":"odd","path":"/a/x=y"}',
    ]);
    assert.equal(cmd.env.VLLM_ALLOW_RUNTIME_LORA_UPDATING, 'True');
    assert.equal(loraModuleArg({ name: 'a,b', path: '/p' }), '{"name":"a,b","path":"/p"}');
    const args = [...cmd.args];
    setLoraModules(args, [adapter('math', 8)]);
    assert.deepEqual(args.slice(args.indexOf('--lora-modules')), ['--lora-modules', 'math=/a/math']);
    setLoraModules(args, []);
    assert.equal(args.includes('--lora-modules'), false);
  });
});

describe('configuration and selection', () => {
  test('NIM_PEFT_* variables: bad values name the variable', () => {
    assert.throws(() => loadConfig({ NIM_PEFT_SOURCE: 'hf://org/adapter' }), (e: unknown) => e instanceof ConfigError && /NIM_PEFT_SOURCE="hf:\/\/org\/adapter" is a remote URI/.test(e.message));
    assert.throws(() => loadConfig({ NIM_MAX_GPU_LORAS: '8', NIM_MAX_CPU_LORAS: '4' }), /NIM_MAX_CPU_LORAS=4 is smaller than NIM_MAX_GPU_LORAS=8/);
    assert.throws(() => loadConfig({ NIM_MAX_LORA_RANK: '1000' }), /NIM_MAX_LORA_RANK="1000" is invalid: expected an integer from 1 to 512/);
    assert.throws(() => loadConfig({ NIM_PEFT_REFRESH_INTERVAL: 'often' }), /NIM_PEFT_REFRESH_INTERVAL="often" is invalid/);
    const c = loadConfig({ NIM_PEFT_SOURCE: 'rel/dir', NIM_PEFT_REFRESH_INTERVAL: '2.5' });
    assert.equal(c.lora.peftSource, path.resolve('rel/dir'));
    assert.equal(c.lora.refreshIntervalMs, 2500);
  });

  test('with NIM_PEFT_SOURCE a profile without LoRA is not chosen, and says why', () => {
    const manifest = parseManifest(MANIFEST, '/m.yaml');
    const inv = { gpus: [], nvidiaSmi: 'missing', warnings: [] } as never;
    const plain = loadConfig({});
    assert.equal(selectProfile(manifest, inv, plain).profile.tags.lora, false);
    const withLora = loadConfig({ NIM_PEFT_SOURCE: tmp });
    assert.equal(selectProfile(manifest, inv, withLora).profile.tags.lora, true);
    const [noLora] = evaluateProfiles(manifest, inv, withLora);
    assert.equal(noLora!.compatible, false);
    assert.match(noLora!.reasons[0]!, /no LoRA support \(feat_lora is not true\), and NIM_PEFT_SOURCE asks for LoRA adapters/);
    const explicit = loadConfig({ NIM_PEFT_SOURCE: tmp, NIM_MODEL_PROFILE: manifest.profiles[0]!.id });
    assert.throws(() => selectProfile(manifest, inv, explicit), (e: unknown) => e instanceof SelectionError && /no LoRA support/.test(e.message));
  });
});

describe('LoraAdapters (refresh through the runtime API)', async () => {
  const { LoraAdapters } = await import('../src/lora/manager.js');
  const logs: Array<{ level: string; msg: string }> = [];
  const logger = {
    info: (_o: unknown, msg: string) => logs.push({ level: 'info', msg }),
    warn: (_o: unknown, msg: string) => logs.push({ level: 'warn', msg }),
  } as never;

  test('loads stable adapters, unloads removed ones, warns once, keeps --lora-modules in step', async () => {
    let scan = new Map<string, ScanEntry>([['a', entry('a', '1')], ['bad', entry('bad', '1', false)]]);
    const calls: string[] = [];
    const refuse = new Set(['c']);
    const api = {
      load: async (name: string) => {
        calls.push(`load ${name}`);
        if (refuse.has(name)) throw new Error('vLLM refused to load it (400: nope)');
      },
      unload: async (name: string) => void calls.push(`unload ${name}`),
    };
    const m = new LoraAdapters({ lora: loadConfig({ NIM_PEFT_SOURCE: tmp, NIM_PEFT_REFRESH_INTERVAL: '60' }).lora, names, logger, scan: async () => scan, settleMs: 0 });
    await m.discover();
    const launch = planLoraLaunch({ lora: loadConfig({ NIM_PEFT_SOURCE: tmp, NIM_PEFT_REFRESH_INTERVAL: '60' }).lora, profile: parseManifest(MANIFEST, '/m.yaml').profiles[1]!, passthroughArgs: [], adapters: m.candidates() });
    m.launchWith(launch);
    const args = ['serve', 'x', '--max-cpu-loras', '4', '--lora-modules', 'a=/a/a'];
    m.startRefresh(api, args, () => true);
    m.close(); // the timer is not needed: refresh() is called directly
    assert.deepEqual(m.summary().loaded.map((a) => a.name), ['a']);

    scan = new Map([['b', entry('b', '1')], ['c', entry('c', '1')], ['bad', entry('bad', '1', false)]]);
    await m.refresh(); // a is gone; b and c are new (pending)
    await m.refresh(); // b and c held still: load (c refused)
    await m.refresh(); // nothing changes: no retry of c, no new warnings
    assert.deepEqual(calls, ['unload a', 'load b', 'load c']);
    assert.deepEqual(args.slice(args.indexOf('--lora-modules')), ['--lora-modules', 'b=/a/b']);
    assert.deepEqual(m.summary().loaded.map((a) => a.name), ['b']);
    assert.deepEqual(m.summary().skipped.map((s) => s.name).sort(), ['bad', 'c']);
    assert.equal(logs.filter((l) => l.msg.startsWith('LoRA adapter bad skipped')).length, 1);
    assert.equal(logs.filter((l) => l.msg.startsWith('LoRA adapter c skipped: vLLM refused')).length, 1);
    assert.ok(m.isAdapter('a') && m.isAdapter('b') && !m.isAdapter('c'));
  });
});
