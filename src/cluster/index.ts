// Multi-node groups (LeaderWorkerSet + vLLM's Ray backend). See docs/multi-node.md.
export { clusterRole, hostPort, type ClusterRole } from './role.js';
export { parseRayStatus, type RayStatusSummary } from './ray-status.js';
export { rayStatus, type RayStatusResult } from './ray-cli.js';
export { ClusterLeader, type ClusterLeaderOptions } from './leader.js';
export { serveWorker, type WorkerDeps } from './worker.js';
