// detectHardware against the fake nvidia-smi (test/fixtures/bin/nvidia-smi),
// run as a real child process for every recorded fixture; the fake itself;
// and the host facts.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  NVIDIA_SMI_QUERY_ARGS,
  detectHardware,
  nvidiaHostEvidence,
  getHostInfo,
  runNvidiaSmi,
  type HardwareInventory,
  type NvidiaSmiStatus,
} from '../src/hardware/index.js';
import { fakeNvidiaSmiDir, fixturesDir, pathWith } from './helpers/process.js';

const FAKE = path.join(fakeNvidiaSmiDir, 'nvidia-smi');
const FIXTURES = path.join(fixturesDir, 'nvidia-smi');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'hw-detect-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The test process's environment without any FAKE_NVIDIA_SMI* settings, plus `extra`. */
function envWith(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FAKE_NVIDIA_SMI')) env[k] = v;
  return { ...env, ...extra };
}

function detectFixture(
  fixture: string,
  opts: { cudaVisibleDevices?: string; nvidiaVisibleDevices?: string } = {},
): Promise<HardwareInventory> {
  return detectHardware({ ...opts, nvidiaSmiCommand: FAKE, env: envWith({ FAKE_NVIDIA_SMI: fixture }) });
}

interface Expected {
  status: NvidiaSmiStatus;
  count: number;
  families?: Array<string | null>;
  products?: Array<string | null>;
  memoryTotalMiB?: number[];
  memoryUsedMiB?: Array<number | null>;
  utilizationPct?: Array<number | null>;
  computeCapability?: Array<string | null>;
  mig?: boolean[];
  indices?: number[];
  /** Every pattern must match some warning. */
  warnings: RegExp[];
  /** Exact number of warnings, where it matters. */
  warningCount?: number;
}

const rep = <T>(n: number, v: T): T[] => Array.from({ length: n }, () => v);

const EXPECTED: Record<string, Expected> = {
  'l4-x1': {
    status: 'ok',
    count: 1,
    families: ['L4'],
    products: ['L4 24GB'],
    memoryTotalMiB: [23034],
    computeCapability: ['8.9'],
    warnings: [],
    warningCount: 0,
  },
  'h100-sxm-x1': {
    status: 'ok',
    count: 1,
    families: ['H100'],
    products: ['H100 SXM5 80GB'],
    memoryTotalMiB: [81559],
    computeCapability: ['9.0'],
    warnings: [],
    warningCount: 0,
  },
  'h100-sxm-x8': {
    status: 'ok',
    count: 8,
    families: rep(8, 'H100'),
    memoryTotalMiB: rep(8, 81559),
    indices: [0, 1, 2, 3, 4, 5, 6, 7],
    mig: rep(8, false),
    warnings: [],
    warningCount: 0,
  },
  'a100-40gb-x2': {
    status: 'ok',
    count: 2,
    families: ['A100', 'A100'],
    products: ['A100 SXM4 40GB', 'A100 SXM4 40GB'],
    memoryTotalMiB: [40960, 40960],
    computeCapability: ['8.0', '8.0'],
    warnings: [],
    warningCount: 0,
  },
  'l40s-x4': {
    status: 'ok',
    count: 4,
    families: rep(4, 'L40S'),
    memoryTotalMiB: rep(4, 46068),
    warnings: [],
    warningCount: 0,
  },
  'h200-x1': {
    status: 'ok',
    count: 1,
    families: ['H200'],
    products: ['H200 SXM 141GB'],
    memoryTotalMiB: [143771],
    warnings: [],
    warningCount: 0,
  },
  'a100-80gb-mig': {
    status: 'ok',
    count: 3,
    families: ['A100', 'A100', 'A100'],
    products: rep(3, 'A100 SXM4 80GB'),
    indices: [0, 0, 1],
    mig: [true, true, false],
    memoryTotalMiB: [38146, 19073, 81920],
    memoryUsedMiB: [null, null, 0],
    utilizationPct: [null, null, 0],
    warnings: [/GPU 0 .* is in MIG mode: using its 2 MIG instance\(s\) \(3g\.40gb, 2g\.20gb\)/],
    warningCount: 1,
  },
  'mixed-busy': {
    status: 'ok',
    count: 2,
    families: ['H100', 'H100'],
    memoryTotalMiB: [81559, 81559],
    memoryUsedMiB: [74213, 1],
    utilizationPct: [98, 0],
    warnings: [],
    warningCount: 0,
  },
  quirks: {
    status: 'ok',
    count: 2,
    families: [null, 'T4'],
    products: [null, 'T4 16GB'],
    memoryTotalMiB: [24564, 15360],
    memoryUsedMiB: [null, 0],
    utilizationPct: [null, 0],
    computeCapability: ['8.9', '7.5'],
    warnings: [/GPU 0 \(NVIDIA GeForce RTX 4090, PCI id 2684:10de\) is not in the GPU catalogue/],
    warningCount: 1,
  },
  garbage: {
    status: 'ok',
    count: 0,
    warnings: [/line 1: .*line skipped/, /no GPUs: nvidia-smi output could not be parsed/],
  },
  'driver-failure': {
    status: 'failed',
    count: 0,
    warnings: [/no GPUs: .*nvidia-smi exited with code 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/],
    warningCount: 1,
  },
};

