// Manifest parsing and validation: the shipped manifests load, ids are stable,
// names follow NIM's convention, and every validation error names the file,
// the line and the YAML path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ManifestError } from '../src/errors.js';
import {
  computeProfileId,
  canonicalJson,
  deriveProfileName,
  loadManifest,
  loadManifestSync,
  parseManifest,
  formatYamlPath,
} from '../src/manifest/index.js';
import { fixturesDir, repoRoot } from './helpers/process.js';

const manifestsDir = path.join(repoRoot, 'manifests');
const bad = (name: string) => path.join(fixturesDir, 'manifests', name);

async function expectManifestError(file: string, expected: { line?: number; yamlPath?: string; message: RegExp }) {
  await assert.rejects(loadManifest(file), (err: unknown) => {
    assert.ok(err instanceof ManifestError, `expected a ManifestError, got ${String(err)}`);
    assert.equal(err.file, file);
    assert.ok(err.message.startsWith(file), `message should start with the file: ${err.message}`);
    if (expected.line !== undefined) {
      assert.equal(err.line, expected.line, err.message);
      assert.match(err.message, new RegExp(`: line ${expected.line}: `));
    }
    if (expected.yamlPath !== undefined) {
      assert.equal(err.yamlPath, expected.yamlPath, err.message);
      assert.ok(err.message.includes(expected.yamlPath), err.message);
    }
    assert.match(err.message, expected.message);
    assert.equal(err.exitCode, 2);
    return true;
  });
}

test('shipped manifests load, with unique 64-hex ids and names', async () => {
  const files = ['nemotron-3-content-safety.yaml', 'gemma-3-27b-it.yaml', 'qwen2.5-vl-7b-instruct.yaml'];
  for (const f of files) {
    const m = await loadManifest(path.join(manifestsDir, f));
    assert.ok(m.profiles.length >= 5, f);
    assert.ok(m.model.license.text.length > 100, `${f}: license text read from its path`);
    assert.equal(new Set(m.profiles.map((p) => p.id)).size, m.profiles.length);
    assert.equal(new Set(m.profiles.map((p) => p.name.toLowerCase())).size, m.profiles.length);
    for (const p of m.profiles) assert.match(p.id, /^[0-9a-f]{64}$/);
    assert.equal(m.model.modality, 'vlm');
  }
});

test('the default manifest (nemotron-3-content-safety) has exactly one CPU profile, bf16 tp1 pp1', async () => {
  const m = await loadManifest(path.join(manifestsDir, 'nemotron-3-content-safety.yaml'));
  assert.equal(m.model.name, 'nvidia/nemotron-3-content-safety');
  assert.equal(m.model.source, 'hf://nvidia/Nemotron-3-Content-Safety');
  const cpu = m.profiles.filter((p) => p.tags.device === 'cpu');
  assert.equal(cpu.length, 1);
  assert.equal(cpu[0]!.name, 'vllm-bf16-cpu');
  assert.deepEqual([cpu[0]!.tags.precision, cpu[0]!.tags.tp, cpu[0]!.tags.pp], ['bf16', 1, 1]);
  assert.ok('VLLM_CPU_KVCACHE_SPACE' in cpu[0]!.engineEnv);
});

test('the gemma manifest covers H100, H200, A100 80GB and L40S, generic tp1/tp2 and LoRA', async () => {
  const m = await loadManifest(path.join(manifestsDir, 'gemma-3-27b-it.yaml'));
  const names = m.profiles.map((p) => p.name);
  for (const n of [
    'vllm-fp8-tp1-pp1-h100-latency',
    'vllm-bf16-tp1-pp1-h200-throughput',
    'vllm-bf16-tp1-pp1-a100-throughput',
    'vllm-fp8-tp1-pp1-l40s-latency',
    'vllm-bf16-tp1-pp1',
    'vllm-bf16-tp2-pp1',
    'vllm-bf16-tp2-pp1-lora',
  ]) {
    assert.ok(names.includes(n), `missing ${n}`);
  }
  // No fp8 profile for A100 (no FP8 tensor cores).
  assert.ok(!m.profiles.some((p) => p.tags.gpu === 'A100' && p.tags.precision === 'fp8'));
  const lora = m.profiles.find((p) => p.tags.lora)!;
  assert.equal(lora.displayTags.feat_lora_max_rank, '32');
});

