// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are
// never forwarded (nor is any header the Connection header names). One list for
// both request paths: node:http's (server/proxy.ts) and the edge's (edge/exchange.ts).
export const HOP_BY_HOP: readonly string[] = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade'];
