// CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES rules (pure).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { applyVisibleDevices, type GpuInfo } from '../src/hardware/index.js';

function gpu(index: number, uuid: string, extra: Partial<GpuInfo> = {}): GpuInfo {
  return {
    index,
    uuid,
    name: 'NVIDIA H100 80GB HBM3',
    pciDeviceId: '2330:10de',
    memoryTotalMiB: 81559,
    memoryUsedMiB: 0,
    utilizationPct: 0,
    computeCapability: '9.0',
    family: 'H100',
    product: 'H100 SXM5 80GB',
    mig: false,
    ...extra,
  };
}

const FOUR = [
  gpu(0, 'GPU-aaaa1111-0000-0000-0000-000000000000'),
  gpu(1, 'GPU-aaaa2222-0000-0000-0000-000000000000'),
  gpu(2, 'GPU-bbbb3333-0000-0000-0000-000000000000'),
  gpu(3, 'GPU-cccc4444-0000-0000-0000-000000000000'),
];
const idx = (gs: GpuInfo[]): number[] => gs.map((g) => g.index);

// GPU 0 in MIG mode with two instances, GPU 1 whole.
const MIG_PARENT = 'GPU-dddd0000-0000-0000-0000-000000000000';
const MIG_GPUS = [
  gpu(0, 'MIG-11110000-0000-0000-0000-000000000000', { mig: true, memoryTotalMiB: 38146 }),
  gpu(0, 'MIG-22220000-0000-0000-0000-000000000000', { mig: true, memoryTotalMiB: 19073 }),
  gpu(1, 'GPU-eeee0000-0000-0000-0000-000000000000'),
];
const MIG_PARENTS = new Map([
  ['MIG-11110000-0000-0000-0000-000000000000', MIG_PARENT],
  ['MIG-22220000-0000-0000-0000-000000000000', MIG_PARENT],
]);

describe('neither variable set', () => {
  test('all GPUs, no warnings, a new array', () => {
    const r = applyVisibleDevices(FOUR, undefined, undefined);
    assert.deepEqual(idx(r.gpus), [0, 1, 2, 3]);
    assert.deepEqual(r.warnings, []);
    assert.notEqual(r.gpus, FOUR);
  });
});

describe('CUDA_VISIBLE_DEVICES', () => {
  test('empty string, none, void and -1 mean no GPUs', () => {
    for (const v of ['', '  ', 'none', 'NONE', 'void', '-1']) {
      const r = applyVisibleDevices(FOUR, v, undefined);
      assert.deepEqual(r.gpus, [], JSON.stringify(v));
      assert.deepEqual(r.warnings, [], JSON.stringify(v));
    }
  });

  test('indices select and order GPUs', () => {
    assert.deepEqual(idx(applyVisibleDevices(FOUR, '2,0', undefined).gpus), [2, 0]);
    assert.deepEqual(idx(applyVisibleDevices(FOUR, ' 3 , 1 ', undefined).gpus), [3, 1]);
  });

  test('enumeration stops at the first invalid entry, as in CUDA', () => {
    // CUDA's own example: 0,2,-1,1 makes 0 and 2 visible and 1 invisible.
    const a = applyVisibleDevices(FOUR, '0,2,-1,1', undefined);
    assert.deepEqual(idx(a.gpus), [0, 2]);
    assert.equal(a.warnings.length, 1);
    assert.match(a.warnings[0]!, /ignoring it and the 1 entry after it/);

    const b = applyVisibleDevices(FOUR, '1,7,2', undefined);
    assert.deepEqual(idx(b.gpus), [1]);
    assert.equal(b.warnings.length, 1);
    assert.match(b.warnings[0]!, /no GPU with index 7/);

    const c = applyVisibleDevices(FOUR, '0,,1', undefined);
    assert.deepEqual(idx(c.gpus), [0]);
    assert.match(c.warnings[0]!, /empty entry/);

    const d = applyVisibleDevices(FOUR, 'banana,0', undefined);
    assert.deepEqual(d.gpus, []);
    assert.match(d.warnings[0]!, /unrecognised device "banana"/);
  });

  test('a trailing -1 ends the list without a warning', () => {
    const r = applyVisibleDevices(FOUR, '3,-1', undefined);
    assert.deepEqual(idx(r.gpus), [3]);
    assert.deepEqual(r.warnings, []);
  });

  test('GPU uuids, full or as a unique prefix', () => {
    assert.deepEqual(idx(applyVisibleDevices(FOUR, 'GPU-cccc4444-0000-0000-0000-000000000000', undefined).gpus), [3]);
    assert.deepEqual(idx(applyVisibleDevices(FOUR, 'GPU-bbbb,GPU-aaaa1', undefined).gpus), [2, 0]);
    assert.deepEqual(idx(applyVisibleDevices(FOUR, 'gpu-BBBB', undefined).gpus), [2]);
  });

  test('an ambiguous or unknown uuid stops enumeration', () => {
    const a = applyVisibleDevices(FOUR, '3,GPU-aaaa,0', undefined);
    assert.deepEqual(idx(a.gpus), [3]);
    assert.match(a.warnings[0]!, /ambiguous \(2 GPUs\)/);
    const b = applyVisibleDevices(FOUR, 'GPU-ffff', undefined);
    assert.deepEqual(b.gpus, []);
    assert.match(b.warnings[0]!, /no GPU with uuid GPU-ffff/);
  });

  test('a repeated GPU is listed once, with a warning', () => {
    const r = applyVisibleDevices(FOUR, '1,GPU-aaaa2222,2', undefined);
    assert.deepEqual(idx(r.gpus), [1, 2]);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /already listed/);
  });

  test('all is read as no restriction, with a warning', () => {
    const r = applyVisibleDevices(FOUR, 'all', undefined);
    assert.deepEqual(idx(r.gpus), [0, 1, 2, 3]);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /not a CUDA value/);
  });

  test('MIG: MIG-uuid selects one instance; a GPU index or uuid selects its instances', () => {
    const a = applyVisibleDevices(MIG_GPUS, 'MIG-2222', undefined, MIG_PARENTS);
    assert.deepEqual(a.gpus.map((g) => g.uuid), ['MIG-22220000-0000-0000-0000-000000000000']);
    const b = applyVisibleDevices(MIG_GPUS, `${MIG_PARENT},1`, undefined, MIG_PARENTS);
    assert.deepEqual(b.gpus.map((g) => g.uuid), [MIG_GPUS[0]!.uuid, MIG_GPUS[1]!.uuid, MIG_GPUS[2]!.uuid]);
    const c = applyVisibleDevices(MIG_GPUS, '0', undefined, MIG_PARENTS);
    assert.deepEqual(c.gpus.map((g) => g.mig), [true, true]);
    const d = applyVisibleDevices(MIG_GPUS, 'MIG-GPU-dddd0000-0000-0000-0000-000000000000/1/0', undefined, MIG_PARENTS);
    assert.deepEqual(d.gpus, []);
    assert.match(d.warnings[0]!, /legacy MIG identifier/);
    const e = applyVisibleDevices(MIG_GPUS, 'MIG-', undefined, MIG_PARENTS);
    assert.match(e.warnings[0]!, /ambiguous/);
  });

  test('takes precedence over NVIDIA_VISIBLE_DEVICES', () => {
    assert.deepEqual(idx(applyVisibleDevices(FOUR, '1', '0,2').gpus), [1]);
    assert.deepEqual(applyVisibleDevices(FOUR, '', 'all').gpus, []);
  });

  test('does not mutate its input', () => {
    const copy = structuredClone(FOUR);
    applyVisibleDevices(FOUR, '3,1', undefined);
    assert.deepEqual(FOUR, copy);
  });
});

