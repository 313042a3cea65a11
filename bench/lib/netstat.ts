// Kernel counters for listen-queue trouble (/proc/net/netstat TcpExt) and a
// listening socket's backlog (ss's Send-Q column for LISTEN sockets).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export const LISTEN_COUNTERS = ['ListenOverflows', 'ListenDrops', 'TCPReqQFullDrop', 'SyncookiesSent'] as const;
export type ListenCounters = Record<(typeof LISTEN_COUNTERS)[number], number>;

/** TcpExt counters of this network namespace (system-wide in it: other processes' drops count too). */
export function listenCounters(): ListenCounters {
  const out = Object.fromEntries(LISTEN_COUNTERS.map((k) => [k, NaN])) as ListenCounters;
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i++) {
      if (!lines[i]!.startsWith('TcpExt:') || !lines[i + 1]!.startsWith('TcpExt:')) continue;
      const names = lines[i]!.split(/\s+/);
      const vals = lines[i + 1]!.split(/\s+/);
      for (const k of LISTEN_COUNTERS) {
        const j = names.indexOf(k);
        if (j > 0) out[k] = Number(vals[j]);
      }
      break;
    }
  } catch {
    /* not Linux */
  }
  return out;
}

export function counterDelta(a: ListenCounters, b: ListenCounters): ListenCounters {
  return Object.fromEntries(LISTEN_COUNTERS.map((k) => [k, b[k] - a[k]])) as ListenCounters;
}

/** The backlog of the socket listening on 127.0.0.1:port (ss -ltn's Send-Q), or NaN without `ss`. */
export function listenBacklog(port: number): number {
  const r = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout) return NaN;
  // State Recv-Q Send-Q Local Peer
  const f = r.stdout.trim().split('\n')[0]!.trim().split(/\s+/);
  return Number(f[2]);
}

export const somaxconn = (): number => {
  try {
    return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
  } catch {
    return NaN;
  }
};
