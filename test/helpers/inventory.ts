// Hand-built hardware inventories for unit tests of selection and argv.
import type { GpuInfo, HardwareInventory } from '../../src/hardware/types.js';

/** One idle H100 SXM5 80GB as detection reports it; `uuidPrefix` keeps uuids distinct between suites. */
export function h100Gpu(index: number, uuidPrefix = 'GPU-'): GpuInfo {
  return {
    index,
    uuid: `${uuidPrefix}${index}`,
    name: 'NVIDIA H100 80GB HBM3',
    pciDeviceId: '2330:10de',
    memoryTotalMiB: 81559,
    memoryUsedMiB: 1,
    utilizationPct: 0,
    computeCapability: '9.0',
    family: 'H100',
    product: 'H100 SXM5 80GB',
    mig: false,
  };
}

/** A host with `n` idle H100s (none: nvidia-smi missing). */
export function h100Inventory(n: number, uuidPrefix?: string): HardwareInventory {
  return {
    gpus: Array.from({ length: n }, (_, i) => h100Gpu(i, uuidPrefix)),
    host: { cpuModel: 'x', cpuCores: 4, memoryTotalBytes: 1, os: 'linux', arch: 'x64' },
    nvidiaSmi: n > 0 ? 'ok' : 'missing',
    warnings: [],
  };
}
