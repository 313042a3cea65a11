// The downloader, the cache layout and manifest generation against the
// hub-compatible fixture server on loopback (test/helpers/fixture-hub.ts).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdtemp, readFile, readlink, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DownloadError } from '../src/hub/errors.js';
import { DownloadProgress } from '../src/hub/progress.js';
import { parseModelLocation } from '../src/hub/uri.js';
import { selectEngineFiles } from '../src/hub/select-files.js';
import { ensureFiles, prepareModel, type ModelFreeSettings } from '../src/model-free/prepare.js';
import { estimateGpuMemory } from '../src/model-free/estimate.js';
import { generateManifest } from '../src/model-free/generate.js';
import { inspectConfig } from '../src/model-free/inspect.js';
import { parseManifest } from '../src/manifest/load.js';
import { startFixtureHub, type FixtureHub } from './helpers/fixture-hub.js';
import { tinyModelFiles } from './helpers/tiny-model.js';

const REPO = 'test-org/tiny-llama';
const files = tinyModelFiles({ shardBytes: 512 * 1024 });
const modelBytes = files.filter((f) => !/pytorch_model|original|README|gitattributes/.test(f.path)).reduce((a, f) => a + f.content.length, 0);

let hub: FixtureHub;
const tmp: string[] = [];
async function cacheDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'nim-cache-'));
  tmp.push(d);
  return d;
}

function settings(root: string, over: Partial<ModelFreeSettings> = {}): ModelFreeSettings {
  return {
    location: parseModelLocation(`hf://${REPO}`),
    cacheRoot: root,
    disableDownload: false,
    hub: { endpoint: hub.url, token: undefined },
    maxModelLen: undefined,
    concurrency: 4,
    stallTimeoutMs: 5000,
    retryBackoffMs: 20,
    ...over,
  };
}

async function fetchAll(s: ModelFreeSettings): Promise<{ progress: DownloadProgress; prepared: Awaited<ReturnType<typeof prepareModel>> }> {
  const prepared = await prepareModel(s);
  const progress = new DownloadProgress(REPO);
  await ensureFiles(s, prepared, progress);
  return { progress, prepared };
}

before(async () => {
  hub = await startFixtureHub({
    [REPO]: { files },
    'test-org/gated': { files, gated: true },
  });
});
after(async () => {
  await hub.close();
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});

describe('model locations', () => {
  it('parses hf:// with and without a revision, and local paths', () => {
    assert.deepEqual(parseModelLocation('hf://Qwen/Qwen2.5-0.5B@v1.0'), { kind: 'hf', repo: 'Qwen/Qwen2.5-0.5B', revision: 'v1.0', uri: 'hf://Qwen/Qwen2.5-0.5B@v1.0' });
    assert.equal(parseModelLocation('hf://a/b').kind, 'hf');
    assert.deepEqual(parseModelLocation('/models/x'), { kind: 'local', dir: '/models/x', uri: '/models/x' });
    assert.throws(() => parseModelLocation('Qwen/Qwen2.5'), (err: Error & { hint?: string }) => /NIM_MODEL_PATH="Qwen\/Qwen2.5" is invalid/.test(err.message) && /hf:\/\/Qwen\/Qwen2.5/.test(err.hint!));
    assert.throws(() => parseModelLocation('ngc://nim/meta/x', 'NIM_MODEL_NAME'), /NIM_MODEL_NAME=.*ngc:\/\/ scheme is not supported/);
    assert.throws(() => parseModelLocation('hf://only-one'), /expected hf:\/\/org\/name/);
  });

  it('picks safetensors and skips duplicate .bin and original/ weights', () => {
    const r = selectEngineFiles(files.map((f) => ({ path: f.path })));
    const picked = r.files.map((f) => f.path);
    assert.ok(picked.includes('config.json') && picked.includes('model-00001-of-00002.safetensors') && picked.includes('tokenizer.json'));
    assert.ok(!picked.includes('pytorch_model.bin') && !picked.includes('original/consolidated.00.pth') && !picked.includes('README.md'));
    assert.match(r.skipped.find((s) => s.path === 'pytorch_model.bin')!.reason, /duplicate/);
  });
});

