// HTTP Upgrade requests at the public port. Node hands every request that
// carries `Upgrade` to one 'upgrade' listener, so this module decides them all
// (the WebSocket pass-through itself is websocket-proxy.ts, loaded with the app):
// - a WebSocket handshake (`GET`, `Upgrade: websocket`) to an allow-listed
//   route (routes.ts WEBSOCKET_ROUTES, vLLM's /v1/realtime) is passed through
//   to the engine, with the same API key check, readiness gating, in-flight
//   accounting (so drain waits for open sessions) and in-flight cap as a proxied
//   HTTP request;
// - a WebSocket handshake to any other route is refused at once (404, closed);
// - any other protocol (`h2c`, `TLS/1.0` …) is not switched to: the request is
//   served as the plain HTTP/1.1 request it also is (RFC 9110 §7.8 lets a server
//   ignore Upgrade), on the same connection.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { openAIError } from './errors.js';
import { isSafeRequestTarget } from './request-target.js';
import { WEBSOCKET_ROUTES } from './routes.js';

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** What an upgrade request gets, decided from the request alone. Pure. */
export type UpgradeDecision =
  | { kind: 'websocket'; route: string }
  | { kind: 'plain-http' }
  | { kind: 'refuse'; status: number; message: string; headers?: Record<string, string> };

/** Decide an upgrade request by its target, method and protocol (not yet by key, readiness or load). */
export function decideUpgrade(method: string | undefined, url: string | undefined, upgrade: string | undefined): UpgradeDecision {
  if (!isSafeRequestTarget(url)) {
    return { kind: 'refuse', status: 400, message: 'Invalid request target: use an origin-form path without dot segments, doubled or encoded slashes.' };
  }
  const protocols = (upgrade ?? '').split(',').map((p) => p.trim().toLowerCase().split('/')[0]);
  if (!protocols.includes('websocket')) return { kind: 'plain-http' };
  const q = url!.indexOf('?');
  const path = q < 0 ? url! : url!.slice(0, q);
  if (!WEBSOCKET_ROUTES.includes(path)) {
    return { kind: 'refuse', status: 404, message: `No WebSocket endpoint at ${path}. WebSocket routes: ${WEBSOCKET_ROUTES.join(', ')}.` };
  }
  if (method !== 'GET') return { kind: 'refuse', status: 405, message: `A WebSocket handshake uses GET, not ${method}.`, headers: { allow: 'GET' } };
  return { kind: 'websocket', route: path };
}

const REASONS: Record<number, string> = http.STATUS_CODES as Record<number, string>;

/** Answer on the raw socket (no ServerResponse exists for an upgrade request) and close it. */
export function refuseUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(openAIError(status, message));
  const lines = [
    `HTTP/1.1 ${status} ${REASONS[status] ?? ''}`,
    'content-type: application/json',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

const DROP_ON_PLAIN = new Set(['upgrade', 'http2-settings']);

/**
 * Serve an upgrade request as plain HTTP: rebuild its head without the upgrade
 * headers and hand the socket back to the server's own HTTP parser, which reads
 * that head, then the body and any pipelined requests, as on any connection.
 */
export function serveAsPlainHttp(server: http.Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (DROP_ON_PLAIN.has(lower)) continue;
    let value = raw[i + 1]!;
    if (lower === 'connection') {
      value = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '' && !DROP_ON_PLAIN.has(t.toLowerCase()))
        .join(', ');
      if (value === '') continue;
    }
    lines.push(`${name}: ${value}`);
  }
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), head]));
  // https.Server parses HTTP on 'secureConnection' (its 'connection' is the TLS handshake).
  server.emit(server instanceof https.Server ? 'secureConnection' : 'connection', socket);
}

/** Until the full app is loaded: WebSocket handshakes get 503, anything else is plain HTTP. */
export function bootUpgradeHandler(server: http.Server): UpgradeHandler {
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const d = decideUpgrade(req.method, req.url, req.headers.upgrade);
    if (d.kind === 'plain-http') serveAsPlainHttp(server, req, socket, head);
    else if (d.kind === 'refuse') refuseUpgrade(socket, d.status, d.message, d.headers);
    else refuseUpgrade(socket, 503, 'The server is starting. Retry once /v1/health/ready answers 200.', { 'retry-after': '5' });
  };
}

