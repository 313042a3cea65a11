// Can the host's NVIDIA driver run the engine image's CUDA? The supervisor runs
// inside the vLLM image, whose base (nvidia/cuda) sets CUDA_VERSION (e.g.
// "12.8.1"; NVIDIA_REQUIRE_CUDA="cuda>=12.8 …" as well); the driver reports the
// newest CUDA it supports (nvidia-smi's "CUDA Version"). vLLM v0.30+ images are
// CUDA 13 builds, so a host driver of the R5xx/CUDA 12 era cannot start them
// (vllm-0.31-changes.md, "runtime image"). Pure: the caller logs the verdict.
import type { DriverInfo } from './types.js';

export interface CudaVersion {
  major: number;
  minor: number;
}

export interface CudaCompatibility {
  /** 'error': the engine cannot initialise CUDA; 'warn': it relies on CUDA minor-version compatibility. */
  level: 'error' | 'warn';
  /** Stable code for docs/troubleshooting.md. */
  code: 'CUDA_DRIVER_TOO_OLD' | 'CUDA_MINOR_VERSION_COMPAT';
  message: string;
  hint: string;
  image: string;
  driver: string;
}

/** "12.8.1" / "12.8" / "13" -> {12, 8}; null when not a version. */
export function parseCudaVersion(raw: string | undefined | null): CudaVersion | null {
  const m = /^\s*(\d+)(?:\.(\d+))?(?:\.\d+)*\s*$/.exec(raw ?? '');
  return m ? { major: Number(m[1]), minor: Number(m[2] ?? 0) } : null;
}

/**
 * The CUDA version the engine image was built for, from its environment:
 * CUDA_VERSION (nvidia/cuda base images), else the `cuda>=X.Y` term of
 * NVIDIA_REQUIRE_CUDA. Null outside such an image (e.g. a development machine).
 */
export function imageCudaVersion(env: NodeJS.ProcessEnv): { version: CudaVersion; source: string } | null {
  const fromVersion = parseCudaVersion(env.CUDA_VERSION);
  if (fromVersion) return { version: fromVersion, source: `CUDA_VERSION=${env.CUDA_VERSION!.trim()}` };
  const req = /\bcuda>=(\d+(?:\.\d+)?)/.exec(env.NVIDIA_REQUIRE_CUDA ?? '')?.[1];
  const fromReq = parseCudaVersion(req);
  return fromReq ? { version: fromReq, source: `NVIDIA_REQUIRE_CUDA (cuda>=${req})` } : null;
}

const show = (v: CudaVersion): string => `${v.major}.${v.minor}`;

/**
 * Compare the image's CUDA with what the driver supports. Null when they fit
 * or either side is unknown (no GPU, no driver, not in a CUDA image).
 * - A newer CUDA major than the driver supports cannot work: error.
 * - The same major with a newer minor runs through CUDA's minor-version
 *   compatibility (R525+ for 12.x), except kernels that need PTX JIT: warn.
 */
export function checkCudaCompatibility(
  image: { version: CudaVersion; source: string } | null,
  driver: DriverInfo | undefined,
): CudaCompatibility | null {
  const driverCuda = parseCudaVersion(driver?.cudaVersion);
  if (!image || !driverCuda) return null;
  const need = image.version;
  const driverName = `driver ${driver?.version ?? '(version unknown)'}`;
  const base = { image: show(need), driver: show(driverCuda) };
  if (need.major > driverCuda.major) {
    return {
      ...base,
      level: 'error',
      code: 'CUDA_DRIVER_TOO_OLD',
      message:
        `the engine image is built for CUDA ${show(need)} (${image.source}), but the host's NVIDIA ${driverName} supports CUDA ${show(driverCuda)} at most: ` +
        `vLLM will fail to initialise CUDA`,
      hint:
        `upgrade the host driver to one that supports CUDA ${need.major}.x, or build the image on a vLLM image for CUDA ${driverCuda.major} ` +
        `(docker build --build-arg VLLM_IMAGE=…, see docs/deployment.md)`,
    };
  }
  if (need.major === driverCuda.major && need.minor > driverCuda.minor) {
    return {
      ...base,
      level: 'warn',
      code: 'CUDA_MINOR_VERSION_COMPAT',
      message:
        `the engine image is built for CUDA ${show(need)} (${image.source}) and the host's NVIDIA ${driverName} supports CUDA ${show(driverCuda)}: ` +
        `it runs through CUDA minor-version compatibility, but kernels that need PTX JIT compilation can fail`,
      hint: `upgrade the host driver to one that supports CUDA ${show(need)} or newer`,
    };
  }
  return null;
}
