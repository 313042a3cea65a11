// The vLLM command line: each flag, precedence (NIM_* over profile, passthrough
// last), environment, and masking of secrets in the printed form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildEngineCommand, formatCommandLine, maskArgs, engineModelArg, shellQuote, type ArgvConfig } from '../src/engine/argv.js';
import type { HardwareInventory } from '../src/hardware/types.js';
import { h100Inventory } from './helpers/inventory.js';
import { parseManifest } from '../src/manifest/index.js';
import { selectProfile } from '../src/selection/index.js';

const inv = (n: number): HardwareInventory => h100Inventory(n);

const baseConfig: ArgvConfig = {
  engineCommand: 'vllm',
  servedModelName: undefined,
  maxModelLen: undefined,
  maxImagesPerPrompt: undefined,
  passthroughArgs: [],
};

function build(profileYaml: string, opts: { config?: Partial<ArgvConfig>; gpus?: number; model?: string; tp?: number } = {}) {
  const model = opts.model ?? '{name: org/model, served_model_name: org/served, source: hf://Org/Model, modality: vlm, release: "1", license: {name: MIT, text: MIT}}';
  const manifest = parseManifest(`schema_version: "1.0"\nmodel: ${model}\nprofiles:\n  - ${profileYaml}\n`, '/tmp/argv.yaml');
  const config = { ...baseConfig, ...opts.config };
  const selection = selectProfile(manifest, inv(opts.gpus ?? 2), {
    modelProfile: undefined,
    tensorParallelSize: opts.tp,
    pipelineParallelSize: undefined,
    passthroughArgs: config.passthroughArgs,
  });
  return buildEngineCommand({ manifest, selection, config, host: '127.0.0.1', port: 9123 });
}

test('the base command: serve <repo> --host --port --served-model-name -tp -pp and the precision flags', () => {
  const cmd = build('{tags: {llm_engine: vllm, precision: bf16, tp: 2, pp: 1}}');
  assert.equal(cmd.command, 'vllm');
  assert.deepEqual(cmd.args, [
    'serve', 'Org/Model', '--host', '127.0.0.1', '--port', '9123', '--served-model-name', 'org/served',
    '--tensor-parallel-size', '2', '--pipeline-parallel-size', '1', '--dtype', 'bfloat16',
    '--gpu-memory-utilization', '0.92',
  ]);
  assert.deepEqual(cmd.env, { CUDA_VISIBLE_DEVICES: 'GPU-0,GPU-1', CUDA_DEVICE_ORDER: 'PCI_BUS_ID' });
});

test('precision → --dtype / --quantization', () => {
  const flags = (p: string) => {
    const a = build(`{tags: {llm_engine: vllm, precision: ${p}}}`).args;
    return a.slice(12, a.indexOf('--gpu-memory-utilization'));
  };
  assert.deepEqual(flags('fp16'), ['--dtype', 'float16']);
  assert.deepEqual(flags('fp8'), ['--quantization', 'fp8']);
  assert.deepEqual(flags('int4_awq'), ['--quantization', 'awq']);
  assert.deepEqual(flags('gptq'), ['--quantization', 'gptq']);
  assert.deepEqual(flags('nvfp4'), []);
});

