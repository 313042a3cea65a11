// Fatal paths as an operator sees them: each error printed once, as the one
// closing line on stderr (and the last JSON record in JSON-lines mode); an
// engine that dies at start-up is quoted by its root cause, a flag vLLM rejects
// by argparse's own message; long lists are cut; a missing vllm names npm start.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { binDir, fakeNvidiaSmiDir, freePort, pathWith, repoRoot, run } from './helpers/process.js';
import { startSupervisor } from './helpers/supervisor.js';

/** The supervisor's own output in readable mode, the closing line on stderr. */
async function failingServe(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const sup = await startSupervisor({ NIM_JSONL_LOGGING: '0', ...env });
  const exit = await sup.proc.exited;
  await new Promise((r) => setTimeout(r, 50));
  return { code: exit.code, stdout: sup.proc.stdout(), stderr: sup.proc.stderr() };
}

describe('fatal errors, printed once', () => {
  test('an engine that dies at start-up: the closing line quotes the CUDA OOM line, not "See root cause above"', async () => {
    const r = await failingServe({ VLLM_SIM_FAIL_AT_STARTUP: '1' });
    assert.equal(r.code, 1);
    const closing = r.stderr.trim().split('\n');
    assert.equal(closing.length, 1, `one closing line:\n${r.stderr}`);
    assert.match(closing[0]!, /^nim-supervisor: error: engine exited with code 1 while loading the model; root cause: torch\.OutOfMemoryError: CUDA out of memory\. Tried to allocate/);
    assert.match(closing[0]!, /NIM_MAX_MODEL_LEN/);
    assert.doesNotMatch(closing[0]!, /See root cause above/);
    // Said once: not again in the log, neither as an ERROR record nor in the state change.
    assert.doesNotMatch(r.stdout, /engine exited with code 1/);
    // The traceback itself is forwarded at ERROR.
    assert.match(r.stdout, /ERROR +\[engine\] \(EngineCore_DP0 pid=\d+\) torch\.OutOfMemoryError/);
  });

  test('a flag vLLM rejects: the closing line quotes argparse, never the start-up timeout', async () => {
    // vLLM 0.31 removed --disable-log-requests (PR #35723): argparse exits 2 at once.
    const r = await failingServe({ NIM_PASSTHROUGH_ARGS: '--disable-log-requests', VLLM_SIM_VERSION: '0.31' });
    assert.equal(r.code, 2);
    const closing = r.stderr.trim().split('\n');
    assert.equal(closing.length, 1, r.stderr);
    assert.match(closing[0]!, /^nim-supervisor: error: engine exited with code 2 while loading the model; vLLM rejected its command line: vllm: error: unrecognized arguments: --disable-log-requests \(.*NIM_PASSTHROUGH_ARGS/);
    assert.doesNotMatch(closing[0]!, /NIM_STARTUP_TIMEOUT|raise/);
    assert.match(r.stdout, /ERROR +\[engine\] vllm: error: unrecognized arguments/);
  });

  test('an unknown NIM_MODEL_PROFILE: one short line, short ids, "and N more"', async () => {
    const r = await failingServe({ NIM_MODEL_PROFILE: 'nope', NIM_MANIFEST_PATH: path.join(repoRoot, 'manifests', 'gemma-3-27b-it.yaml') });
    assert.equal(r.code, 2);
    const closing = r.stderr.trim().split('\n');
    assert.equal(closing.length, 1, r.stderr);
    assert.match(closing[0]!, /NIM_MODEL_PROFILE="nope" matches no profile of google\/gemma-3-27b-it/);
    assert.match(closing[0]!, /valid values: default, [0-9a-f]{8} \(vllm-[\w-]+\), .* and \d+ more; `nim-supervisor list-model-profiles` lists every profile/);
    assert.doesNotMatch(closing[0]!, /[0-9a-f]{64}/);
    assert.ok(closing[0]!.length < 500, `short: ${closing[0]!.length} characters`);
    assert.doesNotMatch(r.stdout, /nope/, 'not printed again in the log');
  });

  test('JSON lines: the fatal error is also the last record, with its exit code', async () => {
    const sup = await startSupervisor({ NIM_MODEL_PROFILE: 'nope' });
    const exit = await sup.proc.exited;
    assert.equal(exit.code, 2);
    const fatal = sup.logs().filter((r) => r.level === 'CRITICAL');
    assert.equal(fatal.length, 1);
    assert.equal(fatal[0]!.exitCode, 2);
    assert.match(String(fatal[0]!.message ?? fatal[0]!.msg), /matches no profile/);
    assert.equal(sup.proc.stderr().trim().split('\n').length, 1);
  });

  test('`npx nim-supervisor serve` without vllm on PATH: the hint names npm start and the simulator', async () => {
    const r = await run('npx', ['nim-supervisor', 'serve'], {
      env: { ...process.env, NIM_SERVER_PORT: String(await freePort()), NIM_SERVER_HOST: '127.0.0.1', npm_config_update_notifier: 'false', PATH: (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== binDir).join(path.delimiter) },
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /^nim-supervisor: error: engine executable "vllm" not found on PATH \(.*`npm start` runs the supervisor on the bundled vLLM simulator, or set NIM_ENGINE_COMMAND=\.\/bin\/vllm\)\n$/);
  });
});
