// serve's start-up path (issue #19, "launch → engine spawned"): what it loads
// before the engine is spawned, the logger that holds records until pino is
// loaded (src/log/deferred.ts), and the public port bound before the HTTP stack
// that serves it exists (src/server/public-listener.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { Config } from '../src/config/env.js';
import { ConfigError } from '../src/errors.js';
import { createDeferredLogger } from '../src/log/deferred.js';
import { isJsonl, sourceLogger } from '../src/log/source.js';
import { bindPublicPort } from '../src/server/public-listener.js';
import { repoRoot } from './helpers/process.js';

const chunks = path.join(repoRoot, 'dist', 'src', 'chunks');

/** The static import closure of a bundle chunk: its chunk files and the node: builtins they import. */
function staticClosure(entry: string): { files: Set<string>; builtins: Set<string> } {
  const files = new Set<string>();
  const builtins = new Set<string>();
  const walk = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const src = readFileSync(path.join(chunks, file), 'utf8');
    // Static imports only: `import … from "x"` and `import "x"` at the start of a line (dynamic import() is not followed).
    for (const m of src.matchAll(/^(?:import|export)\s[^;]*?["']([^"']+)["'];?$/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('node:')) builtins.add(spec);
      else if (spec.startsWith('./')) walk(spec.slice(2));
    }
    // Bundled CommonJS packages require builtins by name.
    for (const m of src.matchAll(/\b__require\("([^"]+)"\)/g)) builtins.add(m[1]!);
  };
  walk(entry);
  return { files, builtins };
}

function sourcesOf(file: string): string[] {
  const map = path.join(chunks, `${file}.map`);
  return existsSync(map) ? (JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] }).sources : [];
}

test('serve loads neither pino nor the HTTP stack before the engine is spawned', () => {
  const serveChunk = readdirSync(chunks).find((n) => /^serve-[A-Z0-9]+\.js$/.test(n));
  assert.ok(serveChunk, `no serve chunk in ${chunks} (run npm run build)`);
  const { files, builtins } = staticClosure(serveChunk);
  for (const heavy of ['node:http', 'node:https', 'node:tls', 'node:worker_threads', 'http', 'https', 'tls', 'worker_threads']) {
    assert.ok(!builtins.has(heavy), `serve's static imports load ${heavy}`);
  }
  const pino = [...files].filter((f) => sourcesOf(f).some((s) => s.includes('node_modules/pino/')));
  assert.deepEqual(pino, [], 'serve statically imports pino');
  // What it does load: the engine supervisor, planning and the port's listener.
  const sources = [...files].flatMap(sourcesOf).map((s) => s.replace(/^(\.\.\/)+/, ''));
  for (const needed of ['src/engine/supervisor.ts', 'src/cli/plan.ts', 'src/server/public-listener.ts', 'src/log/deferred.ts']) {
    assert.ok(sources.includes(needed), `${needed} is not in serve's static imports`);
  }
});