test('--gpu-memory-utilization: always passed, and always the share selection checked free memory against', () => {
  const util = (cmd: { args: string[] }) => cmd.args[cmd.args.lastIndexOf('--gpu-memory-utilization') + 1];
  // vLLM's current default (0.92, PR #38284), not the 0.90 of older releases.
  assert.equal(util(build('{tags: {llm_engine: vllm, precision: bf16}}')), '0.92');
  // The profile's own value moves into the one flag the supervisor emits.
  const own = build('{tags: {llm_engine: vllm, precision: bf16}, engine_args: [--gpu-memory-utilization, "0.85"]}');
  assert.equal(util(own), '0.85');
  assert.equal(own.args.filter((a) => a === '--gpu-memory-utilization').length, 1);
  // The operator's override (the hook NIM_GPU_MEM_FRACTION / NIM_KVCACHE_PERCENT fill) wins over the profile.
  const manifest = parseManifest('schema_version: "1.0"\nmodel: {name: o/m, source: hf://o/m, modality: llm, release: "1", license: {name: MIT, text: MIT}}\nprofiles:\n  - {tags: {llm_engine: vllm, precision: bf16}, engine_args: [--gpu-memory-utilization, "0.85"]}\n', '/tmp/u.yaml');
  const config = { ...baseConfig, gpuMemoryUtilization: 0.7 };
  const selection = selectProfile(manifest, inv(1), { modelProfile: undefined, tensorParallelSize: undefined, pipelineParallelSize: undefined, ...config });
  assert.equal(selection.evaluation.gpuMemoryUtilization, 0.7);
  assert.equal(util(buildEngineCommand({ manifest, selection, config, host: '127.0.0.1', port: 1 })), '0.7');
  // NIM_PASSTHROUGH_ARGS wins over everything, and the emitted value agrees with it.
  const pass = build('{tags: {llm_engine: vllm, precision: bf16}}', { config: { passthroughArgs: ['--gpu-memory-utilization', '0.6'] } });
  assert.deepEqual(pass.args.filter((a, i) => pass.args[i - 1] === '--gpu-memory-utilization'), ['0.6', '0.6']);
  // CPU profiles have no GPU memory to share (chosen automatically only on a host without GPUs).
  const cpu = build('{tags: {llm_engine: vllm, precision: bf16, device: cpu}}', { gpus: 0 });
  assert.ok(!cpu.args.includes('--gpu-memory-utilization'));
});

test('served model name: NIM_SERVED_MODEL_NAME wins; local sources are kept as paths', () => {
  const cmd = build('{tags: {llm_engine: vllm, precision: bf16}}', { config: { servedModelName: 'my-name' } });
  assert.equal(cmd.args[cmd.args.indexOf('--served-model-name') + 1], 'my-name');
  assert.equal(engineModelArg('hf://meta-llama/Llama-3.2-1B'), 'meta-llama/Llama-3.2-1B');
  assert.equal(engineModelArg('/models/llama'), '/models/llama');
});

test('--max-model-len: NIM_MAX_MODEL_LEN over the profile over the manifest', () => {
  const model = '{name: o/m, source: hf://o/m, modality: llm, release: "1", max_model_len: 32768, license: {name: MIT, text: MIT}}';
  const plain = build('{tags: {llm_engine: vllm, precision: bf16}}', { model });
  assert.deepEqual(plain.args.slice(12, 14), ['--max-model-len', '32768']);
  const profileOwn = build('{tags: {llm_engine: vllm, precision: bf16}, engine_args: [--max-model-len, "8192"]}', { model });
  assert.equal(profileOwn.args.filter((a) => a === '--max-model-len').length, 1);
  assert.deepEqual(profileOwn.args.slice(-2), ['--max-model-len', '8192']);
  const env = build('{tags: {llm_engine: vllm, precision: bf16}, engine_args: ["--max-model-len=8192"]}', { model, config: { maxModelLen: 4096 } });
  assert.equal(env.args.filter((a) => a.startsWith('--max-model-len')).length, 1);
  assert.deepEqual(env.args.slice(12, 14), ['--max-model-len', '4096']);
});

test('--limit-mm-per-prompt for VLMs when NIM_MAX_IMAGES_PER_PROMPT is set, merged with the profile', () => {
  const none = build('{tags: {llm_engine: vllm, precision: bf16}}');
  assert.ok(!none.args.includes('--limit-mm-per-prompt'));
  const set = build('{tags: {llm_engine: vllm, precision: bf16}, engine_args: {limit-mm-per-prompt: {image: 1, video: 0}}}', { config: { maxImagesPerPrompt: 4 } });
  assert.equal(set.args.filter((a) => a === '--limit-mm-per-prompt').length, 1);
  assert.equal(set.args[set.args.indexOf('--limit-mm-per-prompt') + 1], '{"image":4,"video":0}');
  const llm = build('{tags: {llm_engine: vllm, precision: bf16}}', {
    model: '{name: o/m, source: hf://o/m, modality: llm, release: "1", license: {name: MIT, text: MIT}}',
    config: { maxImagesPerPrompt: 4 },
  });
  assert.ok(!llm.args.includes('--limit-mm-per-prompt'), 'not for text-only models');
});

