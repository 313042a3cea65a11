// The floor for "launch → engine spawned": a Node process that spawns the engine at once, as the
// supervisor does (through setpriv --pdeathsig SIGKILL when it is on PATH, in a process group of
// its own, stdout and stderr piped), with nothing before it: Node's own start-up and the spawn.
// bench/run.ts's startup phase launches it beside the supervisor, so the distance from Node
// itself is in the same run.
//   node dist/bench/spawn-floor.js [vllm args…]   (the first vllm on PATH; SIGTERM stops both)
import { spawn } from 'node:child_process';
import { findExecutable } from '../src/process/executable.js';

// Looked up as the supervisor looks them up (src/process/executable.ts).
const vllm = findExecutable('vllm', process.env.PATH);
if (!vllm) throw new Error('spawn-floor: no vllm on PATH');
const setpriv = findExecutable('setpriv', process.env.PATH);
const args = ['serve', ...process.argv.slice(2)];
const child = setpriv
  ? spawn(setpriv, ['--pdeathsig', 'SIGKILL', '--', vllm, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  : spawn(vllm, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
child.stdout?.resume();
child.stderr?.resume();
const stop = (): void => {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // gone already
  }
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
child.on('exit', () => process.exit(0));
