// The edge's engine connections (src/edge/engine-pool.ts) against a real TCP
// server on 127.0.0.1. Engine sockets read into one buffer shared by the
// process; these tests pin what makes that safe: every read reaches its owner
// as a Buffer of its own, whatever other sockets read afterwards, and pausing
// (the proxy's backpressure), end of stream and stray bytes behave as with
// ordinary 'data' events.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { EnginePool, type PooledSocket, type SocketOwner } from '../src/edge/engine-pool.js';

/** Collects what a pooled socket reports; `next()` resolves on the next chunk. */
class Owner implements SocketOwner {
  chunks: Buffer[] = [];
  closed = false;
  errors: string[] = [];
  #waiters: Array<() => void> = [];
  onUpstreamData(chunk: Buffer): void {
    this.chunks.push(chunk);
    for (const w of this.#waiters.splice(0)) w();
  }
  onUpstreamError(err: NodeJS.ErrnoException): void {
    this.errors.push(err.code ?? err.message);
  }
  onUpstreamClose(): void {
    this.closed = true;
    for (const w of this.#waiters.splice(0)) w();
  }
  /** Resolves once `pred` holds (checked on every report), or rejects after 5 s. */
  until(pred: () => boolean, what: string): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 5000);
      const check = (): void => {
        if (pred()) {
          clearTimeout(timer);
          resolve();
        } else this.#waiters.push(check);
      };
      this.#waiters.push(check);
    });
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
}

let server: net.Server;
let port: number;
/** Server-side ends of the connections, in accept order. */
const peers: net.Socket[] = [];
let accepted: Array<(s: net.Socket) => void> = [];

before(async () => {
  server = net.createServer((s) => {
    peers.push(s);
    s.on('error', () => {});
    const w = accepted.shift();
    if (w) w(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
after(async () => {
  for (const p of peers) p.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

/** Runs `fn` with a fresh pool, destroyed afterwards whether `fn` passed or threw. */
async function withPool(fn: (pool: EnginePool) => Promise<void>): Promise<void> {
  const pool = new EnginePool({ idleMs: 10_000 });
  try {
    await fn(pool);
  } finally {
    pool.destroy();
  }
}

/** A pooled connection and the server's end of it. */
async function connect(pool: EnginePool, owner: Owner): Promise<{ up: PooledSocket; peer: net.Socket }> {
  const peer = new Promise<net.Socket>((r) => accepted.push(r));
  const up = pool.connectNew('127.0.0.1', port, owner);
  return { up, peer: await peer };
}

test('each read reaches its owner as its own bytes, whatever other engine sockets read next', async () => {
  await withPool(async (pool) => {
    const a = new Owner();
    const b = new Owner();
    const ca = await connect(pool, a);
    const cb = await connect(pool, b);
    // Reads of different lengths and contents, alternating between the two sockets.
    const sends: Array<[net.Socket, Owner, string]> = [
      [ca.peer, a, 'data: {"id":"a1","choices":[]}\n\n'],
      [cb.peer, b, 'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'],
      [ca.peer, a, 'x'],
      [cb.peer, b, 'data: [DONE]\n\n'],
      [ca.peer, a, 'z'.repeat(100_000)], // more than one read
    ];
    for (const [peer, owner, text] of sends) {
      const before = owner.text().length;
      peer.write(text);
      await owner.until(() => owner.text().length === before + text.length, `${text.length} bytes`);
    }
    // Every chunk kept still holds what was read into it.
    assert.equal(a.text(), `data: {"id":"a1","choices":[]}\n\nx${'z'.repeat(100_000)}`);
    assert.equal(b.text(), `${'B'.repeat(62)}data: [DONE]\n\n`);
    assert.ok(a.chunks.length >= 4, 'the large write came in several reads');
  });
});

test('a paused engine socket delivers nothing until resumed (backpressure), then the rest in order', async () => {
  await withPool(async (pool) => {
    const o = new Owner();
    const { up, peer } = await connect(pool, o);
    peer.write('first');
    await o.until(() => o.text() === 'first', 'the first bytes');
    up.pause();
    peer.write('second');
    // Round trips through the server prove the bytes were sent while the socket stayed paused.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    await new Promise<void>((r) => peer.write('', () => r()));
    assert.equal(o.text(), 'first', 'nothing delivered while paused');
    up.resume();
    await o.until(() => o.text() === 'firstsecond', 'the rest after resume');
  });
});

test('a socket paused by its exchange is released reading: the next request on it gets its answer', async () => {
  // The exchange pauses the engine socket when its client is slow; when that same read completed the response the
  // socket goes back to the pool paused. Handed out paused, the next request's answer would never be read.
  await withPool(async (pool) => {
    const o = new Owner();
    const { up, peer } = await connect(pool, o);
    peer.write('response 1');
    await o.until(() => o.text() === 'response 1', 'the first response');
    up.pause();
    pool.release(up);
    const o2 = new Owner();
    const again = pool.take('127.0.0.1', port, o2);
    assert.equal(again, up, 'the pooled socket is reused');
    assert.equal(again.isPaused(), false);
    peer.write('response 2');
    await o2.until(() => o2.text() === 'response 2', 'the second response');
  });
});

test('the engine closing its end is reported; bytes on an idle pooled socket drop it', async () => {
  await withPool(async (pool) => {
    const o = new Owner();
    const c1 = await connect(pool, o);
    c1.peer.end('last bytes');
    await o.until(() => o.closed, 'close');
    assert.equal(o.text(), 'last bytes');
    assert.deepEqual(o.errors, []);

    const o2 = new Owner();
    const c2 = await connect(pool, o2);
    c2.peer.write('ok');
    await o2.until(() => o2.text() === 'ok', 'a response');
    pool.release(c2.up);
    const closed = new Promise<void>((r) => c2.up.once('close', () => r()));
    c2.peer.write('stray'); // the engine broke framing: the socket must not be reused
    await closed;
    assert.equal(o2.text(), 'ok', 'stray bytes reach no owner');
  });
});
