// NIM's engine-setting variables, NIM_PASSTHROUGH_ARGS and command-line flags:
// each variable's effect on the vLLM command (or on selection), the layers'
// precedence (profile → NIM_* → passthrough → command line) and the
// provenance of every argument, and what is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/env.js';
import { buildEngineCommand, servedModelNameFor } from '../src/engine/argv.js';
import { ConfigError, SelectionError } from '../src/errors.js';
import type { HardwareInventory } from '../src/hardware/types.js';
import { parseManifest } from '../src/manifest/index.js';
import { gpuMemoryUtilization } from '../src/selection/evaluate.js';
import { selectProfile } from '../src/selection/index.js';
import { h100Gpu, h100Inventory } from './helpers/inventory.js';
import { distDir, fakeNvidiaSmiDir, pathWith, run } from './helpers/process.js';

const MODEL = '{name: org/model, served_model_name: org/served, source: hf://Org/Model, modality: vlm, release: "1", max_model_len: 8192, license: {name: MIT, text: MIT}}';
const PROFILE = '{name: p1, tags: {llm_engine: vllm, precision: bf16, tp: 1}, engine_args: {max-num-seqs: 32, enforce-eager: true, enable-log-requests: true, limit-mm-per-prompt: {image: 1, video: 0}}}';

function manifestOf(profile = PROFILE, model = MODEL) {
  return parseManifest(`schema_version: "1.0"\nmodel: ${model}\nprofiles:\n  - ${profile}\n`, '/tmp/engine-settings.yaml');
}

function commandFor(env: NodeJS.ProcessEnv, cli: string[] = [], opts: { profile?: string; model?: string; inventory?: HardwareInventory } = {}) {
  const config = loadConfig(env, cli);
  const manifest = manifestOf(opts.profile, opts.model);
  const selection = selectProfile(manifest, opts.inventory ?? h100Inventory(2), config);
  const cmd = buildEngineCommand({ manifest, selection, config, host: '127.0.0.1', port: 9123 });
  return { config, selection, cmd, manifest };
}

/** The final value of a flag (null for a bare boolean; undefined when absent) and the layer/source that set it. */
function flag(cmd: ReturnType<typeof commandFor>['cmd'], key: string) {
  const a = cmd.provenance!.args.find((x) => x.flag === key);
  return a && { value: a.value, by: a.source, layer: a.layer, overrode: a.overrode.map((o) => `${o.source}=${o.value}`) };
}

test('precedence: profile < NIM_* variable < NIM_PASSTHROUGH_ARGS < command line, with provenance of each step', () => {
  const { cmd } = commandFor({ NIM_MAX_NUM_SEQS: '16', NIM_PASSTHROUGH_ARGS: '--max-num-seqs 8' }, ['--max_num_seqs=4']);
  assert.deepEqual(flag(cmd, '--max-num-seqs'), {
    value: '4',
    by: 'serve',
    layer: 'command line',
    overrode: ['engine_args=32', 'NIM_MAX_NUM_SEQS=16', 'NIM_PASSTHROUGH_ARGS=8'],
  });
  assert.equal(cmd.args.filter((a) => a.includes('max-num-seqs') || a.includes('max_num_seqs')).length, 1, cmd.args.join(' '));
  // Each layer alone.
  assert.equal(flag(commandFor({}).cmd, '--max-num-seqs')!.by, 'engine_args');
  assert.equal(flag(commandFor({ NIM_MAX_NUM_SEQS: '16' }).cmd, '--max-num-seqs')!.value, '16');
  assert.equal(flag(commandFor({ NIM_MAX_NUM_SEQS: '16', NIM_PASSTHROUGH_ARGS: '--max-num-seqs 8' }).cmd, '--max-num-seqs')!.value, '8');
  // Every argument has a layer; the supervisor's own are marked as such.
  for (const a of cmd.provenance!.args) assert.ok(a.layer && a.source, JSON.stringify(a));
  assert.equal(flag(cmd, '--port')!.layer, 'supervisor');
  assert.equal(flag(cmd, '--tensor-parallel-size')!.by, 'tags.tp');
  assert.equal(flag(cmd, '--served-model-name')!.by, 'model.served_model_name');
});