describe('manifest generation (pure)', () => {
  // Llama-3.1-8B-Instruct's config.json shape: 32 layers, 8 KV heads of 128, 128k context, ~15 GiB of BF16 weights.
  const llama8b = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 4096,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    num_hidden_layers: 32,
    max_position_embeddings: 131072,
    torch_dtype: 'bfloat16',
  };
  const facts = inspectConfig(llama8b, 'config.json', { name: 'meta-llama/Llama-3.1-8B-Instruct', weightBytes: 16_060_522_496, parameterCount: 8_030_261_248 });

  it('estimates weights / tp + KV cache for one full-length sequence + headroom, over 0.9', () => {
    const e = estimateGpuMemory(facts, 1, 131072);
    assert.equal(e.kvCacheGiB, 16); // 2 × 32 layers × 8 heads × 128 × 2 bytes × 131072 tokens
    assert.equal(e.perGpuGiB, 37);
    assert.ok(estimateGpuMemory(facts, 1, 8192).perGpuGiB <= 20, 'a shorter context fits an L4');
    assert.equal(estimateGpuMemory(facts, 8, 131072).kvCacheGiB, 2); // one KV head per GPU
  });

  it('generates tp 1/2/4/8 and CPU profiles in the checkpoint precision; ids do not move with the context', () => {
    const m = parseManifest(generateManifest({ facts, source: 'hf://meta-llama/Llama-3.1-8B-Instruct', release: 'main', maxModelLen: undefined, modelUrl: undefined }), '/tmp/x/manifest.yaml');
    assert.deepEqual(m.profiles.map((p) => `${p.name}:${p.tags.minGpuMemoryGiB ?? '-'}`), ['vllm-bf16-tp1-pp1:37', 'vllm-bf16-tp2-pp1:19', 'vllm-bf16-tp4-pp1:10', 'vllm-bf16-tp8-pp1:6', 'vllm-bf16-cpu:-']);
    assert.equal(m.model.modality, 'llm');
    assert.equal(m.model.maxModelLen, 131072);
    const short = parseManifest(generateManifest({ facts, source: 'hf://x/y', release: 'main', maxModelLen: 8192, modelUrl: undefined }), '/tmp/x/manifest.yaml');
    assert.deepEqual(short.profiles.map((p) => p.id), m.profiles.map((p) => p.id));
    assert.equal(short.profiles[0]!.tags.minGpuMemoryGiB, 20);
  });

  it('reads quantized and vision checkpoints', () => {
    const fp8 = inspectConfig({ ...llama8b, quantization_config: { quant_method: 'fp8' } }, 'c', { name: 'a/b', weightBytes: 8e9, parameterCount: undefined });
    assert.equal(fp8.precision, 'fp8');
    const awq = inspectConfig({ ...llama8b, torch_dtype: 'float16', quantization_config: { quant_method: 'awq', bits: 4 } }, 'c', { name: 'a/b', weightBytes: 4e9, parameterCount: undefined });
    assert.equal(awq.precision, 'int4_awq');
    const vl = inspectConfig({ architectures: ['Qwen2_5_VLForConditionalGeneration'], vision_config: {}, text_config: { max_position_embeddings: 128000, num_hidden_layers: 28 } }, 'c', { name: 'a/b', weightBytes: 1, parameterCount: undefined });
    assert.equal(vl.vision, true);
    assert.equal(vl.maxModelLen, 128000);
    assert.throws(() => inspectConfig({ foo: 1 }, '/m/config.json', { name: 'x', weightBytes: 0, parameterCount: undefined }), /\/m\/config\.json names no architecture/);
  });
});

