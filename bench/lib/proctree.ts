// CPU and memory of a process tree, from /proc (Linux only).
// "The supervisor" is its whole tree (its workers, helpers) minus the engine's subtree;
// "nginx" is its master plus workers; "the engine" is the engine's subtree.
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { CLK_TCK } from './proc.js';

const PAGE = 4096;

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, clock ticks. */
  ticks: number;
  rssBytes: number;
}

export function readStat(pid: number): ProcStat | undefined {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // Field k of proc(5) is f[k - 3]: ppid 4, utime 14, stime 15, rss 24 (pages).
  return { pid, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), rssBytes: Number(f[21]) * PAGE };
}

function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const d of readdirSync('/proc')) {
    if (d.charCodeAt(0) < 48 || d.charCodeAt(0) > 57) continue;
    const st = readStat(Number(d));
    if (st) out.push(st);
  }
  return out;
}

/** Pids of `root` and its descendants, leaving out each `exclude` pid and its descendants. */
export function treePids(root: number, exclude: number[] = []): number[] {
  const stats = allStats();
  const kids = new Map<number, number[]>();
  for (const s of stats) {
    const k = kids.get(s.ppid);
    if (k) k.push(s.pid);
    else kids.set(s.ppid, [s.pid]);
  }
  const out: number[] = [];
  const skip = new Set(exclude);
  const present = new Set(stats.map((s) => s.pid));
  const stack = [root];
  for (let i = 0; i < 100_000 && stack.length > 0; i++) {
    const p = stack.pop()!;
    if (skip.has(p)) continue;
    if (!present.has(p)) continue;
    out.push(p);
    for (const c of kids.get(p) ?? []) stack.push(c);
  }
  return out;
}

/** A set of processes to measure: a root, minus some subtrees. */
export interface Tree {
  root: number;
  exclude: number[];
}

export interface TreeUsage {
  ticks: Map<number, number>;
  rssBytes: number;
  pids: number[];
}

export function usage(t: Tree): TreeUsage {
  const pids = treePids(t.root, t.exclude);
  const ticks = new Map<number, number>();
  let rss = 0;
  for (const p of pids) {
    const s = readStat(p);
    if (!s) continue;
    ticks.set(p, s.ticks);
    rss += s.rssBytes;
  }
  return { ticks, rssBytes: rss, pids };
}

/**
 * CPU seconds the tree spent between two snapshots, summed over its processes
 * (a process born in between counts from zero; one that died in between is lost).
 * Also the per-process split, for worker balance.
 */
export function cpuBetween(a: TreeUsage, b: TreeUsage): { seconds: number; perPid: Record<number, number> } {
  let ticks = 0;
  const perPid: Record<number, number> = {};
  for (const [pid, t1] of b.ticks) {
    const d = t1 - (a.ticks.get(pid) ?? 0);
    perPid[pid] = d / CLK_TCK;
    ticks += d;
  }
  return { seconds: ticks / CLK_TCK, perPid };
}

/** Sample the tree's summed RSS every `everyMs` (tree membership refreshed every 5th sample); returns a stop function giving the peak in bytes. */
export function rssPeakSampler(t: Tree, everyMs = 50): () => { peakBytes: number; processes: number } {
  let pids = treePids(t.root, t.exclude);
  let peak = 0;
  let n = 0;
  let procs = pids.length;
  const sample = (): void => {
    if (n++ % 5 === 0) pids = treePids(t.root, t.exclude);
    let rss = 0;
    for (const p of pids) rss += readStat(p)?.rssBytes ?? 0;
    if (rss > peak) peak = rss;
    if (pids.length > procs) procs = pids.length;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return () => {
    clearInterval(timer);
    sample();
    return { peakBytes: peak, processes: procs };
  };
}

const NODE_EXE = realpathSync(process.execPath);
/** How many of the tree's processes run Node (the supervisor's own processes, without helpers such as its reaper shell). */
export function nodeProcesses(t: Tree): number {
  let n = 0;
  for (const p of treePids(t.root, t.exclude)) {
    try {
      if (readlinkSync(`/proc/${p}/exe`) === NODE_EXE) n++;
    } catch {
      /* gone */
    }
  }
  return n;
}
