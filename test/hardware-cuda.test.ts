// The engine image's CUDA against the host driver (nvidia-smi --version): the
// parsers and the verdict, then the built CLI with the fake nvidia-smi.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { distDir, fakeNvidiaSmiDir, freePort, pathWith, repoRoot, run } from './helpers/process.js';
import { checkCudaCompatibility, imageCudaVersion, parseCudaVersion } from '../src/hardware/cuda-compat.js';
import { parseNvidiaSmiVersion } from '../src/hardware/nvidia-smi.js';

const VERSION_550 = [
  'NVIDIA-SMI version  : 550.54.15',
  'NVML version        : 550.54',
  'DRIVER version      : 550.54.15',
  'CUDA Version        : 12.4',
  '',
].join('\n');

test('nvidia-smi --version: driver and the newest CUDA it supports', () => {
  assert.deepEqual(parseNvidiaSmiVersion(VERSION_550), { version: '550.54.15', cudaVersion: '12.4' });
  assert.deepEqual(parseNvidiaSmiVersion('DRIVER version      : 580.65.06\r\nCUDA Version        : 13.0\r\n'), { version: '580.65.06', cudaVersion: '13.0' });
  // The banner form, as older drivers print it.
  assert.equal(parseNvidiaSmiVersion('| NVIDIA-SMI 535.104.05   Driver Version: 535.104.05   CUDA Version: 12.2     |').cudaVersion, '12.2');
  assert.deepEqual(parseNvidiaSmiVersion('garbage'), { version: null, cudaVersion: null });
});

test("the image's CUDA from its environment", () => {
  assert.deepEqual(parseCudaVersion('12.8.1'), { major: 12, minor: 8 });
  assert.deepEqual(parseCudaVersion('13'), { major: 13, minor: 0 });
  assert.equal(parseCudaVersion('twelve'), null);
  assert.deepEqual(imageCudaVersion({ CUDA_VERSION: '13.0.1' }), { version: { major: 13, minor: 0 }, source: 'CUDA_VERSION=13.0.1' });
  assert.deepEqual(imageCudaVersion({ NVIDIA_REQUIRE_CUDA: 'cuda>=12.9 brand=tesla,driver>=535,driver<536' })?.version, { major: 12, minor: 9 });
  assert.equal(imageCudaVersion({}), null);
});

test('verdicts: a newer CUDA major is an error, a newer minor a warning, the rest fits', () => {
  const image = (v: string) => imageCudaVersion({ CUDA_VERSION: v });
  const driver550 = { version: '550.54.15', cudaVersion: '12.4' };
  // vLLM v0.31.0's default image (CUDA 13) on an R550 host: the case of the issue.
  const bad = checkCudaCompatibility(image('13.0.1'), driver550)!;
  assert.equal(bad.level, 'error');
  assert.equal(bad.code, 'CUDA_DRIVER_TOO_OLD');
  assert.match(bad.message, /built for CUDA 13\.0 \(CUDA_VERSION=13\.0\.1\).*driver 550\.54\.15 supports CUDA 12\.4 at most/);
  assert.match(bad.hint, /VLLM_IMAGE/);
  const minor = checkCudaCompatibility(image('12.8.1'), driver550)!;
  assert.equal(minor.level, 'warn');
  assert.equal(minor.code, 'CUDA_MINOR_VERSION_COMPAT');
  assert.equal(checkCudaCompatibility(image('12.4.0'), driver550), null);
  assert.equal(checkCudaCompatibility(image('12.8.1'), { version: '580.65.06', cudaVersion: '13.0' }), null);
  // Unknown on either side: nothing to say.
  assert.equal(checkCudaCompatibility(null, driver550), null);
  assert.equal(checkCudaCompatibility(image('13.0'), undefined), null);
  assert.equal(checkCudaCompatibility(image('13.0'), { version: '550.54.15', cudaVersion: null }), null);
});

const MAIN = path.join(distDir, 'src', 'cli', 'main.js');
const GEMMA = path.join(repoRoot, 'manifests', 'gemma-3-27b-it.yaml');

async function cli(args: string[], fixture: string, extra: NodeJS.ProcessEnv = {}) {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(NIM_|CUDA_|NVIDIA_|FAKE_NVIDIA_SMI)/.test(k)) env[k] = v;
  env.PATH = pathWith(fakeNvidiaSmiDir);
  env.FAKE_NVIDIA_SMI = fixture;
  return await run(process.execPath, [MAIN, ...args], { env: { ...env, ...extra }, timeoutMs: 60_000 });
}

test('the engine image needs a newer CUDA than the host driver: list-model-profiles and serve say so before spawning', async () => {
  // h100-sxm-x1 records driver 550.54.15 / CUDA 12.4; vLLM v0.31.0's image is a CUDA 13 build.
  const text = await cli(['list-model-profiles'], 'h100-sxm-x1', { NIM_MANIFEST_PATH: GEMMA, CUDA_VERSION: '13.0.1' });
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /- NVIDIA driver: 550\.54\.15 \(supports CUDA 12\.4\)/);
  assert.match(text.stdout, /- Engine image: CUDA 13\.0/);
  assert.match(text.stdout, /✗ the engine image is built for CUDA 13\.0 .* supports CUDA 12\.4 at most.*\[CUDA_DRIVER_TOO_OLD\]/);
  assert.match(text.stderr, /CUDA_DRIVER_TOO_OLD|built for CUDA 13\.0/);
  const json = JSON.parse((await cli(['list-model-profiles', '--json'], 'h100-sxm-x1', { NIM_MANIFEST_PATH: GEMMA, CUDA_VERSION: '13.0.1' })).stdout);
  assert.deepEqual(json.system.driver, { version: '550.54.15', cudaVersion: '12.4' });
  assert.equal(json.system.cudaCompatibility.code, 'CUDA_DRIVER_TOO_OLD');
  // A CUDA 12.4 image fits: nothing said.
  const fits = JSON.parse((await cli(['list-model-profiles', '--json'], 'h100-sxm-x1', { NIM_MANIFEST_PATH: GEMMA, CUDA_VERSION: '12.4.1' })).stdout);
  assert.equal(fits.system.cudaCompatibility, null);

  // serve: the error line comes before the engine is spawned.
  const serve = await cli(['serve'], 'h100-sxm-x1', {
    NIM_MANIFEST_PATH: GEMMA,
    CUDA_VERSION: '13.0.1',
    NIM_JSONL_LOGGING: '1',
    NIM_SERVER_HOST: '127.0.0.1',
    NIM_SERVER_PORT: String(await freePort()),
    NIM_ENGINE_COMMAND: '/bin/false',
  });
  const lines = serve.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; code?: string; level: string });
  const at = lines.findIndex((l) => l.code === 'CUDA_DRIVER_TOO_OLD');
  assert.ok(at >= 0, serve.stdout + serve.stderr);
  assert.equal(lines[at]!.level, 'ERROR');
  const spawned = lines.findIndex((l) => l.msg === 'engine process spawned');
  assert.ok(spawned === -1 || spawned > at, 'said before spawning');
});