test('NIM_MAX_BATCH_SIZE is NIM_MAX_NUM_SEQS by its 1.x name; when both differ, NIM_MAX_NUM_SEQS wins with a warning', () => {
  assert.deepEqual(flag(commandFor({ NIM_MAX_BATCH_SIZE: '12' }).cmd, '--max-num-seqs')!.by, 'NIM_MAX_BATCH_SIZE');
  const both = commandFor({ NIM_MAX_BATCH_SIZE: '12', NIM_MAX_NUM_SEQS: '6' });
  assert.equal(flag(both.cmd, '--max-num-seqs')!.value, '6');
  assert.equal(both.config.warnings.filter((w) => /NIM_MAX_NUM_SEQS=6 and NIM_MAX_BATCH_SIZE=12 .* NIM_MAX_NUM_SEQS wins/.test(w)).length, 1);
});

test('NIM_GPU_MEM_FRACTION / NIM_KVCACHE_PERCENT → --gpu-memory-utilization, the same value the free-memory check uses', () => {
  // GPU 0 has 30 GiB free of 80: vLLM's default 0.9 needs 72 GiB.
  const busy: HardwareInventory = { ...h100Inventory(1), gpus: [{ ...h100Gpu(0), memoryUsedMiB: 50_000 }] };
  const p = '{name: p1, tags: {llm_engine: vllm, precision: bf16, tp: 1}}';
  assert.throws(() => commandFor({}, [], { profile: p, inventory: busy }), SelectionError);
  for (const [name, value] of [['NIM_GPU_MEM_FRACTION', '0.3'], ['NIM_KVCACHE_PERCENT', '0.35']] as const) {
    const { cmd, selection, config } = commandFor({ [name]: value }, [], { profile: p, inventory: busy });
    assert.deepEqual(flag(cmd, '--gpu-memory-utilization'), { value, by: name, layer: 'variable', overrode: ["vLLM's default, passed explicitly=0.92"] });
    assert.equal(selection.evaluation.lowFreeMemory, false);
    assert.equal(gpuMemoryUtilization(selection.profile, config), Number(value));
  }
  // A command-line value wins for both, and selection checks against it.
  const cli = commandFor({ NIM_GPU_MEM_FRACTION: '0.3' }, ['--gpu-memory-utilization', '0.95'], { profile: '{name: p1, tags: {llm_engine: vllm, precision: bf16, tp: 1}}' });
  assert.equal(flag(cli.cmd, '--gpu-memory-utilization')!.value, '0.95');
  assert.equal(gpuMemoryUtilization(cli.selection.profile, cli.config), 0.95);
  const both = loadConfig({ NIM_GPU_MEM_FRACTION: '0.5', NIM_KVCACHE_PERCENT: '0.4' });
  assert.equal(both.engine.gpuMemoryUtilization!.variable, 'NIM_GPU_MEM_FRACTION');
  assert.equal(both.warnings.length, 1);
  assert.throws(() => loadConfig({ NIM_KVCACHE_PERCENT: '40' }), (e: unknown) => e instanceof ConfigError && /NIM_KVCACHE_PERCENT="40" is invalid: expected a number above 0 and at most 1/.test(e.message));
});

