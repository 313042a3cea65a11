// The pure parts of nvidia-smi handling: the query, the CSV parser, `-L` and MIG.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  NVIDIA_SMI_QUERY_ARGS,
  NVIDIA_SMI_QUERY_FIELDS,
  applyMigLayout,
  loadGpuCatalogue,
  migProfileMemoryMiB,
  normalisePciDeviceId,
  parseNvidiaSmiCsv,
  parseNvidiaSmiList,
  type GpuInfo,
} from '../src/hardware/index.js';
import { GPU_STATS_FIELDS } from '../src/metrics/gpu-sampler.js';
import { fixturesDir } from './helpers/process.js';

const cat = loadGpuCatalogue();
const H100_UUID = 'GPU-3b2c5f1e-8a4d-4c7b-9e21-0f6d8c1a2b3c';
const L4_UUID = 'GPU-9448cf30-66dd-b126-7386-35da7b462fec';
const h100Line = (idx = 0, uuid = H100_UUID): string =>
  `${idx}, ${uuid}, NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 1, 0, 9.0`;

describe('the query', () => {
  test('is exactly the agreed command line', () => {
    assert.deepEqual(
      ['nvidia-smi', ...NVIDIA_SMI_QUERY_ARGS].join(' '),
      'nvidia-smi --query-gpu=index,uuid,name,pci.device_id,memory.total,memory.used,utilization.gpu,compute_cap --format=csv,noheader,nounits',
    );
  });

  test('every recorded fixture was recorded for this exact field list', () => {
    const dir = path.join(fixturesDir, 'nvidia-smi');
    // `<name>.stats.csv` files record the GPU metrics sampler's own query instead.
    const files = readdirSync(dir).filter((f) => f.endsWith('.csv'));
    const detection = files.filter((f) => !f.endsWith('.stats.csv'));
    const stats = files.filter((f) => f.endsWith('.stats.csv'));
    assert.ok(detection.length >= 10, `only ${detection.length} fixtures`);
    for (const f of detection) {
      const first = readFileSync(path.join(dir, f), 'utf8').split('\n')[0];
      assert.equal(first, `# query: ${NVIDIA_SMI_QUERY_FIELDS.join(',')}`, f);
    }
    for (const f of stats) {
      const first = readFileSync(path.join(dir, f), 'utf8').split('\n')[0];
      assert.equal(first, `# query: ${GPU_STATS_FIELDS.join(',')}`, f);
    }
  });
});

describe('normalisePciDeviceId', () => {
  test('device in the high 16 bits, vendor in the low 16', () => {
    assert.equal(normalisePciDeviceId('0x233010DE'), '2330:10de');
    assert.equal(normalisePciDeviceId(' 0x27b810de '), '27b8:10de');
    assert.equal(normalisePciDeviceId('26B9:10DE'), '26b9:10de');
  });
  test('anything else is null', () => {
    for (const bad of ['', '0x2330', '233010DE', '0x233010DEAA', 'GPU', '0xZZZZ10DE']) {
      assert.equal(normalisePciDeviceId(bad), null, bad);
    }
  });
});

