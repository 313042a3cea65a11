// Reading `ray status`: how many nodes the Ray cluster has. Pure.
//
// Ray prints a "Node status" section, e.g. (Ray 2.x):
//
//   ======== Autoscaler status: 2025-01-01 12:00:00.000000 ========
//   Node status
//   ---------------------------------------------------------------
//   Active:
//    1 node_328da3b1e9273cf946f6ac3dfee9404dacf429566cd0809a7f04f01c
//    1 node_9f0c…
//   Idle:
//    (no idle nodes)
//   Pending:
//    (no pending nodes)
//   Recent failures:
//    (no failures)
//
// Alive nodes are listed under "Active:" and "Idle:" (an idle node is alive,
// just without work), or "Healthy:" in older releases, one `<count> <name>`
// line per node (or per node type on autoscaled clusters). Pending nodes and
// recent failures are not members.

export interface RayStatusSummary {
  /** Alive nodes: the counts under Active:, Idle: and Healthy:. */
  nodes: number;
  /** Their names (node_<id>, or node types), as listed. */
  names: string[];
}

const MEMBER_HEADERS = /^(Active|Idle|Healthy):\s*$/;
const OTHER_HEADERS = /^(Pending|Recent failures|Failed|Draining|Terminated):\s*$/;
const ENTRY = /^\s+(\d+)\s+(\S.*?)\s*$/;

/** The node count from `ray status` output, or undefined when it holds no node status section. */
export function parseRayStatus(text: string): RayStatusSummary | undefined {
  let section: 'member' | 'other' | undefined;
  let seen = false;
  let nodes = 0;
  const names: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\s+$/, '');
    if (MEMBER_HEADERS.test(line)) {
      section = 'member';
      seen = true;
      continue;
    }
    if (OTHER_HEADERS.test(line)) {
      section = 'other';
      continue;
    }
    if (!/^\s/.test(line)) {
      // Any other unindented line (a blank one, "Resources", "-----") ends the list.
      section = undefined;
      continue;
    }
    if (section !== 'member') continue;
    const m = ENTRY.exec(line);
    if (!m) continue; // "(no idle nodes)"
    nodes += Number(m[1]);
    names.push(m[2]!);
  }
  return seen ? { nodes, names } : undefined;
}