test('loadManifestSync and loadManifest agree', async () => {
  const f = path.join(fixturesDir, 'manifests', 'minimal.yaml');
  assert.deepEqual(loadManifestSync(f), await loadManifest(f));
});

test('parsed profile: defaults, tags normalised, engine_args list and env kept', () => {
  const m = loadManifestSync(path.join(fixturesDir, 'manifests', 'minimal.yaml'));
  const [generic, h100] = m.profiles;
  assert.equal(m.model.servedModelName, 'test/tiny-vlm', 'served_model_name defaults to the name');
  assert.deepEqual(generic!.tags, {
    engine: 'vllm',
    precision: 'bf16',
    tp: 1,
    pp: 1,
    device: 'gpu',
    gpu: undefined,
    gpuDevice: undefined,
    minGpuMemoryGiB: undefined,
    goal: undefined,
    lora: false,
  });
  assert.equal(h100!.name, 'vllm-fp8-tp2-pp1-h100-latency');
  assert.deepEqual(h100!.engineArgs, ['--max-num-seqs', '8']);
  assert.deepEqual(h100!.engineEnv, { FOO: 'bar' });
  assert.deepEqual(h100!.displayTags, {
    llm_engine: 'vllm',
    precision: 'fp8',
    tp: '2',
    pp: '1',
    device: 'gpu',
    feat_lora: 'false',
    gpu: 'H100',
    profile: 'latency',
  });
});

const HEADER = `schema_version: "1.0"
model: {name: t/m, source: hf://t/m, modality: llm, release: "1", license: {name: MIT, text: MIT}}
`;

test('profile ids are stable across key order, quoting, number-vs-string and flow-vs-block YAML', () => {
  const a = parseManifest(
    `${HEADER}profiles:
  - tags: {llm_engine: vllm, precision: bf16, tp: 2, pp: 1, gpu: H100}
    engine_args: {max-num-seqs: 8, enforce-eager: true}
    env: {A: "1", B: two}
`,
    '/tmp/a.yaml',
  );
  const b = parseManifest(
    `${HEADER}profiles:
  - env:
      B: two
      A: 1
    engine_args:
      enforce-eager: true
      max-num-seqs: "8"
    tags:
      gpu: "H100"
      pp: "1"
      tp: "2"
      precision: BF16
      llm_engine: vllm
`,
    '/tmp/b.yaml',
  );
  assert.equal(a.profiles[0]!.id, b.profiles[0]!.id);
  assert.deepEqual(a.profiles[0]!.engineArgs, ['--enforce-eager', '--max-num-seqs', '8']);
  // A change to what runs changes the id.
  const c = parseManifest(
    `${HEADER}profiles:
  - tags: {llm_engine: vllm, precision: bf16, tp: 2, pp: 1, gpu: H100}
    engine_args: {max-num-seqs: 16, enforce-eager: true}
    env: {A: "1", B: two}
`,
    '/tmp/c.yaml',
  );
  assert.notEqual(c.profiles[0]!.id, a.profiles[0]!.id);
  // Description and name do not change it.
  const d = parseManifest(
    `${HEADER}profiles:
  - name: custom
    description: hello
    tags: {llm_engine: vllm, precision: bf16, tp: 2, pp: 1, gpu: H100}
    engine_args: {max-num-seqs: 8, enforce-eager: true}
    env: {A: "1", B: two}
`,
    '/tmp/d.yaml',
  );
  assert.equal(d.profiles[0]!.id, a.profiles[0]!.id);
  assert.equal(d.profiles[0]!.name, 'custom');
});

test('computeProfileId is sha256 of canonical JSON; canonicalJson sorts keys at every level', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[2,{"y":2,"z":1}]},"b":1}');
  const id = computeProfileId({ model: 'm', tags: { tp: '1', precision: 'bf16' }, engineArgs: [], env: {} });
  assert.equal(id, computeProfileId({ model: 'm', tags: { precision: 'bf16', tp: '1' }, engineArgs: [], env: {} }));
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.notEqual(id, computeProfileId({ model: 'other', tags: { tp: '1', precision: 'bf16' }, engineArgs: [], env: {} }));
});

test('an explicit id is kept', () => {
  const id = 'a'.repeat(64);
  const m = parseManifest(`${HEADER}profiles:\n  - id: ${id}\n    tags: {llm_engine: vllm, precision: bf16}\n`, '/tmp/x.yaml');
  assert.equal(m.profiles[0]!.id, id);
});

