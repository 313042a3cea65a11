// The container image, built from the real Dockerfile and run as a user would,
// with podman (rootful, as CI runs). No registry image can be pulled here, so
// NODE_IMAGE and VLLM_IMAGE point at stand-ins made from registry packages
// (test/image/stand-ins.sh: Debian from debootstrap, Node from the npm
// registry; test/image/vllm.Containerfile: a `vllm` on PATH that runs the
// project's simulator, with the nvidia/cuda base's NVIDIA_VISIBLE_DEVICES=all).
// Asserted: the image's configuration, its files and permissions, the CLI's
// commands as CMD overrides (list-model-profiles, select-profile, help env,
// download-to-cache into a volume, nim-serve), liveness at once and
// readiness only once the engine is healthy, the seed's curl calls through the
// published port, uid 1000 and tini as PID 1, `podman stop` letting an
// in-flight stream finish with exit 0 and no process left, and a read-only
// root filesystem with a cache volume as restricted Kubernetes pods run it.
//
// Run: npm run test:image (minutes; .ci/run runs it as its own step). Prints
// the build time and the image size.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const here = path.join(repoRoot, 'test', 'image');
const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
const MODEL = 'nvidia/nemotron-3-content-safety';
/**
 * The engine image's base sets NVIDIA_VISIBLE_DEVICES=all, so a container looks
 * like a GPU host even without GPUs, and the supervisor never falls back to the
 * CPU by itself (#12): the CPU profile is named, as a user without GPUs does.
 */
const CPU_PROFILE = 'vllm-bf16-cpu';
const CPU = { NIM_MODEL_PROFILE: CPU_PROFILE };

/** podman with the test's own containers.conf (runc, no default ulimits). */
const env = { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? path.join(here, 'containers.conf') };
/** On the engine stand-in with Ubuntu 24.04's `ubuntu` user (uid 1000), as vLLM >= 0.28 images. */
const IMAGE = 'localhost/nim-supervisor:ci';
/** On the engine stand-in without a uid 1000, as vLLM 0.11's Ubuntu 22.04 image: the Dockerfile creates `nim`. */
const IMAGE_NO_UID_1000 = 'localhost/nim-supervisor:ci-no-uid-1000';
const SIM_IMAGE = 'localhost/nim-supervisor-ci/build:current';
const VLLM_IMAGE = 'localhost/nim-supervisor-ci/vllm:ubuntu-user';
const VLLM_IMAGE_NO_UID_1000 = 'localhost/nim-supervisor-ci/vllm:no-uid-1000';
const tag = `${process.pid}`;
/** Containers and volumes carry the pid of the test run that made them. */
const OWNER_LABEL = 'nim-supervisor-ci.pid';
const containers: string[] = [];
const volumes: string[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'nim-image-'));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to completion (never throws on a non-zero exit). */
function run(cmd: string, args: string[], opts: { timeoutMs?: number; cwd?: string } = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, cwd: opts.cwd ?? repoRoot, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout, stderr: stderr || (err && code === null ? String(err) : '') });
    });
  });
}

async function podman(args: string[], timeoutMs?: number): Promise<Result> {
  return await run('podman', args, { timeoutMs });
}

/** podman …, which must succeed; its stdout. */
async function podmanOk(args: string[], timeoutMs?: number): Promise<string> {
  const r = await podman(args, timeoutMs);
  assert.equal(r.code, 0, `podman ${args.join(' ')} failed (${r.code}):\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}

/** A long command (a build) with its output in a log file; the log's tail in the error. */
function runLogged(cmd: string, args: string[], logName: string, timeoutMs: number): Promise<string> {
  const logFile = path.join(tmp, logName);
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const child = spawn(cmd, args, { env, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => out.push(b));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const text = Buffer.concat(out).toString('utf8');
      writeFileSync(logFile, text);
      if (code === 0) resolve(text);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${code ?? signal}); log ${logFile}:\n${text.slice(-6000)}`));
    });
  });
}

async function freePort(): Promise<number> {
  const net = await import('node:net');
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(100);
  }
}

async function status(url: string): Promise<number> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  await r.arrayBuffer();
  return r.status;
}

/** A running container: its name, published port and base URL. */
interface Running {
  name: string;
  port: number;
  base: string;
}

