// Teardown of a public HTTP(S) server in the project's vocabulary: `close` is
// graceful (stop accepting, let answers already written reach their clients),
// then whatever is still open is cut.
import type http from 'node:http';

/**
 * Stop accepting connections, close idle keep-alive connections at once, give
 * responses already written `lingerMs` (default 50 ms) to reach their clients,
 * then destroy every remaining connection. Resolves once that is done.
 */
export async function closeServer(server: http.Server, lingerMs = 50): Promise<void> {
  server.close();
  server.closeIdleConnections();
  await new Promise((r) => setTimeout(r, lingerMs));
  server.closeAllConnections();
}
