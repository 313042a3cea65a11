// A Hugging Face hub on loopback for tests: the REST endpoints the downloader
// and @huggingface/hub use, with the real hub's headers and status codes.
//
//   GET  /api/models/{repo}[/revision/{rev}]        model info (sha, siblings)
//   GET  /api/models/{repo}/tree/{rev}[/{path}]     file list (oid, size, lfs.oid = SHA-256)
//   GET|HEAD /{repo}/resolve/{rev}/{path}           file: ETag / X-Repo-Commit; LFS files
//                                                   302 to /cdn-lfs/{sha256} with X-Linked-Etag / X-Linked-Size
//   GET|HEAD /{repo}/raw/{rev}/{path}               file (pointer semantics are not needed here)
//   GET  /cdn-lfs/{sha256}                          LFS bytes, Range → 206 + Content-Range
//
// Errors carry X-Error-Code (RepoNotFound, GatedRepo, RevisionNotFound,
// EntryNotFound) and a JSON {"error": …} body, as the hub sends them. Knobs make
// it slow, stall, drop connections mid-file, corrupt bytes or fail.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { RepoFile } from './tiny-model.js';

export interface FixtureRepo {
  files: RepoFile[];
  /** 40-hex commit of `main` (default: derived from the content). */
  commit?: string;
  /** Needs `Authorization: Bearer <token>` with the hub's token. */
  gated?: boolean;
  /** Extra refs (tags, branches) → commit. */
  refs?: Record<string, string>;
}

export interface HubKnobs {
  /** Throttle every file body to this many bytes per second (0 = full speed). */
  bytesPerSecond: number;
  /** Stop sending (socket left open) after this many body bytes of a file matching `path`, `times` times. */
  stall: { path: RegExp; afterBytes: number; times: number } | undefined;
  /** Destroy the connection after this many body bytes of a matching file, `times` times. */
  drop: { path: RegExp; afterBytes: number; times: number } | undefined;
  /** Serve a matching file with one byte flipped, `times` times (whole-file GETs only, not Range probes). */
  corrupt: { path: RegExp; times: number } | undefined;
  /** Answer every request with this status, `times` times. */
  fail: { status: number; times: number } | undefined;
}

export interface HubRequest {
  method: string;
  url: string;
  status: number;
  range: string | undefined;
  authorization: string | undefined;
}

export interface FixtureHub {
  url: string;
  knobs: HubKnobs;
  /** The token gated repos accept. */
  token: string;
  /** File body bytes written to clients (ranges included), per file path and in total. */
  bytesServed(pathRe?: RegExp): number;
  requests: HubRequest[];
  /** The commit `main` points at, per repo. */
  commitOf(repo: string): string;
  close(): Promise<void>;
}

interface Entry {
  path: string;
  content: Buffer;
  oid: string; // git blob sha1
  sha256: string;
  lfs: boolean;
}

interface Repo {
  id: string;
  commit: string;
  gated: boolean;
  refs: Record<string, string>;
  entries: Map<string, Entry>;
}

const isLfs = (f: RepoFile): boolean => /\.(safetensors|bin|pth|pt|gguf)$/.test(f.path) || f.content.length > 10 * 1024;

