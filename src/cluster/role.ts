// This pod's place in a multi-node group (LeaderWorkerSet + Ray), from the
// configuration alone. Pure. See docs/multi-node.md.
import type { ClusterConfig } from '../config/env.js';

export type ClusterRole =
  | { kind: 'single' }
  /** Index 0 of a group: runs the Ray head, waits for the workers, then vLLM. */
  | { kind: 'leader'; groupSize: number; headAddress: string }
  /** Index 1 … groupSize-1: runs `ray start --address=<head> --block` and serves only health. */
  | { kind: 'worker'; groupSize: number; index: number; headAddress: string };

/** `host:port`, with an IPv6 literal in brackets. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

/**
 * The role: a single node when LWS_GROUP_SIZE is 1 (or unset); otherwise the
 * leader (LWS_WORKER_INDEX 0) or a worker. The head address is
 * LWS_LEADER_ADDRESS:NIM_RAY_PORT (the leader itself polls 127.0.0.1 when no
 * leader address is given).
 */
export function clusterRole(c: Pick<ClusterConfig, 'groupSize' | 'workerIndex' | 'leaderAddress' | 'rayPort'>): ClusterRole {
  if (c.groupSize <= 1) return { kind: 'single' };
  const headAddress = hostPort(c.leaderAddress ?? '127.0.0.1', c.rayPort);
  if (c.workerIndex === 0) return { kind: 'leader', groupSize: c.groupSize, headAddress };
  return { kind: 'worker', groupSize: c.groupSize, index: c.workerIndex, headAddress };
}
