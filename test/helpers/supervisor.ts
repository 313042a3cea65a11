// Start the real supervisor (built CLI) in front of the simulator (the `vllm`
// shim in bin/, first on PATH) with JSON-lines logs, on free loopback ports.
import assert from 'node:assert/strict';
import { binDir, fakeNvidiaSmiDir, freePort, isAlive, pathWith, startNode, waitFor, type Proc } from './process.js';

export const DEFAULT_MODEL = 'nvidia/nemotron-3-content-safety';

export interface Supervisor {
  proc: Proc;
  port: number;
  baseUrl: string;
  /** Parsed JSON log records so far. */
  logs(): Array<Record<string, unknown>>;
  /** Resolves with the engine's pid and private port once it is spawned. */
  engine(): Promise<{ pid: number; port: number }>;
  waitReady(timeoutMs?: number): Promise<void>;
}

export async function startSupervisor(env: Record<string, string | undefined> = {}, args: string[] = ['serve']): Promise<Supervisor> {
  const port = await freePort();
  const merged: NodeJS.ProcessEnv = {
    ...process.env,
    // bin/ gives the `vllm` shim. The fake nvidia-smi goes on PATH only with a FAKE_NVIDIA_SMI fixture:
    // without one it acts like a broken driver, a GPU host where serve refuses to fall back to the CPU.
    PATH: env.FAKE_NVIDIA_SMI !== undefined ? pathWith(binDir, fakeNvidiaSmiDir) : pathWith(binDir),
    NIM_SERVER_PORT: String(port),
    NIM_SERVER_HOST: '127.0.0.1',
    NIM_JSONL_LOGGING: '1',
    NIM_LOG_LEVEL: 'INFO',
    VLLM_SIM_STARTUP_MS: '50',
    VLLM_SIM_TOKEN_MS: '0',
    VLLM_SIM_TTFT_MS: '0',
  };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  const proc = startNode('src/cli/main.js', args, { env: merged });
  const baseUrl = `http://127.0.0.1:${port}`;
  const logs = (): Array<Record<string, unknown>> =>
    proc
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          const rec = JSON.parse(l) as Record<string, unknown>;
          // Records carry NIM's `message`; tests written against pino's `msg` still read it.
          return [{ msg: rec.message, ...rec }];
        } catch {
          return [];
        }
      });
  const engine = async (): Promise<{ pid: number; port: number }> =>
    await waitFor(
      () => {
        const rec = logs().find((r) => r.phase === 'spawned');
        return rec ? { pid: Number(rec.pid), port: Number(rec.port) } : undefined;
      },
      { timeoutMs: 15_000, what: 'engine spawn log line' },
    );
  const waitReady = async (timeoutMs = 20_000): Promise<void> => {
    await waitFor(
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`supervisor exited early:\n${proc.output().slice(-3000)}`);
        const r = await fetch(`${baseUrl}/v1/health/ready`);
        await r.arrayBuffer();
        return r.status === 200;
      },
      { timeoutMs, intervalMs: 25, what: 'readiness' },
    );
  };
  return { proc, port, baseUrl, logs, engine, waitReady };
}

/** Wait until a pid is gone (killed or exited), or throw. */
export async function waitGone(pid: number, timeoutMs = 5000): Promise<void> {
  await waitFor(() => !isAlive(pid), { timeoutMs, what: `pid ${pid} to exit` });
}

/** SIGTERM the supervisor: it must exit 0 (its output tail in the failure), and its engine must be gone. */
export async function stopCleanly(sup: Supervisor): Promise<void> {
  const { pid } = await sup.engine();
  sup.proc.kill('SIGTERM');
  const exit = await sup.proc.exited;
  assert.equal(exit.code, 0, sup.proc.output().slice(-2000));
  await waitGone(pid);
}

/** Read a whole SSE response as its `data:` payloads. */
export async function readSse(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .map((e) => e.trim())
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice('data: '.length));
}