describe('detectHardware on every recorded fixture', () => {
  test('every fixture file has expectations here (and vice versa)', () => {
    const files = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.csv') && !f.endsWith('.stats.csv')) // .stats.csv: the metrics sampler's query
      .map((f) => f.slice(0, -4))
      .sort();
    assert.deepEqual(files, Object.keys(EXPECTED).sort());
  });

  for (const [fixture, exp] of Object.entries(EXPECTED)) {
    test(fixture, async () => {
      const inv = await detectFixture(fixture);
      const hostWarnings = inv.warnings.filter((w) => w.startsWith('host detection:'));
      const warnings = inv.warnings.filter((w) => !w.startsWith('host detection:'));
      const ctx = `warnings: ${JSON.stringify(inv.warnings, null, 1)}`;
      assert.equal(inv.nvidiaSmi, exp.status, ctx);
      assert.equal(inv.gpus.length, exp.count, ctx);
      if (exp.families) assert.deepEqual(inv.gpus.map((g) => g.family), exp.families);
      if (exp.products) assert.deepEqual(inv.gpus.map((g) => g.product), exp.products);
      if (exp.memoryTotalMiB) assert.deepEqual(inv.gpus.map((g) => g.memoryTotalMiB), exp.memoryTotalMiB);
      if (exp.memoryUsedMiB) assert.deepEqual(inv.gpus.map((g) => g.memoryUsedMiB), exp.memoryUsedMiB);
      if (exp.utilizationPct) assert.deepEqual(inv.gpus.map((g) => g.utilizationPct), exp.utilizationPct);
      if (exp.computeCapability) assert.deepEqual(inv.gpus.map((g) => g.computeCapability), exp.computeCapability);
      if (exp.mig) assert.deepEqual(inv.gpus.map((g) => g.mig), exp.mig);
      if (exp.indices) assert.deepEqual(inv.gpus.map((g) => g.index), exp.indices);
      for (const re of exp.warnings) assert.ok(warnings.some((w) => re.test(w)), `no warning matches ${re}; ${ctx}`);
      if (exp.warningCount !== undefined) assert.equal(warnings.length, exp.warningCount, ctx);
      assert.deepEqual(hostWarnings, [], 'host detection works on the test machine');
      // Every GPU is well-formed.
      for (const g of inv.gpus) {
        assert.match(g.uuid, g.mig ? /^MIG-/ : /^GPU-/);
        assert.ok(g.memoryTotalMiB > 0);
        assert.ok(g.pciDeviceId === null || /^[0-9a-f]{4}:[0-9a-f]{4}$/.test(g.pciDeviceId));
      }
      assert.equal(new Set(inv.gpus.map((g) => g.uuid)).size, inv.gpus.length, 'uuids unique');
    });
  }

  test('uuids and names come through verbatim from the recorded output', async () => {
    const inv = await detectFixture('h100-sxm-x8');
    const text = readFileSync(path.join(FIXTURES, 'h100-sxm-x8.csv'), 'utf8');
    for (const g of inv.gpus) {
      assert.ok(text.includes(`${g.index}, ${g.uuid}, ${g.name}, 0x233010DE`), g.uuid);
    }
  });
});

