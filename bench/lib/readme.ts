// The README's performance table, regenerated from a bench run between two markers.
import type { Target } from '../run.js';
import { f } from './stats.js';

export const START = '<!-- bench:start -->';
export const END = '<!-- bench:end -->';

interface Results {
  timestamp: string;
  machine: { cores: number; cpuModel?: string; node: string; loadAverageAtStart: string; nodeExtraCaCertsBootMs?: { withMs: number; withoutMs: number } | null };
  gitCommit?: string;
  requests?: { summary: Record<string, { usPerRequest: number }> };
  events?: { summary: Record<string, { usPerEvent: number }> };
  burst?: { streams: number; summary: Record<string, { errors: number; slowConnects: number; listenDrops: number; ttfbP99Ms: number; peakRssMB: number }> };
}

/** Markdown: a per-path table of the measured figures, then the targets table. */
export function renderReadme(r: Results, targets: Target[]): string {
  // The relay (a bare Node TCP relay, no HTTP) is Node's own floor, measured in the events and burst phases.
  const paths = ['direct', 'supervisor', 'relay', 'nginx'];
  const cell = (fn: (id: string) => string): string => paths.map(fn).join(' | ');
  const rows: string[] = ['| Measure | direct | supervisor | Node relay (floor) | nginx |', '|---|---:|---:|---:|---:|'];
  if (r.requests) rows.push(`| CPU per non-streaming request, µs (direct: the engine's) | ${cell((id) => f(r.requests!.summary[id]?.usPerRequest))} |`);
  if (r.events) rows.push(`| CPU per forwarded SSE event, µs (direct: the engine's) | ${cell((id) => f(r.events!.summary[id]?.usPerEvent, 2))} |`);
  if (r.burst) {
    const b = r.burst.summary;
    rows.push(`| ${r.burst.streams} streams opened within 200 ms: errors | ${cell((id) => (b[id] ? String(b[id]!.errors) : '—'))} |`);
    rows.push(`| … connections that waited for a SYN retransmit / listen drops | ${cell((id) => (b[id] ? `${b[id]!.slowConnects} / ${b[id]!.listenDrops}` : '—'))} |`);
    rows.push(`| … time to first byte p99, ms | ${cell((id) => f(b[id]?.ttfbP99Ms, 0))} |`);
    rows.push(`| … peak RSS, MB (supervisor: all its processes, not the engine) | ${cell((id) => (id === 'direct' || id === 'relay' ? '—' : f(b[id]?.peakRssMB, 0)))} |`);
  }
  const ca = r.machine.nodeExtraCaCertsBootMs;
  const caNote = ca
    ? ` Supervisors ran without this machine's NODE_EXTRA_CA_CERTS, as in the image (Node reads that CA bundle at every start: \`node -e 0\` took ${f(ca.withMs, 0)} ms with it, ${f(ca.withoutMs, 0)} ms without).`
    : '';
  const t = targets.map((x) => `| ${x.name} | ${x.figure}${x.note ? ` (${x.note})` : ''} | ${x.limit} | ${x.met === null ? 'not measured' : x.met ? 'met' : '**not met**'} |`);
  return [
    `Latest run: ${r.timestamp.slice(0, 16).replace('T', ' ')} UTC${r.gitCommit ? ` (commit ${r.gitCommit})` : ''}, ${r.machine.cores} × ${r.machine.cpuModel ?? 'CPU'}, Node ${r.machine.node}, load average ${r.machine.loadAverageAtStart} at start (a shared VM: compare columns, not runs).${caNote}`,
    '',
    ...rows,
    '',
    '| Target (issue #19) | figure | limit | result |',
    '|---|---|---|---|',
    ...t,
  ].join('\n');
}

/** Replace what lies between the markers; throws when they are missing. */
export function updateReadme(readme: string, block: string): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${START} … ${END} markers around its performance table`);
  return `${readme.slice(0, a + START.length)}\n${block}\n${readme.slice(b)}`;
}