describe('NVIDIA_VISIBLE_DEVICES (CUDA_VISIBLE_DEVICES unset)', () => {
  test('all and empty: no filtering', () => {
    for (const v of ['all', 'ALL', '']) {
      const r = applyVisibleDevices(FOUR, undefined, v);
      assert.deepEqual(idx(r.gpus), [0, 1, 2, 3], v);
      assert.deepEqual(r.warnings, [], v);
    }
  });

  test('void/none: nvidia-smi is authoritative; a warning when it still shows GPUs', () => {
    const a = applyVisibleDevices(FOUR, undefined, 'void');
    assert.deepEqual(idx(a.gpus), [0, 1, 2, 3]);
    assert.equal(a.warnings.length, 1);
    assert.match(a.warnings[0]!, /NVIDIA_VISIBLE_DEVICES=void .* nvidia-smi shows 4/);
    const b = applyVisibleDevices([], undefined, 'none');
    assert.deepEqual(b, { gpus: [], warnings: [] });
  });

  test('an explicit list filters by uuid and index, keeping nvidia-smi order', () => {
    const r = applyVisibleDevices(FOUR, undefined, 'GPU-cccc4444-0000-0000-0000-000000000000,1');
    assert.deepEqual(idx(r.gpus), [1, 3]);
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(idx(applyVisibleDevices(FOUR, undefined, '2,0').gpus), [0, 2]);
  });

  test('an index list already applied by the runtime (renumbered in the container) keeps all', () => {
    const mounted = FOUR.slice(0, 2); // host GPUs 4 and 5 appear as 0 and 1 in the container
    const r = applyVisibleDevices(mounted, undefined, '4,5');
    assert.deepEqual(idx(r.gpus), [0, 1]);
    assert.deepEqual(r.warnings, []);
  });

  test('unknown entries warn and are ignored; <gpu>:<mig> is not supported', () => {
    const r = applyVisibleDevices(FOUR, undefined, '0,GPU-ffff,0:1');
    assert.deepEqual(idx(r.gpus), [0]);
    assert.equal(r.warnings.length, 2);
    assert.match(r.warnings.join('\n'), /no GPU with uuid GPU-ffff/);
    assert.match(r.warnings.join('\n'), /"0:1".*not supported/);
  });

  test('MIG uuids select instances', () => {
    const r = applyVisibleDevices(MIG_GPUS, undefined, 'MIG-11110000-0000-0000-0000-000000000000', MIG_PARENTS);
    assert.deepEqual(r.gpus.map((g) => g.uuid), ['MIG-11110000-0000-0000-0000-000000000000']);
  });
});