describe('detectHardware: no GPUs', () => {
  test('nvidia-smi missing (command path does not exist) → missing', async () => {
    const inv = await detectHardware({ nvidiaSmiCommand: path.join(tmp, 'no-such-nvidia-smi'), env: envWith() });
    assert.equal(inv.nvidiaSmi, 'missing');
    assert.deepEqual(inv.gpus, []);
    assert.ok(inv.warnings.some((w) => /^no GPUs: .*no-such-nvidia-smi not found/.test(w)), inv.warnings.join('\n'));
  });

  test('nvidia-smi not on PATH → missing', async () => {
    const empty = mkdtempSync(path.join(tmp, 'empty-path-'));
    const inv = await detectHardware({ env: envWith({ PATH: empty }) });
    assert.equal(inv.nvidiaSmi, 'missing');
    assert.deepEqual(inv.gpus, []);
  });

  test('FAKE_NVIDIA_SMI unset: the fake behaves like a machine without a driver → failed', async () => {
    const inv = await detectHardware({ nvidiaSmiCommand: FAKE, env: envWith() });
    assert.equal(inv.nvidiaSmi, 'failed');
    assert.deepEqual(inv.gpus, []);
    assert.ok(inv.warnings.some((w) => /exited with code 9: NVIDIA-SMI has failed/.test(w)), inv.warnings.join('\n'));
  });

  test('a hanging nvidia-smi times out → failed, and the child is gone', async () => {
    const hang = path.join(tmp, 'hanging-nvidia-smi');
    writeFileSync(hang, `#!${process.execPath}\nsetTimeout(() => {}, 60000);\n`);
    chmodSync(hang, 0o755);
    const started = Date.now();
    const inv = await detectHardware({ nvidiaSmiCommand: hang, env: envWith(), nvidiaSmiTimeoutMs: 300 });
    assert.ok(Date.now() - started < 10_000);
    assert.equal(inv.nvidiaSmi, 'failed');
    assert.deepEqual(inv.gpus, []);
    assert.ok(inv.warnings.some((w) => /timed out after 300 ms/.test(w)), inv.warnings.join('\n'));
  });

  test('a non-executable file → failed (not missing)', async () => {
    const f = path.join(tmp, 'not-executable');
    writeFileSync(f, 'nothing');
    chmodSync(f, 0o644);
    const inv = await detectHardware({ nvidiaSmiCommand: f, env: envWith() });
    assert.equal(inv.nvidiaSmi, 'failed');
  });
});

