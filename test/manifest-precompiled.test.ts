// Precompiled manifests (src/manifest/precompiled.ts): what `npm run build`
// stores for each shipped manifest is exactly what the YAML parser returns --
// deep-equal, undefined fields included -- wherever the manifest is placed;
// any other text, or a bad stored file, goes through the parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManifestError } from '../src/errors.js';
import { loadManifestSync, parseManifestText } from '../src/manifest/load.js';
import { lookupPrecompiled, precompiledFile, PRECOMPILED_DIR, writePrecompiled } from '../src/manifest/precompiled.js';
import { readManifest } from '../src/manifest/read.js';
import { repoRoot } from './helpers/process.js';

const manifestsDir = path.join(repoRoot, 'manifests');
const shipped = readdirSync(manifestsDir).filter((n) => n.endsWith('.yaml'));

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'nim-precompiled-'));
}

test('npm run build precompiled every shipped manifest, and reading it equals a fresh parse', async () => {
  assert.ok(shipped.length > 0);
  for (const name of shipped) {
    const file = path.join(manifestsDir, name);
    const text = readFileSync(file, 'utf8');
    assert.ok(lookupPrecompiled(text, file), `${name}: no precompiled form in ${PRECOMPILED_DIR} (run npm run build)`);
    // loadManifestSync always parses the YAML; readManifest (the start-up path) takes the precompiled form.
    assert.deepEqual(await readManifest(file), loadManifestSync(file), name);
  }
});

test('a shipped manifest copied elsewhere: paths follow the copy, the rest is the same', async () => {
  const dir = tempDir();
  try {
    cpSync(manifestsDir, dir, { recursive: true });
    for (const name of shipped) {
      const file = path.join(dir, name);
      assert.ok(lookupPrecompiled(readFileSync(file, 'utf8'), file), name);
      const m = await readManifest(file);
      assert.equal(m.file, file);
      assert.deepEqual(m, loadManifestSync(file), name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('relative model source and license path resolve against where the manifest is read', async () => {
  const [built, elsewhere, store] = [tempDir(), tempDir(), tempDir()];
  try {
    const text = [
      'schema_version: "1.0"',
      'model:',
      '  name: org/local-model',
      '  source: ./weights',
      '  modality: llm',
      '  release: "1"',
      '  license: {name: Apache-2.0, path: LICENSE.txt}',
      'profiles:',
      '  - tags: {llm_engine: vllm, precision: bf16, device: cpu}',
      '  - tags: {llm_engine: vllm, precision: bf16, tp: 2, gpu: H100, profile: throughput}',
      '',
    ].join('\n');
    for (const d of [built, elsewhere]) {
      writeFileSync(path.join(d, 'm.yaml'), text);
      writeFileSync(path.join(d, 'LICENSE.txt'), `license in ${d}`);
    }
    writePrecompiled(text, parseManifestText(text, path.join(built, 'm.yaml')), store);
    const file = path.join(elsewhere, 'm.yaml');
    const hit = lookupPrecompiled(text, file, store);
    assert.ok(hit);
    assert.equal(hit.manifest.model.source, path.join(elsewhere, 'weights'));
    assert.equal(hit.licenseFile, path.join(elsewhere, 'LICENSE.txt'));
    assert.deepEqual(hit, parseManifestText(text, file));
  } finally {
    for (const d of [built, elsewhere, store]) rmSync(d, { recursive: true, force: true });
  }
});

test('edited text, or a missing, corrupt or other-format stored file: parsed from the YAML', async () => {
  const [dir, store] = [tempDir(), tempDir()];
  try {
    const original = readFileSync(path.join(manifestsDir, shipped[0]!), 'utf8');
    const file = path.join(dir, 'm.yaml');
    cpSync(path.join(manifestsDir, 'licenses'), path.join(dir, 'licenses'), { recursive: true });
    writeFileSync(file, `${original}\n# edited\n`);
    const edited = readFileSync(file, 'utf8');
    assert.equal(lookupPrecompiled(edited, file), undefined, 'no precompiled form for edited text');
    assert.deepEqual(await readManifest(file), loadManifestSync(file));

    assert.equal(lookupPrecompiled(edited, file, store), undefined, 'missing');
    const stored = writePrecompiled(edited, parseManifestText(edited, file), store);
    assert.ok(lookupPrecompiled(edited, file, store));
    const content = JSON.parse(readFileSync(stored, 'utf8')) as Record<string, unknown>;
    writeFileSync(stored, '{"format": 1, "sha256": ');
    assert.equal(lookupPrecompiled(edited, file, store), undefined, 'corrupt');
    writeFileSync(stored, JSON.stringify({ ...content, format: 999 }));
    assert.equal(lookupPrecompiled(edited, file, store), undefined, 'other format');
    writeFileSync(stored, JSON.stringify({ ...content, sha256: '0'.repeat(64) }));
    assert.equal(lookupPrecompiled(edited, file, store), undefined, "another text's digest");
    // Valid JSON whose contents were changed or damaged (the reviewer's inputs): never used, never a crash.
    const manifest = content.manifest as Record<string, unknown>;
    for (const [what, changed] of [
      ['an empty manifest', { ...content, manifest: {} }],
      ['no license', { ...content, manifest: { ...manifest, model: { ...(manifest.model as object), license: undefined } } }],
      ['profiles null', { ...content, manifest: { ...manifest, profiles: null } }],
      ['a stale served name', { ...content, manifest: { ...manifest, servedModelName: 'stale/name' } }],
      ['no payload digest', { ...content, payloadSha256: undefined }],
    ] as const) {
      writeFileSync(stored, JSON.stringify(changed));
      assert.equal(lookupPrecompiled(edited, file, store), undefined, what);
    }
    // Changed and re-digested (a deliberate edit of build output): still not trusted past the shape later steps need.
    const parsed = parseManifestText(edited, file);
    for (const [what, manifest] of [
      ['profiles null', { ...parsed.manifest, profiles: null }],
      ['tags null', { ...parsed.manifest, profiles: parsed.manifest.profiles.map((p) => ({ ...p, tags: null })) }],
      ['a profile without an id', { ...parsed.manifest, profiles: parsed.manifest.profiles.map(({ id: _id, ...p }) => p) }],
    ] as const) {
      writePrecompiled(edited, { ...parsed, manifest: manifest as never }, store);
      assert.equal(lookupPrecompiled(edited, file, store), undefined, what);
    }
    assert.deepEqual(await readManifest(file), loadManifestSync(file), 'the YAML is read instead');
    writeFileSync(precompiledFile(edited, store), JSON.stringify(content));
    assert.ok(lookupPrecompiled(edited, file, store), 'restored');
  } finally {
    for (const d of [dir, store]) rmSync(d, { recursive: true, force: true });
  }
});

test('an invalid manifest still fails with the parser\'s error (nothing is precompiled for it)', async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'schema_version: "1.0"\nmodel:\n  name: x\nprofiles: []\n');
    await assert.rejects(readManifest(file), (err: unknown) => err instanceof ManifestError && err.file === file);
    await assert.rejects(readManifest(path.join(dir, 'missing.yaml')), /cannot read the manifest: file not found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