test('name derivation follows NIM: vllm-<precision>-tp<N>-pp<N>[-gpu][-goal][-lora], CPU as vllm-<precision>-cpu', () => {
  const base = { engine: 'vllm' as const, precision: 'bf16', tp: 1, pp: 1, device: 'gpu' as const, gpu: undefined, goal: undefined, lora: false };
  assert.equal(deriveProfileName(base), 'vllm-bf16-tp1-pp1');
  assert.equal(deriveProfileName({ ...base, tp: 2, gpu: 'H100', goal: 'latency' }), 'vllm-bf16-tp2-pp1-h100-latency');
  assert.equal(deriveProfileName({ ...base, precision: 'fp8', gpu: 'H100_NVL', goal: 'throughput' }), 'vllm-fp8-tp1-pp1-h100_nvl-throughput');
  assert.equal(deriveProfileName({ ...base, tp: 2, lora: true }), 'vllm-bf16-tp2-pp1-lora');
  assert.equal(deriveProfileName({ ...base, device: 'cpu' }), 'vllm-bf16-cpu');
  assert.equal(deriveProfileName({ ...base, device: 'cpu', tp: 2 }), 'vllm-bf16-cpu-tp2-pp1');
});

test('formatYamlPath', () => {
  assert.equal(formatYamlPath(['profiles', 3, 'tags', 'tp']), 'profiles[3].tags.tp');
  assert.equal(formatYamlPath(['profiles', 0, 'engine_args', '--port']), 'profiles[0].engine_args["--port"]');
});

test('error: a tag value of the wrong type names file, line and path', async () => {
  await expectManifestError(bad('bad-tp.yaml'), { line: 13, yamlPath: 'profiles[1].tags.tp', message: /expected a positive integer.*got "two"/ });
});