test('NIM_RELAX_MEM_CONSTRAINTS lifts the free-memory gate of automatic selection, with a warning; NIM_NUM_KV_CACHE_SEQ_LENS sizes the cache', () => {
  const busy: HardwareInventory = { ...h100Inventory(1), gpus: [{ ...h100Gpu(0), memoryUsedMiB: 50_000 }] };
  const p = '{name: p1, tags: {llm_engine: vllm, precision: bf16, tp: 1}}';
  assert.throws(() => commandFor({}, [], { profile: p, inventory: busy }), /more free GPU memory than is available/);
  const relaxed = commandFor({ NIM_RELAX_MEM_CONSTRAINTS: '1', NIM_NUM_KV_CACHE_SEQ_LENS: '2' }, [], { profile: p, inventory: busy });
  assert.equal(relaxed.selection.profile.name, 'p1');
  assert.equal(relaxed.selection.warnings.filter((w) => w.startsWith('NIM_RELAX_MEM_CONSTRAINTS=1: starting p1')).length, 1);
  // 2 sequences × 8192 tokens (the manifest's max_model_len) ÷ 16-token blocks.
  assert.deepEqual(flag(relaxed.cmd, '--num-gpu-blocks-override'), { value: '1024', by: 'NIM_NUM_KV_CACHE_SEQ_LENS', layer: 'variable', overrode: [] });
  // The final context length and block size count, from whichever layer set them.
  const cli = commandFor({ NIM_RELAX_MEM_CONSTRAINTS: '1', NIM_NUM_KV_CACHE_SEQ_LENS: '3' }, ['--max-model-len', '4k', '--block-size', '32'], { profile: p });
  assert.equal(flag(cli.cmd, '--num-gpu-blocks-override')!.value, String(Math.ceil((3 * 4000) / 32)));
  // Without relax: ignored, with a warning (as in NIM 1.x).
  const ignored = commandFor({ NIM_NUM_KV_CACHE_SEQ_LENS: '2' }, [], { profile: p });
  assert.equal(flag(ignored.cmd, '--num-gpu-blocks-override'), undefined);
  assert.match(ignored.config.warnings.join('\n'), /NIM_NUM_KV_CACHE_SEQ_LENS=2 is ignored: .*NIM_RELAX_MEM_CONSTRAINTS=1/);
  // No context length anywhere: one clear error.
  const noLen = '{name: o/m, source: hf://o/m, modality: llm, release: "1", license: {name: MIT, text: MIT}}';
  assert.throws(() => commandFor({ NIM_RELAX_MEM_CONSTRAINTS: '1', NIM_NUM_KV_CACHE_SEQ_LENS: '2' }, [], { profile: p, model: noLen }), /needs the context length/);
});

test('boolean variables: 1 adds the flag; 0 removes what a lower layer set, or passes the --no- form where vLLM has one', () => {
  const on = commandFor({ NIM_ENABLE_KV_CACHE_REUSE: '1', NIM_DISABLE_CUDA_GRAPH: '1', NIM_TRUST_CUSTOM_CODE: 'true', NIM_DISABLE_LOG_REQUESTS: '0' }).cmd;
  assert.deepEqual(flag(on, '--enable-prefix-caching'), { value: null, by: 'NIM_ENABLE_KV_CACHE_REUSE', layer: 'variable', overrode: [] });
  assert.equal(flag(on, '--enforce-eager')!.by, 'NIM_DISABLE_CUDA_GRAPH');
  assert.equal(flag(on, '--trust-remote-code')!.by, 'NIM_TRUST_CUSTOM_CODE');
  assert.equal(flag(on, '--enable-log-requests')!.by, 'NIM_DISABLE_LOG_REQUESTS');
  const off = commandFor({ NIM_ENABLE_KV_CACHE_REUSE: '0', NIM_DISABLE_CUDA_GRAPH: '0', NIM_DISABLE_LOG_REQUESTS: '1' }).cmd;
  assert.ok(off.args.includes('--no-enable-prefix-caching'));
  assert.equal(flag(off, '--enable-prefix-caching')!.value, 'false');
  assert.ok(!off.args.includes('--enforce-eager'), 'the profile\'s --enforce-eager is removed');
  assert.ok(!off.args.includes('--enable-log-requests'), 'the profile\'s --enable-log-requests is removed');
  assert.deepEqual(
    off.provenance!.removed.map((r) => `${r.flag} by ${r.source} over ${r.overrode.map((o) => o.source).join(',')}`).sort(),
    ['--enable-log-requests by NIM_DISABLE_LOG_REQUESTS over engine_args', '--enforce-eager by NIM_DISABLE_CUDA_GRAPH over engine_args'],
  );
  // A higher layer can bring a removed flag back.
  assert.equal(flag(commandFor({ NIM_DISABLE_CUDA_GRAPH: '0' }, ['--enforce-eager']).cmd, '--enforce-eager')!.layer, 'command line');
});