describe('download into the hub cache layout', () => {
  it('fetches exactly the engine files, verifies them and links the snapshot; a restart offline reads only the cache', async () => {
    const root = await cacheDir();
    const { progress, prepared } = await fetchAll(settings(root));
    const commit = hub.commitOf(REPO);
    const repoDir = path.join(root, 'huggingface', 'hub', 'models--test-org--tiny-llama');
    assert.equal((await readFile(path.join(repoDir, 'refs', 'main'), 'utf8')).trim(), commit);
    const snap = path.join(repoDir, 'snapshots', commit);
    assert.equal(prepared.engineModelDir, snap);
    const shard = path.join(snap, 'model-00001-of-00002.safetensors');
    assert.ok((await lstat(shard)).isSymbolicLink());
    const target = await readlink(shard);
    assert.match(target, /^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
    const want = files.find((f) => f.path === 'model-00001-of-00002.safetensors')!.content;
    assert.equal(path.basename(target), createHash('sha256').update(want).digest('hex'));
    assert.deepEqual(await readFile(shard), want);
    await assert.rejects(stat(path.join(snap, 'pytorch_model.bin')));
    await assert.rejects(stat(path.join(snap, 'original')));
    assert.equal(progress.snapshot().bytesDone, progress.snapshot().bytesTotal);
    assert.equal(progress.snapshot().filesDone, prepared.record!.files.length);
    assert.ok(hub.bytesServed() < modelBytes * 1.2 + 200_000, `served ${hub.bytesServed()} for a ${modelBytes}-byte model`);

    // The generated manifest: tp 1, 2, 4 (4 heads: tp 8 cannot split them) and CPU, with estimates.
    const m = prepared.manifest;
    assert.equal(m.model.servedModelName, REPO);
    assert.equal(m.model.source, `hf://${REPO}`);
    assert.equal(m.model.maxModelLen, 2048);
    assert.deepEqual(m.profiles.map((p) => p.name), ['vllm-bf16-tp1-pp1', 'vllm-bf16-tp2-pp1', 'vllm-bf16-tp4-pp1', 'vllm-bf16-cpu']);
    assert.ok(m.profiles[0]!.tags.minGpuMemoryGiB! >= 1);
    assert.match(m.profiles[0]!.description!, /estimated \d+ GiB per GPU/);
    assert.match(m.model.description!, /LlamaForCausalLM, 0\.\d{3}B parameters, bf16/);
    await stat(path.join(root, 'nim', 'model-free', 'models--test-org--tiny-llama', commit, 'manifest.yaml'));

    // Offline, hub untouched: the same manifest and nothing fetched.
    const before = hub.requests.length;
    const again = await fetchAll(settings(root, { disableDownload: true, hub: { endpoint: 'http://127.0.0.1:9', token: undefined } }));
    assert.equal(hub.requests.length, before);
    assert.deepEqual(again.prepared.manifest.profiles.map((p) => p.id), m.profiles.map((p) => p.id));
  });

  it('resumes a file after the connection drops mid-file instead of starting over', async () => {
    const root = await cacheDir();
    const start = hub.bytesServed();
    hub.knobs.drop = { path: /safetensors$/, afterBytes: 300 * 1024, times: 2 };
    try {
      const { progress } = await fetchAll(settings(root));
      assert.ok(progress.retries >= 2, `retries: ${progress.retries}`);
      const ranged = hub.requests.filter((r) => r.range && r.range !== 'bytes=0-0' && /cdn-lfs/.test(r.url));
      assert.ok(ranged.some((r) => /^bytes=\d{6,}-$/.test(r.range!)), JSON.stringify(ranged));
      const served = hub.bytesServed() - start;
      assert.ok(served < modelBytes * 1.2, `served ${served} for ${modelBytes}`);
    } finally {
      hub.knobs.drop = undefined;
    }
  });

  it('catches a corrupted file by its SHA-256 and fetches it again', async () => {
    const root = await cacheDir();
    hub.knobs.corrupt = { path: /00002-of-00002\.safetensors$/, times: 1 };
    const warnings: string[] = [];
    try {
      const s = settings(root, { warn: (_f, msg) => warnings.push(msg) });
      const { progress, prepared } = await fetchAll(s);
      assert.equal(progress.checksumFailures, 1);
      assert.ok(warnings.some((w) => /model-00002-of-00002\.safetensors.*SHA-256/.test(w)), warnings.join('\n'));
      const want = files.find((f) => f.path === 'model-00002-of-00002.safetensors')!.content;
      assert.deepEqual(await readFile(path.join(prepared.engineModelDir, 'model-00002-of-00002.safetensors')), want);
    } finally {
      hub.knobs.corrupt = undefined;
    }
  });

  it('retries a stalled transfer after the stall timeout', async () => {
    const root = await cacheDir();
    hub.knobs.stall = { path: /00001-of-00002\.safetensors$/, afterBytes: 64 * 1024, times: 1 };
    try {
      const { progress } = await fetchAll(settings(root, { stallTimeoutMs: 300 }));
      assert.equal(progress.retries, 1);
      assert.equal(progress.snapshot().bytesDone, progress.snapshot().bytesTotal);
    } finally {
      hub.knobs.stall = undefined;
    }
  });

  it('gives up on a stall with DOWNLOAD_STALLED after the attempts', async () => {
    const root = await cacheDir();
    const s = settings(root, { stallTimeoutMs: 150 });
    const prepared = await prepareModel(s);
    hub.knobs.stall = { path: /safetensors$/, afterBytes: 1024, times: 100 };
    try {
      await assert.rejects(ensureFiles(s, prepared, new DownloadProgress(REPO)), (err: unknown) => err instanceof DownloadError && err.code === 'DOWNLOAD_STALLED' && /after 5 attempts/.test(err.message));
    } finally {
      hub.knobs.stall = undefined;
    }
  });
});

describe('hub refusals and offline failures', () => {
  it('401 for a gated repo without HF_TOKEN names the repo and what to do; with the token it downloads', async () => {
    const root = await cacheDir();
    const loc = parseModelLocation('hf://test-org/gated');
    await assert.rejects(prepareModel(settings(root, { location: loc })), (err: unknown) => {
      assert.ok(err instanceof DownloadError);
      assert.equal(err.code, 'HUB_UNAUTHORIZED');
      assert.match(err.message, /model test-org\/gated is gated.*HTTP 401/);
      assert.match(err.hint!, /HF_TOKEN/);
      return true;
    });
    await fetchAll(settings(root, { location: loc, hub: { endpoint: hub.url, token: hub.token } }));
    assert.ok(hub.requests.filter((r) => r.url.includes('gated')).every((r) => r.status !== 0));
  });

  it('a wrong token is 401 invalid credentials; a missing repo with a token is 404', async () => {
    const root = await cacheDir();
    await assert.rejects(prepareModel(settings(root, { hub: { endpoint: hub.url, token: 'hf_wrong' } })), /rejected HF_TOKEN.*HTTP 401/);
    await assert.rejects(
      prepareModel(settings(root, { location: parseModelLocation('hf://test-org/nope'), hub: { endpoint: hub.url, token: hub.token } })),
      (err: unknown) => err instanceof DownloadError && err.code === 'HUB_NOT_FOUND' && /test-org\/nope does not exist.*HTTP 404/.test(err.message),
    );
    await assert.rejects(
      prepareModel(settings(root, { location: parseModelLocation(`hf://${REPO}@no-such-branch`) })),
      (err: unknown) => err instanceof DownloadError && err.code === 'HUB_NOT_FOUND' && /revision/.test(err.message),
    );
  });

  it('retries transient 503s from the hub API; a hub that stays down falls back to a cached revision', async () => {
    const root = await cacheDir();
    hub.knobs.fail = { status: 503, times: 2 };
    await fetchAll(settings(root));
    assert.equal(hub.knobs.fail.times, 0);
    hub.knobs.fail = { status: 503, times: 1_000_000 };
    try {
      const { prepared } = await fetchAll(settings(root));
      assert.match(prepared.warnings.join('\n'), /HTTP 503.*using the cached commit/);
    } finally {
      hub.knobs.fail = undefined;
    }
  });

  it('offline with an empty cache fails fast, naming the cache and the fix', async () => {
    const root = await cacheDir();
    await assert.rejects(prepareModel(settings(root, { disableDownload: true })), (err: unknown) => {
      assert.ok(err instanceof DownloadError && err.code === 'CACHE_INCOMPLETE');
      assert.match(err.message, new RegExp(`hf://${REPO} is not in the cache ${root}`));
      return true;
    });
  });

  it('offline with a partial snapshot lists the missing files', async () => {
    const root = await cacheDir();
    await fetchAll(settings(root));
    const snap = path.join(root, 'huggingface', 'hub', 'models--test-org--tiny-llama', 'snapshots', hub.commitOf(REPO));
    await rm(path.join(snap, 'model-00002-of-00002.safetensors'));
    const s = settings(root, { disableDownload: true });
    const prepared = await prepareModel(s);
    await assert.rejects(ensureFiles(s, prepared, new DownloadProgress(REPO)), /lacks 1 file\(s\).*model-00002-of-00002\.safetensors/);
  });

  it('a complete read-only cache is used as is', { skip: process.getuid?.() === 0 ? 'root ignores file modes' : false }, async () => {
    const root = await cacheDir();
    await fetchAll(settings(root));
    await chmod(root, 0o555);
    try {
      const { prepared } = await fetchAll(settings(root));
      assert.equal(prepared.cacheWritable, false);
    } finally {
      await chmod(root, 0o755);
    }
  });

  it('serves the hub layout also from a local directory (snapshot) path', async () => {
    const root = await cacheDir();
    const { prepared } = await fetchAll(settings(root));
    const local = await prepareModel(settings(root, { location: parseModelLocation(prepared.engineModelDir) }));
    assert.equal(local.manifest.model.source, prepared.engineModelDir);
    assert.equal(local.manifest.profiles.length, 4);
    assert.equal(local.manifest.model.servedModelName, hub.commitOf(REPO));
    assert.ok((await readdir(path.join(root, 'nim', 'model-free'))).some((d) => d.startsWith('local--')));
  });
});
