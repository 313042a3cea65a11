// The public API of hardware detection. See docs/hardware.md.
export type { GpuInfo, HostInfo, NvidiaSmiStatus, HardwareInventory, GpuCatalogueEntry } from './types.js';
export {
  loadGpuCatalogue,
  parseGpuCatalogue,
  defaultGpuCatalogue,
  lookupGpu,
  CatalogueError,
  DEFAULT_GPU_CATALOGUE,
  type GpuCatalogueRecord,
} from './catalogue.js';
export {
  NVIDIA_SMI_QUERY_FIELDS,
  NVIDIA_SMI_QUERY_ARGS,
  NVIDIA_SMI_LIST_ARGS,
  NVIDIA_SMI_TIMEOUT_MS,
  parseNvidiaSmiCsv,
  parseNvidiaSmiList,
  normalisePciDeviceId,
  migProfileMemoryMiB,
  applyMigLayout,
  runNvidiaSmi,
  queryNvidiaSmi,
  listNvidiaSmi,
  type ParsedGpus,
  type MigInstance,
  type ListedGpu,
  type MigLayout,
  type NvidiaSmiRunOptions,
  type NvidiaSmiResult,
} from './nvidia-smi.js';
export { applyVisibleDevices, type VisibleDevices } from './visible-devices.js';
export { getHostInfo, hostInfoFromOs, type SystemInformationLike, type HostInfoOptions } from './host.js';
export { detectHardware, nvidiaHostEvidence, type DetectHardwareOptions } from './detect.js';
