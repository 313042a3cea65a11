// Headers the supervisor uses between its own processes. None may reach the engine
// or a client: every path that forwards a request to the engine drops them.

/**
 * The client's address, from a proxy worker to the primary over its Unix socket
 * (src/workers/client-address.ts). Lower case, as node:http names it.
 */
export const CLIENT_ADDRESS_HEADER = 'nim-supervisor-client-address';
