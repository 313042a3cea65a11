#!/usr/bin/env node
// A stand-in for Ray's `ray` command line, for tests and the demo (bin/ray).
// It is not Ray: it only forms a "cluster" of nodes over TCP so the
// supervisor's multi-node orchestration can run for real on one machine.
// Node built-ins only. See docs/multi-node.md and docs/simulator.md.
//
//   ray start --head --port P [--node-ip-address H] [--block] [--num-gpus N]
//       Listen on H:P (default 127.0.0.1) and track the nodes that join, one
//       persistent TCP connection each. Always blocks (as with --block) until
//       SIGTERM/SIGINT.
//   ray start --address=H:P [--block] [--num-gpus N]
//       Connect to the head (retrying for RAY_SHIM_CONNECT_TIMEOUT_MS, default
//       5000; exit 1 if it cannot, as Ray does), register, print "Ray runtime
//       started." and stay until the connection drops (exit 1) or SIGTERM (exit 0).
//   ray status [--address H:P]        (else RAY_ADDRESS)
//       Print a Ray-like status: one ` 1 node_<id>` line per node under
//       "Active:". Exit 1 when the head is unreachable.
//   ray stop
//       Prints that it found nothing to stop (processes are stopped by signal).
//
// Knobs (read by the shim only):
//   RAY_SHIM_NEVER_JOIN=1        a worker that never connects nor joins (it just waits)
//   RAY_SHIM_JOIN_DELAY_MS=N     a worker waits N ms before joining
//   RAY_SHIM_CONNECT_TIMEOUT_MS  how long a worker (default 5000) / status call (500) tries to connect
//   RAY_SHIM_NUM_GPUS=N          GPUs a node reports when --num-gpus is not given
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';

type Flags = Map<string, string | true>;

const KNOWN_FLAGS = new Set([
  'head',
  'port',
  'address',
  'block',
  'node-ip-address',
  'num-gpus',
  'num-cpus',
  'disable-usage-stats',
  'dashboard-host',
  'include-dashboard',
  'verbose',
  'v',
]);
const BOOLEAN_FLAGS = new Set(['head', 'block', 'disable-usage-stats', 'verbose', 'v']);

function die(code: number, message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function parseFlags(args: string[]): Flags {
  const flags: Flags = new Map();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--?([A-Za-z0-9-]+)(?:=(.*))?$/.exec(a);
    if (!m) die(2, `Error: Got unexpected extra argument (${a})`);
    const name = m[1]!;
    if (!KNOWN_FLAGS.has(name)) die(2, `Error: No such option: ${a.split('=')[0]}`);
    if (m[2] !== undefined) flags.set(name, m[2]);
    else if (BOOLEAN_FLAGS.has(name)) flags.set(name, true);
    else {
      const v = args[++i];
      if (v === undefined) die(2, `Error: Option '--${name}' requires an argument.`);
      flags.set(name, v);
    }
  }
  return flags;
}

function str(flags: Flags, name: string): string | undefined {
  const v = flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

function splitAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address.trim());
  if (!m) die(2, `ValueError: invalid address ${JSON.stringify(address)}: expected host:port`);
  return { host: m[1]!, port: Number(m[2]) };
}

function intEnv(name: string, dflt: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) die(2, `ray shim: ${name}=${JSON.stringify(raw)} is invalid: expected a number >= 0`);
  return n;
}

function numGpus(flags: Flags): number {
  const v = str(flags, 'num-gpus');
  return v !== undefined ? Number(v) || 0 : intEnv('RAY_SHIM_NUM_GPUS', 0);
}

const nodeId = (): string => randomBytes(28).toString('hex');

interface NodeInfo {
  id: string;
  gpus: number;
  cpus: number;
}

/** One JSON message per line. */
function onMessages(socket: net.Socket, handle: (msg: Record<string, unknown>) => void): void {
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        handle(JSON.parse(line) as Record<string, unknown>);
      } catch {
        socket.destroy();
      }
    }
  });
}

function send(socket: net.Socket, msg: unknown): void {
  socket.write(`${JSON.stringify(msg)}\n`);
}

