// What to do after a scan of NIM_PEFT_SOURCE, as a pure decision: which
// adapters to load into the engine, which to unload, which to skip (and why),
// and which to leave alone for now because they are still being written.
//
// An adapter is acted on only when its fingerprint (sizes and mtimes of its
// files) is the same in two consecutive scans: a directory that is being
// copied in, or an adapter rewritten in place, is never loaded half-written.
import { rankProblem, type LoraAdapter } from './adapter.js';
import type { ScanEntry } from './scan.js';

export interface ReconcileInput {
  /** The previous scan's fingerprints (empty before the first scan). */
  previous: ReadonlyMap<string, string>;
  /** This scan. */
  current: ReadonlyMap<string, ScanEntry>;
  /** Adapters the engine has now. */
  loaded: ReadonlyMap<string, LoraAdapter>;
  /** Adapters whose last load attempt failed, by name → fingerprint then (not retried until it changes). */
  failed: ReadonlyMap<string, string>;
  rankLimit: number;
  rankLimitSource: string;
}

export interface ReconcileResult {
  load: LoraAdapter[];
  unload: Array<{ name: string; why: string }>;
  /** Stable adapters that cannot be served, with the reason. */
  skip: Array<{ name: string; reason: string }>;
  /** Adapters still changing between scans: nothing is done with them yet. */
  pending: string[];
}

export function reconcile(input: ReconcileInput): ReconcileResult {
  const { previous, current, loaded, failed } = input;
  const out: ReconcileResult = { load: [], unload: [], skip: [], pending: [] };
  for (const [name, adapter] of loaded) {
    if (!current.has(name)) out.unload.push({ name, why: `its directory ${adapter.path} is gone` });
  }
  for (const [name, entry] of current) {
    if (previous.get(name) !== entry.fingerprint) {
      out.pending.push(name); // new or changed since the last scan: wait until it holds still
      continue;
    }
    const was = loaded.get(name);
    const problem = entry.check.ok ? rankProblem(entry.check.adapter, input.rankLimit, input.rankLimitSource) : entry.check.reason;
    if (problem !== undefined || !entry.check.ok) {
      out.skip.push({ name, reason: problem! });
      if (was) out.unload.push({ name, why: `it changed and ${problem}` });
      continue;
    }
    const adapter = entry.check.adapter;
    if (was && was.fingerprint === adapter.fingerprint) continue;
    if (!was && failed.get(name) === adapter.fingerprint) continue; // failed before, unchanged since
    if (was) out.unload.push({ name, why: 'its files changed; reloading it' });
    out.load.push(adapter);
  }
  return out;
}