function gitOid(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

export async function startFixtureHub(repos: Record<string, FixtureRepo>, opts: { token?: string } = {}): Promise<FixtureHub> {
  const token = opts.token ?? 'hf_fixture_token_0123456789';
  const knobs: HubKnobs = { bytesPerSecond: 0, stall: undefined, drop: undefined, corrupt: undefined, fail: undefined };
  const served = new Map<string, number>();
  const requests: HubRequest[] = [];
  const table = new Map<string, Repo>();
  const bySha = new Map<string, Entry>();
  for (const [id, r] of Object.entries(repos)) {
    const entries = new Map<string, Entry>();
    const h = createHash('sha1').update(id);
    for (const f of r.files) {
      const e: Entry = { path: f.path, content: f.content, oid: gitOid(f.content), sha256: createHash('sha256').update(f.content).digest('hex'), lfs: isLfs(f) };
      entries.set(f.path, e);
      bySha.set(e.sha256, e);
      h.update(f.path).update(e.oid);
    }
    const commit = r.commit ?? h.digest('hex');
    table.set(id, { id, commit, gated: r.gated ?? false, refs: { main: commit, ...(r.refs ?? {}) }, entries });
  }
  const sockets = new Set<Socket>();

  function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  }
  function error(res: http.ServerResponse, status: number, code: string | undefined, message: string): void {
    send(res, status, { error: message }, code ? { 'x-error-code': code, 'x-error-message': message } : {});
  }

  /** The repo, or an error answered the way the hub answers it (401 hides existence from anonymous callers). */
  function access(req: http.IncomingMessage, res: http.ServerResponse, id: string): Repo | undefined {
    const auth = req.headers.authorization;
    const presented = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    if (presented !== undefined && presented !== token) {
      error(res, 401, undefined, 'Invalid credentials in Authorization header');
      return undefined;
    }
    const repo = table.get(id);
    if (!repo) {
      if (presented === undefined) error(res, 401, 'RepoNotFound', `Repository Not Found for url: ${req.url}. Please make sure you specified the correct repo_id and are authenticated.`);
      else error(res, 404, 'RepoNotFound', `Repository Not Found for url: ${req.url}.`);
      return undefined;
    }
    if (repo.gated && presented === undefined) {
      error(res, 401, 'GatedRepo', `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      return undefined;
    }
    return repo;
  }

  function commitFor(repo: Repo, rev: string): string | undefined {
    if (/^[0-9a-f]{40}$/.test(rev)) return rev === repo.commit ? rev : undefined;
    return rev === 'HEAD' ? repo.commit : repo.refs[rev];
  }

  /** Write `content[start..end]` honouring the knobs; resolves when done or cut. */
  async function writeBody(req: http.IncomingMessage, res: http.ServerResponse, path: string, content: Buffer, start: number): Promise<void> {
    // A knob fires only on a body that reaches it (header probes of a few bytes pass untouched).
    let body = content;
    const mid = Math.floor(content.length / 2);
    if (knobs.corrupt && knobs.corrupt.times > 0 && knobs.corrupt.path.test(path) && req.headers.range === undefined) {
      knobs.corrupt.times--;
      body = Buffer.from(content);
      body[mid] = body[mid]! ^ 0xff;
    }
    const fires = (k: { path: RegExp; afterBytes: number; times: number } | undefined): boolean =>
      k !== undefined && k.times > 0 && k.path.test(path) && content.length - start > k.afterBytes;
    const stall = fires(knobs.stall) ? knobs.stall : undefined;
    const drop = fires(knobs.drop) ? knobs.drop : undefined;
    if (stall) stall.times--;
    if (drop) drop.times--;
    const chunk = 16 * 1024;
    let sent = 0;
    let pos = start;
    const startedAt = Date.now();
    while (pos < body.length) {
      if (res.destroyed || req.socket.destroyed) return;
      let n = Math.min(chunk, body.length - pos);
      if (stall && sent + n > stall.afterBytes) n = Math.max(0, stall.afterBytes - sent);
      if (drop && sent + n > drop.afterBytes) n = Math.max(0, drop.afterBytes - sent);
      if (n > 0) {
        const ok = res.write(body.subarray(pos, pos + n));
        served.set(path, (served.get(path) ?? 0) + n);
        sent += n;
        pos += n;
        if (!ok) {
          await new Promise<void>((r) => {
            const done = (): void => {
              res.off('drain', done).off('close', done);
              r();
            };
            res.on('drain', done).on('close', done);
          });
        }
      }
      if (drop && sent >= drop.afterBytes) {
        req.socket.destroy();
        return;
      }
      if (stall && sent >= stall.afterBytes) return; // hold the socket open, send nothing more
      if (knobs.bytesPerSecond > 0) {
        const due = startedAt + (sent / knobs.bytesPerSecond) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
    res.end();
  }

  async function serveBytes(req: http.IncomingMessage, res: http.ServerResponse, e: Entry, headers: Record<string, string>): Promise<void> {
    const size = e.content.length;
    const range = req.headers.range;
    let start = 0;
    let end = size - 1;
    let status = 200;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range);
      if (m && (m[1] !== '' || m[2] !== '')) {
        if (m[1] === '') {
          start = Math.max(0, size - Number(m[2]));
        } else {
          start = Number(m[1]);
          if (m[2] !== '') end = Math.min(end, Number(m[2]));
        }
        if (start >= size || start > end) {
          res.writeHead(416, { 'content-range': `bytes */${size}`, ...headers });
          res.end();
          return;
        }
        status = 206;
      }
    }
    const out: Record<string, string> = {
      ...headers,
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
      'content-length': String(end - start + 1),
    };
    if (status === 206) out['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, out);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await writeBody(req, res, e.path, e.content.subarray(0, end + 1), start);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://hub');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (knobs.fail && knobs.fail.times > 0) {
      knobs.fail.times--;
      error(res, knobs.fail.status, undefined, `fixture failure ${knobs.fail.status}`);
      return;
    }
    // LFS storage ("CDN"): no auth, content addressed.
    if (parts[0] === 'cdn-lfs' && parts[1]) {
      const e = bySha.get(parts[1]);
      if (!e) return error(res, 404, undefined, 'Not Found');
      await serveBytes(req, res, e, { etag: `"${e.sha256}"` });
      return;
    }
    if (parts[0] === 'api' && parts[1] === 'models' && parts.length >= 4) {
      const id = `${parts[2]}/${parts[3]}`;
      const repo = access(req, res, id);
      if (!repo) return;
      const kind = parts[4];
      const rev = parts[5] ?? 'main';
      const commit = commitFor(repo, kind === undefined ? 'main' : rev);
      if (!commit) return error(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      if (kind === undefined || kind === 'revision') {
        return send(res, 200, {
          _id: createHash('md5').update(id).digest('hex').slice(0, 24),
          id,
          modelId: id,
          sha: commit,
          private: false,
          gated: repo.gated ? 'manual' : false,
          disabled: false,
          downloads: 0,
          likes: 0,
          tags: ['safetensors'],
          pipeline_tag: 'text-generation',
          library_name: 'transformers',
          lastModified: '2026-01-01T00:00:00.000Z',
          siblings: [...repo.entries.keys()].map((rfilename) => ({ rfilename })),
        });
      }
      if (kind === 'tree') {
        const prefix = parts.slice(6).join('/');
        const recursive = url.searchParams.get('recursive') === 'true';
        const out: unknown[] = [];
        const dirs = new Set<string>();
        for (const e of repo.entries.values()) {
          if (prefix && !e.path.startsWith(`${prefix}/`)) continue;
          const rest = prefix ? e.path.slice(prefix.length + 1) : e.path;
          if (!recursive && rest.includes('/')) {
            const d = (prefix ? `${prefix}/` : '') + rest.split('/')[0];
            if (!dirs.has(d)) {
              dirs.add(d);
              out.push({ type: 'directory', oid: createHash('sha1').update(d).digest('hex'), size: 0, path: d });
            }
            continue;
          }
          if (recursive) {
            const segs = rest.split('/');
            for (let i = 1; i < segs.length; i++) {
              const d = (prefix ? `${prefix}/` : '') + segs.slice(0, i).join('/');
              if (!dirs.has(d)) {
                dirs.add(d);
                out.push({ type: 'directory', oid: createHash('sha1').update(d).digest('hex'), size: 0, path: d });
              }
            }
          }
          const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${e.sha256}\nsize ${e.content.length}\n`;
          out.push({
            type: 'file',
            oid: e.lfs ? gitOid(Buffer.from(pointer)) : e.oid,
            size: e.content.length,
            path: e.path,
            ...(e.lfs ? { lfs: { oid: e.sha256, size: e.content.length, pointerSize: pointer.length } } : {}),
          });
        }
        return send(res, 200, out);
      }
      return error(res, 404, undefined, 'Not Found');
    }
    // /{org}/{name}/resolve|raw/{rev}/{path…}
    if (parts.length >= 5 && (parts[2] === 'resolve' || parts[2] === 'raw')) {
      const id = `${parts[0]}/${parts[1]}`;
      const repo = access(req, res, id);
      if (!repo) return;
      const rev = parts[3]!;
      const commit = commitFor(repo, rev);
      if (!commit) return error(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const file = parts.slice(4).join('/');
      const e = repo.entries.get(file);
      if (!e) return error(res, 404, 'EntryNotFound', `${file} does not exist on "${rev}"`);
      if (e.lfs && parts[2] === 'resolve') {
        res.writeHead(302, {
          location: `/cdn-lfs/${e.sha256}`,
          'x-repo-commit': commit,
          'x-linked-etag': `"${e.sha256}"`,
          'x-linked-size': String(e.content.length),
          etag: `"${e.oid}"`,
          'content-length': '0',
        });
        res.end();
        return;
      }
      await serveBytes(req, res, e, { etag: `"${e.oid}"`, 'x-repo-commit': commit });
      return;
    }
    error(res, 404, undefined, 'Not Found');
  }

  const server = http.createServer((req, res) => {
    const record: HubRequest = { method: req.method ?? 'GET', url: req.url ?? '', status: 0, range: req.headers.range, authorization: req.headers.authorization ? 'Bearer ***' : undefined };
    requests.push(record);
    res.on('finish', () => (record.status = res.statusCode));
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) error(res, 500, undefined, String(err));
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    knobs,
    token,
    requests,
    bytesServed: (re) => [...served].filter(([p]) => !re || re.test(p)).reduce((a, [, n]) => a + n, 0),
    commitOf: (id) => table.get(id)!.commit,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
