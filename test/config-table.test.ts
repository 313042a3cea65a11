// The table of variables (src/config/variables.ts) against its consumers:
// docs/configuration.md (both ways), the sources (no variable read outside the
// table), parsing and validation, `help env`, and the unknown-variable warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/env.js';
import { BEGIN_MARK, END_MARK, renderHelpEnv, renderVariablesMarkdown } from '../src/config/docs.js';
import { readVariables } from '../src/config/read.js';
import { NOT_SUPPORTED, nearestName, unknownVariableWarnings } from '../src/config/unknown.js';
import { knownNames, VARIABLES } from '../src/config/variables.js';
import { ConfigError } from '../src/errors.js';
import { distDir, repoRoot, run } from './helpers/process.js';

const DOC = path.join(repoRoot, 'docs', 'configuration.md');

test('docs/configuration.md: the generated part is exactly what the table renders (run `npm run docs:config`)', () => {
  const doc = readFileSync(DOC, 'utf8');
  const begin = doc.indexOf(BEGIN_MARK);
  const end = doc.indexOf(END_MARK);
  assert.ok(begin >= 0 && end > begin, 'docs/configuration.md has the generated-part markers');
  assert.equal(doc.slice(begin, end + END_MARK.length), renderVariablesMarkdown(), 'docs/configuration.md is stale: run `npm run docs:config`');
});

test('docs/configuration.md: every variable row names a variable of the table, and every variable has a row', () => {
  const doc = readFileSync(DOC, 'utf8');
  const rows = [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]+)`/gm)].map((m) => m[1]!);
  const known = new Set([...VARIABLES.map((v) => v.name), ...Object.keys(NOT_SUPPORTED)]);
  for (const name of rows) assert.ok(known.has(name), `docs/configuration.md documents ${name}, which the table does not declare`);
  for (const v of VARIABLES) assert.ok(rows.includes(v.name), `${v.name} is in the table but has no row in docs/configuration.md`);
});

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

test('sources: every NIM_* name in src/ (outside the simulator) is declared in the table or listed as not supported', () => {
  const known = new Set([...knownNames(), ...Object.keys(NOT_SUPPORTED)]);
  const constants = new Set(['NIM_API_VERSION']); // a TypeScript constant, not a variable
  const stray: string[] = [];
  for (const file of sources(path.join(repoRoot, 'src'))) {
    if (file.includes(`${path.sep}sim${path.sep}`)) continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\bNIM_[A-Z0-9_]*[A-Z0-9]\b/g)) {
      if (!known.has(m[0]) && !constants.has(m[0])) stray.push(`${path.relative(repoRoot, file)}: ${m[0]}`);
    }
  }
  assert.deepEqual(stray, [], 'declare each variable in src/config/variables.ts (then `npm run docs:config`)');
});

test('table: names are unique, not-supported names are not declared, defaults round-trip through their parser', () => {
  const names = VARIABLES.flatMap((v) => [v.name, ...(v.renamedFrom ?? [])]);
  assert.equal(new Set(names).size, names.length);
  for (const name of Object.keys(NOT_SUPPORTED)) assert.ok(!names.includes(name), `${name} is both declared and listed as not supported`);
  for (const v of VARIABLES) {
    assert.ok(v.description.trim().length > 0, `${v.name} has a description`);
    if (v.default === undefined || v.defaultText !== undefined) continue;
    const shown = v.kind.show ? v.kind.show(v.default) : String(v.default);
    assert.deepEqual(v.kind.parse(shown), v.default, `${v.name}: its default, written as ${shown}, parses back`);
  }
});

test('parsing: an empty environment gives every default; each bad value is one ConfigError naming the variable', () => {
  const { values, set } = readVariables({});
  assert.equal(set.size, 0);
  for (const v of VARIABLES) assert.deepEqual((values as Record<string, unknown>)[v.name], v.default, v.name);
  for (const v of VARIABLES) {
    if (v.kind.parse('!!bad value!!') !== undefined) continue; // kinds that take any text
    assert.throws(
      () => readVariables({ [v.name]: '!!bad value!!' }),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${v.name}=`) && err.message.includes('expected'),
      v.name,
    );
  }
});

