// The GPU catalogue (profiles/gpus.yaml): its content, validation errors and lookupGpu.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CatalogueError,
  DEFAULT_GPU_CATALOGUE,
  loadGpuCatalogue,
  lookupGpu,
  type GpuCatalogueEntry,
} from '../src/hardware/index.js';
import { repoRoot } from './helpers/process.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hw-catalogue-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function writeTmp(name: string, text: string): string {
  const f = path.join(tmp, name);
  writeFileSync(f, text);
  return f;
}

const GOOD_ENTRY = `
  - pci_device_id: "2330:10de"
    family: H100
    product: H100 SXM5 80GB
    memory_gib: 80
    compute_capability: "9.0"
`;

describe('default catalogue', () => {
  const cat = loadGpuCatalogue();

  test('lives in profiles/gpus.yaml under the package root', () => {
    assert.equal(DEFAULT_GPU_CATALOGUE, path.join(repoRoot, 'profiles', 'gpus.yaml'));
  });

  test('has the data-center GPUs by real PCI id', () => {
    const expect: Array<[string, string, string, number, string]> = [
      ['1eb8:10de', 'T4', 'T4 16GB', 16, '7.5'],
      ['2236:10de', 'A10', 'A10 24GB', 24, '8.6'],
      ['2237:10de', 'A10G', 'A10G 24GB', 24, '8.6'],
      ['27b8:10de', 'L4', 'L4 24GB', 24, '8.9'],
      ['26b5:10de', 'L40', 'L40 48GB', 48, '8.9'],
      ['26b9:10de', 'L40S', 'L40S 48GB', 48, '8.9'],
      ['20b0:10de', 'A100', 'A100 SXM4 40GB', 40, '8.0'],
      ['20f1:10de', 'A100', 'A100 PCIe 40GB', 40, '8.0'],
      ['20b2:10de', 'A100', 'A100 SXM4 80GB', 80, '8.0'],
      ['20b5:10de', 'A100', 'A100 PCIe 80GB', 80, '8.0'],
      ['2330:10de', 'H100', 'H100 SXM5 80GB', 80, '9.0'],
      ['2331:10de', 'H100', 'H100 PCIe 80GB', 80, '9.0'],
      ['2321:10de', 'H100_NVL', 'H100 NVL 94GB', 94, '9.0'],
      ['2335:10de', 'H200', 'H200 SXM 141GB', 141, '9.0'],
      ['233b:10de', 'H200_NVL', 'H200 NVL 141GB', 141, '9.0'],
      ['2342:10de', 'GH200', 'GH200 96GB HBM3', 96, '9.0'],
      ['2348:10de', 'GH200', 'GH200 144GB HBM3e', 144, '9.0'],
      ['2901:10de', 'B200', 'B200 180GB', 180, '10.0'],
    ];
    for (const [id, family, product, mem, cc] of expect) {
      const e = cat.find((x) => x.pciDeviceId === id);
      assert.ok(e, `catalogue lacks ${id}`);
      assert.deepEqual(
        { family: e.family, product: e.product, memoryGiB: e.memoryGiB, computeCapability: e.computeCapability },
        { family, product, memoryGiB: mem, computeCapability: cc },
        id,
      );
    }
  });

  test('PCI ids are unique and lower-case', () => {
    const ids = cat.map((e) => e.pciDeviceId);
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, /^[0-9a-f]{4}:[0-9a-f]{4}$/);
  });

  test('driver product names map to the right entry by name alone', () => {
    const names: Array<[string, string]> = [
      ['NVIDIA H100 80GB HBM3', 'H100 SXM5 80GB'],
      ['NVIDIA H100 PCIe', 'H100 PCIe 80GB'],
      ['NVIDIA H100 NVL', 'H100 NVL 94GB'],
      ['NVIDIA A100-SXM4-40GB', 'A100 SXM4 40GB'],
      ['A100-SXM4-40GB', 'A100 SXM4 40GB'],
      ['NVIDIA A100-PCIE-40GB', 'A100 PCIe 40GB'],
      ['NVIDIA A100-SXM4-80GB', 'A100 SXM4 80GB'],
      ['NVIDIA A100 80GB PCIe', 'A100 PCIe 80GB'],
      ['NVIDIA L4', 'L4 24GB'],
      ['NVIDIA L40', 'L40 48GB'],
      ['NVIDIA L40S', 'L40S 48GB'],
      ['NVIDIA A10G', 'A10G 24GB'],
      ['NVIDIA A10', 'A10 24GB'],
      ['Tesla T4', 'T4 16GB'],
      ['NVIDIA H200', 'H200 SXM 141GB'],
      ['NVIDIA H200 NVL', 'H200 NVL 141GB'],
      ['NVIDIA GH200 480GB', 'GH200 96GB HBM3'],
      ['NVIDIA GH200 144G HBM3e', 'GH200 144GB HBM3e'],
      ['NVIDIA B200', 'B200 180GB'],
    ];
    for (const [name, product] of names) {
      assert.equal(lookupGpu(cat, null, name)?.product, product, name);
    }
    // Similar names must not cross-match.
    assert.equal(lookupGpu(cat, null, 'NVIDIA L40S')?.family, 'L40S');
    assert.equal(lookupGpu(cat, null, 'NVIDIA GeForce RTX 4090'), null);
    assert.equal(lookupGpu(cat, null, 'NVIDIA H100'), null);
  });
});

