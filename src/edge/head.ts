// HTTP/1.1 message heads for the edge's fast path (RFC 9112). The fast path
// takes only a strict subset it understands completely; a request head outside
// that subset is not an error here: the connection is handed to node:http
// (llhttp), which answers it (400, 431, …) or serves it. So a head this parser
// accepts must be read exactly as llhttp and the engine (uvicorn/h11) read it,
// and everything doubtful is declined. test/edge-fuzz.test.ts checks the parser
// against llhttp on malformed heads.

/** tchar (RFC 9110 §5.6.2): header names and methods. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Bytes never allowed in a header value (CTLs but HTAB, and DEL): bare CR/LF included. */
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
/** An origin-form target: RFC 3986 path and query characters only (no fragment, no quotes or brackets). */
const BAD_TARGET = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/;

/** Why a request head was declined (node:http gets the connection), or `incomplete`. */
export type Decline =
  | 'incomplete'
  | 'too-large'
  | 'request-line'
  | 'version'
  | 'header-line'
  | 'obs-fold'
  | 'host'
  | 'framing'
  | 'expect'
  | 'upgrade'
  | 'connection-listed'
  | 'duplicate';

export interface RequestHead {
  method: string;
  /** The request target as sent (origin-form: path and query). */
  target: string;
  /** The target up to `?`. */
  path: string;
  /** Header names lowercased, and their values (OWS trimmed), in order; same length. */
  names: string[];
  values: string[];
  /** The raw names as sent (forwarded with their spelling). */
  rawNames: string[];
  /** Body bytes that follow: a declared length, or -1 for chunked. */
  contentLength: number;
  /** The client asked to close the connection after this exchange (`Connection: close`). */
  close: boolean;
  /** Header values the edge reads (undefined when absent). */
  authorization: string | undefined;
  origin: string | undefined;
  host: string;
  /** Offset just past the blank line that ends the head. */
  end: number;
}

/** Where `\r\n\r\n` ends in `buf` at or after `from` (offset past it), or -1. */
export function headEnd(buf: Buffer, from: number): number {
  const i = buf.indexOf('\r\n\r\n', Math.max(0, from - 3), 'latin1');
  return i < 0 ? -1 : i + 4;
}

const DIGITS = /^[0-9]{1,15}$/;

/** True when an LF in `buf[0, end)` is not preceded by CR. */
function hasBareLf(buf: Buffer, end: number): boolean {
  for (let i = buf.indexOf(10); i >= 0 && i < end; i = buf.indexOf(10, i + 1)) if (i === 0 || buf[i - 1] !== 13) return true;
  return false;
}

/** Strip optional whitespace (SP and HTAB only: String.prototype.trim would also strip VT, FF and NBSP). */
function ows(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * Parse a request head that starts at `buf[0]` (bytes up to `buf.length`).
 * Returns the head, or a Decline: `incomplete` (more bytes needed; `too-large`
 * once more than `maxBytes` arrived without an end), or the reason the fast
 * path leaves this request to node:http.
 */
export function parseRequestHead(buf: Buffer, maxBytes: number, searchFrom = 0): RequestHead | Decline {
  const end = headEnd(buf, searchFrom);
  if (end < 0) {
    // A line ended by a bare LF never ends the head as the fast path reads it: node:http answers it now.
    if (hasBareLf(buf, buf.length)) return 'header-line';
    return buf.length > maxBytes ? 'too-large' : 'incomplete';
  }
  if (end > maxBytes) return 'too-large';
  const text = buf.toString('latin1', 0, end - 4);
  const lines = text.split('\r\n');
  const requestLine = lines[0]!;
  const sp1 = requestLine.indexOf(' ');
  const sp2 = requestLine.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || requestLine.indexOf(' ', sp2 + 1) >= 0) return 'request-line';
  const method = requestLine.slice(0, sp1);
  const target = requestLine.slice(sp1 + 1, sp2);
  if (requestLine.slice(sp2 + 1) !== 'HTTP/1.1') return 'version';
  // The fast path routes GET and POST only; other methods are node:http's (llhttp knows which exist).
  if ((method !== 'POST' && method !== 'GET') || target.charCodeAt(0) !== 47 /* / */ || BAD_TARGET.test(target)) return 'request-line';
  const q = target.indexOf('?');
  const n = lines.length - 1;
  const names = new Array<string>(n);
  const values = new Array<string>(n);
  const rawNames = new Array<string>(n);
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let host: string | undefined;
  let hosts = 0;
  let authorization: string | undefined;
  let origin: string | undefined;
  let connection: string | undefined;
  for (let i = 1; i <= n; i++) {
    const line = lines[i]!;
    const c0 = line.charCodeAt(0);
    if (c0 === 32 || c0 === 9) return 'obs-fold';
    const colon = line.indexOf(':');
    if (colon <= 0) return 'header-line';
    const raw = line.slice(0, colon);
    if (!TOKEN.test(raw)) return 'header-line';
    const value = ows(line.slice(colon + 1));
    if (BAD_VALUE.test(value)) return 'header-line';
    const name = raw.toLowerCase();
    names[i - 1] = name;
    values[i - 1] = value;
    rawNames[i - 1] = raw;
    switch (name) {
      case 'content-length':
        if (contentLength !== undefined) return 'framing'; // duplicates: node refuses unequal ones; decline all
        contentLength = value;
        break;
      case 'transfer-encoding':
        if (transferEncoding !== undefined) return 'framing';
        transferEncoding = value;
        break;
      case 'host':
        host = value;
        hosts++;
        break;
      case 'authorization':
        // node:http and the fast path would read a repeated one differently (first vs joined): decline.
        if (authorization !== undefined) return 'duplicate';
        authorization = value;
        break;
      case 'origin':
        if (origin !== undefined) return 'duplicate';
        origin = value;
        break;
      case 'connection':
        connection = connection === undefined ? value : `${connection}, ${value}`;
        break;
      case 'expect':
        return 'expect';
      case 'upgrade':
        return 'upgrade';
    }
  }
  if (hosts !== 1) return 'host';
  let length = 0;
  if (transferEncoding !== undefined) {
    // Only `chunked` alone: any other coding or list is node's to answer (or refuse).
    if (contentLength !== undefined || transferEncoding.toLowerCase() !== 'chunked') return 'framing';
    length = -1;
  } else if (contentLength !== undefined) {
    if (!DIGITS.test(contentLength)) return 'framing';
    length = Number(contentLength);
  }
  let close = false;
  if (connection !== undefined) {
    for (const part of connection.split(',')) {
      const token = ows(part).toLowerCase();
      if (token === '') continue;
      if (token === 'close') close = true;
      else if (token === 'upgrade') return 'upgrade';
      // A header named in Connection is hop-by-hop and dropped when forwarding. Dropping
      // Content-Length, Transfer-Encoding or Host would desync the engine's connection, so any
      // such listing is left to node:http (http-proxy re-frames the body it forwards).
      else if (token !== 'keep-alive') return 'connection-listed';
    }
  }
  return {
    method,
    target,
    path: q < 0 ? target : target.slice(0, q),
    names,
    values,
    rawNames,
    contentLength: length,
    close,
    authorization,
    origin,
    host: host!,
    end,
  };
}