test('LoRA profiles get --enable-lora and --max-lora-rank', () => {
  const cmd = build('{tags: {llm_engine: vllm, precision: bf16, feat_lora: true, feat_lora_max_rank: 64}, engine_args: {max-loras: 4}}');
  assert.deepEqual(cmd.args.slice(12), ['--dtype', 'bfloat16', '--gpu-memory-utilization', '0.92', '--enable-lora', '--max-lora-rank', '64', '--max-loras', '4']);
});

test('profile engine args come before NIM_PASSTHROUGH_ARGS, which come last', () => {
  const cmd = build('{tags: {llm_engine: vllm, precision: bf16}, engine_args: [--max-num-seqs, "8"], env: {MY_VAR: x}}', {
    config: { passthroughArgs: ['--max-num-seqs', '2', '--enforce-eager'] },
  });
  assert.deepEqual(cmd.args.slice(-5), ['--max-num-seqs', '8', '--max-num-seqs', '2', '--enforce-eager']);
  assert.equal(cmd.env.MY_VAR, 'x');
});

test('NIM_TENSOR_PARALLEL_SIZE is reflected in the command and the GPUs', () => {
  const cmd = build('{tags: {llm_engine: vllm, precision: bf16, tp: 1}}', { gpus: 4, tp: 4 });
  assert.equal(cmd.args[cmd.args.indexOf('--tensor-parallel-size') + 1], '4');
  assert.equal(cmd.env.CUDA_VISIBLE_DEVICES, 'GPU-0,GPU-1,GPU-2,GPU-3');
});

test('CPU profiles: no CUDA variables, the profile env only', () => {
  const cmd = build('{tags: {llm_engine: vllm, precision: bf16, device: cpu}, env: {VLLM_CPU_KVCACHE_SPACE: 8}}', { gpus: 0 });
  assert.deepEqual(cmd.env, { VLLM_CPU_KVCACHE_SPACE: '8' });
  assert.ok(cmd.args.includes('--dtype'));
});

test('formatCommandLine quotes for a POSIX shell and masks secrets', () => {
  const line = formatCommandLine({
    command: '/opt/vllm/bin/vllm',
    args: ['serve', 'o/m', '--api-key', 'sk-secret', 'sk-two', '--limit-mm-per-prompt', '{"image":2}', '--chat-template', "it's", '--api-key=sk-3'],
    env: { HF_TOKEN: 'hf_abc', NGC_API_KEY: 'nvapi', DB_PASSWORD_FILE: '/x', AWS_SECRET: 's', PLAIN: 'a b', CUDA_VISIBLE_DEVICES: 'GPU-1,GPU-2' },
  });
  for (const secret of ['sk-secret', 'sk-two', 'sk-3', 'hf_abc', 'nvapi', '/x', "=s "]) assert.ok(!line.includes(secret), `${secret} leaked: ${line}`);
  assert.equal(
    line,
    "AWS_SECRET=*** CUDA_VISIBLE_DEVICES=GPU-1,GPU-2 DB_PASSWORD_FILE=*** HF_TOKEN=*** NGC_API_KEY=*** PLAIN='a b' " +
      `/opt/vllm/bin/vllm serve o/m --api-key *** *** --limit-mm-per-prompt '{"image":2}' --chat-template 'it'\\''s' --api-key=***`,
  );
  assert.deepEqual(maskArgs(['--api-key', 'k', '--port', '1']), ['--api-key', '***', '--port', '1']);
  assert.equal(shellQuote(''), "''");
});
