// The Dockerfile and .dockerignore, checked without a Docker engine: the file is
// parsed with dockerfile-ast and its properties asserted (stages, pinned and
// overridable base image, one TypeScript build, non-root user, init as PID 1,
// the layout the CLI expects, health check), every COPY source from the build
// context exists and gets past .dockerignore, and the HEALTHCHECK command is
// actually run against a local HTTP server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileParser, type Arg, type Copy, type Flag, type From, type Instruction } from 'dockerfile-ast';

/** Repository root (this file runs from dist/test/). */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dockerfileText = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
const dockerignoreText = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8');
const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
const dockerfile = DockerfileParser.parse(dockerfileText);

// ---------------------------------------------------------------------------
// Helpers: stages, flags, exec-form JSON, .dockerignore matching
// ---------------------------------------------------------------------------

interface Stage {
  from: From;
  name: string | null;
  instructions: Instruction[];
}

/** The build stages in order, each with the instructions after its FROM. */
function stagesOf(): Stage[] {
  const stages: Stage[] = [];
  for (const ins of dockerfile.getInstructions()) {
    if (ins.getKeyword() === 'FROM') {
      const from = ins as From;
      stages.push({ from, name: from.getBuildStage(), instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return stages;
}

const stages = stagesOf();
const finalStage = stages.at(-1)!;
const buildStages = stages.slice(0, -1);

function byKeyword(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.getKeyword() === keyword);
}

function flagsOf(ins: Instruction): Flag[] {
  const withFlags = ins as Instruction & { getFlags?: () => Flag[] };
  return withFlags.getFlags ? withFlags.getFlags() : [];
}

function flag(ins: Instruction, name: string): string | undefined {
  return flagsOf(ins).find((f) => f.getName() === name)?.getValue() ?? undefined;
}

/** The text of a RUN instruction with line continuations joined. */
function runText(ins: Instruction): string {
  return (ins.getArgumentsContent() ?? '').replace(/\\\r?\n/g, ' ');
}

/** An exec-form (JSON array) argument list, as Docker parses it; throws on shell form. */
function execForm(text: string, what: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.replace(/\\\r?\n/g, ' ').trim());
  } catch {
    assert.fail(`${what} must be in exec form (a JSON array), got: ${text}`);
  }
  assert.ok(Array.isArray(parsed) && parsed.every((s) => typeof s === 'string'), `${what}: not an array of strings`);
  return parsed as string[];
}

/** The initial (pre-FROM) ARG with this name, and its default value. */
function initialArg(name: string): string | undefined {
  const arg = dockerfile.getInitialARGs().find((a: Arg) => a.getProperty()?.getName() === name);
  return arg?.getProperty()?.getValue() ?? undefined;
}

/** Sources and destination of a COPY (flags excluded). */
function copyParts(copy: Copy): { sources: string[]; dest: string } {
  const json = copy.getJSONStrings();
  const args = json.length > 0 ? json.map((a) => a.getJSONValue()) : copy.getArguments().map((a) => a.getValue());
  assert.ok(args.length >= 2, `COPY needs a source and a destination: ${copy.getTextContent()}`);
  return { sources: args.slice(0, -1), dest: args.at(-1)! };
}

/** The WORKDIR in effect at an instruction of a stage ('/' when none). */
function workdirAt(stage: Stage, ins: Instruction): string {
  let dir = '/';
  for (const i of stage.instructions) {
    if (i === ins) break;
    if (i.getKeyword() === 'WORKDIR') dir = path.posix.resolve(dir, i.getArgumentsContent() ?? '/');
  }
  return dir;
}

function absoluteDest(stage: Stage, copy: Copy): string {
  return path.posix.resolve(workdirAt(stage, copy), copyParts(copy).dest);
}

interface IgnoreRule {
  pattern: string;
  negate: boolean;
  re: RegExp;
}

/** A .dockerignore pattern (Go filepath.Match syntax plus `**`) as a RegExp over slash paths. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; ) {
    if (glob.startsWith('**/', i)) {
      re += '(?:.*/)?';
      i += 3;
    } else if (glob.startsWith('**', i)) {
      re += '.*';
      i += 2;
    } else {
      const c = glob[i]!;
      re += c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      i += 1;
    }
  }
  return new RegExp(`^${re}$`);
}