describe('parseNvidiaSmiCsv', () => {
  test('a clean line becomes a full GpuInfo enriched from the catalogue', () => {
    const r = parseNvidiaSmiCsv(`${h100Line()}\n`, cat);
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(r.gpus, [
      {
        index: 0,
        uuid: H100_UUID,
        name: 'NVIDIA H100 80GB HBM3',
        pciDeviceId: '2330:10de',
        memoryTotalMiB: 81559,
        memoryUsedMiB: 1,
        utilizationPct: 0,
        computeCapability: '9.0',
        family: 'H100',
        product: 'H100 SXM5 80GB',
        mig: false,
      },
    ] satisfies GpuInfo[]);
  });

  test('empty and blank input: no GPUs, no warnings', () => {
    for (const t of ['', '\n', '  \r\n\r\n \n']) {
      assert.deepEqual(parseNvidiaSmiCsv(t, cat), { gpus: [], warnings: [] });
    }
  });

  test('CRLF, blank lines and extra spaces are tolerated', () => {
    const text = `\r\n  ${h100Line(0).replace(/, /g, ' ,   ')}   \r\n\r\n${h100Line(1, L4_UUID)}\r\n`;
    const r = parseNvidiaSmiCsv(text, cat);
    assert.deepEqual(r.warnings, []);
    assert.equal(r.gpus.length, 2);
    assert.equal(r.gpus[0]!.name, 'NVIDIA H100 80GB HBM3');
    assert.equal(r.gpus[0]!.computeCapability, '9.0');
    assert.equal(r.gpus[1]!.index, 1);
  });

  test('[N/A], [Not Supported] and N/A become null where allowed', () => {
    const r = parseNvidiaSmiCsv(
      [
        `0, ${H100_UUID}, NVIDIA H100 80GB HBM3, 0x233010DE, 81559, [N/A], [Not Supported], [N/A]`,
        `1, ${L4_UUID}, NVIDIA L4, N/A, 23034, N/A, N/A, N/A`,
      ].join('\n'),
      cat,
    );
    assert.deepEqual(r.warnings, []);
    const [a, b] = r.gpus;
    assert.equal(a!.memoryUsedMiB, null);
    assert.equal(a!.utilizationPct, null);
    // compute_cap not reported: taken from the catalogue.
    assert.equal(a!.computeCapability, '9.0');
    // No PCI id: the GPU is found by name.
    assert.equal(b!.pciDeviceId, null);
    assert.equal(b!.family, 'L4');
    assert.equal(b!.computeCapability, '8.9');
  });

  test('a GPU missing from the catalogue is kept with null family', () => {
    const r = parseNvidiaSmiCsv(`0, ${L4_UUID}, NVIDIA GeForce RTX 4090, 0x268410DE, 24564, 300, 12, [N/A]`, cat);
    assert.equal(r.gpus.length, 1);
    assert.equal(r.gpus[0]!.family, null);
    assert.equal(r.gpus[0]!.product, null);
    assert.equal(r.gpus[0]!.computeCapability, null);
    assert.equal(r.gpus[0]!.pciDeviceId, '2684:10de');
  });

  test('wrong field count: warning, line skipped, others kept', () => {
    const r = parseNvidiaSmiCsv([h100Line(0), `1, ${L4_UUID}, NVIDIA L4, 0x27B810DE, 23034`, `${h100Line(2, L4_UUID.replace('9', '8'))}, extra`].join('\n'), cat);
    assert.deepEqual(r.gpus.map((g) => g.index), [0]);
    assert.equal(r.warnings.length, 2);
    assert.match(r.warnings[0]!, /line 2: expected 8 comma-separated fields, got 5/);
    assert.match(r.warnings[1]!, /line 3: expected 8 comma-separated fields, got 9/);
  });

  test('required fields that are missing or malformed skip the line', () => {
    const cases: Array<[string, RegExp]> = [
      [`x, ${H100_UUID}, NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 1, 0, 9.0`, /index "x" is not a number/],
      [`[N/A], ${H100_UUID}, NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 1, 0, 9.0`, /index "\[N\/A\]"/],
      ['0, 3b2c5f1e, NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 1, 0, 9.0', /not a GPU-… uuid/],
      [`0, ${H100_UUID}, [N/A], 0x233010DE, 81559, 1, 0, 9.0`, /no product name/],
      [`0, ${H100_UUID}, NVIDIA GeForce RTX 4090, 0x268410DE, [N/A], 1, 0, 9.0`, /memory.total "\[N\/A\]" is not a number/],
      [`0, ${H100_UUID}, NVIDIA H100 80GB HBM3, 0x233010DE, lots, 1, 0, 9.0`, /memory.total "lots"/],
    ];
    for (const [line, re] of cases) {
      const r = parseNvidiaSmiCsv(line, cat);
      assert.deepEqual(r.gpus, [], line);
      assert.equal(r.warnings.length, 1, line);
      assert.match(r.warnings[0]!, re);
      assert.match(r.warnings[0]!, /line skipped/);
    }
  });

  test('memory.total [N/A] on a catalogued GPU: nominal memory, with a warning', () => {
    const r = parseNvidiaSmiCsv(`0, ${H100_UUID}, NVIDIA H100 80GB HBM3, 0x233010DE, [N/A], [N/A], [N/A], 9.0`, cat);
    assert.equal(r.gpus[0]!.memoryTotalMiB, 80 * 1024);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /assuming the catalogue's 80 GiB/);
  });

  test('out-of-range or malformed optional values: null with a warning, GPU kept', () => {
    const r = parseNvidiaSmiCsv(`0, ${H100_UUID}, NVIDIA H100 80GB HBM3, 0x2330, 81559, -5, 150, nine`, cat);
    assert.equal(r.gpus.length, 1);
    const g = r.gpus[0]!;
    assert.equal(g.pciDeviceId, null);
    assert.equal(g.family, 'H100', 'found by name despite the bad PCI id');
    assert.equal(g.memoryUsedMiB, null);
    assert.equal(g.utilizationPct, null);
    assert.equal(g.computeCapability, '9.0', 'from the catalogue');
    assert.equal(r.warnings.length, 4);
    assert.match(r.warnings.join('\n'), /pci.device_id "0x2330"/);
    assert.match(r.warnings.join('\n'), /memory.used "-5"/);
    assert.match(r.warnings.join('\n'), /utilization.gpu "150"/);
    assert.match(r.warnings.join('\n'), /compute_cap "nine"/);
  });

  test('duplicate index or uuid: the second line is skipped', () => {
    const r = parseNvidiaSmiCsv([h100Line(0), h100Line(0, L4_UUID), h100Line(1, H100_UUID)].join('\n'), cat);
    assert.deepEqual(r.gpus.map((g) => g.uuid), [H100_UUID]);
    assert.equal(r.warnings.length, 2);
    assert.match(r.warnings[0]!, /duplicate/);
  });

  test('garbage: no GPUs, warnings, no exception; warnings are capped', () => {
    const junk = [
      'Unable to determine the device handle for GPU0000:00:1E.0: Unknown Error',
      '<html>',
      '\u0000\u0001\u0002 ,,,,,,, ',
      'a, b, c, d, e, f, g, h',
      '}{"json": true}',
    ].join('\n');
    const r = parseNvidiaSmiCsv(junk, cat);
    assert.deepEqual(r.gpus, []);
    assert.equal(r.warnings.length, 5);
    assert.ok(!r.warnings.join('').includes('\u0000'), 'control characters are not echoed');

    const many = Array.from({ length: 50 }, (_, i) => `junk line ${i}`).join('\n');
    const m = parseNvidiaSmiCsv(many, cat);
    assert.equal(m.gpus.length, 0);
    assert.equal(m.warnings.length, 11);
    assert.match(m.warnings[10]!, /40 more unparseable line\(s\) skipped/);
  });

  test('very long lines are clipped in warnings', () => {
    const r = parseNvidiaSmiCsv('x'.repeat(10_000), cat);
    assert.equal(r.warnings.length, 1);
    assert.ok(r.warnings[0]!.length < 300);
  });
});