test('parsing: a secret value is never echoed in the error', () => {
  const secret = VARIABLES.find((v) => v.secret)!;
  assert.throws(
    () => readVariables({ [secret.name]: '   ' }),
    (err: unknown) => err instanceof ConfigError && !err.message.includes('"'),
  );
});

test('unknown NIM_* variables: one warning each, with the nearest known name when close', () => {
  const w = unknownVariableWarnings({ NIM_SEVER_PORT: '9000', NIM_SERVER_PORT: '8000', NIM_TAGS_SELECTOR: 'tp=2', NIM_FOO: '1', HOME: '/root', nim_server_port: '1' });
  assert.equal(w.length, 4, w.join('\n'));
  assert.match(w.find((l) => l.startsWith('NIM_SEVER_PORT'))!, /is ignored \(did you mean NIM_SERVER_PORT\?\)/);
  assert.match(w.find((l) => l.startsWith('NIM_TAGS_SELECTOR'))!, /does not support.*NIM_MODEL_PROFILE/);
  assert.doesNotMatch(w.find((l) => l.startsWith('NIM_FOO'))!, /did you mean/);
  assert.match(w.find((l) => l.startsWith('nim_server_port'))!, /did you mean NIM_SERVER_PORT/);
  assert.equal(nearestName('NIM_MAX_MODEL_LENGTH', knownNames()), 'NIM_MAX_MODEL_LEN');
  assert.equal(nearestName('NIM_PORT', knownNames()), undefined); // too short a core for a guess
  assert.equal(nearestName('NIM_MAX_MODELLEN', knownNames()), 'NIM_MAX_MODEL_LEN');
  assert.deepEqual(loadConfig({ NIM_SEVER_PORT: '9000' }).warnings.length, 1);
  assert.deepEqual(loadConfig({ NIM_SERVER_PORT: '9000' }).warnings, []);
});

test('help env: lists every variable; help env NAME shows one in full (secrets masked); an unknown name is an error', () => {
  const all = renderHelpEnv();
  for (const v of VARIABLES) assert.ok(all.includes(`  ${v.name}  (`), v.name);
  const one = renderHelpEnv(['nim_server_port'], { NIM_SERVER_PORT: '9000' });
  assert.match(one, /^NIM_SERVER_PORT\n/);
  assert.match(one, /default: +8000/);
  assert.match(one, /set here: "9000"/);
  assert.match(renderHelpEnv(['NIM_API_KEY'], { NIM_API_KEY: 'sk-secret' }), /set here: \*\*\*/);
  assert.throws(() => renderHelpEnv(['NIM_NOPE']), ConfigError);
});

test('CLI: `help env` prints the table; `serve` with a misspelt variable warns once and names the nearest', async () => {
  const main = path.join(distDir, 'src', 'cli', 'main.js');
  const help = await run(process.execPath, [main, 'help', 'env'], { timeoutMs: 30_000 });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /NIM_SERVER_PORT {2}\(integer; default 8000/);
  const usage = await run(process.execPath, [main, '--help'], { timeoutMs: 30_000 });
  assert.match(usage.stdout, /help env/);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, NIM_SEVER_PORT: '9000', NIM_MANIFEST_PATH: '/nonexistent/manifest.yaml' };
  const r = await run(process.execPath, [main, 'select-profile'], { env, timeoutMs: 30_000 });
  assert.equal(r.code, 2); // the manifest is missing: config errors still exit 2 after the warning
  const lines = r.stderr.split('\n').filter((l) => l.includes('NIM_SEVER_PORT'));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /WARNING.*did you mean NIM_SERVER_PORT\?/);
});