test('error: unknown keys are errors, with a suggestion', async () => {
  await expectManifestError(bad('unknown-key.yaml'), { line: 12, yamlPath: 'profiles[0].tags.tpp', message: /unknown key "tpp" \(did you mean "tp"\?/ });
});

test('error: duplicate names (ignoring case)', async () => {
  await expectManifestError(bad('duplicate-name.yaml'), { line: 11, yamlPath: 'profiles[1].name', message: /duplicate profile name "My-Profile"/ });
});

test('error: two profiles with the same content have the same id', async () => {
  await expectManifestError(bad('duplicate-id.yaml'), { line: 10, yamlPath: 'profiles[1]', message: /same id/ });
});

test('error: an id that is not 64 lower-case hex digits', async () => {
  await expectManifestError(bad('bad-id.yaml'), { line: 9, yamlPath: 'profiles[0].id', message: /64 lower-case hex/ });
});

test('error: invalid YAML gives a line', async () => {
  await expectManifestError(bad('syntax-error.yaml'), { line: 4, message: /invalid YAML/ });
});

test('error: reserved engine flags are refused', async () => {
  await expectManifestError(bad('reserved-flag.yaml'), { line: 13, yamlPath: 'profiles[0].engine_args[2]', message: /--port must not be set/ });
});

test('error: a CPU profile with GPU tags', async () => {
  await expectManifestError(bad('cpu-with-gpu.yaml'), { line: 9, yamlPath: 'profiles[0].tags.gpu', message: /device: cpu profile cannot have a gpu tag/ });
});

test('error: a missing required key points at its parent', async () => {
  await expectManifestError(bad('missing-source.yaml'), { line: 2, yamlPath: 'model.source', message: /is required/ });
});

test('error: unsupported engine and unknown precision are both reported', async () => {
  await assert.rejects(loadManifest(bad('bad-engine.yaml')), (err: unknown) => {
    assert.ok(err instanceof ManifestError);
    assert.match(err.message, /line 9: profiles\[0\]\.tags\.llm_engine: unsupported engine "tensorrt_llm"/);
    assert.match(err.hint ?? '', /line 10: profiles\[1\]\.tags\.precision: unknown precision "fp9"/);
    return true;
  });
});

test('error: a license path that does not exist', async () => {
  await expectManifestError(bad('missing-license-file.yaml'), { yamlPath: 'model.license.path', message: /cannot read the license file .*no-such-license\.txt: file not found/ });
});

test('error: a manifest path that does not exist', async () => {
  const f = path.join(fixturesDir, 'manifests', 'nope.yaml');
  await expectManifestError(f, { message: /cannot read the manifest: file not found/ });
  assert.throws(() => loadManifestSync(f), ManifestError);
});

test('error: a duplicate YAML key, an empty file, a scalar document', () => {
  assert.throws(() => parseManifest(`${HEADER}model: {}\n`, '/tmp/dup.yaml'), /line 3: invalid YAML: Map keys must be unique/);
  assert.throws(() => parseManifest('', '/tmp/empty.yaml'), /the manifest is empty/);
  assert.throws(() => parseManifest('hello', '/tmp/s.yaml'), /expected a map with schema_version/);
});

test('error: more value checks', () => {
  const cases: Array<[string, RegExp]> = [
    ['  - tags: {llm_engine: vllm, precision: bf16, gpu_device: "23-30"}', /profiles\[0\]\.tags\.gpu_device: expected a PCI id/],
    ['  - tags: {llm_engine: vllm, precision: bf16, profile: fastest}', /profiles\[0\]\.tags\.profile: expected one of latency, throughput/],
    ['  - tags: {llm_engine: vllm, precision: bf16, feat_lora: maybe}', /feat_lora: expected true or false/],
    ['  - tags: {llm_engine: vllm, precision: bf16, feat_lora_max_rank: 8}', /feat_lora_max_rank needs feat_lora: true/],
    ['  - tags: {llm_engine: vllm, precision: bf16, min_gpu_memory_gb: -1}', /min_gpu_memory_gb: expected a positive number/],
    ['  - name: default\n    tags: {llm_engine: vllm, precision: bf16}', /"default" is reserved/],
    ['  - tags: {llm_engine: vllm, precision: bf16}\n    engine_args: ["--max-num-seqs 8"]', /holds a flag and its value in one token/],
    ['  - tags: {llm_engine: vllm, precision: bf16}\n    engine_args: {tensor-parallel-size: 2}', /--tensor-parallel-size must not be set in a profile: set tags\.tp/],
    ['  - tags: {llm_engine: vllm, precision: bf16}\n    env: {CUDA_VISIBLE_DEVICES: "0"}', /CUDA_VISIBLE_DEVICES is set by the supervisor/],
    ['  - tags: {llm_engine: vllm, precision: bf16}\n    env: {"BAD NAME": x}', /not a valid environment variable name/],
    ['  - tags: {llm_engine: vllm, precision: bf16}\n    env: [A]', /profiles\[0\]\.env: expected a map/],
  ];
  for (const [profile, re] of cases) {
    assert.throws(() => parseManifest(`${HEADER}profiles:\n${profile}\n`, '/tmp/v.yaml'), re, profile);
  }
  assert.throws(() => parseManifest(`${HEADER}profiles: []\n`, '/tmp/v.yaml'), /profiles: a manifest needs at least one profile/);
  assert.throws(
    () => parseManifest(HEADER.replace('hf://t/m', 't/m') + 'profiles:\n  - tags: {llm_engine: vllm, precision: bf16}\n', '/tmp/v.yaml'),
    /model\.source: ambiguous source "t\/m"/,
  );
  assert.throws(
    () => parseManifest(HEADER.replace('hf://t/m', 's3://b/m') + 'profiles:\n  - tags: {llm_engine: vllm, precision: bf16}\n', '/tmp/v.yaml'),
    /model\.source: expected "hf:\/\/<org>\/<repo>" or a local path/,
  );
  assert.throws(
    () => parseManifest(HEADER.replace('"1.0"', '"2.0.0"') + 'profiles:\n  - tags: {llm_engine: vllm, precision: bf16}\n', '/tmp/v.yaml'),
    /schema_version: unsupported schema_version "2\.0\.0"/,
  );
});

test('a local ./source is resolved against the manifest directory; map engine_args values', () => {
  const m = parseManifest(
    HEADER.replace('hf://t/m', './weights') +
      'profiles:\n  - tags: {llm_engine: vllm, precision: bf16}\n    engine_args: {enforce-eager: false, --swap-space: 4, limit-mm-per-prompt: {image: 2}, served-extra: [a, b]}\n',
    '/srv/models/m.yaml',
  );
  assert.equal(m.model.source, '/srv/models/weights');
  assert.deepEqual(m.profiles[0]!.engineArgs, ['--swap-space', '4', '--limit-mm-per-prompt', '{"image":2}', '--served-extra', 'a', 'b']);
});