describe('detectHardware: other paths', () => {
  test('finds nvidia-smi on the PATH of the env it is given', async () => {
    const inv = await detectHardware({
      env: envWith({ PATH: pathWith(fakeNvidiaSmiDir), FAKE_NVIDIA_SMI: 'l40s-x4' }),
    });
    assert.equal(inv.nvidiaSmi, 'ok');
    assert.equal(inv.gpus.length, 4);
  });

  test('an absolute fixture path works too', async () => {
    const inv = await detectFixture(path.join(FIXTURES, 'h200-x1.csv'));
    assert.equal(inv.gpus[0]?.family, 'H200');
  });

  test('CUDA_VISIBLE_DEVICES selects and orders GPUs', async () => {
    const inv = await detectFixture('h100-sxm-x8', { cudaVisibleDevices: '5,2,9,1' });
    assert.deepEqual(inv.gpus.map((g) => g.index), [5, 2]);
    assert.ok(inv.warnings.some((w) => /no GPU with index 9/.test(w)));
  });

  test('CUDA_VISIBLE_DEVICES="" hides every GPU', async () => {
    const inv = await detectFixture('l4-x1', { cudaVisibleDevices: '' });
    assert.equal(inv.nvidiaSmi, 'ok');
    assert.deepEqual(inv.gpus, []);
  });

  test('CUDA_VISIBLE_DEVICES picks one MIG instance; a GPU-uuid picks the MIG GPU', async () => {
    const text = readFileSync(path.join(FIXTURES, 'a100-80gb-mig.csv'), 'utf8');
    const migUuids = [...text.matchAll(/MIG-[0-9a-f-]+/g)].map((m) => m[0]);
    const parent = /GPU 0: .*\(UUID: (GPU-[0-9a-f-]+)\)/.exec(text)![1]!;
    assert.equal(migUuids.length, 2);
    const one = await detectFixture('a100-80gb-mig', { cudaVisibleDevices: migUuids[1]! });
    assert.deepEqual(one.gpus.map((g) => [g.uuid, g.mig, g.memoryTotalMiB]), [[migUuids[1], true, 19073]]);
    const both = await detectFixture('a100-80gb-mig', { cudaVisibleDevices: parent.slice(0, 12) });
    assert.deepEqual(both.gpus.map((g) => g.uuid), migUuids);
  });

  test('NVIDIA_VISIBLE_DEVICES applies only without CUDA_VISIBLE_DEVICES', async () => {
    const a = await detectFixture('l40s-x4', { nvidiaVisibleDevices: '1,3' });
    assert.deepEqual(a.gpus.map((g) => g.index), [1, 3]);
    const b = await detectFixture('l40s-x4', { nvidiaVisibleDevices: '1,3', cudaVisibleDevices: '0' });
    assert.deepEqual(b.gpus.map((g) => g.index), [0]);
  });

  test('-L failing while the query works: whole GPUs, with a warning', async () => {
    const wrapper = path.join(tmp, 'nvidia-smi-no-list');
    writeFileSync(
      wrapper,
      `#!/bin/sh\ncase "$1" in -L) echo "Failed to list devices" >&2; exit 3;; esac\nexec "${FAKE}" "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    const inv = await detectHardware({ nvidiaSmiCommand: wrapper, env: envWith({ FAKE_NVIDIA_SMI: 'a100-80gb-mig' }) });
    assert.equal(inv.gpus.length, 2);
    assert.deepEqual(inv.gpus.map((g) => g.mig), [false, false]);
    assert.ok(inv.warnings.some((w) => /cannot check for MIG instances: .*exited with code 3: Failed to list devices/.test(w)));
  });

  test('a catalogue passed in is used instead of the default', async () => {
    const inv = await detectHardware({
      nvidiaSmiCommand: FAKE,
      env: envWith({ FAKE_NVIDIA_SMI: 'l4-x1' }),
      catalogue: [{ pciDeviceId: '27b8:10de', family: 'MY_L4', product: 'Custom', memoryGiB: 24, computeCapability: '8.9' }],
    });
    assert.equal(inv.gpus[0]?.family, 'MY_L4');
  });

  test('host facts come with the inventory', async () => {
    const inv = await detectFixture('l4-x1');
    assert.ok(inv.host.cpuModel.length > 0);
    assert.ok(Number.isInteger(inv.host.cpuCores) && inv.host.cpuCores > 0);
    assert.ok(inv.host.memoryTotalBytes > 1024 * 1024);
    assert.ok(inv.host.os.length > 0);
    assert.equal(inv.host.arch, os.arch());
  });
});

describe('the fake nvidia-smi itself', () => {
  const query = NVIDIA_SMI_QUERY_ARGS;

  test('a query with a different field list fails loudly (exit 2)', async () => {
    const r = await runNvidiaSmi(['--query-gpu=index,uuid,name', '--format=csv,noheader,nounits'], {
      command: FAKE,
      env: envWith({ FAKE_NVIDIA_SMI: 'l4-x1' }),
    });
    assert.equal(r.status, 'failed');
    assert.match(r.message, /exited with code 2: fake nvidia-smi: query mismatch/);
  });

  test('a fixture recorded for another query makes detection fail', async () => {
    const f = path.join(tmp, 'stale.csv');
    writeFileSync(f, '# query: index,uuid,name,memory.total\n0, GPU-1, NVIDIA L4, 23034\n');
    const inv = await detectFixture(f);
    assert.equal(inv.nvidiaSmi, 'failed');
    assert.ok(inv.warnings.some((w) => /query mismatch/.test(w)));
  });

  test('unsupported format, unknown fixture and a fixture without "# query:" exit 2', async () => {
    const env = envWith({ FAKE_NVIDIA_SMI: 'l4-x1' });
    const a = await runNvidiaSmi([query[0]!, '--format=csv'], { command: FAKE, env });
    assert.match(a.message, /code 2: .*unsupported --format/);
    const b = await runNvidiaSmi(query, { command: FAKE, env: envWith({ FAKE_NVIDIA_SMI: 'no-such-fixture' }) });
    assert.match(b.message, /code 2: .*cannot read fixture/);
    const f = path.join(tmp, 'noquery.csv');
    writeFileSync(f, '0, GPU-1, NVIDIA L4, 0x27B810DE, 23034, 0, 0, 8.9\n');
    const c = await runNvidiaSmi(query, { command: FAKE, env: envWith({ FAKE_NVIDIA_SMI: f }) });
    assert.match(c.message, /code 2: .*no "# query:" line/);
  });

  test('--version and -L', async () => {
    const env = envWith({ FAKE_NVIDIA_SMI: 'l4-x1' });
    const v = await runNvidiaSmi(['--version'], { command: FAKE, env });
    assert.equal(v.status, 'ok');
    assert.match(v.stdout, /^NVIDIA-SMI version {2}: 550\.90\.07\n.*\nDRIVER version {6}: 550\.90\.07\nCUDA Version {8}: 12\.4\n$/s);
    const l = await runNvidiaSmi(['-L'], { command: FAKE, env });
    assert.match(l.stdout, /^GPU 0: NVIDIA L4 \(UUID: GPU-[0-9a-f-]{36}\)\n$/);
    const d = await runNvidiaSmi(['--version'], { command: FAKE, env: envWith({ FAKE_NVIDIA_SMI: 'driver-failure' }) });
    assert.equal(d.status, 'failed');
  });

  test('# stderr: lines go to stderr and the exit code is kept', async () => {
    const f = path.join(tmp, 'stderr.csv');
    writeFileSync(f, `# query: ${query[0]!.slice('--query-gpu='.length)}\n# exit: 4\n# stderr: GPU is lost\n`);
    const r = await runNvidiaSmi(query, { command: FAKE, env: envWith({ FAKE_NVIDIA_SMI: f }) });
    assert.equal(r.message, `${FAKE} exited with code 4: GPU is lost`);
  });

  test('FAKE_NVIDIA_SMI_VARY=1 varies utilisation and memory.used deterministically per call', async () => {
    const sample = async (counter: string): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await runNvidiaSmi(query, {
          command: FAKE,
          env: envWith({ FAKE_NVIDIA_SMI: 'mixed-busy', FAKE_NVIDIA_SMI_VARY: '1', FAKE_NVIDIA_SMI_COUNTER: counter }),
        });
        assert.equal(r.status, 'ok', r.message);
        out.push(r.stdout);
      }
      return out;
    };
    const a = await sample(path.join(tmp, 'counter-a'));
    const b = await sample(path.join(tmp, 'counter-b'));
    assert.deepEqual(a, b, 'same call number, same output');
    assert.equal(new Set(a).size, 3, 'each call differs');
    // Still parseable, values in range, everything else unchanged.
    const { parseNvidiaSmiCsv, loadGpuCatalogue } = await import('../src/hardware/index.js');
    for (const text of a) {
      const r = parseNvidiaSmiCsv(text, loadGpuCatalogue());
      assert.deepEqual(r.warnings, []);
      assert.equal(r.gpus.length, 2);
      for (const g of r.gpus) {
        assert.ok(g.utilizationPct !== null && g.utilizationPct >= 0 && g.utilizationPct <= 100);
        assert.ok(g.memoryUsedMiB !== null && g.memoryUsedMiB >= 0 && g.memoryUsedMiB <= g.memoryTotalMiB);
        assert.equal(g.memoryTotalMiB, 81559);
      }
    }
  });
});