function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    const pattern = path.posix.normalize((negate ? line.slice(1) : line).trim().replace(/^\/+/, '')).replace(/\/+$/, '');
    rules.push({ pattern, negate, re: globToRegExp(pattern) });
  }
  return rules;
}

const ignoreRules = parseDockerignore(dockerignoreText);

/**
 * Whether Docker leaves `rel` (a slash path relative to the context) out of the
 * build context. As in moby's patternmatcher: a rule applies when it matches
 * the path or one of its parent directories, and the last rule that applies wins.
 */
function isIgnored(rel: string, rules: IgnoreRule[] = ignoreRules): boolean {
  const parts = rel.split('/');
  let ignored = false;
  for (const rule of rules) {
    for (let n = parts.length; n >= 1; n--) {
      if (rule.re.test(parts.slice(0, n).join('/'))) {
        ignored = !rule.negate;
        break;
      }
    }
  }
  return ignored;
}

function filesUnder(rel: string): string[] {
  const abs = path.join(repoRoot, rel);
  if (!statSync(abs).isDirectory()) return [rel];
  return readdirSync(abs).flatMap((name) => filesUnder(path.posix.join(rel, name)));
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

test('the .dockerignore matcher follows Docker semantics (self-check)', () => {
  const rules = parseDockerignore('*\n!src\n**/*.log\n');
  assert.equal(isIgnored('README.md', rules), true);
  assert.equal(isIgnored('node_modules/x/index.js', rules), true, 'a parent directory match excludes its files');
  assert.equal(isIgnored('src/cli/main.ts', rules), false, 'a later negation lets a directory back in');
  assert.equal(isIgnored('src/cli/debug.log', rules), true, '**/ matches at any depth');
  assert.equal(isIgnored('srcx/a.ts', rules), true, 'negating src does not let srcx in');
});

test('multi-stage: a Node build stage and a runtime stage last', () => {
  assert.ok(stages.length >= 2, `expected at least two stages, got ${stages.length}`);
  const names = stages.map((s) => s.name);
  assert.ok(names.includes('build'), `expected a stage named build, got ${names.join(', ')}`);
  assert.equal(new Set(names.filter(Boolean)).size, names.filter(Boolean).length, 'stage names are unique');
  for (const s of buildStages) assert.ok(s.name, `every stage but the last is named: ${s.from.getTextContent()}`);
});

test('the runtime stage is based on the vLLM image through an overridable, pinned ARG', () => {
  const image = finalStage.from.getImage();
  assert.equal(image, '${VLLM_IMAGE}', 'the final FROM uses the VLLM_IMAGE build arg');
  const dflt = initialArg('VLLM_IMAGE');
  assert.ok(dflt, 'ARG VLLM_IMAGE is declared before the first FROM, with a default');
  assert.match(dflt, /^(docker\.io\/)?vllm\/vllm-openai[:@]/, 'the default is the official vLLM OpenAI server image');
  const tag = /:([^@/]+)$/.exec(dflt.split('@')[0]!)?.[1];
  const digest = dflt.includes('@sha256:');
  assert.ok(digest || (tag !== undefined && tag !== 'latest' && tag !== 'nightly'), `pinned by version, not ${tag ?? 'no tag'}`);
  if (!digest) assert.match(tag!, /^v\d+\.\d+\.\d+/, 'a release tag such as v0.11.0');
});

test('Node comes from a pinned official Node LTS image (>= 20) and is copied into the runtime', () => {
  const nodeImage = initialArg('NODE_IMAGE');
  assert.ok(nodeImage, 'ARG NODE_IMAGE is declared before the first FROM');
  const m = /^(?:docker\.io\/(?:library\/)?)?node:(\d+)(?:\.\d+)*(?:-[a-z0-9-]+)?$/.exec(nodeImage);
  assert.ok(m, `an official node image with a version tag, got ${nodeImage}`);
  const major = Number(m[1]);
  assert.ok(major >= 20 && major % 2 === 0, `an LTS line >= 20, got ${major}`);
  const nodeStage = stages.find((s) => s.from.getImage() === '${NODE_IMAGE}');
  assert.ok(nodeStage?.name, 'a named stage FROM ${NODE_IMAGE}');
  const copies = byKeyword(finalStage, 'COPY') as Copy[];
  const nodeCopy = copies.find((c) => copyParts(c).sources.includes('/usr/local/bin/node'));
  assert.ok(nodeCopy, 'the runtime copies /usr/local/bin/node');
  assert.equal(absoluteDest(finalStage, nodeCopy), '/usr/local/bin/node');
  const from = flag(nodeCopy, 'from');
  const fromStage = stages.find((s) => s.name === from);
  assert.ok(fromStage, `COPY --from=${from} names a stage`);
  // The stage it comes from is the Node image itself or built on it.
  const base = fromStage.from.getImage();
  assert.ok(base === '${NODE_IMAGE}' || base === nodeStage.name, `node comes from the Node image, not ${base}`);
});

test('the TypeScript is built and bundled once, in a build stage; no package manager in the runtime', () => {
  const runs = stages.flatMap((s) => byKeyword(s, 'RUN').map((r) => ({ stage: s, text: runText(r) })));
  const builds = runs.filter((r) => /\bnpm run build\b|\btsc\b/.test(r.text));
  assert.equal(builds.length, 1, `exactly one RUN builds the TypeScript, got: ${builds.map((b) => b.text).join(' | ')}`);
  const build = builds[0]!;
  assert.notEqual(build.stage, finalStage, 'the build runs in a build stage, not the runtime');
  // `npm ci` would run the `prepare` script (tsc) a second time without --ignore-scripts.
  const installs = runs.filter((r) => /\bnpm (ci|install|i)\b/.test(r.text));
  assert.equal(installs.length, 1, 'one npm ci');
  assert.equal(installs[0]!.stage, build.stage, 'npm ci and the build share a stage');
  assert.match(installs[0]!.text, /\bnpm ci\b/, 'npm ci (the lockfile), not npm install');
  assert.match(installs[0]!.text, /--ignore-scripts\b/, 'npm ci --ignore-scripts, so `prepare` does not build a second time');
  assert.doesNotMatch(installs[0]!.text, /--omit[= ]dev|--production\b/, 'dev dependencies (tsc, esbuild) are installed for the build');
  // The runtime ships no node_modules because `npm run build` bundles both entry
  // points (supervisor and simulator) with their dependencies.
  const scripts = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  assert.match(scripts.build!, /\bnpm run (--silent )?bundle\b/, 'npm run build runs the bundle script');
  assert.match(scripts.bundle!, /\besbuild\b.*--bundle\b/, 'the bundle script bundles with esbuild');
  for (const entry of ['src/cli/main.ts', 'src/sim/main.ts']) assert.ok(scripts.bundle!.includes(entry), `the bundle includes ${entry}`);
  assert.match(scripts.bundle!, /--outdir=dist\/src\b/, 'the bundle replaces dist/src/cli/main.js and dist/src/sim/main.js');
  for (const r of runs.filter((x) => x.stage === finalStage)) {
    assert.doesNotMatch(r.text, /\b(npm|npx|yarn|pnpm)\b/, `no package manager in the runtime stage: ${r.text}`);
  }
});

test('the runtime stage gets dist/src from the build stage and no node_modules from anywhere', () => {
  const copies = [...byKeyword(finalStage, 'COPY'), ...byKeyword(finalStage, 'ADD')] as Copy[];
  const fromBuild = copies.filter((c) => flag(c, 'from') === 'build').flatMap((c) => copyParts(c).sources);
  assert.ok(fromBuild.some((s) => /(^|\/)dist\/src\/?$/.test(s)), 'dist/src from the build stage');
  for (const c of copies) {
    const { sources } = copyParts(c);
    for (const s of sources) assert.doesNotMatch(s, /node_modules/, `the bundle needs no node_modules in the runtime: ${c.getTextContent()}`);
    assert.doesNotMatch(absoluteDest(finalStage, c), /node_modules/, `nothing is copied into a node_modules: ${c.getTextContent()}`);
  }
  for (const r of byKeyword(finalStage, 'RUN')) {
    assert.doesNotMatch(runText(r), /node_modules/, `no node_modules is made in the runtime stage: ${runText(r)}`);
  }
  for (const c of copies.filter((x) => flag(x, 'from') === undefined)) {
    for (const s of copyParts(c).sources) {
      assert.doesNotMatch(s, /dist/, `built artefacts must not come from the context: ${s}`);
    }
  }
  // Every --from names an earlier stage.
  for (const [i, s] of stages.entries()) {
    for (const c of byKeyword(s, 'COPY')) {
      const from = flag(c, 'from');
      if (from === undefined) continue;
      assert.ok(stages.slice(0, i).some((e) => e.name === from), `COPY --from=${from} names an earlier stage`);
    }
  }
});

test('the runtime layout matches what the CLI resolves: package root with dist/src, manifests/, profiles/, package.json', () => {
  const copies = byKeyword(finalStage, 'COPY') as Copy[];
  const dest = (pred: (src: string) => boolean): string | undefined => {
    const c = copies.find((x) => copyParts(x).sources.some(pred));
    return c ? absoluteDest(finalStage, c) : undefined;
  };
  const distDest = dest((s) => /(^|\/)dist\/src\/?$/.test(s));
  assert.ok(distDest, 'dist/src is copied');
  assert.match(distDest, /\/dist\/src\/?$/);
  // The package root is the nearest directory above the bundle holding package.json and manifests/ (src/config/paths.ts).
  const root = path.posix.dirname(path.posix.dirname(distDest.replace(/\/$/, '')));
  assert.equal(dest((s) => s === 'manifests' || s === 'manifests/'), path.posix.join(root, 'manifests'));
  assert.equal(dest((s) => s === 'profiles' || s === 'profiles/'), path.posix.join(root, 'profiles'));
  const pkgDest = dest((s) => s === 'package.json');
  assert.ok(pkgDest === root || pkgDest === `${root}/` || pkgDest === path.posix.join(root, 'package.json'), `package.json at the package root, got ${pkgDest}`);

  const entrypoints = byKeyword(finalStage, 'ENTRYPOINT');
  assert.equal(entrypoints.length, 1, 'one ENTRYPOINT in the runtime stage');
  const argv = execForm(entrypoints[0]!.getArgumentsContent() ?? '', 'ENTRYPOINT');
  assert.ok(argv.includes(path.posix.join(root, 'dist/src/cli/main.js')), `ENTRYPOINT runs ${root}/dist/src/cli/main.js: ${argv.join(' ')}`);
});

test('every COPY source from the build context exists and is not excluded by .dockerignore', () => {
  let checked = 0;
  for (const s of stages) {
    for (const ins of s.instructions.filter((i) => i.getKeyword() === 'COPY' || i.getKeyword() === 'ADD')) {
      if (flag(ins, 'from') !== undefined) continue;
      for (const source of copyParts(ins as Copy).sources) {
        assert.doesNotMatch(source, /^(https?:|git@)/, 'no remote sources');
        const rel = path.posix.normalize(source).replace(/^\.\/|\/$/g, '');
        assert.ok(!rel.startsWith('..') && !path.posix.isAbsolute(rel), `${source} is inside the context`);
        assert.ok(existsSync(path.join(repoRoot, rel)), `${source} exists in the repository`);
        assert.equal(isIgnored(rel), false, `${source} is excluded by .dockerignore`);
        const files = filesUnder(rel).filter((f) => !isIgnored(f));
        assert.ok(files.length > 0, `${source} sends at least one file`);
        checked += 1;
      }
    }
  }
  assert.ok(checked >= 5, `expected package.json, package-lock.json, tsconfig.json, src, manifests, profiles; checked ${checked}`);
  // What the image needs at run time really reaches it.
  const needed = [
    'src/cli/main.ts',
    'profiles/gpus.yaml',
    ...readdirSync(path.join(repoRoot, 'manifests')).filter((f) => f.endsWith('.yaml')).map((f) => `manifests/${f}`),
    ...filesUnder('manifests/licenses'),
  ];
  for (const f of needed) assert.equal(isIgnored(f), false, `${f} reaches the build context`);
});

test('.dockerignore keeps build outputs, VCS data, tests, benchmarks and the simulator out of the context', () => {
  for (const p of ['node_modules/express/package.json', 'dist/src/cli/main.js', '.git/HEAD', 'test/serve.test.ts', 'bench/results/run.json', 'bin/vllm', 'debug.log', 'src/x.log']) {
    assert.equal(isIgnored(p), true, `${p} should be excluded`);
  }
});

test('a non-root numeric USER in the runtime stage', () => {
  const users = byKeyword(finalStage, 'USER');
  assert.ok(users.length > 0, 'USER is set in the runtime stage');
  const user = users.at(-1)!.getArgumentsContent()?.trim() ?? '';
  const [uid, gid] = user.split(':');
  assert.match(uid ?? '', /^\d+$/, 'numeric uid, so runAsNonRoot can verify it');
  assert.notEqual(Number(uid), 0, 'not root');
  assert.equal(Number(uid), 1000, 'uid 1000 as in NIM\'s chart and deploy/kubernetes');
  if (gid !== undefined) assert.notEqual(Number(gid), 0, 'not the root group');
  // The user (and its writable home) is created before it is used.
  const userLine = users.at(-1)!.getRange().start.line;
  const creates = byKeyword(finalStage, 'RUN').filter((r) => r.getRange().start.line < userLine && /useradd[^;&]*--uid 1000/.test(runText(r)));
  assert.equal(creates.length, 1, 'a RUN creates uid 1000 before USER');
});

test('ENTRYPOINT runs the supervisor under tini (exec form), CMD defaults to serve', () => {
  const argv = execForm(byKeyword(finalStage, 'ENTRYPOINT')[0]!.getArgumentsContent() ?? '', 'ENTRYPOINT');
  assert.match(path.posix.basename(argv[0] ?? ''), /^(tini|docker-init|dumb-init)$/, `an init first: ${argv[0]}`);
  assert.ok(argv.includes('--'), 'the init ends its options with --');
  assert.ok(!argv.includes('-g'), 'no -g: the supervisor, not the init, decides when the engine gets SIGTERM');
  const rest = argv.slice(argv.indexOf('--') + 1);
  assert.equal(path.posix.basename(rest[0] ?? ''), 'node', 'the init runs node');
  assert.match(rest[1] ?? '', /dist\/src\/cli\/main\.js$/, 'node runs the CLI');
  // The init binary exists in the image: copied to that path, or installed by a RUN.
  const initPath = argv[0]!;
  const copied = (byKeyword(finalStage, 'COPY') as Copy[]).some((c) => absoluteDest(finalStage, c) === initPath);
  const installed = byKeyword(finalStage, 'RUN').some((r) => /apt-get install[^;&]*\btini\b/.test(runText(r)));
  assert.ok(copied || installed, `${initPath} is put into the runtime image`);
  if (copied) {
    const copy = (byKeyword(finalStage, 'COPY') as Copy[]).find((c) => absoluteDest(finalStage, c) === initPath)!;
    const from = stages.find((s) => s.name === flag(copy, 'from'));
    assert.ok(from && byKeyword(from, 'RUN').some((r) => /apt-get install[^;&]*\btini\b/.test(runText(r))), 'tini comes from the distribution package');
  }
  const cmds = byKeyword(finalStage, 'CMD');
  assert.equal(cmds.length, 1);
  assert.deepEqual(execForm(cmds[0]!.getArgumentsContent() ?? '', 'CMD'), ['serve']);
});

test('EXPOSE 8000 matches NIM_SERVER_PORT, STOPSIGNAL is SIGTERM', () => {
  const exposed = byKeyword(finalStage, 'EXPOSE').flatMap((e) => e.getArguments().map((a) => a.getValue()));
  assert.ok(exposed.some((p) => p === '8000' || p === '8000/tcp'), `EXPOSE 8000, got ${exposed.join(' ')}`);
  const env = byKeyword(finalStage, 'ENV').map((e) => e.getArgumentsContent() ?? '').join(' ');
  assert.match(env, /\bNIM_SERVER_PORT=8000\b/);
  const stop = byKeyword(finalStage, 'STOPSIGNAL');
  assert.equal(stop.length, 1);
  assert.equal(stop[0]!.getArgumentsContent()?.trim(), 'SIGTERM');
});

test('the runtime image checks at build time that vllm, setpriv, sh, node and tini are there', () => {
  const text = byKeyword(finalStage, 'RUN').map(runText).join('\n');
  for (const tool of ['vllm', 'setpriv', 'sh']) assert.match(text, new RegExp(`command -v ${tool}\\b`), `the build fails without ${tool}`);
  assert.match(text, /\bnode --version\b/);
  assert.match(text, /\btini --version\b/);
});

test('variables Docker expands in the runtime stage are declared in it', () => {
  // An ARG declared before FROM is only visible in FROM lines unless re-declared.
  const expanding = new Set(['ENV', 'LABEL', 'COPY', 'ADD', 'WORKDIR', 'USER', 'EXPOSE', 'STOPSIGNAL', 'VOLUME']);
  for (const s of stages) {
    const declared = new Set<string>();
    for (const ins of s.instructions) {
      if (expanding.has(ins.getKeyword())) {
        for (const v of ins.getVariables()) {
          assert.ok(declared.has(v.getName()), `\${${v.getName()}} in "${ins.getKeyword()}" (line ${ins.getRange().start.line + 1}) is not declared in stage ${s.name ?? '(last)'}`);
        }
      }
      if (ins.getKeyword() === 'ARG') declared.add((ins as Arg).getProperty()?.getName() ?? '');
      if (ins.getKeyword() === 'ENV') for (const a of ins.getArguments()) declared.add(a.getValue().split('=')[0]!);
    }
  }
});

test('labels: OCI metadata, version in step with package.json', () => {
  const labels = byKeyword(finalStage, 'LABEL').map((l) => l.getArgumentsContent() ?? '').join(' ');
  for (const key of ['title', 'description', 'licenses', 'version', 'base.name']) {
    assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${key.replace('.', '\\.')}=`), `label ${key}`);
  }
  const versionArg = byKeyword(finalStage, 'ARG')
    .map((a) => (a as Arg).getProperty())
    .find((p) => p?.getName() === 'SUPERVISOR_VERSION');
  assert.equal(versionArg?.getValue(), pkg.version, 'ARG SUPERVISOR_VERSION defaults to package.json\'s version');
});

// ---------------------------------------------------------------------------
// The HEALTHCHECK command, run for real
// ---------------------------------------------------------------------------

function healthcheckArgv(): { argv: string[]; flags: Map<string, string> } {
  const checks = byKeyword(finalStage, 'HEALTHCHECK');
  assert.equal(checks.length, 1, 'one HEALTHCHECK in the runtime stage');
  const hc = checks[0]!;
  const content = (hc.getArgumentsContent() ?? '').replace(/\\\r?\n/g, ' ');
  const m = /\bCMD\s+([\s\S]*)$/.exec(content);
  assert.ok(m, 'HEALTHCHECK CMD …');
  const flags = new Map(flagsOf(hc).map((f) => [f.getName(), f.getValue() ?? '']));
  return { argv: execForm(m[1]!, 'HEALTHCHECK CMD'), flags };
}

async function runHealthcheck(argv: string[], port: number): Promise<number> {
  assert.equal(argv[0], 'node', 'the health check uses node, which the image has');
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv.slice(1), {
      env: { ...process.env, NIM_SERVER_PORT: String(port) },
      stdio: 'ignore',
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code ?? -1);
    });
  });
}

test('HEALTHCHECK probes /v1/health/live and its command works', async () => {
  const { argv, flags } = healthcheckArgv();
  assert.ok(argv.join(' ').includes('/v1/health/live'), 'probes liveness, not readiness (the model may load for many minutes)');
  for (const f of ['interval', 'timeout', 'retries']) assert.ok(flags.has(f), `--${f} is set`);

  let status = 200;
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    assert.equal(await runHealthcheck(argv, port), 0, 'healthy when /v1/health/live answers 200');
    assert.deepEqual(paths, ['/v1/health/live']);
    status = 503;
    assert.equal(await runHealthcheck(argv, port), 1, 'unhealthy on a 503');
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  assert.equal(await runHealthcheck(argv, port), 1, 'unhealthy when nothing listens');
});