/** `podman run -d` the image as a user would, publishing 8000 on a free loopback port. */
async function startContainer(purpose: string, runArgs: string[], envs: Record<string, string> = {}, image = IMAGE, cmd: string[] = []): Promise<Running> {
  const name = `nim-ci-${purpose}-${tag}`;
  const port = await freePort();
  containers.push(name);
  const e = Object.entries({ ...CPU, ...envs }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  await podmanOk(['run', '-d', '--name', name, '--label', `${OWNER_LABEL}=${process.pid}`, '-p', `127.0.0.1:${port}:8000`, '--stop-timeout', '60', ...e, ...runArgs, image, ...cmd]);
  return { name, port, base: `http://127.0.0.1:${port}` };
}

async function logsOf(name: string): Promise<string> {
  const r = await podman(['logs', name]);
  return `${r.stdout}${r.stderr}`;
}

/** Host pids of a container's processes: its init and every descendant. */
async function hostPids(name: string): Promise<number[]> {
  const init = Number((await podmanOk(['inspect', '--format', '{{.State.Pid}}', name])).trim());
  assert.ok(init > 0, `${name} runs`);
  const pids: number[] = [];
  const walk = (pid: number): void => {
    pids.push(pid);
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const c of children.trim().split(/\s+/).filter(Boolean)) walk(Number(c));
    }
  };
  walk(init);
  return pids;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * A container's processes, read from the host's /proc (the same kernel): the
 * pid inside the container's pid namespace, the real uid, the command line.
 */
async function processesIn(name: string): Promise<Array<{ pid: number; uid: number; cmdline: string }>> {
  const procs = [];
  for (const hostPid of await hostPids(name)) {
    try {
      const statusText = readFileSync(`/proc/${hostPid}/status`, 'utf8');
      const nspid = /^NSpid:\s*([\d\s]+)$/m.exec(statusText)?.[1]?.trim().split(/\s+/).at(-1);
      const uid = /^Uid:\s*(\d+)/m.exec(statusText)?.[1];
      const cmdline = readFileSync(`/proc/${hostPid}/cmdline`, 'utf8').split('\0').join(' ').replace(/\s+/g, ' ').trim();
      procs.push({ pid: Number(nspid), uid: Number(uid), cmdline });
    } catch {
      // exited meanwhile
    }
  }
  return procs;
}

let buildSeconds = 0;
const timings: string[] = [];
let imageBytes = 0;

