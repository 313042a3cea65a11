// Integration: the built CLI (dist/src/cli/main.js) with the fake nvidia-smi
// from test/fixtures/bin first on PATH, one fixture per machine type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { distDir, fakeNvidiaSmiDir, pathWith, repoRoot, run } from './helpers/process.js';

const MAIN = path.join(distDir, 'src', 'cli', 'main.js');
const GEMMA = path.join(repoRoot, 'manifests', 'gemma-3-27b-it.yaml');

/** An environment without any NIM_* / CUDA variables from the caller. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(NIM_|CUDA_|NVIDIA_|FAKE_NVIDIA_SMI)/.test(k)) env[k] = v;
  }
  return env;
}

/** fixture: a FAKE_NVIDIA_SMI fixture name; null = fake on PATH but unset (driver failure); 'no-nvidia-smi' = PATH without it. */
async function cli(args: string[], fixture: string | null, extra: NodeJS.ProcessEnv = {}) {
  const env = baseEnv();
  if (fixture === 'no-nvidia-smi') {
    env.PATH = '/usr/bin:/bin';
  } else {
    env.PATH = pathWith(fakeNvidiaSmiDir);
    if (fixture !== null) env.FAKE_NVIDIA_SMI = fixture;
  }
  return await run(process.execPath, [MAIN, ...args], { env: { ...env, ...extra }, timeoutMs: 60_000 });
}

interface JsonReport {
  selected: { id: string; name: string; how: string } | null;
  selectionError: string | null;
  system: { nvidiaSmi: string; gpus: { index: number; free: boolean; mig: boolean }[] };
  profiles: { id: string; name: string; status: string; selected: boolean; gpus: number[]; reasons: string[] }[];
}

async function listJson(fixture: string | null, extra: NodeJS.ProcessEnv = {}): Promise<JsonReport> {
  const r = await cli(['list-model-profiles', '--json'], fixture, extra);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as JsonReport;
}

const cases: Array<[string, string | null, string, number[]]> = [
  ['no nvidia-smi on PATH', 'no-nvidia-smi', 'vllm-bf16-cpu', []],
  ['1x L4', 'l4-x1', 'vllm-bf16-tp1-pp1', [0]],
  ['1x H100 SXM', 'h100-sxm-x1', 'vllm-bf16-tp1-pp1-h100-latency', [0]],
  ['8x H100 SXM', 'h100-sxm-x8', 'vllm-bf16-tp1-pp1-h100-latency', [0]],
  ['2x A100 40GB', 'a100-40gb-x2', 'vllm-bf16-tp1-pp1-a100-latency', [0]],
  ['4x L40S', 'l40s-x4', 'vllm-bf16-tp1-pp1-l40s-latency', [0]],
  ['1x H200', 'h200-x1', 'vllm-bf16-tp1-pp1-h200-latency', [0]],
  ['A100 80GB with MIG: the whole GPU', 'a100-80gb-mig', 'vllm-bf16-tp1-pp1-a100-latency', [1]],
  ['2x H100, one busy', 'mixed-busy', 'vllm-bf16-tp1-pp1-h100-latency', [1]],
];

for (const [title, fixture, expected, gpus] of cases) {
  test(`default manifest, ${title}: selects ${expected}`, async () => {
    const report = await listJson(fixture);
    assert.equal(report.selected?.name, expected, JSON.stringify(report.selected));
    const sel = report.profiles.find((p) => p.selected)!;
    assert.equal(sel.name, expected);
    assert.equal(sel.status, 'runnable');
    assert.deepEqual(sel.gpus, gpus);
    for (const p of report.profiles.filter((q) => q.status === 'incompatible')) assert.ok(p.reasons.length > 0, p.name);
  });
}

// A GPU host whose GPUs cannot be used (issue #12): no silent CPU fallback. select-profile
// (and serve) exit 2 with the reasons; list-model-profiles still reports.
const gpuHostCases: Array<[string, string | null, NodeJS.ProcessEnv, RegExp]> = [
  ['driver failure (nvidia-smi present but failing)', null, {}, /an NVIDIA GPU host: nvidia-smi is installed but failed/],
  ['garbage nvidia-smi output', 'garbage', {}, /an NVIDIA GPU host: nvidia-smi works/],
  ['one H100 with NIM_TENSOR_PARALLEL_SIZE=2', 'h100-sxm-x1', { NIM_TENSOR_PARALLEL_SIZE: '2' }, /needs 2 GPUs \(tp2 × pp1\)/],
  ['no nvidia-smi but NVIDIA_VISIBLE_DEVICES=all', 'no-nvidia-smi', { NVIDIA_VISIBLE_DEVICES: 'all' }, /NVIDIA_VISIBLE_DEVICES=all/],
];
for (const [title, fixture, extra, reason] of gpuHostCases) {
  test(`GPU host, ${title}: select-profile exits 2 with the reasons; list-model-profiles reports`, async () => {
    const sel = await cli(['select-profile'], fixture, extra);
    assert.equal(sel.code, 2, sel.stdout);
    assert.equal(sel.stderr.trim().split('\n').length, 1, sel.stderr);
    assert.match(sel.stderr, reason);
    assert.match(sel.stderr, /NIM_MODEL_PROFILE=vllm-bf16-cpu/);
    const report = await listJson(fixture, extra);
    assert.equal(report.selected, null);
    assert.match(report.selectionError ?? '', reason);
    // Naming the CPU profile still runs it there.
    const cpu = await cli(['select-profile'], fixture, { ...extra, NIM_MODEL_PROFILE: 'vllm-bf16-cpu' });
    assert.equal(cpu.code, 0, cpu.stderr);
    assert.match(cpu.stdout, /vllm-bf16-cpu/);
  });
}

