// The benchmark's own parts that can be checked without load: h2load's summary,
// the README markers, nginx's generated config, the process-tree accounting,
// and the raw SSE client (chunked framing split at awkward places).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseH2load } from '../bench/lib/h2load.js';
import { renderReadme, updateReadme, START, END } from '../bench/lib/readme.js';
import { nginxConf } from '../bench/lib/nginx.js';
import { cpuBetween, treePids, usage } from '../bench/lib/proctree.js';
import { launchCommand, supervisorEntry } from '../bench/lib/supervisor.js';

const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = path.resolve(distRoot, '..');

test('parseH2load reads the counts, the duration and the mean time per request', () => {
  const out = `finished in 1.50s, 6666.67 req/s, 4.40MB/s
requests: 10000 total, 10000 started, 10000 done, 9998 succeeded, 2 failed, 2 errored, 0 timeout
status codes: 9998 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 6.60MB (6920000) total, 1.20MB (1260000) headers (space savings 0.00%), 5.30MB (5560000) data
                     min         max         mean         sd        +/- sd
time for request:      201us     12.34ms      2.38ms       1.1ms    80.00%
`;
  const r = parseH2load(out);
  assert.equal(r.requests, 10000);
  assert.equal(r.succeeded, 9998);
  assert.equal(r.failed, 2);
  assert.equal(r.status2xx, 9998);
  assert.equal(r.seconds, 1.5);
  assert.equal(r.meanMs, 2.38);
  assert.throws(() => parseH2load('connect: Connection refused'), /h2load gave no summary/);
});

test('the README block is replaced between the markers, and missing markers are an error naming them', () => {
  const readme = `# x\n\n${START}\nold table\n${END}\n\nafter\n`;
  const block = renderReadme(
    { timestamp: '2026-11-29T12:00:00.000Z', machine: { cores: 2, cpuModel: 'CPU', node: 'v20', loadAverageAtStart: '1.00 1.00 1.00' }, events: { summary: { direct: { usPerEvent: 30 }, supervisor: { usPerEvent: 40 }, relay: { usPerEvent: 35 }, nginx: { usPerEvent: 20 } } } },
    [{ name: 'CPU per forwarded SSE event, supervisor / nginx', figure: '2.00×', limit: '≤ 1.5×', met: false }],
  );
  const next = updateReadme(readme, block);
  assert.ok(next.startsWith(`# x\n\n${START}\nLatest run: 2026-11-29 12:00 UTC`));
  assert.ok(next.endsWith(`${END}\n\nafter\n`));
  assert.ok(!next.includes('old table'));
  assert.match(next, /\| CPU per forwarded SSE event, µs \(direct: the engine's\) \| 30\.00 \| 40\.00 \| 35\.00 \| 20\.00 \|/);
  assert.match(next, /\| 2\.00× \| ≤ 1\.5× \| \*\*not met\*\* \|/);
  assert.equal(updateReadme(next, block), next, 'regenerating is idempotent');
  assert.throws(() => updateReadme('# no markers\n', block), /bench:start/);
});

test('nginx gets the same listen backlog and the pass-through settings', () => {
  const conf = nginxConf('/tmp/x', 8080, 9090, 2, 4096);
  assert.match(conf, /listen 127\.0\.0\.1:8080 backlog=4096;/);
  assert.match(conf, /worker_processes 2;/);
  assert.match(conf, /server 127\.0\.0\.1:9090;/);
  assert.match(conf, /proxy_buffering off;/);
});

test('the supervisor entry comes from package.json bin["nim-supervisor"] and runs under node', () => {
  const entry = supervisorEntry(repoRoot);
  assert.ok(entry.startsWith(repoRoot));
  assert.deepEqual(launchCommand('/x/main.js'), { command: process.execPath, args: ['/x/main.js'] });
  assert.deepEqual(launchCommand('/x/nim-supervisor'), { command: '/x/nim-supervisor', args: [] });
});

test('a process tree is its root and descendants minus excluded subtrees; CPU is summed over it', async () => {
  // sh → sleep (kept) and sh → sh → sleep (excluded)
  const child = spawn('sh', ['-c', 'sleep 5 & sh -c "sleep 5; :" & wait'], { stdio: 'ignore' });
  try {
    let pids: number[] = [];
    for (let i = 0; i < 100 && pids.length < 4; i++) {
      await new Promise((r) => setTimeout(r, 20));
      pids = treePids(child.pid!);
    }
    assert.equal(pids.length, 4, `tree: ${pids.join(' ')}`);
    const inner = pids.find((p) => p !== child.pid && treePids(p).length === 2)!;
    assert.ok(inner, 'the inner sh with its sleep');
    assert.equal(treePids(child.pid!, [inner]).length, 2);
    const a = usage({ root: child.pid!, exclude: [] });
    const b = usage({ root: child.pid!, exclude: [] });
    assert.ok(cpuBetween(a, b).seconds >= 0);
    assert.ok(a.rssBytes > 0);
  } finally {
    for (const p of treePids(child.pid!).reverse()) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
});

test('the raw SSE client decodes chunked framing split anywhere and counts events', async () => {
  const events = 40;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Odd write sizes split "\n\n" and chunk boundaries at every position.
      const text = Array.from({ length: events - 1 }, (_, i) => `data: {"i":${i}}\n\n`).join('') + 'data: [DONE]\n\n';
      let i = 0;
      const step = (): void => {
        if (i >= text.length) return void res.end();
        const n = 1 + (i % 7);
        res.write(text.slice(i, i + n));
        i += n;
        setImmediate(step);
      };
      step();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(process.execPath, [path.join(distRoot, 'bench', 'stream-client.js'), JSON.stringify({ port, streams: 20, body: '{}', expectEvents: events, batch: 10, batchGapMs: 5, timeoutMs: 20_000 })]);
      let s = '';
      c.stdout.on('data', (d: Buffer) => (s += d.toString()));
      c.on('exit', () => resolve(s));
      c.on('error', reject);
    });
    const r = JSON.parse(/STREAM_JSON (\{.*\})/.exec(out)![1]!) as { ok: number; errors: number; events: number; peakConnected: number; slowConnects: number };
    assert.equal(r.errors, 0, out);
    assert.equal(r.ok, 20);
    assert.equal(r.events, 20 * events);
    assert.equal(r.slowConnects, 0);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
