// Differential fuzzing of the edge's HTTP parsing (src/edge/head.ts,
// src/edge/chunked.ts) against llhttp, node:http's parser, which serves every
// request the edge declines. The property: whatever the fast path accepts,
// llhttp accepts too and reads the same way (method, target, headers, body
// framing and bytes). Declining is always allowed (node:http then answers).
// Inputs: mutations of valid requests with the bytes that smuggling and
// desync attacks use, from a seeded generator so a failure replays.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ChunkedScanner, ChunkedSyntaxError } from '../src/edge/chunked.js';
import { parseRequestHead, parseResponseHead, BadResponseHead } from '../src/edge/head.js';

interface Seen {
  method: string;
  url: string;
  headers: string[];
  body: string;
}

/** A node:http server that reports how llhttp read each request (or that it refused it). */
let server: http.Server;
let port: number;
let last: Seen[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      last.push({ method: req.method!, url: req.url!, headers: req.rawHeaders, body: Buffer.concat(chunks).toString('latin1') });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
after(() => server.close());

/** Send `bytes` on a fresh connection; resolves with what llhttp parsed (requests) and whether it answered 400. */
function llhttp(bytes: Buffer): Promise<{ requests: Seen[]; refused: boolean }> {
  last = [];
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    const done = (): void => {
      clearTimeout(t);
      s.destroy();
      resolve({ requests: last, refused: /HTTP\/1\.1 4\d\d/.test(out) });
    };
    const t = setTimeout(done, 150);
    s.on('close', done);
    s.on('error', done);
    s.end(bytes);
  });
}

// ---------------------------------------------------------------- generator

let seed = 20261129;
const rand = (n: number): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
};
const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;

const NASTY = ['\r', '\n', '\r\n', ' ', '\t', '\0', ':', ',', ';', '\x7f', '\x80', '\xff', '"', '0', 'a', 'A', 'G', '\x0b', '\x0c'];
const HEADER_TRICKS = [
  'Connection: content-length',
  'Connection: transfer-encoding',
  'Authorization: Bearer x',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: Chunked',
  'Transfer-Encoding: chunked, identity',
  'Transfer-Encoding: identity, chunked',
  'Transfer-Encoding: xchunked',
  'Transfer-Encoding : chunked',
  'Transfer-Encoding:\tchunked',
  ' Transfer-Encoding: chunked',
  'Transfer-Encoding: chunked\r\n folded',
  'Content-Length: 4',
  'Content-Length: 04',
  'Content-Length: +4',
  'Content-Length: 4, 4',
  'Content-Length: 0x4',
  'Content-Length: 4 ',
  'Content-Length: -1',
  'Content-Length: 99999999999999999999',
  'Content-Length: 4\r\nContent-Length: 4',
  'Host: other',
  'Connection: close',
  'Connection: upgrade',
  'Upgrade: h2c',
  'Expect: 100-continue',
  'X-Empty:',
  'X-Obs: a\r\n\tb',
  'Bad Header: x',
  'X-Ctl: a\x01b',
];
const BODIES = ['{}', '4\r\nabcd\r\n0\r\n\r\n', '0\r\n\r\n', '4;ext=1\r\nabcd\r\n0\r\n\r\n', '4\r\nabcd\r\n0\r\nTrailer: x\r\n\r\n', '4\nabcd\n0\n\n', 'ffffffffffffffffff\r\n', '4\r\nabcde\r\n0\r\n\r\n', ''];

function baseRequest(): string {
  const method = pick(['POST', 'POST', 'GET', 'post', 'PUT']);
  const target = pick(['/v1/chat/completions', '/v1/completions?x=1', '/v1/models', '/v1/../health', '*', 'http://x/v1/models', '/v1/chat/completions#f']);
  const headers = ['Host: 127.0.0.1', 'Content-Type: application/json'];
  const extra = rand(4);
  for (let i = 0; i < extra; i++) headers.push(pick(HEADER_TRICKS));
  if (rand(2) === 0) headers.push('Content-Length: 2');
  const version = pick(['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 ']);
  return `${method} ${target} ${version}\r\n${headers.join('\r\n')}\r\n\r\n${pick(BODIES)}`;
}

function mutate(s: string): string {
  const n = rand(3);
  for (let i = 0; i < n; i++) {
    const at = rand(s.length + 1);
    switch (rand(3)) {
      case 0:
        s = s.slice(0, at) + pick(NASTY) + s.slice(at);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + 1);
        break;
      default:
        s = s.slice(0, at) + pick(NASTY) + s.slice(at + 1);
    }
  }
  return s;
}

// ---------------------------------------------------------------- the properties

/** How the fast path would read `bytes`: the head, and the body (decline: undefined). */
function fastRead(bytes: Buffer): { head: Exclude<ReturnType<typeof parseRequestHead>, string>; body: string | 'bad' | 'incomplete' } | undefined {
  const head = parseRequestHead(bytes, 16 * 1024);
  if (typeof head === 'string') return undefined;
  if (head.contentLength >= 0) {
    const avail = bytes.length - head.end;
    if (avail < head.contentLength) return { head, body: 'incomplete' };
    return { head, body: bytes.toString('latin1', head.end, head.end + head.contentLength) };
  }
  const scanner = new ChunkedScanner();
  try {
    const end = scanner.scan(bytes, head.end);
    if (end < 0) return { head, body: 'incomplete' };
    return { head, body: `chunked:${scanner.payloadBytes}` };
  } catch (err) {
    assert.ok(err instanceof ChunkedSyntaxError);
    return { head, body: 'bad' };
  }
}