test('list-model-profiles text report: sections, selected marker, reasons; warnings only on stderr', async () => {
  const r = await cli(['list-model-profiles'], 'l4-x1');
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, /^SYSTEM INFO\n- Host: /);
  assert.match(out, /- Free GPUs:\n {2}- {2}\[27b8:10de\] \(0\) NVIDIA L4 \(L4\/L4 24GB\) \[memory 22\.5 GiB total, 0\.0 GiB used, current utilization: 0%\]/);
  assert.match(out, /- Compatible with system and runnable:\n {2}- [0-9a-f]{64} \(vllm-bf16-tp1-pp1\) \(selected\) \[GPUs 0\]/);
  assert.match(out, /- With LoRA support: <None>/);
  assert.match(out, /- Compatible with system but low free memory: <None>/);
  assert.match(out, /\(vllm-bf16-tp1-pp1-h100-latency\)\n {6}✗ needs GPU family H100, found L4 24GB \(27b8:10de\)/);
  assert.match(out, /\(vllm-bf16-tp2-pp1\)\n {6}✗ needs 2 GPUs \(tp2 × pp1\), 1 visible/);
  assert.match(out, /SELECTED PROFILE: [0-9a-f]{64} \(vllm-bf16-tp1-pp1\), selected automatically/);

  const none = await cli(['list-model-profiles'], 'no-nvidia-smi');
  assert.equal(none.code, 0);
  assert.match(none.stdout, /- GPUs: <None> \(nvidia-smi not found\)/);
  assert.ok(!/WARNING/.test(none.stdout), 'no log lines in the report');
  assert.match(none.stderr, /WARNING.*no GPUs/);
});

test('gemma on 8x H100: more GPUs first; on the busy pair: low-free-memory bucket', async () => {
  const x8 = await listJson('h100-sxm-x8', { NIM_MANIFEST_PATH: GEMMA });
  assert.equal(x8.selected?.name, 'vllm-fp8-tp2-pp1-h100-latency');
  const busy = await cli(['list-model-profiles'], 'mixed-busy', { NIM_MANIFEST_PATH: GEMMA });
  assert.equal(busy.code, 0, busy.stderr);
  assert.match(busy.stdout, /- Non-free GPUs:\n {2}- {2}\[2330:10de\] \(0\)/);
  assert.match(busy.stdout, /- Compatible with system but low free memory:\n {2}- [0-9a-f]{64} \(vllm-fp8-tp2-pp1-h100-latency\) \[GPUs 0,1\]\n {6}! GPU 0 has/);
  assert.match(busy.stdout, /\(vllm-fp8-tp1-pp1-h100-latency\) \(selected\) \[GPUs 1\]/);
  const l4 = await cli(['list-model-profiles'], 'l4-x1', { NIM_MANIFEST_PATH: GEMMA });
  assert.equal(l4.code, 0, 'listing works even when nothing can run');
  assert.match(l4.stdout, /SELECTED PROFILE: <None>: no profile of google\/gemma-3-27b-it can run/);
});

test('MIG only (CUDA_VISIBLE_DEVICES = a MIG instance): the generic profile on that instance', async () => {
  const r = await cli(['select-profile', '--json'], 'a100-80gb-mig', { CUDA_VISIBLE_DEVICES: 'MIG-abdce57b-73c7-d2a2-8f62-77ac4827ccf8' });
  assert.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(r.stdout) as { profile: { name: string }; engine: { env: Record<string, string> } };
  assert.equal(rep.profile.name, 'vllm-bf16-tp1-pp1');
  assert.equal(rep.engine.env.CUDA_VISIBLE_DEVICES, 'MIG-abdce57b-73c7-d2a2-8f62-77ac4827ccf8');
});

