// The engine image's CUDA against the host driver (nvidia-smi --version): the
// parsers and the verdict, as unit tests; the CLI side is in cli-profiles.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
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