describe('the fast path reads requests as llhttp does', () => {
  test('2,000 mutated requests: every head the fast path accepts, llhttp accepts and reads identically', { timeout: 90_000 }, async () => {
    let accepted = 0;
    let declined = 0;
    for (let i = 0; i < 2000; i++) {
      const input = i % 4 === 0 ? baseRequest() : mutate(baseRequest());
      const bytes = Buffer.from(input, 'latin1');
      const fast = fastRead(bytes);
      if (fast === undefined) {
        declined++;
        continue;
      }
      accepted++;
      const node = await llhttp(bytes);
      const why = JSON.stringify(input);
      if (fast.body === 'incomplete') continue; // llhttp waits for the rest too (the connection then closes)
      if (fast.body === 'bad') {
        // The fast path answers 400 to a malformed chunked body: llhttp must not have read a request from it.
        assert.equal(node.requests.length, 0, `fast path refused the body, llhttp read it: ${why}`);
        continue;
      }
      assert.ok(node.requests.length >= 1, `fast path accepted, llhttp refused: ${why}`);
      const r = node.requests[0]!;
      assert.equal(r.method, fast.head.method, why);
      assert.equal(r.url, fast.head.target, why);
      const names: string[] = [];
      const values: string[] = [];
      for (let k = 0; k < r.headers.length; k += 2) {
        names.push(r.headers[k]!.toLowerCase());
        values.push(r.headers[k + 1]!);
      }
      assert.deepEqual(names, fast.head.names, why);
      assert.deepEqual(values, fast.head.values, why);
      if (fast.body.startsWith('chunked:')) assert.equal(`chunked:${Buffer.byteLength(r.body, 'latin1')}`, fast.body, why);
      else assert.equal(r.body, fast.body, why);
    }
    // The generator must exercise both sides.
    assert.ok(accepted > 100, `accepted ${accepted}`);
    assert.ok(declined > 100, `declined ${declined}`);
  });

  test('request smuggling shapes are declined (node:http refuses them) or read exactly as llhttp reads them', async () => {
    const shapes = [
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\n{}',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /v1/completions HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\tx\r\n\r\n{',
      'POST /v1/completions HTTP/1.0\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 2\r\n\r\n{}',
      'POST /v1/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}',
      // Connection naming a framing header (or any header): dropping it would desync the engine.
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\nContent-Length: 34\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: host\r\nContent-Length: 2\r\n\r\n{}',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: x-anything\r\nContent-Length: 2\r\n\r\n{}',
      // Headers the fast path reads, repeated: node:http would read them differently.
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\nContent-Length: 2\r\n\r\n{}',
      'POST /v1/completions HTTP/1.1\r\nHost: x\r\nOrigin: https://a\r\nOrigin: https://b\r\nContent-Length: 2\r\n\r\n{}',
      // Bare LF line ends: declined at once, not left waiting for CRLF CRLF.
      'GET /v1/models HTTP/1.1\nHost: x\n\n',
      'GET /v1/models HTTP/1.1\r\nHost: x\n',
    ];
    for (const s of shapes) {
      const r = parseRequestHead(Buffer.from(s, 'latin1'), 16384);
      assert.ok(typeof r === 'string' && r !== 'incomplete', `declined at once: ${JSON.stringify(s)} → ${typeof r === 'string' ? r : 'accepted'}`);
    }
    // Chunked bodies the scanner refuses (bare LF, control characters, sizes that lie or overflow).
    for (const body of ['4\nabcd\r\n0\r\n\r\n', '4\r\nabcde\r\n0\r\n\r\n', 'g\r\n', '\r\n', '4;a\nb\r\nabcd\r\n0\r\n\r\n', '0\r\nX: a\x01b\r\n\r\n', `${'f'.repeat(21)}\r\n`]) {
      assert.throws(() => new ChunkedScanner().scan(Buffer.from(body, 'latin1')), ChunkedSyntaxError, JSON.stringify(body));
    }
    // What RFC 9112 §7.1 allows (llhttp and the engine accept it): extensions, trailers, leading zeros.
    for (const body of ['4;ext=1\r\nabcd\r\n0\r\n\r\n', '4\r\nabcd\r\n0\r\nX-T: 1\r\n\r\n', `${'0'.repeat(15)}4\r\nabcd\r\n0\r\n\r\n`]) {
      const sc = new ChunkedScanner();
      assert.equal(sc.scan(Buffer.from(body, 'latin1')), body.length, JSON.stringify(body));
      assert.equal(sc.payloadBytes, 4);
    }
  });

  test('a body is split anywhere: the scanner finds the same end', () => {
    const body = Buffer.from('5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\nNEXT', 'latin1');
    const whole = new ChunkedScanner().scan(body);
    assert.equal(body.toString('latin1', whole), 'NEXT');
    for (let cut = 1; cut < body.length - 4; cut++) {
      const s = new ChunkedScanner();
      assert.equal(s.scan(body, 0, cut), -1);
      assert.equal(s.scan(body, cut, body.length), whole, `cut at ${cut}`);
      assert.equal(s.payloadBytes, 31);
    }
  });

  test('engine response heads: framing and hop-by-hop', () => {
    const r = parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: x-hop\r\n\r\n'), 65536)!;
    assert.equal(r.contentLength, -1);
    assert.deepEqual(r.connectionListed, ['x-hop']);
    const eof = parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\n\r\nbody'), 65536)!;
    assert.equal(eof.contentLength, -2);
    assert.equal(eof.close, true);
    assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'), 65536)!.contentLength, 0);
    assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nContent-'), 65536), undefined);
    for (const bad of ['HTTP/2 200\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', 'garbage\r\n\r\n']) {
      assert.throws(() => parseResponseHead(Buffer.from(bad), 65536), BadResponseHead, bad);
    }
  });
});
