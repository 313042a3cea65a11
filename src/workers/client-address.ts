// The client's address across the worker → primary hop (NIM_PROXY_WORKERS > 1).
// The primary receives what a worker passes on over its private Unix socket,
// where a connection has no remote address; yet its SERVER spans
// (client.address), and the X-Forwarded-For its http-proxy sets for the engine
// (xfwd, e.g. on a forwarded WebSocket upgrade), read `req.socket.remoteAddress`
// as with one process. So the worker names the client's address in an internal
// header (after deleting any copy the client sent: a client cannot choose it),
// and the primary, for requests on its Unix socket only, takes the header out
// and gives the socket that address. Nothing else reads the header, and it is
// gone before the request reaches any handler, so it never reaches the engine.
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import { CLIENT_ADDRESS_HEADER } from '../server/internal-headers.js';

/** The internal header (lower case, as node:http names it); not an X- header a client or proxy would set. */
export { CLIENT_ADDRESS_HEADER };

/**
 * Remove every copy of the internal header from a parsed request, in
 * `headers` and `rawHeaders` (both are read downstream: http-proxy copies
 * `headers`, upgrade.ts replays `rawHeaders`).
 * @returns the value node:http parsed, or undefined when absent.
 */
export function takeClientAddressHeader(req: IncomingMessage): string | undefined {
  const value = req.headers[CLIENT_ADDRESS_HEADER];
  if (value === undefined) return undefined;
  delete req.headers[CLIENT_ADDRESS_HEADER];
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === CLIENT_ADDRESS_HEADER) raw.splice(i, 2);
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The primary's side, for each request and upgrade on its Unix socket: take
 * the header out and make `req.socket.remoteAddress` the client's (an own
 * property over net.Socket's getter). `upgrade`: the connection is a raw pipe
 * from here on (forward.ts upgrade), and a request that is not a WebSocket
 * handshake is replayed as plain HTTP on it (upgrade.ts serveAsPlainHttp), so
 * the next requests on it are the client's own bytes: the address is pinned
 * to the socket and a header in those requests is dropped, never believed.
 * A value that is not an IP address is dropped too.
 */
export function createClientAddressAdopter(): (req: IncomingMessage, upgrade: boolean) => void {
  const pinned = new WeakSet<net.Socket>();
  return (req, upgrade) => {
    const value = takeClientAddressHeader(req);
    const socket = req.socket;
    if (pinned.has(socket)) return;
    if (value !== undefined && net.isIP(value) !== 0) {
      Object.defineProperty(socket, 'remoteAddress', { value, configurable: true, enumerable: true, writable: true });
    } else {
      // Back to the socket's own (none, on a Unix socket): never the previous request's client.
      delete (socket as { remoteAddress?: string }).remoteAddress;
    }
    if (upgrade) pinned.add(socket);
  };
}

/** The worker's side: the client's address for the internal header ('' when the socket is already gone). */
export function clientAddressOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? '';
}
