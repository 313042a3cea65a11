// The README as a new user follows it: a real `npm start` (npm → node, no
// shell between), the README's shell blocks pasted against it, its start-up
// log read line by line, and stopped by signalling npm's pid.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { binDir, childPids, fakeNvidiaSmiDir, freePort, pathWith, repoRoot, run, start, type Proc } from './helpers/process.js';
import { waitGone } from './helpers/supervisor.js';

// ---------------------------------------------------------------- README blocks

interface ConsoleCommand {
  command: string;
  /** The output the README shows ('' when none). */
  shown: string;
}

/** Fenced blocks of a markdown file: [language, body]. */
function fencedBlocks(markdown: string): Array<[string, string]> {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].map((m) => [m[1]!, m[2]!]);
}

/** True while a command's double quotes are open (a multi-line -d "{ … }" body). */
function openQuote(text: string): boolean {
  let open = false;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') open = !open;
  }
  return open;
}

/** `$ command` lines (with their continuation lines) and the output shown after each. */
function consoleCommands(body: string): ConsoleCommand[] {
  const out: ConsoleCommand[] = [];
  const lines = body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('$ ')) continue;
    let command = lines[i]!.slice(2);
    while ((command.endsWith('\\') || openQuote(command)) && i + 1 < lines.length) command += `\n${lines[++i]}`;
    const shown: string[] = [];
    while (i + 1 < lines.length && !lines[i + 1]!.startsWith('$ ')) shown.push(lines[++i]!);
    out.push({ command, shown: shown.join('\n').trim() });
  }
  return out;
}