test('NIM_TRUST_CUSTOM_CODE by its 1.x names: accepted with one warning that states the mapping', () => {
  for (const old of ['NIM_FORCE_TRUST_REMOTE_CODE', 'NIM_TRUST_REMOTE_CODE']) {
    const { cmd, config } = commandFor({ [old]: '1' });
    assert.deepEqual(flag(cmd, '--trust-remote-code'), { value: null, by: old, layer: 'variable', overrode: [] });
    assert.deepEqual(config.warnings, [`${old} is the NIM 1.x name of NIM_TRUST_CUSTOM_CODE (--trust-remote-code): read as NIM_TRUST_CUSTOM_CODE; NIM 2.x reads only NIM_TRUST_CUSTOM_CODE`]);
  }
  const both = loadConfig({ NIM_FORCE_TRUST_REMOTE_CODE: '1', NIM_TRUST_CUSTOM_CODE: '0' });
  assert.equal(both.engine.trustCustomCode!.value, false);
  assert.match(both.warnings[0]!, /NIM_TRUST_CUSTOM_CODE is set too, so NIM_FORCE_TRUST_REMOTE_CODE is ignored/);
  assert.throws(() => loadConfig({ NIM_FORCE_TRUST_REMOTE_CODE: 'maybe' }), /NIM_FORCE_TRUST_REMOTE_CODE="maybe" \(read as NIM_TRUST_CUSTOM_CODE\) is invalid/);
});

test('tools and templates: parser, plugin, chat template (file or inline); auto tool choice without a parser is refused', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nim-engine-'));
  const plugin = path.join(dir, 'parser.py');
  const template = path.join(dir, 'chat.jinja');
  writeFileSync(plugin, '# plugin\n');
  writeFileSync(template, '{{ messages }}\n');
  const { cmd } = commandFor({ NIM_ENABLE_AUTO_TOOL_CHOICE: '1', NIM_TOOL_CALL_PARSER: 'hermes', NIM_TOOL_PARSER_PLUGIN: plugin, NIM_CHAT_TEMPLATE: template });
  assert.equal(flag(cmd, '--enable-auto-tool-choice')!.by, 'NIM_ENABLE_AUTO_TOOL_CHOICE');
  assert.equal(flag(cmd, '--tool-call-parser')!.value, 'hermes');
  assert.equal(flag(cmd, '--tool-parser-plugin')!.value, plugin);
  assert.equal(flag(cmd, '--chat-template')!.value, template);
  const inline = '{% for m in messages %}{{ m.content }}{% endfor %}';
  assert.equal(flag(commandFor({ NIM_CHAT_TEMPLATE: inline }).cmd, '--chat-template')!.value, inline);
  assert.throws(() => loadConfig({ NIM_CHAT_TEMPLATE: '/no/such/template.jinja' }), /NIM_CHAT_TEMPLATE="\/no\/such\/template.jinja" is invalid: .*no such file/);
  assert.throws(() => loadConfig({ NIM_TOOL_PARSER_PLUGIN: '/no/such/parser.py' }), ConfigError);
  assert.throws(() => commandFor({ NIM_ENABLE_AUTO_TOOL_CHOICE: '1' }), (e: unknown) => e instanceof ConfigError && /needs a tool call parser/.test(e.message));
  // The parser may come from any layer.
  assert.equal(flag(commandFor({ NIM_ENABLE_AUTO_TOOL_CHOICE: '1' }, ['--tool-call-parser', 'mistral']).cmd, '--tool-call-parser')!.layer, 'command line');
});

