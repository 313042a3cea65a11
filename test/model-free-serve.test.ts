// Model-free serving end to end: the real supervisor (built CLI) with
// NIM_MODEL_PATH=hf://… against the fixture hub on loopback, the simulator as
// the engine loading the cached snapshot offline.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFixtureHub, type FixtureHub } from './helpers/fixture-hub.js';
import { waitFor } from './helpers/process.js';
import { startSupervisor, type Supervisor } from './helpers/supervisor.js';
import { tinyModelFiles } from './helpers/tiny-model.js';

const REPO = 'test-org/tiny-llama';
const files = tinyModelFiles({ shardBytes: 640 * 1024 });
const modelBytes = files.filter((f) => !/pytorch_model|original|README|gitattributes/.test(f.path)).reduce((a, f) => a + f.content.length, 0);

let hub: FixtureHub;
const dirs: string[] = [];
async function tmpCache(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'nim-mf-'));
  dirs.push(d);
  return d;
}

function env(cache: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    NIM_MODEL_PATH: `hf://${REPO}`,
    NIM_CACHE_PATH: cache,
    HF_ENDPOINT: hub.url,
    HF_TOKEN: undefined,
    HF_HUB_OFFLINE: undefined,
    NIM_DOWNLOAD_LOG_INTERVAL: '0.2',
    ...extra,
  };
}

async function readiness(sup: Supervisor): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${sup.baseUrl}/v1/health/ready`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function stop(sup: Supervisor): Promise<void> {
  sup.proc.kill('SIGTERM');
  await sup.proc.exited;
}

before(async () => {
  hub = await startFixtureHub({ [REPO]: { files } });
});
after(async () => {
  await hub.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('NIM_MODEL_PATH=hf://… (model-free)', () => {
  it('downloads with progress before the engine, serves, then serves again offline from the cache with the hub down', async () => {
    const cache = await tmpCache();
    hub.knobs.bytesPerSecond = 400 * 1024; // ~3 s: long enough to watch
    const sup = await startSupervisor(env(cache));
    let seen: Record<string, unknown> | undefined;
    let metrics = '';
    try {
      seen = await waitFor(
        async () => {
          const { body } = await readiness(sup);
          const d = body.download as Record<string, number> | undefined;
          const logged = sup.logs().some((l) => /^downloading test-org\/tiny-llama: /.test(String(l.msg)));
          if (body.status === 'downloading' && d && d.bytes_done! > 0 && d.bytes_done! < d.bytes_total! && logged) {
            metrics = await (await fetch(`${sup.baseUrl}/v1/metrics`)).text();
            return body;
          }
          return undefined;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: 'readiness with download progress' },
      );
      hub.knobs.bytesPerSecond = 0;
      await sup.waitReady(60_000);
    } finally {
      hub.knobs.bytesPerSecond = 0;
    }
    const d = seen.download as Record<string, number>;
    assert.equal(d.bytes_total, modelBytes);
    assert.ok(d.files_total! >= 8 && typeof d.rate_bytes_per_second === 'number' && 'eta_seconds' in d, JSON.stringify(d));
    assert.match(String(seen.message), /downloading|test-org\/tiny-llama/);
    assert.match(metrics, /nim_supervisor_download_model_bytes\{state="total"\} \d+/);

    // Progress lines in the log; the engine started offline on the snapshot.
    const logs = sup.logs();
    assert.ok(logs.some((l) => /^downloading test-org\/tiny-llama: .* of .* \(\d+%\), \d+ of \d+ files, .*\/s, ETA/.test(String(l.msg))), 'a progress line');
    const cmd = String(logs.find((l) => l.msg === 'engine command')?.command);
    assert.match(cmd, /HF_HUB_OFFLINE=1/);
    assert.match(cmd, new RegExp(`serve ${cache.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/huggingface/hub/models--test-org--tiny-llama/snapshots/${hub.commitOf(REPO)} `));
    assert.match(cmd, /--served-model-name test-org\/tiny-llama/);
    assert.match(sup.proc.output(), /Using max model len 2048/); // read from the snapshot's config.json

    const chat = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: REPO, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
    });
    assert.equal(chat.status, 200);
    const ready = await readiness(sup);
    assert.equal(ready.status, 200);
    const after = await (await fetch(`${sup.baseUrl}/v1/metrics`)).text();
    assert.match(after, new RegExp(`nim_supervisor_download_model_bytes\\{state="done"\\} ${modelBytes}`));
    await stop(sup);

    // Second start: the hub is down (every request refused) and downloads are disabled; NIM 1.x's variable name.
    hub.knobs.fail = { status: 503, times: 1_000_000 };
    const before = hub.requests.length;
    try {
      const again = await startSupervisor(env(cache, { NIM_MODEL_PATH: undefined, NIM_MODEL_NAME: `hf://${REPO}`, NIM_DISABLE_MODEL_DOWNLOAD: '1', HF_ENDPOINT: 'http://127.0.0.1:9' }));
      await again.waitReady(30_000);
      assert.ok(again.logs().some((l) => /NIM_MODEL_NAME is the NIM 1\.x name of NIM_MODEL_PATH.*: read as NIM_MODEL_PATH/.test(String(l.msg))));
      assert.ok(again.logs().some((l) => /already in the cache/.test(String(l.msg))));
      const models = (await (await fetch(`${again.baseUrl}/v1/models`)).json()) as { data: Array<{ id: string }> };
      assert.equal(models.data[0]!.id, REPO);
      await stop(again);
    } finally {
      hub.knobs.fail = undefined;
    }
    assert.equal(hub.requests.length, before, 'no request reached the hub');
  });

  it('a supervisor killed mid-download resumes on restart (bytes fetched in total < 1.2 × the model)', async () => {
    const cache = await tmpCache();
    const start = hub.bytesServed();
    hub.knobs.bytesPerSecond = 300 * 1024;
    const sup = await startSupervisor(env(cache));
    try {
      await waitFor(
        async () => {
          const d = (await readiness(sup)).body.download as Record<string, number> | undefined;
          return d !== undefined && d.bytes_done! > modelBytes * 0.4;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: '40% downloaded' },
      );
      sup.proc.kill('SIGKILL'); // while still throttled: the kill lands mid-file
      await sup.proc.exited;
    } finally {
      hub.knobs.bytesPerSecond = 0;
    }
    const again = await startSupervisor(env(cache));
    await again.waitReady(60_000);
    const served = hub.bytesServed() - start;
    assert.ok(served < modelBytes * 1.2, `fetched ${served} bytes in total for a ${modelBytes}-byte model`);
    assert.ok(hub.requests.some((r) => r.range !== undefined && /^bytes=[1-9]\d*-$/.test(r.range)), 'a ranged (resumed) request');
    await stop(again);
  });

  it('401 from a gated repo without HF_TOKEN: one clear line, exit 2, no engine', async () => {
    const cache = await tmpCache();
    const sup = await startSupervisor(env(cache, { NIM_MODEL_PATH: 'hf://test-org/private-thing' }));
    const exit = await sup.proc.exited;
    assert.equal(exit.code, 2);
    assert.match(sup.proc.stderr(), /error: model test-org\/private-thing was not found, or is private and needs a token \(HTTP 401\) \(check the name; for a private or gated model set HF_TOKEN\)/);
    assert.ok(!sup.logs().some((l) => l.msg === 'engine process spawned'));
  });
});