describe('recording fixtures (test/fixtures/bin/record-nvidia-smi-fixture)', () => {
  const RECORD = path.join(fakeNvidiaSmiDir, 'record-nvidia-smi-fixture');

  for (const fixture of Object.keys(EXPECTED)) {
    test(`re-recording ${fixture} through the fake gives the same inventory`, async () => {
      const out = path.join(tmp, `recorded-${fixture}.csv`);
      const { execa } = await import('execa');
      const r = await execa('sh', [RECORD, `re-recorded ${fixture}`], {
        env: envWith({ PATH: pathWith(fakeNvidiaSmiDir), FAKE_NVIDIA_SMI: fixture }),
        extendEnv: false,
        reject: false,
        timeout: 20_000,
      });
      assert.equal(r.exitCode, 0, r.stderr);
      writeFileSync(out, r.stdout + '\n');
      const original = await detectFixture(fixture);
      const replayed = await detectFixture(out);
      assert.equal(replayed.nvidiaSmi, original.nvidiaSmi);
      assert.deepEqual(replayed.gpus, original.gpus);
      assert.match(r.stdout, /^# query: index,uuid,name,pci\.device_id,memory\.total,memory\.used,utilization\.gpu,compute_cap\n/);
    });
  }
});

describe('host', () => {
  test('systeminformation values are used', async () => {
    const r = await getHostInfo({
      si: {
        cpu: async () => ({ manufacturer: 'Intel®', brand: 'Xeon® Platinum 8480+', cores: 224 }),
        mem: async () => ({ total: 2 * 1024 ** 4 }),
        osInfo: async () => ({ distro: 'Ubuntu', release: '22.04.4 LTS', platform: 'linux', kernel: '5.15.0', arch: 'x64' }),
      },
    });
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(r.host, {
      cpuModel: 'Intel® Xeon® Platinum 8480+',
      cpuCores: 224,
      memoryTotalBytes: 2 * 1024 ** 4,
      os: 'Ubuntu 22.04.4 LTS (linux 5.15.0)',
      arch: 'x64',
    });
  });

  test('node:os stands in when systeminformation throws, hangs or returns nothing', async () => {
    const r = await getHostInfo({
      timeoutMs: 200,
      si: {
        cpu: async () => {
          throw new Error('lscpu exploded');
        },
        mem: () => new Promise(() => {}),
        osInfo: async () => ({}),
      },
    });
    assert.equal(r.host.cpuModel, os.cpus()[0]?.model.trim() || 'unknown');
    assert.equal(r.host.memoryTotalBytes, os.totalmem());
    assert.equal(r.host.os, `${os.type()} ${os.release()}`);
    assert.equal(r.host.arch, process.arch);
    assert.ok(r.host.cpuCores > 0);
    assert.equal(r.warnings.length, 2);
    assert.match(r.warnings[0]!, /cpu\(\) failed \(lscpu exploded\)/);
    assert.match(r.warnings[1]!, /mem\(\) failed .*timed out after 200 ms/);
  });

  test('detectHardware reports host fallbacks as warnings, never throws', async () => {
    const inv = await detectHardware({
      nvidiaSmiCommand: FAKE,
      env: envWith({ FAKE_NVIDIA_SMI: 'l4-x1' }),
      systemInformation: {
        cpu: async () => {
          throw new Error('boom');
        },
        mem: async () => {
          throw new Error('boom');
        },
        osInfo: async () => {
          throw new Error('boom');
        },
      },
    });
    assert.equal(inv.gpus.length, 1);
    assert.equal(inv.warnings.filter((w) => w.startsWith('host detection:')).length, 3);
    assert.equal(inv.host.memoryTotalBytes, os.totalmem());
  });
});

describe('NVIDIA GPU host evidence (no silent CPU fallback, issue #12)', () => {
  test('nvidia-smi, device nodes and NVIDIA_VISIBLE_DEVICES each count; void/none/unset do not', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dev = await mkdtemp(path.join(tmpdir(), 'nim-dev-'));
    try {
      assert.deepEqual(nvidiaHostEvidence('missing', undefined, dev), []);
      for (const v of ['', 'void', 'none', 'NONE']) assert.deepEqual(nvidiaHostEvidence('missing', v, dev), [], v);
      assert.deepEqual(nvidiaHostEvidence('missing', 'all', dev), ['NVIDIA_VISIBLE_DEVICES=all']);
      assert.deepEqual(nvidiaHostEvidence('failed', undefined, dev), ['nvidia-smi is installed but failed']);
      await writeFile(path.join(dev, 'nvidia0'), '');
      await writeFile(path.join(dev, 'nvidiactl'), '');
      await writeFile(path.join(dev, 'nvidia-uvm'), '');
      assert.deepEqual(nvidiaHostEvidence('missing', undefined, dev), [`device nodes ${dev}/nvidia0, ${dev}/nvidiactl`]);
    } finally {
      await rm(dev, { recursive: true, force: true });
    }
  });
});