async function timed(what: string, fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  await fn();
  timings.push(`${what} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

before(
  async () => {
    for (const tool of ['podman', 'buildah', 'runc', 'debootstrap', 'curl']) {
      const found = await run('sh', ['-c', `command -v ${tool}`]);
      assert.equal(found.code, 0, `${tool} is not installed: the image test needs podman, buildah, runc, debootstrap and curl (.ci/run installs them), and root`);
    }
    // 0. What an earlier run that was killed left behind (its pid is gone).
    for (const kind of ['container', 'volume'] as const) {
      const ls = kind === 'container' ? ['ps', '-a', '--filter', `label=${OWNER_LABEL}`, '--format', `{{.Names}} {{index .Labels "${OWNER_LABEL}"}}`] : ['volume', 'ls', '--filter', `label=${OWNER_LABEL}`, '--format', `{{.Name}} {{index .Labels "${OWNER_LABEL}"}}`];
      for (const line of (await podman(ls)).stdout.trim().split('\n').filter(Boolean)) {
        const [name, pid] = line.split(' ');
        if (name && pid && !alive(Number(pid))) await podman(kind === 'container' ? ['rm', '-f', '-t', '0', name] : ['volume', 'rm', '-f', name]);
      }
    }
    // 1. The stand-in base images (cached in podman's storage by recipe hash).
    let standIns = '';
    await timed('stand-ins', async () => (standIns = await runLogged('bash', [path.join(here, 'stand-ins.sh')], 'stand-ins.log', 20 * 60_000)));
    const refs = Object.fromEntries([...standIns.matchAll(/^(DEBIAN_IMAGE|NODE_IMAGE)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
    assert.ok(refs.DEBIAN_IMAGE && refs.NODE_IMAGE, `stand-ins.sh printed the images:\n${standIns.slice(-2000)}`);
    const common = ['build', '--pull=never', '--network=host', '--format', 'docker', '--layers'];
    // Each tag's image before this run: once replaced, it goes (with its cache layers).
    const previous = new Map<string, string>();
    const build = async (ref: string, args: string[], contextDir: string): Promise<void> => {
      previous.set(ref, (await podman(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim());
      await runLogged('podman', [...common, ...args, '-t', ref, contextDir], `${ref.replace(/\W+/g, '-')}.log`, 20 * 60_000);
    };
    // 2. The Dockerfile's build stage: it compiles the simulator the engine stand-in runs.
    await timed('build stage', () => build(SIM_IMAGE, ['--target', 'build', '--build-arg', `NODE_IMAGE=${refs.NODE_IMAGE}`, '--build-arg', `VLLM_IMAGE=${refs.DEBIAN_IMAGE}`], '.'));
    // 3. The engine stand-ins: with and without a uid 1000 user.
    const standIn = (ref: string, user: string) =>
      build(ref, ['-f', path.join(here, 'vllm.Containerfile'), '--build-arg', `DEBIAN_IMAGE=${refs.DEBIAN_IMAGE}`, '--build-arg', `NODE_IMAGE=${refs.NODE_IMAGE}`, '--build-arg', `SIM_IMAGE=${SIM_IMAGE}`, '--build-arg', `UID_1000_USER=${user}`], here);
    await timed('engine stand-ins', async () => {
      await standIn(VLLM_IMAGE, 'ubuntu');
      await standIn(VLLM_IMAGE_NO_UID_1000, '');
    });
    // 4. The image itself, as a user builds it (the build stage is cached from step 2).
    const image = (ref: string, vllmImage: string) => build(ref, ['--build-arg', `NODE_IMAGE=${refs.NODE_IMAGE}`, '--build-arg', `VLLM_IMAGE=${vllmImage}`], '.');
    const t0 = performance.now();
    await image(IMAGE, VLLM_IMAGE);
    buildSeconds = (performance.now() - t0) / 1000;
    imageBytes = Number((await podmanOk(['image', 'inspect', '--format', '{{.Size}}', IMAGE])).trim());
    await timed('image without uid 1000 in the base', () => image(IMAGE_NO_UID_1000, VLLM_IMAGE_NO_UID_1000));
    for (const ref of [IMAGE, IMAGE_NO_UID_1000, VLLM_IMAGE, VLLM_IMAGE_NO_UID_1000, SIM_IMAGE]) {
      const old = previous.get(ref);
      const now = (await podman(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();
      if (old && old !== now) await podman(['rmi', old]); // images first, then what they were built on
    }
    console.log(`image ${IMAGE}: ${(imageBytes / 1e6).toFixed(0)} MB, built in ${buildSeconds.toFixed(1)} s (its build stage cached by the step before); ${timings.join(', ')}`);
  },
  { timeout: 45 * 60_000 },
);

after(async () => {
  for (const c of containers) await podman(['rm', '-f', '-t', '0', c]);
  for (const v of volumes) await podman(['volume', 'rm', '-f', v]);
  rmSync(tmp, { recursive: true, force: true });
});

test('the image: user 1000:1000, tini -s as the entrypoint, CMD serve, HEALTHCHECK on liveness, labels', async (t) => {
  const [inspect] = JSON.parse(await podmanOk(['image', 'inspect', IMAGE])) as Array<Record<string, any>>;
  const config = inspect!.Config as Record<string, any>;
  assert.equal(config.User, '1000:1000');
  assert.deepEqual(config.Entrypoint, ['/usr/bin/tini', '-s', '--', '/usr/local/bin/node', '/opt/nim-supervisor/dist/src/cli/main.js']);
  assert.deepEqual(config.Cmd, ['serve']);
  assert.equal(config.WorkingDir, '/opt/nim');
  assert.equal(config.StopSignal, 'SIGTERM');
  assert.ok(Object.keys(config.ExposedPorts ?? {}).includes('8000/tcp'));
  const envMap = Object.fromEntries((config.Env as string[]).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  assert.equal(envMap.HOME, '/opt/nim');
  assert.equal(envMap.HF_HOME, '/opt/nim/.cache/huggingface');
  assert.equal(envMap.NIM_SERVER_PORT, '8000');
  assert.equal(envMap.NIM_CACHE_PATH, '/opt/nim/.cache');
  assert.equal(envMap.NVIDIA_VISIBLE_DEVICES, 'all', 'inherited from the engine image, as from nvidia/cuda');
  const hc = (inspect!.Healthcheck ?? config.Healthcheck) as { Test?: string[] } | undefined;
  assert.ok(hc?.Test?.join(' ').includes('/v1/health/live'), `HEALTHCHECK kept (docker format): ${JSON.stringify(hc)}`);
  assert.equal(config.Labels['org.opencontainers.image.version'], pkg.version);
  assert.equal(config.Labels['org.opencontainers.image.base.name'], VLLM_IMAGE);
  t.diagnostic(`build ${buildSeconds.toFixed(1)} s, size ${(imageBytes / 1e6).toFixed(0)} MB`);
});

for (const [image, user] of [[IMAGE, 'ubuntu'], [IMAGE_NO_UID_1000, 'nim']] as const) {
  test(`files (${image}): uid 1000 is "${user}", the supervisor is root-owned and read-only for it, HOME and the cache are its own, the tools are on PATH`, async () => {
    const script = [
      'echo "id=$(id -u):$(id -g) user=$(id -un) home=$HOME pwd=$(pwd)"',
      'for f in /opt/nim-supervisor /opt/nim-supervisor/dist/src/cli/main.js /opt/nim-supervisor/dist/src/chunks /usr/local/bin/node /usr/bin/tini; do if [ -w "$f" ]; then echo "writable: $f"; fi; done',
      // The bundle carries its dependencies: no node_modules is shipped.
      'find /opt/nim-supervisor -name node_modules -exec echo "shipped: {}" \\;',
      'for d in /opt/nim /opt/nim/.cache; do if [ ! -w "$d" ]; then echo "not writable: $d"; fi; done',
      'for c in vllm setpriv sh node tini nim-supervisor; do command -v "$c" >/dev/null || echo "missing: $c"; done',
      'echo "vllm=$(command -v vllm)"',
      'nim-supervisor --version',
    ].join('\n');
    const out = await podmanOk(['run', '--rm', '--entrypoint', 'sh', image, '-c', script]);
    assert.match(out, new RegExp(`^id=1000:1000 user=${user} home=/opt/nim pwd=/opt/nim$`, 'm'));
    assert.doesNotMatch(out, /writable: |missing: |shipped: /);
    assert.match(out, /^vllm=\/usr\/local\/bin\/vllm$/m);
    assert.ok(out.includes(pkg.version), `nim-supervisor --version prints ${pkg.version}: ${out}`);
  });
}

test('podman run IMAGE list-model-profiles, select-profile, help env: the CLI\'s commands as CMD overrides, without a GPU', async () => {
  const list = await podman(['run', '--rm', IMAGE, 'list-model-profiles']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /SYSTEM INFO/);
  assert.match(list.stdout, /MODEL PROFILES/);
  assert.match(list.stdout, /Compatible with system and runnable:\n\s+- [0-9a-f]{64} \(vllm-bf16-cpu\) \[CPU\]/, 'the CPU profile can run without GPUs');
  // NVIDIA_VISIBLE_DEVICES=all from the base: no automatic CPU fallback; exit 2 with a hint naming the CPU profile.
  const auto = await podman(['run', '--rm', IMAGE, 'select-profile', '--json']);
  assert.equal(auto.code, 2, `select-profile without NIM_MODEL_PROFILE: ${auto.stdout}${auto.stderr}`);
  assert.match(auto.stderr, /NVIDIA_VISIBLE_DEVICES=all/);
  assert.match(auto.stderr, /set NIM_MODEL_PROFILE=vllm-bf16-cpu/);
  const sel = await podman(['run', '--rm', '-e', `NIM_MODEL_PROFILE=${CPU_PROFILE}`, IMAGE, 'select-profile', '--json']);
  assert.equal(sel.code, 0, sel.stderr);
  const json = JSON.parse(sel.stdout) as { profile?: { name?: string } };
  assert.equal(json.profile?.name, CPU_PROFILE);
  assert.match(JSON.stringify(json), /"vllm"|\/vllm"/, 'the engine command is vllm');
  // The container toolkit's "no GPU" value: the CPU profile is chosen by itself.
  const none = await podman(['run', '--rm', '-e', 'NVIDIA_VISIBLE_DEVICES=void', IMAGE, 'select-profile', '--json']);
  assert.equal(none.code, 0, none.stderr);
  assert.equal((JSON.parse(none.stdout) as { profile?: { name?: string } }).profile?.name, CPU_PROFILE);
  const help = await podman(['run', '--rm', IMAGE, 'help', 'env', 'NIM_MODEL_PROFILE']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^NIM_MODEL_PROFILE$/m);
  const usage = await podman(['run', '--rm', IMAGE, '--help']);
  assert.equal(usage.code, 0, usage.stderr);
  for (const cmd of ['serve', 'nim-serve', 'list-model-profiles', 'download-to-cache', 'select-profile']) assert.match(usage.stdout, new RegExp(`^  ${cmd} `, 'm'));
});

test('podman run IMAGE download-to-cache: a model from a hub into a cache volume, as uid 1000 on a read-only root', async () => {
  const { startFixtureHub } = await import('../helpers/fixture-hub.js');
  const { tinyModelFiles } = await import('../helpers/tiny-model.js');
  const repo = 'test-org/tiny-llama';
  const hub = await startFixtureHub({ [repo]: { files: tinyModelFiles({ shardBytes: 64 * 1024 }) } });
  const volume = `nim-ci-download-${tag}`;
  volumes.push(volume);
  try {
    await podmanOk(['volume', 'create', '--label', `${OWNER_LABEL}=${process.pid}`, volume]);
    // The host network: the hub listens on the host's loopback.
    const dl = await podman(['run', '--rm', '--network=host', '--read-only', '--read-only-tmpfs=false', '--cap-drop=ALL', '-v', `${volume}:/opt/nim/.cache`, '-e', `NIM_MODEL_PATH=hf://${repo}`, '-e', `HF_ENDPOINT=${hub.url}`, IMAGE, 'download-to-cache', '--all'], 180_000);
    assert.equal(dl.code, 0, `download-to-cache: ${dl.stdout}${dl.stderr}`);
    assert.match(`${dl.stdout}${dl.stderr}`, /Cached hf:\/\/test-org\/tiny-llama \(commit [0-9a-f]{40}\)/);
    const ls = await podmanOk(['run', '--rm', '--entrypoint', 'sh', '-v', `${volume}:/opt/nim/.cache`, IMAGE, '-c', `stat -c '%u:%g %n' /opt/nim/.cache/huggingface/hub/models--test-org--tiny-llama/snapshots/${hub.commitOf(repo)}/config.json`]);
    assert.match(ls, /^1000:1000 /m, 'the snapshot is in the volume, owned by uid 1000');
  } finally {
    await hub.close();
  }
});

