// The bare Node TCP relay (bench/relay.ts) as a measured path: Node's own floor per event and per open.
import path from 'node:path';
import { findFreePort } from '../../src/engine/port.js';
import { tcpOpen } from './nginx.js';
import { running, startChild, stopChild, waitFor, type Child } from './proc.js';
import type { Tree } from './proctree.js';

export interface Relay {
  proc: Child;
  port: number;
  tree: Tree;
}

/** The relay on a free port in front of `enginePort`; `processes` > 1 runs it as that many node:cluster workers. */
export async function startRelay(distDir: string, enginePort: number, backlog: number, processes = 1): Promise<Relay> {
  const port = await findFreePort();
  const proc = startChild('relay', process.execPath, [path.join(distDir, 'bench', 'relay.js'), String(port), String(enginePort), String(backlog), String(processes)]);
  await waitFor(
    'the Node relay listening',
    async () => {
      if (!running(proc)) throw new Error(`the Node relay exited: ${proc.out()}`);
      return (await tcpOpen(port)) ? true : undefined;
    },
    10_000,
    20,
  );
  return { proc, port, tree: { root: proc.pid, exclude: [] } };
}

export async function stopRelay(r: Relay): Promise<void> {
  await stopChild(r.proc, 'SIGTERM', 5000);
}
