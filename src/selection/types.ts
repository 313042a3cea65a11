// The outcome of profile selection.
import type { GpuInfo } from '../hardware/types.js';
import type { Profile } from '../manifest/types.js';
import type { Provenance } from '../engine/argv.js';

export interface ProfileEvaluation {
  profile: Profile;
  compatible: boolean;
  /** Why the profile cannot run here (empty when compatible). */
  reasons: string[];
  /** tp and pp after NIM_TENSOR_PARALLEL_SIZE / NIM_PIPELINE_PARALLEL_SIZE overrides. */
  tp: number;
  pp: number;
  /** GPUs the profile needs (tp × pp; 0 for a CPU profile), over all its nodes. */
  gpusNeeded: number;
  /** Nodes the profile spans (its `nodes` tag; 1 for single-node profiles). */
  nodes: number;
  /** GPUs on each node: tp × pp / nodes (0 for a CPU profile). */
  gpusPerNode: number;
  /**
   * Compatible, but the GPUs it would use lack the free memory vLLM needs at
   * start-up (NIM's "not runnable due to low free GPU memory"). Ranked below
   * the runnable ones and never chosen automatically.
   */
  lowFreeMemory: boolean;
  /**
   * The --gpu-memory-utilization free memory was checked against (0 < x <= 1).
   * The engine command always passes exactly this value, so selection and
   * vLLM's start-up check can never disagree.
   */
  gpuMemoryUtilization: number;
  /** Short of free memory, but NIM_RELAX_MEM_CONSTRAINTS lifted the gate. */
  memoryCheckRelaxed?: boolean;
  /** Remarks that are not reasons: the GPUs it would use, why memory is low, MIG use … */
  notes: string[];
  /** GPUs it would run on, ascending index (empty for CPU and incompatible profiles). */
  gpus: GpuInfo[];
  /** NIM_TENSOR_PARALLEL_SIZE / NIM_PIPELINE_PARALLEL_SIZE change this profile's own tp or pp (ranked below profiles built for them). */
  shapeOverridden?: boolean;
}

export interface Selection {
  /** The profile that will run. */
  profile: Profile;
  evaluation: ProfileEvaluation;
  /** 'explicit' when NIM_MODEL_PROFILE named it. */
  how: 'auto' | 'explicit';
  /** GPUs assigned to the engine (empty for a CPU profile). */
  gpus: GpuInfo[];
  /** CUDA_VISIBLE_DEVICES for the engine; undefined for a CPU profile. */
  cudaVisibleDevices: string | undefined;
  /** Compatible profiles, best first (the selected one among them). */
  compatible: ProfileEvaluation[];
  /** Incompatible profiles, with reasons. */
  incompatible: ProfileEvaluation[];
  /** Things the operator should know (e.g. an explicit profile with low free memory); the caller logs them. */
  warnings: string[];
}

/** The engine's command line and environment, as a pure function of the selection produces it. */
export interface EngineCommand {
  command: string;
  args: string[];
  /** Added on top of the supervisor's own environment. */
  env: Record<string, string>;
  /** Which layer set each argument and variable, and what it overrode (src/engine/argv.ts). */
  provenance?: Provenance;
}