let serving: Running | undefined;
const healthFile = path.join(tmp, 'engine-health');

test('serve: liveness at once, readiness only once the engine is healthy (through the published port)', async () => {
  // The simulator's /health fails while this file says "fail" (VLLM_SIM_HEALTH_FILE).
  writeFileSync(healthFile, 'fail\n');
  chmodSync(healthFile, 0o644);
  serving = await startContainer('serve', ['-v', `${healthFile}:/run/nim-ci/engine-health:ro`], {
    VLLM_SIM_HEALTH_FILE: '/run/nim-ci/engine-health',
    VLLM_SIM_TOKEN_MS: '10',
  });
  const { base, name } = serving;
  try {
    await waitFor(async () => (await status(`${base}/v1/health/live`)) === 200, 'liveness', 120_000);
    // The engine runs but is not healthy: live, not ready, inference answers 503.
    await waitFor(async () => (await processesIn(name)).some((p) => p.cmdline.includes('dist/src/sim/main.js serve')), 'the engine process', 60_000);
    await sleep(1500); // a few of the supervisor's health probes
    assert.equal(await status(`${base}/v1/health/live`), 200);
    assert.equal(await status(`${base}/v1/health/ready`), 503, 'not ready while the engine is unhealthy');
    const early = await fetch(`${base}/v1/models`);
    await early.arrayBuffer();
    assert.equal(early.status, 503);
    writeFileSync(healthFile, 'ok\n');
    await waitFor(async () => (await status(`${base}/v1/health/ready`)) === 200, 'readiness', 120_000);
  } catch (err) {
    throw new Error(`${String(err)}\n--- podman logs ${name}:\n${(await logsOf(name)).slice(-4000)}`);
  }
});