describe('lookupGpu', () => {
  const cat = loadGpuCatalogue();

  test('matches by PCI id first, whatever the name says', () => {
    assert.equal(lookupGpu(cat, '2330:10de', 'NVIDIA L4')?.product, 'H100 SXM5 80GB');
  });

  test('PCI id match ignores case and surrounding space', () => {
    assert.equal(lookupGpu(cat, ' 26B9:10DE ', null)?.family, 'L40S');
  });

  test('falls back to the name when the PCI id is unknown or null', () => {
    assert.equal(lookupGpu(cat, '2909:10de', 'NVIDIA B200')?.family, 'B200');
    assert.equal(lookupGpu(cat, null, '  NVIDIA   L4 ')?.family, 'L4');
  });

  test('null when neither matches', () => {
    assert.equal(lookupGpu(cat, 'ffff:10de', 'Mystery GPU'), null);
    assert.equal(lookupGpu(cat, null, null), null);
    assert.equal(lookupGpu([], '2330:10de', 'NVIDIA H100 80GB HBM3'), null);
  });

  test('works with plain contract entries (no name patterns)', () => {
    const plain: GpuCatalogueEntry[] = [
      { pciDeviceId: '27b8:10de', family: 'L4', product: 'L4 24GB', memoryGiB: 24, computeCapability: '8.9' },
    ];
    assert.equal(lookupGpu(plain, '27b8:10de', null)?.family, 'L4');
    assert.equal(lookupGpu(plain, null, 'NVIDIA L4'), null);
  });
});

describe('catalogue validation errors name the file and YAML path', () => {
  function expectError(
    text: string,
    check: { yamlPath?: string; line?: number; message: RegExp },
  ): CatalogueError {
    const file = writeTmp(`c-${Math.random().toString(36).slice(2)}.yaml`, text);
    let caught: unknown;
    try {
      loadGpuCatalogue(file);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof CatalogueError, `expected a CatalogueError, got ${String(caught)}`);
    assert.equal(caught.file, file);
    assert.equal(caught.exitCode, 2);
    assert.ok(caught.message.startsWith(file), caught.message);
    if (check.yamlPath !== undefined) {
      assert.equal(caught.yamlPath, check.yamlPath);
      assert.ok(caught.message.includes(check.yamlPath), caught.message);
    }
    if (check.line !== undefined) assert.equal(caught.line, check.line, caught.message);
    assert.match(caught.message, check.message);
    return caught;
  }

  test('a valid file loads', () => {
    const f = writeTmp('ok.yaml', `gpus:${GOOD_ENTRY}`);
    const cat = loadGpuCatalogue(f);
    assert.deepEqual(cat, [
      { pciDeviceId: '2330:10de', family: 'H100', product: 'H100 SXM5 80GB', memoryGiB: 80, computeCapability: '9.0' },
    ]);
  });

  test('missing file', () => {
    const f = path.join(tmp, 'nope.yaml');
    assert.throws(() => loadGpuCatalogue(f), (err: unknown) => {
      assert.ok(err instanceof CatalogueError);
      assert.match(err.message, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: file not found`));
      return true;
    });
  });

  test('YAML syntax error: file and line', () => {
    const a = expectError('gpus:\n  - pci_device_id: "2330:10de"\n    family: [H100\n', { message: /invalid YAML/ });
    assert.ok(a.line !== undefined && a.line >= 3, `line ${a.line}`);
    expectError('gpus:\n  - pci_device_id: "2330:10de"\n    pci_device_id: "2331:10de"\n', {
      line: 3,
      message: /invalid YAML: .*unique/i,
    });
    const e = expectError('gpus:\n  - a: 1\n\t- b: 2\n', { message: /invalid YAML/ });
    assert.ok(e.line !== undefined && e.line >= 2, `line ${e.line}`);
  });

  test('missing field', () => {
    expectError(
      `gpus:${GOOD_ENTRY}  - pci_device_id: "26b9:10de"\n    product: L40S 48GB\n    memory_gib: 48\n    compute_capability: "8.9"\n`,
      { yamlPath: 'gpus[1].family', line: 7, message: /gpus\[1\]\.family/ },
    );
  });

  test('unquoted compute capability (YAML reads 9.0 as the number 9)', () => {
    expectError(`gpus:${GOOD_ENTRY.replace('"9.0"', '9.0')}`, {
      yamlPath: 'gpus[0].compute_capability',
      line: 6,
      message: /compute_capability/,
    });
  });

  test('badly formed PCI id', () => {
    expectError(`gpus:${GOOD_ENTRY.replace('"2330:10de"', '"0x233010DE"')}`, {
      yamlPath: 'gpus[0].pci_device_id',
      line: 2,
      message: /<device>:<vendor>/,
    });
  });

  test('family not in NIM tag form', () => {
    expectError(`gpus:${GOOD_ENTRY.replace('family: H100', 'family: h100 nvl')}`, {
      yamlPath: 'gpus[0].family',
      message: /gpu tag/,
    });
  });

  test('duplicate PCI id', () => {
    expectError(`gpus:${GOOD_ENTRY}${GOOD_ENTRY}`, {
      yamlPath: 'gpus[1].pci_device_id',
      line: 8, // GOOD_ENTRY starts and ends with a newline: a blank line between the two
      message: /duplicate PCI id 2330:10de \(also gpus\[0\]\)/,
    });
  });

  test('unknown key (a typo) is an error', () => {
    expectError(`gpus:${GOOD_ENTRY}    memroy_gib: 80\n`, { message: /memroy_gib/ });
  });

  test('invalid name pattern', () => {
    expectError(`gpus:${GOOD_ENTRY}    name_pattern: '^NVIDIA (H100$'\n`, {
      yamlPath: 'gpus[0].name_pattern',
      message: /not a valid regular expression/,
    });
  });

  test('empty file and wrong top level', () => {
    expectError('', { yamlPath: '(top level)', message: /expected object/i });
    expectError('gpus: []\n', { yamlPath: 'gpus', message: /at least one GPU/ });
    expectError('- 1\n- 2\n', { yamlPath: '(top level)', message: /expected object/i });
  });
});
