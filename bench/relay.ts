// The floor for a Node proxy: a bare TCP relay (no HTTP parsing, nothing rewritten), one engine
// connection per client connection, `data` → `write` with backpressure. bench/run.ts measures it
// beside the supervisor and nginx, so the distance from Node itself to nginx is in the same run.
//   node dist/bench/relay.js <listenPort> <enginePort> [backlog] [processes]
// With processes > 1 it forks that many node:cluster workers accepting on the shared socket (as the
// supervisor's NIM_PROXY_WORKERS do): how Node's own cost per event moves with processes.
// Listens on and connects to 127.0.0.1 only.
import cluster from 'node:cluster';
import net from 'node:net';

const [listenPort = 0, enginePort = 0, backlog = 4096, processes = 1] = process.argv.slice(2).map(Number);
if (!listenPort || !enginePort) throw new Error('usage: relay.js <listenPort> <enginePort> [backlog] [processes]');

function pipe(from: net.Socket, to: net.Socket): void {
  from.on('data', (d: Buffer) => {
    if (!to.write(d)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
}

function serve(): void {
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
}

if (processes > 1 && cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 0; i < processes; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    process.exit(0);
  });
} else {
  serve();
  process.on('SIGTERM', () => process.exit(0));
}
