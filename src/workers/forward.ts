// Worker side: everything that is not a plain proxied inference route goes to
// the primary's internal listener (a Unix socket), which serves it with its
// full app exactly as a single process would: management endpoints, metrics,
// CORS preflights, 404s, parameterised routes, WebSocket and other upgrades.
// Requests are piped, never buffered; upgrades become a raw byte pipe. Each
// carries the client's address in an internal header (client-address.ts): the
// primary sees only this worker's Unix-socket connection.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { EngineAgent, poolIdleMs } from '../server/engine-agent.js';
import { sendError } from '../server/errors.js';
import { CLIENT_ADDRESS_HEADER, clientAddressOf } from './client-address.js';

// Hop-by-hop: they describe the client's connection to this worker, not the worker's to the primary.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect']);

export interface PrimaryForwarder {
  /** Pass one HTTP request to the primary and its answer back. */
  request(req: IncomingMessage, res: ServerResponse): void;
  /** Pass an upgrade request (and everything after it on that connection) to the primary, as raw bytes. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Cut every forwarded request and pipe now. */
  destroy(): void;
}

/**
 * The request head as the client sent it (names' case kept), for a raw pipe;
 * any copy of the internal header the client sent is replaced by the client's address.
 */
export function requestHead(req: IncomingMessage): string {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== CLIENT_ADDRESS_HEADER) lines.push(`${raw[i]}: ${raw[i + 1]}`);
  lines.push(`${CLIENT_ADDRESS_HEADER}: ${clientAddressOf(req)}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * `socketPath`: the primary's listener. `keepAliveMs`: its keep-alive timeout;
 * pooled connections are dropped before it (engine-agent.ts's margin) so a
 * request never goes out on a connection the primary is closing.
 */
export function createPrimaryForwarder(socketPath: string, keepAliveMs: number): PrimaryForwarder {
  const agent = new EngineAgent(poolIdleMs(keepAliveMs));
  const pipes = new Set<Duplex>();
  return {
    request(req, res) {
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && k !== CLIENT_ADDRESS_HEADER) headers[k] = v;
      headers[CLIENT_ADDRESS_HEADER] = clientAddressOf(req);
      const out = http.request({ socketPath, agent, method: req.method, path: req.url, headers });
      out.on('response', (answer) => {
        const raw = answer.rawHeaders;
        const kept: string[] = [];
        for (let i = 0; i < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase()) && raw[i]!.toLowerCase() !== 'transfer-encoding') kept.push(raw[i]!, raw[i + 1]!);
        // The primary closes after a refused request target or a cut body: so does the client's connection.
        if (/\bclose\b/i.test(String(answer.headers.connection ?? ''))) kept.push('Connection', 'close');
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, kept);
        // Event streams reach the client as they come (the primary flushed its headers early).
        if (String(answer.headers['content-type'] ?? '').startsWith('text/event-stream')) res.flushHeaders();
        answer.pipe(res);
        answer.on('error', () => res.destroy());
        answer.once('close', () => {
          if (!answer.complete && !res.writableEnded) res.destroy();
        });
      });
      out.on('error', (err: NodeJS.ErrnoException) => {
        if (res.headersSent) res.destroy();
        else sendError(res, 503, `The supervisor is not reachable (${err.code ?? err.message}); retry shortly.`, { 'retry-after': '1' });
      });
      res.once('close', () => {
        if (!res.writableFinished) out.destroy();
      });
      req.pipe(out);
    },
    upgrade(req, socket, head) {
      socket.on('error', () => socket.destroy());
      const upstream = net.connect(socketPath);
      pipes.add(socket);
      upstream.on('error', () => {
        socket.destroy();
      });
      socket.once('close', () => {
        pipes.delete(socket);
        upstream.destroy();
      });
      upstream.once('close', () => socket.destroy());
      upstream.write(requestHead(req));
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    },
    destroy() {
      for (const s of pipes) s.destroy();
      agent.destroy();
    },
  };
}
