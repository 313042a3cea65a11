// `download-to-cache`: a progress bar in a real terminal (tmux), periodic lines
// when stderr is a pipe, and a cache that `serve` then uses offline.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFixtureHub, type FixtureHub } from './helpers/fixture-hub.js';
import { distDir, repoRoot, startNode, waitFor } from './helpers/process.js';
import { tinyModelFiles } from './helpers/tiny-model.js';

const REPO = 'test-org/tiny-llama';
const files = tinyModelFiles({ shardBytes: 256 * 1024 });
let hub: FixtureHub;
const dirs: string[] = [];
const socket = `nim-test-${process.pid}`;
const hasTmux = (() => {
  try {
    execFileSync('tmux', ['-V']);
    return true;
  } catch {
    return false;
  }
})();

before(async () => {
  hub = await startFixtureHub({ [REPO]: { files } });
});
after(async () => {
  if (hasTmux) {
    try {
      execFileSync('tmux', ['-L', socket, 'kill-server'], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
  await hub.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tmpCache(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'nim-dtc-'));
  dirs.push(d);
  return d;
}

describe('download-to-cache', () => {
  it('draws a progress bar in a real terminal (tmux) and fills the cache', { skip: hasTmux ? false : 'tmux is not installed' }, async () => {
    const cache = await tmpCache();
    hub.knobs.bytesPerSecond = 200 * 1024;
    const cli = path.join(distDir, 'src', 'cli', 'main.js');
    const cmd = `cd ${repoRoot} && NIM_MODEL_PATH=hf://${REPO} HF_ENDPOINT=${hub.url} NIM_CACHE_PATH=${cache} ${process.execPath} ${cli} download-to-cache --all; echo "EXIT=$?"; sleep 60`;
    execFileSync('tmux', ['-L', socket, 'new-session', '-d', '-s', 'dtc', '-x', '160', '-y', '12', cmd]);
    const pane = (): string => execFileSync('tmux', ['-L', socket, 'capture-pane', '-p', '-t', 'dtc'], { encoding: 'utf8' });
    try {
      // Mid-download: a partly filled bar with percent, bytes, rate, ETA and files.
      const mid = await waitFor(() => pane().split('\n').find((l) => /\[█+░+\]\s+\d+%\s+.* \/ .*\/s\s+ETA .*\d+\/\d+ files/.test(l)), { timeoutMs: 30_000, intervalMs: 50, what: 'a progress bar in the pane' });
      assert.match(mid, /^\[/);
      hub.knobs.bytesPerSecond = 0;
      const done = await waitFor(() => (/EXIT=\d+/.test(pane()) ? pane() : undefined), { timeoutMs: 30_000, what: 'the command to finish' });
      assert.match(done, /EXIT=0/);
      assert.match(done, /\[█{10,}\] 100%/);
      assert.match(done, /Cached hf:\/\/test-org\/tiny-llama \(commit [0-9a-f]{40}\): \d+ files/);
    } finally {
      hub.knobs.bytesPerSecond = 0;
    }
    await stat(path.join(cache, 'huggingface', 'hub', 'models--test-org--tiny-llama', 'snapshots', hub.commitOf(REPO), 'config.json'));
  });

  it('prints periodic progress lines when stderr is not a terminal; checks --profile names', async () => {
    const cache = await tmpCache();
    const env = { ...process.env, NIM_MODEL_PATH: `hf://${REPO}`, HF_ENDPOINT: hub.url, NIM_CACHE_PATH: cache, NIM_DOWNLOAD_LOG_INTERVAL: '0.1' };
    const bad = startNode('src/cli/main.js', ['download-to-cache', '--profile', 'vllm-fp8-tp9-pp1'], { env });
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.stderr(), /--profile "vllm-fp8-tp9-pp1" matches no profile.*valid values: default, [0-9a-f]{8,64} \(vllm-bf16-tp1-pp1\)/s);

    hub.knobs.bytesPerSecond = 400 * 1024;
    const ok = startNode('src/cli/main.js', ['download-to-cache', '-p', 'vllm-bf16-tp2-pp1'], { env });
    try {
      await ok.waitForOutput(/downloading test-org\/tiny-llama: .*\(\d+%\)/, 30_000);
    } finally {
      hub.knobs.bytesPerSecond = 0;
    }
    assert.equal((await ok.exited).code, 0, ok.output());
    assert.doesNotMatch(ok.stderr(), /\r|█/);
    assert.match(ok.stdout(), /Cached hf:\/\/test-org\/tiny-llama .* Serve offline with NIM_CACHE_PATH=.* NIM_DISABLE_MODEL_DOWNLOAD=1/s);

    // Offline afterwards, the plan commands work from the cache alone.
    const sel = startNode('src/cli/main.js', ['select-profile', '--json'], { env: { ...env, HF_ENDPOINT: 'http://127.0.0.1:9', NIM_DISABLE_MODEL_DOWNLOAD: '1', NIM_MODEL_PROFILE: 'vllm-bf16-cpu' } });
    assert.equal((await sel.exited).code, 0, sel.output());
    assert.match(sel.stdout(), /HF_HUB_OFFLINE/);
    assert.match(sel.stdout(), /snapshots\/[0-9a-f]{40}/);
  });
});