const LIST_MIG = `GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-05c51c51-4fec-1e80-5bd6-4b06bcced2cd)
  MIG 3g.40gb     Device  0: (UUID: MIG-abdce57b-73c7-d2a2-8f62-77ac4827ccf8)
  MIG 1g.10gb+me  Device  1: (UUID: MIG-6667a518-3dcc-e053-8a0d-b38766cd7cf4)
GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-116450dc-a17b-e129-8966-e87e8e532a3e)
`;

describe('parseNvidiaSmiList', () => {
  test('GPUs with their MIG instances', () => {
    const r = parseNvidiaSmiList(LIST_MIG.replace(/\n/g, '\r\n'));
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(r.gpus, [
      {
        index: 0,
        name: 'NVIDIA A100-SXM4-80GB',
        uuid: 'GPU-05c51c51-4fec-1e80-5bd6-4b06bcced2cd',
        migInstances: [
          { profile: '3g.40gb', deviceIndex: 0, uuid: 'MIG-abdce57b-73c7-d2a2-8f62-77ac4827ccf8' },
          { profile: '1g.10gb+me', deviceIndex: 1, uuid: 'MIG-6667a518-3dcc-e053-8a0d-b38766cd7cf4' },
        ],
      },
      { index: 1, name: 'NVIDIA A100-SXM4-80GB', uuid: 'GPU-116450dc-a17b-e129-8966-e87e8e532a3e', migInstances: [] },
    ]);
  });

  test('other text is ignored; a MIG line before any GPU warns', () => {
    assert.deepEqual(parseNvidiaSmiList('No devices found.\n'), { gpus: [], warnings: [] });
    const r = parseNvidiaSmiList('  MIG 1g.10gb Device 0: (UUID: MIG-1234)\n');
    assert.equal(r.gpus.length, 0);
    assert.equal(r.warnings.length, 1);
  });
});