export interface ResponseHead {
  status: number;
  /** The status line's reason phrase (may be empty). */
  reason: string;
  names: string[];
  values: string[];
  rawNames: string[];
  /** Body framing: a length, -1 chunked, -2 until the connection closes. 0 also for 1xx/204/304. */
  contentLength: number;
  /** The engine will close this connection after the response. */
  close: boolean;
  contentType: string;
  /** Header names listed in `Connection` (lowercased): hop-by-hop, dropped. */
  connectionListed: string[] | undefined;
  end: number;
}

/** A response head the edge cannot read (the engine broke HTTP): the exchange fails with 502. */
export class BadResponseHead extends Error {}

/**
 * Parse the engine's response head from `buf[0]`, or `undefined` while
 * incomplete. Throws BadResponseHead on a head that is not HTTP/1.x or is over
 * `maxBytes`. A response to a request with a body-less method is never asked here.
 */
export function parseResponseHead(buf: Buffer, maxBytes: number, searchFrom = 0): ResponseHead | undefined {
  const end = headEnd(buf, searchFrom);
  if (end < 0) {
    if (buf.length > maxBytes) throw new BadResponseHead(`response head larger than ${maxBytes} bytes`);
    return undefined;
  }
  const lines = buf.toString('latin1', 0, end - 4).split('\r\n');
  const m = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: (.*))?$/.exec(lines[0]!);
  if (!m) throw new BadResponseHead(`not an HTTP/1.x status line: ${JSON.stringify(lines[0]!.slice(0, 40))}`);
  const http10 = m[1] === '0';
  const status = Number(m[2]);
  const n = lines.length - 1;
  const names = new Array<string>(n);
  const values = new Array<string>(n);
  const rawNames = new Array<string>(n);
  let contentLength: string | undefined;
  let chunked = false;
  let close = http10;
  let contentType = '';
  let connectionListed: string[] | undefined;
  for (let i = 1; i <= n; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) throw new BadResponseHead('malformed response header line');
    const raw = line.slice(0, colon);
    const name = raw.toLowerCase();
    const value = ows(line.slice(colon + 1));
    names[i - 1] = name;
    values[i - 1] = value;
    rawNames[i - 1] = raw;
    if (name === 'content-length') {
      if (contentLength !== undefined && contentLength !== value) throw new BadResponseHead('conflicting Content-Length');
      contentLength = value;
    } else if (name === 'transfer-encoding') {
      chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
      if (!chunked) throw new BadResponseHead(`unsupported Transfer-Encoding: ${value}`);
    } else if (name === 'connection') {
      for (const part of value.toLowerCase().split(',')) {
        const token = ows(part);
        if (token === 'close') close = true;
        else if (token === 'keep-alive') {
          if (http10) close = false;
        } else if (token !== '') (connectionListed ??= []).push(token);
      }
    } else if (name === 'content-type') contentType = value;
  }
  let length: number;
  if (status < 200 || status === 204 || status === 304) length = 0;
  else if (chunked) length = -1;
  else if (contentLength !== undefined) {
    if (!DIGITS.test(contentLength)) throw new BadResponseHead(`bad Content-Length: ${contentLength}`);
    length = Number(contentLength);
  } else {
    length = -2;
    close = true;
  }
  return { status, reason: m[3] ?? '', names, values, rawNames, contentLength: length, close, contentType, connectionListed, end };
}
