// What the supervisor knows about the machine it runs on.

/** One GPU (or MIG instance) as nvidia-smi reports it, enriched from the catalogue in profiles/. */
export interface GpuInfo {
  /** nvidia-smi's index: the physical ordinal that CUDA_VISIBLE_DEVICES refers to. */
  index: number;
  /** `GPU-…` (or `MIG-…` for a MIG instance). */
  uuid: string;
  /** Product name as the driver reports it, e.g. "NVIDIA H100 80GB HBM3". */
  name: string;
  /** PCI device id as NIM writes it: `<device>:<vendor>`, lower-case hex, e.g. "2330:10de". Null when unknown. */
  pciDeviceId: string | null;
  memoryTotalMiB: number;
  /** Null where the driver reports [N/A] or [Not Supported]. */
  memoryUsedMiB: number | null;
  utilizationPct: number | null;
  /** e.g. "9.0"; null when unknown. */
  computeCapability: string | null;
  /** Catalogue family used by manifests' `gpu` tag, e.g. "H100", "A100", "L40S"; null when not in the catalogue. */
  family: string | null;
  /** Catalogue product, e.g. "H100 SXM5 80GB"; null when not in the catalogue. */
  product: string | null;
  /** True for a MIG instance. */
  mig: boolean;
}

export interface HostInfo {
  cpuModel: string;
  cpuCores: number;
  memoryTotalBytes: number;
  os: string;
  arch: string;
}

/** How the nvidia-smi query went: 'ok', not installed, or failed (e.g. no driver). */
export type NvidiaSmiStatus = 'ok' | 'missing' | 'failed';

/** The host's NVIDIA driver, from `nvidia-smi --version`. */
export interface DriverInfo {
  /** e.g. "550.54.15"; null when not reported. */
  version: string | null;
  /** The newest CUDA version the driver supports, "major.minor" (e.g. "12.4"); null when not reported. */
  cudaVersion: string | null;
}

export interface HardwareInventory {
  /** GPUs visible to this process (after CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES). */
  gpus: GpuInfo[];
  host: HostInfo;
  nvidiaSmi: NvidiaSmiStatus;
  /** The driver's versions; absent when nvidia-smi could not tell (no driver, old driver, or not asked). */
  driver?: DriverInfo | undefined;
  /**
   * Signs that this is an NVIDIA GPU host even when no GPU could be listed (a
   * broken driver, GPUs hidden or busy): nvidia-smi installed, /dev/nvidia*
   * device nodes, NVIDIA_VISIBLE_DEVICES naming devices. Empty or absent: a
   * host with no NVIDIA GPU at all, the only place the CPU profile is chosen
   * automatically (docs/selection.md).
   */
  nvidiaEvidence?: string[];
  /** Problems that did not stop detection (unparseable lines, missing nvidia-smi …). */
  warnings: string[];
}

/** One entry of the hardware catalogue (profiles/gpus.yaml). */
export interface GpuCatalogueEntry {
  /** `<device>:<vendor>`, lower-case hex. */
  pciDeviceId: string;
  family: string;
  product: string;
  memoryGiB: number;
  computeCapability: string;
}
