// Profile selection: which manifest profiles can run on the detected hardware,
// in NIM's order of preference, and which one to start. See docs/selection.md.
export type { ProfileEvaluation, Selection, EngineCommand } from './types.js';
export {
  evaluateProfile,
  evaluateProfiles,
  gpuMemoryUtilization,
  describeGpuKind,
  freeMiB,
  gib,
  DEFAULT_GPU_MEMORY_UTILIZATION,
  type SelectionConfig,
  type GpuMemoryConfig,
} from './evaluate.js';
export {
  selectProfile,
  resolveProfile,
  rankEvaluations,
  compareEvaluations,
  cudaVisibleDevicesFor,
  profileLabel,
  MIN_ID_PREFIX,
} from './select.js';