const BLOCK_TEXT = [
  '--block',
  'This command will now block forever until terminated by a signal.',
  'Running subprocesses are monitored and a message will be printed if any of them terminate unexpectedly. Subprocesses exit with SIGTERM will be treated as graceful, thus NOT reported.',
];

function startHead(flags: Flags): void {
  const host = str(flags, 'node-ip-address') ?? '127.0.0.1';
  const port = Number(str(flags, 'port') ?? '6379');
  if (!Number.isInteger(port) || port < 1 || port > 65535) die(2, `Error: Invalid value for '--port': ${str(flags, 'port')}`);
  const self: NodeInfo = { id: nodeId(), gpus: numGpus(flags), cpus: os.cpus().length };
  const members = new Map<net.Socket, NodeInfo>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      const node = members.get(socket);
      if (node) {
        members.delete(socket);
        process.stdout.write(`(raylet) node ${node.id.slice(0, 12)} is dead (connection lost); ${members.size + 1} node(s) alive\n`);
      }
    });
    onMessages(socket, (msg) => {
      if (msg.type === 'join') {
        const node: NodeInfo = { id: String(msg.node_id), gpus: Number(msg.gpus) || 0, cpus: Number(msg.cpus) || 0 };
        members.set(socket, node);
        send(socket, { type: 'joined', head: self.id });
        process.stdout.write(`(gcs_server) node ${node.id.slice(0, 12)} registered from ${socket.remoteAddress}; ${members.size + 1} node(s) alive\n`);
      } else if (msg.type === 'status') {
        send(socket, { type: 'status', nodes: [self, ...members.values()] });
        socket.end();
      } else {
        socket.destroy();
      }
    });
  });
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE') die(1, `ConnectionError: Failed to start the GCS server: port ${port} on ${host} is already in use. Use --port to choose another.`);
    die(1, `Error: ${err.message}`);
  });
  server.listen(port, host, () => {
    process.stdout.write(
      [
        'Usage stats collection is disabled.',
        '',
        `Local node IP: ${host}`,
        '',
        '--------------------',
        'Ray runtime started.',
        '--------------------',
        '',
        'Next steps',
        '  To add another node to this Ray cluster, run',
        `    ray start --address='${host}:${port}'`,
        '',
        '  To terminate the Ray runtime, run',
        '    ray stop',
        '',
        ...BLOCK_TEXT,
        '',
      ].join('\n'),
    );
  });
  const stop = (): void => {
    server.close();
    for (const s of sockets) s.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** Connect, retrying until `timeoutMs`; resolves undefined when it could not. */
async function connect(host: string, port: number, timeoutMs: number): Promise<{ socket?: net.Socket; error?: string }> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'timed out';
  for (;;) {
    const r = await new Promise<{ socket?: net.Socket; error?: string }>((resolve) => {
      const s = net.connect({ host, port });
      const t = setTimeout(() => {
        s.destroy();
        resolve({ error: 'timed out' });
      }, Math.max(100, Math.min(2000, deadline - Date.now())));
      s.once('connect', () => {
        clearTimeout(t);
        resolve({ socket: s });
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(t);
        resolve({ error: err.code ?? err.message });
      });
    });
    if (r.socket) return r;
    lastError = r.error ?? lastError;
    if (Date.now() + 200 > deadline) return { error: lastError };
    await new Promise((res) => setTimeout(res, 200));
  }
}