/** curl, as the seed's calls are written; the body, after checking the status. */
async function curl(args: string[]): Promise<string> {
  const r = await run('curl', ['-sS', '--max-time', '60', '-w', '\n%{http_code}', ...args]);
  assert.equal(r.code, 0, `curl ${args.join(' ')}: ${r.stderr}`);
  const i = r.stdout.lastIndexOf('\n');
  assert.equal(r.stdout.slice(i + 1), '200', `curl ${args.join(' ')}: ${r.stdout}`);
  return r.stdout.slice(0, i);
}

test('serve: the seed\'s curl calls through the published port', async () => {
  assert.ok(serving, 'the serve container runs');
  const b = serving.base;
  const models = JSON.parse(await curl([`${b}/v1/models`])) as { data: Array<{ id: string }> };
  assert.equal(models.data[0]!.id, MODEL);
  const chat = JSON.parse(
    await curl([`${b}/v1/chat/completions`, '-H', 'Content-Type: application/json', '-d', JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'What is GPU computing?' }], max_tokens: 256 })]),
  ) as { object: string; choices: Array<{ message: { content: string } }> };
  assert.equal(chat.object, 'chat.completion');
  assert.ok(chat.choices[0]!.message.content.length > 0);
  const stream = await curl([`${b}/v1/chat/completions`, '-H', 'Content-Type: application/json', '-d', JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'What is GPU computing?' }], max_tokens: 64, stream: true })]);
  assert.match(stream, /^data: \{.*"chat\.completion\.chunk"/m);
  assert.match(stream, /^data: \[DONE\]$/m);
  const tok = JSON.parse(await curl([`${b}/tokenize`, '-H', 'Content-Type: application/json', '-d', JSON.stringify({ model: MODEL, prompt: 'Hello world' })])) as { count: number; tokens: number[] };
  assert.equal(tok.count, tok.tokens.length);
  const detok = JSON.parse(await curl([`${b}/detokenize`, '-H', 'Content-Type: application/json', '-d', JSON.stringify({ model: MODEL, tokens: tok.tokens.slice(1) })])) as { prompt: string };
  assert.match(detok.prompt, /Hello world/);
  assert.equal((JSON.parse(await curl([`${b}/v1/health/live`])) as { status: string }).status, 'live');
  assert.equal((JSON.parse(await curl([`${b}/v1/health/ready`])) as { status: string }).status, 'ready');
  const meta = JSON.parse(await curl([`${b}/v1/metadata`])) as { selectedModelProfile?: { name?: string } };
  assert.equal(meta.selectedModelProfile?.name, 'vllm-bf16-cpu');
  const version = JSON.parse(await curl([`${b}/v1/version`])) as { supervisor?: string };
  assert.equal(version.supervisor, pkg.version);
  assert.match(await curl([`${b}/v1/metrics`]), /^vllm:num_requests_running/m, 'the engine\'s metrics come through');
});