describe('MIG', () => {
  test('memory from the MIG profile name (decimal GB, rounded down)', () => {
    assert.equal(migProfileMemoryMiB('3g.40gb'), 38146);
    assert.equal(migProfileMemoryMiB('1g.10gb+me'), 9536);
    assert.equal(migProfileMemoryMiB('1g.5gb'), 4768);
    assert.equal(migProfileMemoryMiB('7g.80gb'), 76293);
    assert.equal(migProfileMemoryMiB('weird'), null);
  });

  test('a MIG GPU is replaced by its instances; other GPUs are untouched', () => {
    const csv = [
      '0, GPU-05c51c51-4fec-1e80-5bd6-4b06bcced2cd, NVIDIA A100-SXM4-80GB, 0x20B210DE, 81920, 37, [N/A], 8.0',
      '1, GPU-116450dc-a17b-e129-8966-e87e8e532a3e, NVIDIA A100-SXM4-80GB, 0x20B210DE, 81920, 0, 0, 8.0',
    ].join('\n');
    const parsed = parseNvidiaSmiCsv(csv, cat);
    const before = structuredClone(parsed.gpus);
    const r = applyMigLayout(parsed.gpus, parseNvidiaSmiList(LIST_MIG).gpus);
    assert.deepEqual(parsed.gpus, before, 'input not mutated');
    assert.equal(r.gpus.length, 3);
    const [m0, m1, whole] = r.gpus;
    assert.deepEqual(
      { ...m0 },
      {
        index: 0,
        uuid: 'MIG-abdce57b-73c7-d2a2-8f62-77ac4827ccf8',
        name: 'NVIDIA A100-SXM4-80GB MIG 3g.40gb',
        pciDeviceId: '20b2:10de',
        memoryTotalMiB: 38146,
        memoryUsedMiB: null,
        utilizationPct: null,
        computeCapability: '8.0',
        family: 'A100',
        product: 'A100 SXM4 80GB',
        mig: true,
      },
    );
    assert.equal(m1!.memoryTotalMiB, 9536);
    assert.equal(m1!.mig, true);
    assert.equal(whole!.uuid, 'GPU-116450dc-a17b-e129-8966-e87e8e532a3e');
    assert.equal(whole!.mig, false);
    assert.equal(whole!.memoryTotalMiB, 81920);
    assert.equal(r.migParents.get('MIG-abdce57b-73c7-d2a2-8f62-77ac4827ccf8'), 'GPU-05c51c51-4fec-1e80-5bd6-4b06bcced2cd');
    assert.equal(r.migParents.size, 2);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /GPU 0 .* is in MIG mode: using its 2 MIG instance\(s\) \(3g.40gb, 1g.10gb\+me\).*tp=1/);
  });

  test('no -L data: nothing changes', () => {
    const parsed = parseNvidiaSmiCsv(h100Line(), cat);
    const r = applyMigLayout(parsed.gpus, []);
    assert.deepEqual(r.gpus, parsed.gpus);
    assert.deepEqual(r.warnings, []);
  });

  test('an instance whose size cannot be told gets 0 MiB and a warning', () => {
    const parsed = parseNvidiaSmiCsv(h100Line(), cat);
    const r = applyMigLayout(parsed.gpus, [
      { index: 0, name: 'x', uuid: H100_UUID, migInstances: [{ profile: 'odd', deviceIndex: 0, uuid: 'MIG-1' }] },
    ]);
    assert.equal(r.gpus[0]!.memoryTotalMiB, 0);
    assert.equal(r.warnings.length, 2);
  });
});