test('NIM_GUIDED_DECODING_BACKEND → --structured-outputs-config {"backend": …}, merged with what the profile set', () => {
  const { cmd } = commandFor({ NIM_GUIDED_DECODING_BACKEND: 'XGrammar' });
  assert.equal(flag(cmd, '--structured-outputs-config')!.value, '{"backend":"xgrammar"}');
  const merged = commandFor({ NIM_GUIDED_DECODING_BACKEND: 'outlines' }, [], {
    profile: '{name: p1, tags: {llm_engine: vllm, precision: bf16}, engine_args: {structured-outputs-config: {disable_any_whitespace: true}}}',
  });
  assert.equal(flag(merged.cmd, '--structured-outputs-config')!.value, '{"disable_any_whitespace":true,"backend":"outlines"}');
  assert.throws(() => loadConfig({ NIM_GUIDED_DECODING_BACKEND: 'fast_outlines' }), /expected one of auto, xgrammar, guidance, outlines, lm-format-enforcer/);
});

test('NIM_MAX_VIDEOS_PER_PROMPT and NIM_MAX_IMAGES_PER_PROMPT → --limit-mm-per-prompt, merged with the profile', () => {
  const { cmd } = commandFor({ NIM_MAX_VIDEOS_PER_PROMPT: '2', NIM_MAX_IMAGES_PER_PROMPT: '3' });
  assert.deepEqual(flag(cmd, '--limit-mm-per-prompt'), {
    value: '{"image":3,"video":2}',
    by: 'NIM_MAX_IMAGES_PER_PROMPT + NIM_MAX_VIDEOS_PER_PROMPT',
    layer: 'variable',
    overrode: ['engine_args={"image":1,"video":0}'],
  });
  assert.equal(flag(commandFor({ NIM_MAX_VIDEOS_PER_PROMPT: '4' }).cmd, '--limit-mm-per-prompt')!.value, '{"image":1,"video":4}');
});

test('NIM_LOG_LEVEL → VLLM_LOGGING_LEVEL for the engine, unless VLLM_LOGGING_LEVEL is set (or NIM_LOG_LEVEL is not)', () => {
  const { cmd } = commandFor({ NIM_LOG_LEVEL: 'warn' });
  assert.equal(cmd.env.VLLM_LOGGING_LEVEL, 'WARNING');
  assert.deepEqual(cmd.provenance!.env.find((e) => e.name === 'VLLM_LOGGING_LEVEL'), { name: 'VLLM_LOGGING_LEVEL', value: 'WARNING', layer: 'variable', source: 'NIM_LOG_LEVEL', overrode: [] });
  assert.equal(commandFor({ NIM_LOG_LEVEL: 'debug', VLLM_LOGGING_LEVEL: 'ERROR' }).cmd.env.VLLM_LOGGING_LEVEL, undefined, 'the inherited VLLM_LOGGING_LEVEL wins');
  assert.equal(commandFor({}).cmd.env.VLLM_LOGGING_LEVEL, undefined);
  assert.equal(commandFor({}).cmd.provenance!.env.find((e) => e.name === 'CUDA_VISIBLE_DEVICES')!.layer, 'supervisor');
});

test('command line and passthrough: the supervisor\'s flags and positional words are refused with one clear line', () => {
  for (const args of [['--port', '9000'], ['--host=0.0.0.0'], ['--uds', '/tmp/s']]) {
    assert.throws(
      () => loadConfig({}, args),
      (e: unknown) => e instanceof ConfigError && e.message.startsWith(`the command line: ${args[0]!.split('=')[0]} is set by the supervisor itself`),
    );
  }
  assert.throws(() => loadConfig({ NIM_PASSTHROUGH_ARGS: '--max-num-seqs 4 --port 1' }), /^ConfigError|NIM_PASSTHROUGH_ARGS: --port is set by the supervisor/);
  assert.throws(() => loadConfig({}, ['meta/llama']), /the command line: "meta\/llama" is not a vLLM flag/);
});

