// What serves the public port: node:http's server (with NIM's timeouts) and the
// edge in front of it (src/edge: TLS, the inference fast path). serve loads this
// module once the engine is spawned (the port is bound before: public-listener.ts).
import http from 'node:http';
import https from 'node:https';
import type { Config } from '../config/env.js';
import { Edge } from '../edge/edge-server.js';
import { checkPublicTimeouts, type PublicListener } from './public-listener.js';
import { loadTlsOptions } from './tls.js';

/** The public server's timeouts and TLS files, checked (a ConfigError, exit 2); its TLS options, or undefined for HTTP. */
export function checkPublicServer(config: Config): https.ServerOptions | undefined {
  checkPublicTimeouts(config);
  return loadTlsOptions(config.tls);
}

/** node:http's limits for the public port (slowloris, whole request, idle keep-alive). */
function publicServerOptions(config: Config): http.ServerOptions {
  return {
    headersTimeout: config.headersTimeoutMs, // slowloris: headers must arrive in time
    requestTimeout: config.requestTimeoutMs, // and the whole request, body included
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // Node checks those timeouts on this interval (default 30 s): check often enough to enforce them.
    connectionsCheckingInterval: Math.max(100, Math.min(1000, config.headersTimeoutMs / 2)),
  };
}

/** A health-only public server (a multi-node worker): HTTP, or HTTPS per NIM_SSL_MODE. */
export function createPublicServer(config: Config, handler: http.RequestListener): http.Server {
  const tls = checkPublicServer(config);
  const options = publicServerOptions(config);
  const server = tls ? https.createServer({ ...options, ...tls }, handler) : http.createServer(options, handler);
  if (config.maxConnections > 0) server.maxConnections = config.maxConnections;
  return server;
}

/**
 * The public port (src/edge): TLS per NIM_SSL_MODE is terminated by the edge;
 * inference requests take its fast path, the rest `handler` on node:http
 * (which never listens itself). With `listener` the edge serves that bound
 * port at once (TLS options already checked: `tls`); without, listen with
 * `listen(edge.server, config)`.
 */
export function createPublicEdge(
  config: Config,
  handler: http.RequestListener,
  bound?: { listener: PublicListener; tls: https.ServerOptions | undefined },
): { edge: Edge; server: http.Server } {
  const tls = bound ? bound.tls : checkPublicServer(config);
  const server = http.createServer(publicServerOptions(config), handler);
  const edge = new Edge({
    fallback: server,
    tls,
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    maxConnections: config.maxConnections,
    listener: bound?.listener,
  });
  return { edge, server };
}