test('select-profile: the profile, how it was chosen, the exact command and env', async () => {
  const r = await cli(['select-profile'], 'h100-sxm-x8', { NIM_PASSTHROUGH_ARGS: '--api-key sk-top-secret --max-num-seqs 8', NIM_MAX_IMAGES_PER_PROMPT: '2' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Selected profile: [0-9a-f]{64} \(vllm-bf16-tp1-pp1-h100-latency\)\nHow: selected automatically/);
  assert.match(r.stdout, /Tags: llm_engine: vllm \/ precision: bf16 \/ tp: 1 \/ pp: 1 \/ device: gpu \/ feat_lora: false \/ gpu: H100 \/ gpu_device: 2330:10de \/ profile: latency/);
  assert.match(r.stdout, / {2}CUDA_VISIBLE_DEVICES=GPU-447d2e19-6162-6e90-2827-92741d83501e\n/);
  assert.ok(
    r.stdout.includes(
      "vllm serve nvidia/Nemotron-3-Content-Safety --host 127.0.0.1 --port <port> --served-model-name nvidia/nemotron-3-content-safety " +
        `--tensor-parallel-size 1 --pipeline-parallel-size 1 --max-model-len 32768 --dtype bfloat16 --gpu-memory-utilization 0.92 --limit-mm-per-prompt '{"image":2}' ` +
        '--max-num-seqs 8 --api-key ***',
    ),
    r.stdout,
  );
  assert.ok(!r.stdout.includes('sk-top-secret'));

  const byName = await cli(['select-profile', '--json'], 'h100-sxm-x8', { NIM_MODEL_PROFILE: 'VLLM-BF16-TP2-PP1' });
  assert.equal(byName.code, 0, byName.stderr);
  const rep = JSON.parse(byName.stdout) as { how: string; profile: { name: string; id: string }; engine: { args: string[] } };
  assert.equal(rep.how, 'explicit');
  assert.equal(rep.profile.name, 'vllm-bf16-tp2-pp1');
  assert.equal(rep.engine.args[rep.engine.args.indexOf('--tensor-parallel-size') + 1], '2');
  const byPrefix = await cli(['select-profile', '--json'], 'h100-sxm-x8', { NIM_MODEL_PROFILE: rep.profile.id.slice(0, 12) });
  assert.equal((JSON.parse(byPrefix.stdout) as { profile: { id: string } }).profile.id, rep.profile.id);
});

test('bad configuration: exit 2 and one clear line, no stack trace', async () => {
  const port = await cli(['list-model-profiles'], 'l4-x1', { NIM_SERVER_PORT: 'abc' });
  assert.equal(port.code, 2);
  assert.equal(port.stdout, '');
  assert.equal(port.stderr.trim().split('\n').length, 1, port.stderr);
  assert.match(port.stderr, /NIM_SERVER_PORT="abc" is invalid/);
  assert.ok(!/\n\s+at /.test(port.stderr));

  const manifest = await cli(['select-profile'], 'l4-x1', { NIM_MANIFEST_PATH: '/nonexistent/manifest.yaml' });
  assert.equal(manifest.code, 2);
  assert.match(manifest.stderr, /^nim-supervisor: error: \/nonexistent\/manifest\.yaml: cannot read the manifest: file not found/);
  assert.equal(manifest.stderr.trim().split('\n').length, 1);

  const badYaml = await cli(['list-model-profiles'], 'l4-x1', { NIM_MANIFEST_PATH: path.join(repoRoot, 'test', 'fixtures', 'manifests', 'bad-tp.yaml') });
  assert.equal(badYaml.code, 2);
  assert.match(badYaml.stderr, /bad-tp\.yaml: line 13: profiles\[1\]\.tags\.tp: expected a positive integer/);

  const unknown = await cli(['select-profile'], 'l4-x1', { NIM_MODEL_PROFILE: 'no-such-profile' });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /NIM_MODEL_PROFILE="no-such-profile" matches no profile of nvidia\/nemotron-3-content-safety/);
  assert.match(unknown.stderr, /vllm-bf16-cpu/);
  assert.equal(unknown.stderr.trim().split('\n').length, 1);

  const incompatible = await cli(['select-profile'], 'l4-x1', { NIM_MODEL_PROFILE: 'vllm-bf16-tp1-pp1-h100-latency' });
  assert.equal(incompatible.code, 2);
  assert.match(incompatible.stderr, /which cannot run on this system: needs GPU family H100, found L4 24GB \(27b8:10de\)/);

  const nothing = await cli(['select-profile'], 'l4-x1', { NIM_MANIFEST_PATH: GEMMA });
  assert.equal(nothing.code, 2);
  assert.match(nothing.stderr, /no profile of google\/gemma-3-27b-it can run on this system/);

  const option = await cli(['list-model-profiles', '--jsn'], 'l4-x1');
  assert.equal(option.code, 2);
  assert.match(option.stderr, /unknown option "--jsn" for list-model-profiles/);
});