test('overrides above the profile count for selection too: -tp on the command line, --served-model-name', () => {
  const { selection, cmd, config, manifest } = commandFor({}, ['-tp', '2', '--served-model-name', 'alias', 'other'], { inventory: h100Inventory(4) });
  assert.equal(selection.evaluation.tp, 2);
  assert.equal(selection.gpus.length, 2);
  assert.equal(flag(cmd, '--tensor-parallel-size')!.value, '2');
  assert.equal(servedModelNameFor(manifest, config), 'alias');
  assert.equal(servedModelNameFor(manifest, loadConfig({ NIM_SERVED_MODEL_NAME: 'x' })), 'x');
});

// --- the CLI ---------------------------------------------------------------------

interface Report {
  engine: {
    args: string[];
    provenance: {
      args: { flag: string; value: string | null; layer: string; source: string; overrode: { source: string; value: string | null }[] }[];
      env: { name: string; source: string }[];
    };
  };
}

async function cli(args: string[], env: NodeJS.ProcessEnv) {
  const base: NodeJS.ProcessEnv = { PATH: pathWith(fakeNvidiaSmiDir), FAKE_NVIDIA_SMI: 'h100-sxm-x1', HOME: process.env.HOME };
  return await run(process.execPath, [path.join(distDir, 'src', 'cli', 'main.js'), ...args], { env: { ...base, ...env }, timeoutMs: 60_000 });
}

test('CLI: select-profile --json carries the provenance of every argument; nim-serve --dry-run takes vLLM flags; serve --port is refused', async () => {
  const r = await cli(['select-profile', '--json', '--max-num-seqs', '4'], { NIM_MAX_NUM_SEQS: '16', NIM_PASSTHROUGH_ARGS: '--max-num-seqs 8 --api-key sk-hidden', NIM_LOG_LEVEL: 'error' });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes('sk-hidden'));
  const rep = JSON.parse(r.stdout) as Report;
  const seqs = rep.engine.provenance.args.find((a) => a.flag === '--max-num-seqs')!;
  assert.deepEqual([seqs.value, seqs.layer, seqs.overrode.map((o) => `${o.source}=${o.value}`)], ['4', 'command line', ['engine_args=32', 'NIM_MAX_NUM_SEQS=16', 'NIM_PASSTHROUGH_ARGS=8']]);
  assert.equal(rep.engine.provenance.args.find((a) => a.flag === '--api-key')!.value, '***');
  assert.equal(rep.engine.provenance.args.find((a) => a.flag === '--port')!.value, '<port>');
  assert.equal(rep.engine.provenance.env.find((e) => e.name === 'VLLM_LOGGING_LEVEL')!.source, 'NIM_LOG_LEVEL');
  // Every argument of the command is accounted for.
  const flags = rep.engine.args.filter((a) => a.startsWith('-')).map((a) => a.split('=')[0]!.replace(/_/g, '-'));
  for (const f of flags) assert.ok(rep.engine.provenance.args.some((a) => a.flag === f), `${f} has a provenance`);

  const text = await cli(['nim-serve', '--dry-run', '--enforce-eager'], {});
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /Where each engine argument comes from/);
  assert.match(text.stdout, /--enforce-eager +← command line/);
  assert.match(text.stdout, /--max-num-seqs 32 +← profile engine_args/);

  const refused = await cli(['serve', '--port', '9000'], {});
  assert.equal(refused.code, 2);
  const lines = refused.stderr.trim().split('\n').filter((l) => l.includes('--port'));
  assert.equal(lines.length >= 1, true, refused.stderr);
  assert.match(refused.stderr, /the command line: --port is set by the supervisor itself and cannot be given/);
  assert.ok(!/Traceback|at .*\.js:\d+/.test(refused.stderr), 'one clear line, no stack');
});
