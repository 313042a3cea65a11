// The floor for a Node proxy: a bare TCP relay (no HTTP parsing, nothing rewritten), one engine
// connection per client connection, `data` → `write` with backpressure. bench/run.ts measures it
// beside the supervisor and nginx, so the distance from Node itself to nginx is in the same run.
//   node dist/bench/relay.js <listenPort> <enginePort> [backlog]
// Listens on and connects to 127.0.0.1 only.
import net from 'node:net';

const [listenPort, enginePort, backlog] = process.argv.slice(2).map(Number);
if (!listenPort || !enginePort) throw new Error('usage: relay.js <listenPort> <enginePort> [backlog]');

function pipe(from: net.Socket, to: net.Socket): void {
  from.on('data', (d: Buffer) => {
    if (!to.write(d)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
}

const server = net.createServer({ noDelay: true }, (client) => {
  const engine = net.connect({ port: enginePort, host: '127.0.0.1', noDelay: true });
  pipe(client, engine);
  pipe(engine, client);
  client.on('end', () => engine.end());
  engine.on('end', () => client.end());
  client.on('close', () => engine.destroy());
  engine.on('close', () => client.destroy());
  client.on('error', () => undefined);
  engine.on('error', () => undefined);
});
server.listen({ port: listenPort, host: '127.0.0.1', backlog: backlog || 4096 });
process.on('SIGTERM', () => process.exit(0));