function collect(): { stream: PassThrough; lines: () => Record<string, unknown>[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString('utf8')));
  return { stream, lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('the deferred logger holds records, then writes them in order with the time each was made', async () => {
  const out = collect();
  const { logger, load } = createDeferredLogger({ level: 'info', jsonl: true, destination: out.stream });
  const engine = sourceLogger(logger, 'engine');
  const worker = logger.child({ worker: 1 });
  assert.equal(isJsonl(logger), true);
  assert.equal(isJsonl(engine), true);
  const before = Date.now();
  logger.info({ port: 8000 }, 'serving on');
  engine.warn('an engine line');
  logger.debug('below the level');
  worker.info('from a child');
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(out.lines(), [], 'nothing is written before load()');
  await load();
  await load(); // idempotent
  logger.error('after load');
  const lines = out.lines();
  assert.deepEqual(
    lines.map((l) => [l.level, l.source, l.message]),
    [
      ['INFO', 'supervisor', 'serving on'],
      ['WARNING', 'engine', 'an engine line'],
      ['INFO', 'supervisor', 'from a child'],
      ['ERROR', 'supervisor', 'after load'],
    ],
  );
  assert.equal(lines[0]!.port, 8000);
  assert.equal(lines[2]!.worker, 1);
  // Held records keep the time they were made, not the time they were written.
  const heldAt = Date.parse(String(lines[0]!.time));
  assert.ok(heldAt >= before - 1 && heldAt < before + 25, `held record stamped ${lines[0]!.time}, made at ${new Date(before).toISOString()}`);
  assert.ok(Date.parse(String(lines[3]!.time)) >= heldAt + 25);
});

test('the deferred logger: a readable (non-JSON) root, and records held at exit are not lost', () => {
  const out = collect();
  const { logger } = createDeferredLogger({ level: 'info', jsonl: false, destination: out.stream });
  assert.equal(isJsonl(logger), false);
  // A process that exits before load(): its held records are written to stdout as JSON lines.
  const deferred = path.join(repoRoot, 'dist', 'src', 'log', 'deferred.js');
  const script = `
    import { createDeferredLogger } from ${JSON.stringify(deferred)};
    const { logger } = createDeferredLogger({ level: 'info', jsonl: false });
    logger.debug('below the level');
    logger.child({ component: 'x' }).warn({ code: 7 }, 'held at exit');
    process.exit(3);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 3, r.stderr);
  const rec = JSON.parse(r.stdout.trim()) as Record<string, unknown>;
  assert.equal(rec.level, 'WARNING');
  assert.equal(rec.message, 'held at exit');
  assert.equal(rec.source, 'supervisor');
  assert.equal(rec.component, 'x');
  assert.equal(rec.code, 7);
});

test('the deferred logger: records held when a signal ends start-up are written, errors and BigInts included, and the signal still ends it', () => {
  const deferred = path.join(repoRoot, 'dist', 'src', 'log', 'deferred.js');
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const script = `
      import { createDeferredLogger } from ${JSON.stringify(deferred)};
      const { logger } = createDeferredLogger({ level: 'info', jsonl: true });
      logger.info({ big: 12345678901234567890n }, 'serving on');
      logger.error(new Error('boom'));
      logger.warn({ err: new TypeError('inner') }, 'with an error field');
      process.kill(process.pid, '${signal}');
      setTimeout(() => undefined, 5000);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.signal, signal, `${signal}: ${r.stderr}`);
    const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(recs.map((x) => x.message), ['serving on', 'boom', 'with an error field'], signal);
    assert.equal(recs[0]!.big, '12345678901234567890');
    assert.deepEqual([(recs[1]!.err as Record<string, unknown>).type, (recs[1]!.err as Record<string, unknown>).message], ['Error', 'boom']);
    assert.deepEqual([(recs[2]!.err as Record<string, unknown>).type, (recs[2]!.err as Record<string, unknown>).message], ['TypeError', 'inner']);
  }
  // When something else handles the signal (serve, once it is under way), the deferred logger leaves it to that.
  const handled = `
    import { createDeferredLogger } from ${JSON.stringify(deferred)};
    const { logger, load } = createDeferredLogger({ level: 'info', jsonl: true });
    process.on('SIGTERM', async () => { await load(); logger.info('stopping'); process.exit(0); });
    logger.info('held');
    process.kill(process.pid, 'SIGTERM');
    setTimeout(() => undefined, 5000);`;
  const h = spawnSync(process.execPath, ['--input-type=module', '-e', handled], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(h.status, 0, h.stderr);
  assert.deepEqual(h.stdout.trim().split('\n').map((l) => (JSON.parse(l) as Record<string, unknown>).message), ['held', 'stopping']);
  // A signal caught while load() finishes is not lost (loading must not leave it without a listener):
  // with nobody else handling it, it still ends the process.
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    const racing = `
      import { createDeferredLogger } from ${JSON.stringify(deferred)};
      await createDeferredLogger({ level: 'info', jsonl: true }).load(); // pino cached: the next load() settles at once
      const { logger, load } = createDeferredLogger({ level: 'info', jsonl: true });
      logger.info('held');
      process.kill(process.pid, '${signal}');
      await load();
      setTimeout(() => { console.log('still alive'); process.exit(0); }, 1000);`;
    const x = spawnSync(process.execPath, ['--input-type=module', '-e', racing], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(x.signal, signal, `${signal} lost: ${x.stdout}`);
  }
});

function config(port: number): Config {
  return { serverHost: '127.0.0.1', serverPort: port, listenBacklog: 511, maxConnections: 0 } as Config;
}

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/early', agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

test('the public port is bound before its server exists: early connections are served once it is attached', async () => {
  const listener = await bindPublicPort(config(0));
  const port = (listener.server.address() as net.AddressInfo).port;
  try {
    // Requests sent before anything serves the port wait for it (they are not refused).
    const early = [get(port), get(port)];
    await new Promise((r) => setTimeout(r, 100));
    const server = http.createServer((req, res) => res.end(`served ${req.url}`));
    listener.attach((socket) => {
      server.emit('connection', socket);
      socket.resume();
    });
    for (const r of await Promise.all(early)) assert.deepEqual(r, { status: 200, body: 'served /early' });
    assert.deepEqual(await get(port), { status: 200, body: 'served /early' });
    server.close();
  } finally {
    listener.destroy();
  }
});

test('a public port in use is a ConfigError (exit 2) naming the port and NIM_SERVER_PORT', async () => {
  const first = await bindPublicPort(config(0));
  const port = (first.server.address() as net.AddressInfo).port;
  try {
    await assert.rejects(bindPublicPort(config(port)), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.exitCode, 2);
      assert.match(err.message, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
      assert.match(err.hint ?? '', /NIM_SERVER_PORT/);
      return true;
    });
  } finally {
    first.destroy();
  }
});