async function startWorker(flags: Flags): Promise<void> {
  const address = str(flags, 'address')!;
  const { host, port } = splitAddress(address);
  let socket: net.Socket | undefined;
  let stopping = false;
  const stop = (): void => {
    stopping = true;
    socket?.end();
    socket?.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (process.env.RAY_SHIM_NEVER_JOIN === '1') {
    // Hangs before joining, like a node that cannot reach the head's other ports.
    setInterval(() => undefined, 1 << 30);
    return;
  }
  const delay = intEnv('RAY_SHIM_JOIN_DELAY_MS', 0);
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  const timeoutMs = intEnv('RAY_SHIM_CONNECT_TIMEOUT_MS', 5000);
  const r = await connect(host, port, timeoutMs);
  if (!r.socket) {
    die(1, `ConnectionError: Unable to connect to GCS at ${address} (${r.error}). Check that (1) Ray GCS with matching version started successfully at the specified address, and (2) there is no firewall setting preventing access.`);
  }
  socket = r.socket;
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 1000);
  const self: NodeInfo = { id: nodeId(), gpus: numGpus(flags), cpus: os.cpus().length };
  socket.on('error', () => undefined);
  socket.on('close', () => {
    if (stopping) return;
    die(1, `Some Ray subprocesses exited unexpectedly:\n  raylet [exit code=1]\nThe node lost its connection to the GCS at ${address}. Remaining processes will be killed.`);
  });
  onMessages(socket, (msg) => {
    if (msg.type !== 'joined') return;
    process.stdout.write(
      [
        `Local node IP: ${socket?.localAddress ?? '127.0.0.1'}`,
        '',
        '--------------------',
        'Ray runtime started.',
        '--------------------',
        '',
        'To terminate the Ray runtime, run',
        '  ray stop',
        '',
        ...BLOCK_TEXT,
        '',
      ].join('\n'),
    );
  });
  send(socket, { type: 'join', node_id: self.id, gpus: self.gpus, cpus: self.cpus });
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

function timestamp(d = new Date()): string {
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds() * 1000).padStart(6, '0')}`;
}

async function status(flags: Flags): Promise<void> {
  const address = str(flags, 'address') ?? process.env.RAY_ADDRESS;
  if (!address) {
    die(1, 'ConnectionError: Could not find any running Ray instance. Please specify the one to connect to by setting `--address` flag or `RAY_ADDRESS` environment variable.');
  }
  const { host, port } = splitAddress(address);
  const r = await connect(host, port, intEnv('RAY_SHIM_CONNECT_TIMEOUT_MS', 500));
  if (!r.socket) die(1, `ConnectionError: Could not connect to the Ray cluster at ${address} (${r.error}): is the head running?`);
  const socket = r.socket;
  const nodes = await new Promise<NodeInfo[]>((resolve) => {
    const t = setTimeout(() => die(1, `ConnectionError: no answer from the Ray head at ${address}`), 5000);
    onMessages(socket, (msg) => {
      if (msg.type === 'status') {
        clearTimeout(t);
        resolve(msg.nodes as NodeInfo[]);
      }
    });
    socket.on('close', () => die(1, `ConnectionError: the Ray head at ${address} closed the connection`));
    send(socket, { type: 'status' });
  });
  socket.removeAllListeners('close');
  socket.destroy();
  const gpus = nodes.reduce((s, n) => s + n.gpus, 0);
  const cpus = nodes.reduce((s, n) => s + n.cpus, 0);
  const lines = [
    `======== Autoscaler status: ${timestamp()} ========`,
    'Node status',
    '---------------------------------------------------------------',
    'Active:',
    ...nodes.map((n) => ` 1 node_${n.id}`),
    'Idle:',
    ' (no idle nodes)',
    'Pending:',
    ' (no pending nodes)',
    'Recent failures:',
    ' (no failures)',
    '',
    'Resources',
    '---------------------------------------------------------------',
    'Usage:',
    ` 0.0/${cpus.toFixed(1)} CPU`,
    ...(gpus > 0 ? [` 0.0/${gpus.toFixed(1)} GPU`] : []),
    ' 0B/0.00GiB memory',
    ' 0B/0.00GiB object_store_memory',
    '',
    'Demands:',
    ' (no resource demands)',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === 'start') {
    const flags = parseFlags(rest);
    if (flags.get('head') === true) startHead(flags);
    else if (str(flags, 'address')) await startWorker(flags);
    else die(2, 'Error: ray start needs --head or --address=<head host:port>');
  } else if (cmd === 'status') {
    await status(parseFlags(rest));
  } else if (cmd === 'stop') {
    process.stdout.write('Did not find any active Ray processes.\n');
  } else if (cmd === '--version' || cmd === 'version') {
    process.stdout.write('ray, version 2.49.0 (nim-supervisor shim)\n');
  } else {
    die(2, `Usage: ray [start|status|stop] …\n(the nim-supervisor test shim supports: start --head, start --address, status, stop)`);
  }
}

void main(process.argv.slice(2));
