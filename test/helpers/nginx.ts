// Debian's nginx as a real ingress in front of the supervisor: a foreground
// master (daemon off) on a free loopback port, with its own prefix, pid, logs
// and temp folders in a fresh temp folder. The process is tracked by the
// process helper and killed by pid (group included) when the test file ends.
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, start, waitFor, type Proc } from './process.js';

export const NGINX = '/usr/sbin/nginx';

export function haveNginx(): boolean {
  return existsSync(NGINX);
}

export interface RunningNginx {
  proc: Proc;
  port: number;
  base: string;
  dir: string;
}

/**
 * Start nginx with `location / { proxy_pass http://127.0.0.1:UPSTREAM; LOCATION }`
 * and nothing else of note: nginx's defaults (proxy_buffering on, HTTP/1.0 to
 * the upstream, 60 s timeouts) are what is under test.
 */
export async function startNginx(upstreamPort: number, location = ''): Promise<RunningNginx> {
  const dir = mkdtempSync(path.join(tmpdir(), 'nim-nginx-'));
  const port = await freePort();
  const t = (name: string): string => path.join(dir, name);
  // As root, the workers would switch to `nobody` and could not use the 0700 temp folder.
  const user = process.getuid?.() === 0 ? 'user root root;' : '';
  const conf = `${user}
daemon off;
worker_processes 1;
pid ${t('nginx.pid')};
error_log ${t('error.log')} info;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${t('client_body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      ${location}
    }
  }
}
`;
  writeFileSync(t('nginx.conf'), conf);
  const proc = start(NGINX, ['-p', dir, '-c', t('nginx.conf'), '-e', t('error.log')]);
  await waitFor(
    () => {
      if (proc.child.exitCode !== null) throw new Error(`nginx exited: ${proc.output()}`);
      return new Promise<boolean>((resolve) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
    },
    { timeoutMs: 10_000, what: 'nginx to listen' },
  );
  return { proc, port, base: `http://127.0.0.1:${port}`, dir };
}

/** One SSE response read as it arrives: each `data:` event and comment with its arrival time (ms since the request). */
export interface TimedStream {
  status: number;
  headers: Headers;
  /** Milliseconds from sending the request to the response headers. */
  headersMs: number;
  events: Array<{ ms: number; data: string }>;
  comments: Array<{ ms: number; text: string }>;
  totalMs: number;
}

export async function timedStream(url: string, body: unknown, headers: Record<string, string> = {}): Promise<TimedStream> {
  const t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const headersMs = performance.now() - t0;
  const events: TimedStream['events'] = [];
  const comments: TimedStream['comments'] = [];
  let buf = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const ms = performance.now() - t0;
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of block.split('\n')) {
        if (line.startsWith('data: ')) events.push({ ms, data: line.slice(6) });
        else if (line.startsWith(':')) comments.push({ ms, text: line });
      }
    }
  }
  return { status: res.status, headers: res.headers, headersMs, events, comments, totalMs: performance.now() - t0 };
}
