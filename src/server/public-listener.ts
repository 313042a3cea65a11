// The public port's listening socket, bound before the engine is spawned (a
// port in use stops the supervisor with exit 2 before any engine exists) and
// with only node:net loaded: the HTTP stack that serves it (server/public-port.ts,
// src/edge) loads once the engine is spawned, off the start-up path.
// Connections that arrive meanwhile wait, paused, and are served in order.
import net from 'node:net';
import type { Config } from '../config/env.js';
import { ConfigError } from '../errors.js';

/** The public server's timeouts, checked (a ConfigError, exit 2). */
export function checkPublicTimeouts(config: Config): void {
  if (config.headersTimeoutMs > config.requestTimeoutMs) {
    throw new ConfigError(
      `NIM_HEADERS_TIMEOUT (${config.headersTimeoutMs / 1000} s) is longer than NIM_REQUEST_TIMEOUT (${config.requestTimeoutMs / 1000} s)`,
      { hint: 'the whole request cannot take less time than its headers' },
    );
  }
}

/** Listen on NIM_SERVER_HOST:NIM_SERVER_PORT with NIM_LISTEN_BACKLOG; a port in use or not allowed is a ConfigError (exit 2). */
export function listen(server: net.Server, config: Config): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') {
        reject(
          new ConfigError(`port ${config.serverPort} on ${config.serverHost} is already in use`, {
            hint: 'stop whatever listens there or set NIM_SERVER_PORT to a free port',
          }),
        );
      } else if (err.code === 'EACCES') {
        reject(new ConfigError(`not allowed to listen on port ${config.serverPort}`, { hint: 'use NIM_SERVER_PORT >= 1024 or grant the capability' }));
      } else {
        reject(new ConfigError(`cannot listen on ${config.serverHost}:${config.serverPort}: ${err.message}`, { hint: 'check NIM_SERVER_HOST and NIM_SERVER_PORT' }));
      }
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port: config.serverPort, host: config.serverHost, backlog: config.listenBacklog });
  });
}

/**
 * A listening net.Server whose connections go to one consumer, attached later.
 * Sockets arrive paused (no byte is read before the consumer has them, so TLS
 * can still take a socket over): the consumer resumes them.
 */
export class PublicListener {
  readonly server: net.Server;
  #consumer: ((socket: net.Socket) => void) | undefined;
  readonly #waiting = new Set<net.Socket>();

  constructor(maxConnections: number) {
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (socket) => this.#accept(socket));
    if (maxConnections > 0) this.server.maxConnections = maxConnections; // NIM_MAX_CONNECTIONS
  }

  #accept(socket: net.Socket): void {
    if (this.#consumer !== undefined) {
      this.#consumer(socket);
      return;
    }
    this.#waiting.add(socket);
    socket.once('close', () => this.#waiting.delete(socket));
  }

  /** Every connection goes to `consumer` from now on: first those that waited, in the order they came. */
  attach(consumer: (socket: net.Socket) => void): void {
    this.#consumer = consumer;
    for (const socket of this.#waiting) {
      this.#waiting.delete(socket);
      if (!socket.destroyed) consumer(socket);
    }
  }

  /** Immediate: stop listening and cut the connections still waiting for a consumer. */
  destroy(): void {
    this.server.close();
    for (const socket of this.#waiting) socket.destroy();
    this.#waiting.clear();
  }
}

/** Bind the public port (see listen) and hold its connections until a consumer is attached. */
export async function bindPublicPort(config: Config): Promise<PublicListener> {
  const listener = new PublicListener(config.maxConnections);
  await listen(listener.server, config);
  return listener;
}
