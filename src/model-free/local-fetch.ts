// A `fetch` that answers the hub's resolve/raw URLs from a directory, with
// HEAD, Range and the hub's 404 EntryNotFound. It lets @huggingface/hub's
// parseSafetensorsMetadata read safetensors headers from a local model or a
// cached snapshot exactly as it reads them from the hub, without a network.
import { open, stat } from 'node:fs/promises';
import path from 'node:path';

export function directoryFetch(dir: string): typeof fetch {
  return async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    // /{org}/{name}/{resolve|raw}/{rev}/{path…}
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const rel = parts.slice(4).join('/');
    const notFound = (): Response => new Response(JSON.stringify({ error: 'Entry not found' }), { status: 404, headers: { 'x-error-code': 'EntryNotFound', 'content-type': 'application/json' } });
    if (parts.length < 5 || (parts[2] !== 'resolve' && parts[2] !== 'raw') || rel.split('/').includes('..')) return notFound();
    const file = path.join(dir, rel);
    let size: number;
    try {
      const s = await stat(file);
      if (!s.isFile()) return notFound();
      size = s.size;
    } catch {
      return notFound();
    }
    const headers = new Headers(init?.headers);
    const etag = `"${size}-${rel}"`;
    if ((init?.method ?? 'GET').toUpperCase() === 'HEAD') return new Response(null, { status: 200, headers: { 'content-length': String(size), etag } });
    const m = /^bytes=(\d+)-(\d*)$/.exec(headers.get('range') ?? '');
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2] !== '' ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (start >= size && size > 0) return new Response(null, { status: 416, headers: { 'content-range': `bytes */${size}` } });
    const fh = await open(file, 'r');
    try {
      const buf = Buffer.alloc(Math.max(0, end - start + 1));
      await fh.read(buf, 0, buf.length, start);
      return new Response(buf, {
        status: m ? 206 : 200,
        headers: { 'content-length': String(buf.length), etag, ...(m ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}) },
      });
    } finally {
      await fh.close();
    }
  };
}