/** Commands of a `sh` block, one a line, comments dropped. */
function shCommands(body: string): string[] {
  return body
    .split('\n')
    .map((l) => l.replace(/(^|\s+)#\s.*$/, '').trim())
    .filter((l) => l !== '');
}

// README commands this test cannot paste, and why. Anything else in a README block runs.
const NOT_RUN: Record<string, string> = {
  'npm ci && npm start': 'npm ci needs the registry (CI runs it); this test runs `npm start` itself',
  'npm test': 'this suite',
  'npm run build': 'npm test has just built',
  'npm run bench': 'minutes of load; its own step',
  'npm run test:image': 'builds and runs the image with podman (minutes, as root): its own step in .ci/run',
};

const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const readmeConsole = fencedBlocks(readme)
  .filter(([lang]) => lang === 'console')
  .flatMap(([, body]) => consoleCommands(body));
const readmeSh = fencedBlocks(readme)
  .filter(([lang]) => lang === 'sh' || lang === 'bash')
  .flatMap(([, body]) => shCommands(body));

/** Does `actual` match what the README shows? Exact without `…`; otherwise every JSON key shown must be there. */
function matchesShown(actual: string, shown: string): string | undefined {
  if (shown === '') return undefined;
  if (!shown.includes('…')) return actual.trim() === shown ? undefined : `expected exactly:\n${shown}\ngot:\n${actual}`;
  if (shown.startsWith('data: ')) {
    return actual.startsWith('data: ') && actual.trimEnd().endsWith('data: [DONE]') ? undefined : `expected an SSE stream ending in [DONE], got:\n${actual.slice(0, 500)}`;
  }
  const keys = [...new Set([...shown.matchAll(/"(\w+)":/g)].map((m) => m[1]!))];
  const missing = keys.filter((k) => !actual.includes(`"${k}":`));
  return missing.length === 0 ? undefined : `keys shown in the README but missing: ${missing.join(', ')}; got:\n${actual.slice(0, 500)}`;
}

/** Run the console commands in one bash (so `export` carries over), each with its output and exit status. */
async function runSession(commands: string[], env: NodeJS.ProcessEnv): Promise<Array<{ output: string; rc: number }>> {
  const script = commands.map((c, i) => `${c} 2>&1\necho; echo "@@rc ${i} $?"`).join('\n');
  const r = await run('bash', ['-c', script], { env, timeoutMs: 60_000 });
  const results: Array<{ output: string; rc: number }> = [];
  let rest = r.stdout;
  for (let i = 0; i < commands.length; i++) {
    const m = new RegExp(`\\n?@@rc ${i} (\\d+)\\n`).exec(rest);
    assert.ok(m, `no status for command ${i}; output:\n${r.stdout}\n${r.stderr}`);
    results.push({ output: rest.slice(0, m.index).replace(/\n$/, ''), rc: Number(m[1]) });
    rest = rest.slice(m.index + m[0].length);
  }
  return results;
}

// ---------------------------------------------------------------- npm start

function npmEnv(port: number, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    // The fake nvidia-smi without FAKE_NVIDIA_SMI acts like a host without a driver: the CPU profile.
    // No fake nvidia-smi: a host without any NVIDIA GPU, where the CPU profile is the automatic choice (#12).
    PATH: process.env.PATH ?? '',
    NIM_SERVER_PORT: String(port),
    NIM_SERVER_HOST: '127.0.0.1',
    NIM_JSONL_LOGGING: '0',
    NIM_LOG_LEVEL: 'INFO',
    npm_config_update_notifier: 'false',
    ...extra,
  };
}

interface NpmStart {
  npm: Proc;
  /** The supervisor: npm's only child, node itself (no shell between). */
  supervisorPid: number;
  enginePid: number;
}

async function npmStart(port: number, extra: Record<string, string> = {}): Promise<NpmStart> {
  const npm = start('npm', ['start'], { env: npmEnv(port, extra) });
  const spawned = await npm.waitForOutput(/engine spawned after [\d.]+ s: pid (\d+)/, 60_000);
  const enginePid = Number(/pid (\d+)/.exec(spawned)![1]);
  const children = await childPids(npm.pid);
  assert.equal(children.length, 1, `npm has one child, got ${children.join(', ')}`);
  const cmdline = readFileSync(`/proc/${children[0]}/cmdline`, 'utf8').split('\0');
  assert.match(path.basename(cmdline[0]!), /^node/, `npm's child is node itself, not a shell: ${cmdline.join(' ')}`);
  assert.ok(cmdline.includes('serve'));
  return { npm, supervisorPid: children[0]!, enginePid };
}

/** The port is free again: nothing was left holding it. */
async function portFree(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function stoppedCleanly(s: NpmStart, port: number): Promise<void> {
  const exit = await s.npm.exited;
  assert.equal(exit.code, 0, `npm exits 0:\n${s.npm.output().slice(-3000)}`);
  await waitGone(s.supervisorPid);
  await waitGone(s.enginePid);
  assert.ok(await portFree(port), `port ${port} is free again`);
  assert.match(s.npm.stdout(), /supervisor stopped cleanly/);
}

/** Supervisor lines of the readable log: `<time> <LEVEL> [supervisor] <message>`. */
function supervisorLines(out: string): string[] {
  return out
    .split('\n')
    .map((l) => /^\S+ (\w+) +\[supervisor\] (.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]} ${m[2]}`);
}

describe('npm start, as the README says', () => {
  test('the README\'s commands run as shown against it; start-up phases are logged; SIGINT on npm\'s pid stops everything', async () => {
    const port = await freePort();
    const s = await npmStart(port);
    const readyLine = await s.npm.waitForOutput(/ready: \S+ model \S+ in [\d.]+ s/, 60_000);
    assert.equal(readyLine.split(' ')[1], `http://127.0.0.1:${port}`);
    assert.match(readyLine, / model nvidia\/nemotron-3-content-safety in /);

    // The README's console session, pasted with this test's port.
    assert.ok(readmeConsole.length >= 8, 'the README has its curl session');
    const session = await runSession(
      readmeConsole.map((c) => c.command.replaceAll('localhost:8000', `localhost:${port}`)),
      npmEnv(port),
    );
    session.forEach((r, i) => {
      const { command, shown } = readmeConsole[i]!;
      assert.equal(r.rc, 0, `README command failed (exit ${r.rc}):\n$ ${command}\n${r.output}`);
      const problem = matchesShown(r.output, shown);
      assert.equal(problem, undefined, `README command's output differs from what the README shows:\n$ ${command}\n${problem}`);
    });

    // The README's sh blocks (except those that cannot run inside a test).
    const runnable = readmeSh.filter((c) => !(c in NOT_RUN));
    assert.ok(runnable.length >= 2, 'the README has runnable sh commands');
    for (const command of runnable) {
      const r = await run('bash', ['-c', command], { env: { ...process.env, npm_config_update_notifier: 'false' }, timeoutMs: 60_000 });
      assert.equal(r.code, 0, `README command failed:\n$ ${command}\n${r.stdout}${r.stderr}`);
      assert.ok(r.stdout.trim().length > 0, `README command printed nothing:\n$ ${command}`);
    }

    // Let a health probe or two pass after the session (the interval is 5 s; ready probes ran already).
    const out = s.npm.stdout();
    const lines = supervisorLines(out);
    const phases = ['INFO hardware detected after', 'INFO profile selected after', 'INFO engine spawned after', 'INFO ready: '];
    const at = phases.map((p) => lines.findIndex((l) => l.startsWith(p)));
    assert.ok(at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1]!)), `phases in order:\n${lines.join('\n')}`);
    assert.match(lines[at[1]!]!, /profile selected after [\d.]+ s: [0-9a-f]{8} \(vllm-bf16-cpu\), automatically$/);
    assert.equal(lines.filter((l) => l.startsWith('INFO ready: ')).length, 1, 'one ready line');
    // The engine's access log: the client's requests are shown, the supervisor's probes are not.
    const access = out.split('\n').filter((l) => /\[engine\] .*INFO: +127\.0\.0\.1:\d+ - "/.test(l));
    const clientModels = readmeConsole.filter((c) => /\/v1\/models\b/.test(c.command)).length;
    assert.equal(access.filter((l) => l.includes('"GET /v1/models ')).length, clientModels, `client GET /v1/models shown once each:\n${access.join('\n')}`);
    assert.ok(access.some((l) => l.includes('"POST /v1/chat/completions ')), 'client chat requests are shown');
    assert.equal(access.filter((l) => l.includes('"GET /health ')).length, 0, 'probe lines are hidden at INFO');

    s.npm.kill('SIGINT');
    await stoppedCleanly(s, port);
    assert.match(s.npm.stdout(), /received SIGINT; draining requests/);
    assert.doesNotMatch(s.npm.stdout(), /received SIGINT again/);
  });

  test('while loading: "still loading" lines quote the engine; SIGTERM on npm\'s pid stops everything', async () => {
    const port = await freePort();
    const s = await npmStart(port, { VLLM_SIM_STARTUP_MS: '2500', NIM_LOG_PROGRESS_INTERVAL: '0.4' });
    const progress = await s.npm.waitForOutput(/still loading after [\d.]+ s: \(EngineCore_DP0 pid=\d+\) INFO .*\n/, 30_000);
    assert.match(progress, /\[\w+\.py:\d+\]/, 'the engine\'s own line, verbatim');
    await s.npm.waitForOutput(/ready: http:\/\/127\.0\.0\.1:\d+ model /, 30_000);
    s.npm.kill('SIGTERM');
    await stoppedCleanly(s, port);
    assert.match(s.npm.stdout(), /received SIGTERM; draining requests/);
  });

  test('Ctrl-C in a terminal (SIGINT to the whole foreground group, forwarded again by npm) is one stop, with the drain', async () => {
    const port = await freePort();
    const s = await npmStart(port);
    await s.npm.waitForOutput(/ready: /, 60_000);
    process.kill(-s.npm.pid, 'SIGINT'); // npm and the supervisor share the group, as under a terminal
    await stoppedCleanly(s, port);
    assert.doesNotMatch(s.npm.stdout(), /received SIGINT again|cutting remaining requests/);
  });
});
