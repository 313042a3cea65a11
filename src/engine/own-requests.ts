// The supervisor's own requests to the engine (readiness and health probes,
// metrics scrapes), told apart from proxied client requests in vLLM's access
// log by the local port of the connection they used: the access log names the
// client's address and port (`127.0.0.1:52344 - "GET /health …"`), and an agent
// marked here records the local port of every socket it opens.
import type http from 'node:http';
import type { Socket } from 'node:net';
import { parseAccessLine } from '../log/engine-lines.js';

// Local port → until when it counts as ours (Infinity while the socket is open).
// A closed socket's port stays ours a little longer, because its access line
// may still be on its way through the engine's stdout pipe.
const LINGER_MS = 3000;
const MAX_PORTS = 512;
const ownPorts = new Map<number, number>();

function opened(port: number | undefined): void {
  if (port === undefined) return;
  ownPorts.delete(port);
  ownPorts.set(port, Infinity);
  if (ownPorts.size > MAX_PORTS) ownPorts.delete(ownPorts.keys().next().value!);
}

function closed(port: number | undefined): void {
  if (port !== undefined && ownPorts.get(port) === Infinity) ownPorts.set(port, Date.now() + LINGER_MS);
}

type ConnectionFactory = (...args: unknown[]) => Socket;

/** Record the local port of every connection `agent` opens (probe and scrape agents). Returns the agent. */
export function markOwnAgent<A extends http.Agent>(agent: A): A {
  const target = agent as unknown as { createConnection: ConnectionFactory };
  const create = target.createConnection;
  target.createConnection = function (this: unknown, ...args: unknown[]): Socket {
    const socket = create.apply(this, args);
    let port: number | undefined;
    const onConnect = (): void => {
      port = socket.localPort;
      opened(port);
    };
    if (socket.localPort !== undefined) onConnect();
    else socket.once('connect', onConnect);
    socket.once('close', () => closed(port));
    return socket;
  };
  return agent;
}

/** True when `line` is the engine's access-log line for one of the supervisor's own requests. */
export function isOwnAccessLine(line: string): boolean {
  const access = parseAccessLine(line);
  if (!access) return false;
  const until = ownPorts.get(access.clientPort);
  return until !== undefined && Date.now() <= until;
}