test('serve: tini is PID 1, every process runs as uid 1000, the engine is a child of the supervisor; HEALTHCHECK passes', async () => {
  assert.ok(serving, 'the serve container runs');
  const procs = await processesIn(serving.name);
  const init = procs.find((p) => p.pid === 1);
  assert.match(init?.cmdline ?? '', /^\/usr\/bin\/tini -s -- \/usr\/local\/bin\/node \/opt\/nim-supervisor\/dist\/src\/cli\/main\.js serve$/, JSON.stringify(procs));
  for (const p of procs) assert.equal(p.uid, 1000, `uid of ${p.pid} ${p.cmdline}`);
  assert.ok(procs.some((p) => /^\/usr\/local\/bin\/node \/opt\/nim-supervisor\/dist\/src\/cli\/main\.js serve/.test(p.cmdline)), 'the supervisor');
  assert.ok(procs.some((p) => /dist\/src\/sim\/main\.js serve /.test(p.cmdline)), 'the engine (vllm serve …)');
  const hc = await podman(['healthcheck', 'run', serving.name]);
  assert.equal(hc.code, 0, `podman healthcheck run: ${hc.stdout}${hc.stderr}`);
});

test('podman stop: the in-flight stream completes, new requests get 503, exit 0, no process left', async () => {
  assert.ok(serving, 'the serve container runs');
  const { base, name } = serving;
  const pids = await hostPids(name);
  assert.ok(pids.length >= 3, `tini, the supervisor and the engine: ${pids.join(' ')}`);
  // 1000 tokens at 10 ms each: the stream outlasts the stop signal by seconds, well
  // within the 30 s drain (NIM_SHUTDOWN_GRACE_PERIOD).
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Tell me a long story.' }], max_tokens: 1000, ignore_eos: true, stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('"content"')) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'the stream ended before its first token');
    text += decoder.decode(value, { stream: true });
  }
  // The stream is in flight: stop the container as a user would.
  const stopped = podman(['stop', '-t', '60', name], 120_000);
  await waitFor(async () => (await status(`${base}/v1/health/ready`).catch(() => 0)) === 503, 'readiness to turn 503 during the drain', 30_000);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  const events = text.split('\n\n').map((e) => e.trim()).filter((e) => e.startsWith('data: '));
  assert.equal(events.at(-1), 'data: [DONE]', 'the stream ran to its end');
  const finish = events.map((e) => /"finish_reason":"(\w+)"/.exec(e)?.[1]).filter(Boolean);
  assert.deepEqual(finish, ['length'], 'all 1000 tokens');
  const stop = await stopped;
  assert.equal(stop.code, 0, `podman stop: ${stop.stderr}`);
  const state = (await podmanOk(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name])).trim();
  const logs = await logsOf(name);
  assert.equal(state, 'exited 0', `exit status; logs:\n${logs.slice(-3000)}`);
  assert.deepEqual(pids.filter(alive), [], 'no process of the container is left on the host');
});

