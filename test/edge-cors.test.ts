// CORS with a real browser (issue #13, fault 1): headless Chromium loads a page
// from another loopback origin and streams a chat completion from the
// supervisor with fetch() and an Authorization header (so the browser sends a
// preflight first). A page from an origin not in NIM_CORS_ALLOW_ORIGINS fails
// in the browser. Plus the preflight and header ownership seen from Node.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { freePort } from './helpers/process.js';
import { DEFAULT_MODEL, startSupervisor, type Supervisor } from './helpers/supervisor.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : 'chromium is not installed (.ci/run installs it)';
const KEY = 'browser-test-key';

/** A page server on its own loopback port: its origin is http://127.0.0.1:PORT. */
async function pageServer(): Promise<{ origin: string; close(): void }> {
  const port = await freePort();
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>client</title><p>A page on another origin.</p>');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${port}`, close: () => server.close() };
}

interface BrowserResult {
  ok: boolean;
  status?: number;
  events?: string[];
  reads?: number;
  error?: string;
}

/** Runs in the page: stream a chat completion with fetch(), reading the body as it arrives. */
async function streamFromPage(args: { url: string; key: string; model: string }): Promise<BrowserResult> {
  try {
    const res = await fetch(args.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${args.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: args.model, messages: [{ role: 'user', content: 'hello' }], stream: true, max_tokens: 6, ignore_eos: true }),
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let reads = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      reads += 1;
      text += decoder.decode(value, { stream: true });
    }
    const events = text
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => e.slice(6));
    return { ok: true, status: res.status, events, reads };
  } catch (err) {
    return { ok: false, error: String(err) };
  }
}

describe('CORS in a real browser', { skip, concurrency: true }, () => {
  let sup: Supervisor;
  let allowed: Awaited<ReturnType<typeof pageServer>>;
  let other: Awaited<ReturnType<typeof pageServer>>;
  let browser: BrowserContext;

  before(async () => {
    [allowed, other] = await Promise.all([pageServer(), pageServer()]);
    sup = await startSupervisor({ NIM_API_KEY: KEY, NIM_CORS_ALLOW_ORIGINS: allowed.origin, VLLM_SIM_TOKEN_MS: '20' });
    const [ctx] = await Promise.all([
      chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), 'nim-chromium-')), {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      }),
      sup.waitReady(30_000),
    ]);
    browser = ctx;
  });
  after(async () => {
    await browser?.close();
    sup?.proc.kill('SIGKILL');
    allowed?.close();
    other?.close();
  });

  const inPage = async (origin: string, key = KEY): Promise<BrowserResult> => {
    const page = await browser.newPage();
    try {
      await page.goto(`${origin}/`);
      return await page.evaluate(streamFromPage, { url: `${sup.baseUrl}/v1/chat/completions`, key, model: DEFAULT_MODEL });
    } finally {
      await page.close();
    }
  };

  it('a page on an allowed origin streams a chat completion with an Authorization header', async () => {
    const r = await inPage(allowed.origin);
    assert.equal(r.error, undefined);
    assert.equal(r.status, 200);
    assert.equal(r.events!.at(-1), '[DONE]');
    assert.equal(r.events!.length, 8, 'role chunk, 6 tokens, [DONE]');
    // The browser asked first: the supervisor answered the preflight itself (no API key on it).
    const metrics = await (await fetch(`${sup.baseUrl}/v1/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    assert.match(metrics, /nim_supervisor_http_requests_total\{route="cors_preflight",method="OPTIONS",status="204"\} [1-9]/);
  });

  it('the page can read an error answer too (CORS headers on a 401)', async () => {
    const r = await inPage(allowed.origin, 'wrong-key');
    assert.equal(r.ok, true, r.error);
    assert.equal(r.status, 401);
  });

  it('a page on an origin not in NIM_CORS_ALLOW_ORIGINS fails in the browser', async () => {
    const r = await inPage(other.origin);
    assert.equal(r.ok, false);
    assert.match(r.error!, /TypeError|Failed to fetch/);
  });

  it('preflights are answered before authentication; the engine\'s CORS headers are replaced', async () => {
    const pre = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: allowed.origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), allowed.origin);
    assert.equal(pre.headers.get('access-control-allow-headers'), 'authorization, content-type');
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /\bPOST\b/);
    assert.equal(pre.headers.get('access-control-max-age'), '600');
    assert.match(pre.headers.get('vary') ?? '', /Origin/);

    const refused = await fetch(`${sup.baseUrl}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: other.origin, 'access-control-request-method': 'POST' },
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.headers.get('access-control-allow-origin'), null);

    // The engine (vLLM's CORSMiddleware) answers `*` for any Origin; the supervisor's answer wins.
    const models = (origin: string) => fetch(`${sup.baseUrl}/v1/models`, { headers: { origin, authorization: `Bearer ${KEY}` } });
    const mine = await models(allowed.origin);
    assert.equal(mine.status, 200);
    assert.equal(mine.headers.get('access-control-allow-origin'), allowed.origin);
    const theirs = await models(other.origin);
    assert.equal(theirs.status, 200);
    assert.equal(theirs.headers.get('access-control-allow-origin'), null, 'no CORS grant for a foreign origin, whatever the engine says');
    // Management routes carry them too.
    const ready = await fetch(`${sup.baseUrl}/v1/health/ready`, { headers: { origin: allowed.origin } });
    assert.equal(ready.headers.get('access-control-allow-origin'), allowed.origin);
  });
});