test('--read-only with a cache volume, no capabilities, no new privileges: serves, and writes only to the volume', async () => {
  const volume = `nim-ci-cache-${tag}`;
  volumes.push(volume);
  await podmanOk(['volume', 'create', '--label', `${OWNER_LABEL}=${process.pid}`, volume]);
  const ro = await startContainer('readonly', ['--read-only', '--read-only-tmpfs=false', '--cap-drop=ALL', '--security-opt=no-new-privileges', '-v', `${volume}:/opt/nim/.cache`]);
  try {
    await waitFor(async () => (await status(`${ro.base}/v1/health/ready`)) === 200, 'readiness (read-only)', 120_000);
    const chat = await fetch(`${ro.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8 }),
    });
    assert.equal(chat.status, 200);
    await chat.arrayBuffer();
    const probe = await podmanOk(['exec', ro.name, 'sh', '-c', 'touch /opt/nim/.cache/probe && echo cache-ok; touch /opt/nim/probe 2>/dev/null && echo root-writable; touch /tmp/probe 2>/dev/null && echo tmp-writable; true']);
    assert.match(probe, /cache-ok/, 'uid 1000 writes to the cache volume (podman copies the image\'s ownership into a new volume)');
    assert.doesNotMatch(probe, /root-writable|tmp-writable/, 'the root filesystem is read-only');
  } catch (err) {
    throw new Error(`${String(err)}\n--- podman logs ${ro.name}:\n${(await logsOf(ro.name)).slice(-4000)}`);
  }
  const stop = await podman(['stop', '-t', '60', ro.name], 120_000);
  assert.equal(stop.code, 0);
  assert.equal((await podmanOk(['inspect', '--format', '{{.State.ExitCode}}', ro.name])).trim(), '0');
});

test(`${IMAGE_NO_UID_1000} (a base without uid 1000, as vLLM 0.11's): nim-serve serves as "nim", stops with exit 0`, async () => {
  const c = await startContainer('nouid', [], {}, IMAGE_NO_UID_1000, ['nim-serve']);
  try {
    await waitFor(async () => (await status(`${c.base}/v1/health/ready`)) === 200, 'readiness', 120_000);
    const chat = JSON.parse(await curl([`${c.base}/v1/chat/completions`, '-H', 'Content-Type: application/json', '-d', JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8 })])) as { object: string };
    assert.equal(chat.object, 'chat.completion');
    const who = (await podmanOk(['exec', c.name, 'sh', '-c', 'id -un; getent passwd 1000 | cut -d: -f6'])).trim().split('\n');
    assert.deepEqual(who, ['nim', '/opt/nim']);
  } catch (err) {
    throw new Error(`${String(err)}\n--- podman logs ${c.name}:\n${(await logsOf(c.name)).slice(-4000)}`);
  }
  assert.equal((await podman(['stop', '-t', '60', c.name], 120_000)).code, 0);
  assert.equal((await podmanOk(['inspect', '--format', '{{.State.ExitCode}}', c.name])).trim(), '0');
});
