// The LeaderWorkerSet example (deploy/kubernetes/multi-node/) against the schema
// LWS itself publishes in its CRD (vendored in test/fixtures/lws/, with source
// and version): as written, and as `kubectl kustomize` renders it. Unknown
// fields are errors, as with kubectl's default --validate=strict. The negative
// cases show the validator is not vacuous.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { crdValidator } from './helpers/crd-schema.js';
import { kustomize } from './helpers/kustomize.js';
import { fixturesDir, repoRoot } from './helpers/process.js';

const schema = JSON.parse(readFileSync(path.join(fixturesDir, 'lws', 'leaderworkerset-v1.schema.json'), 'utf8')) as Record<string, unknown>;
const validate = crdValidator(schema);
const dir = path.join(repoRoot, 'deploy', 'kubernetes', 'multi-node');

type Obj = Record<string, any>;

function lwsOf(docs: Obj[]): Obj {
  const found = docs.filter((d) => d.apiVersion === 'leaderworkerset.x-k8s.io/v1' && d.kind === 'LeaderWorkerSet');
  assert.equal(found.length, 1, 'one leaderworkerset.x-k8s.io/v1 LeaderWorkerSet');
  return found[0]!;
}

const written = lwsOf(
  parseAllDocuments(readFileSync(path.join(dir, 'leaderworkerset.yaml'), 'utf8'))
    .map((d) => d.toJS() as Obj)
    .filter(Boolean),
);

function errorsText(obj: unknown): string {
  return validate(obj)
    .map((e) => `${e.path}: ${e.message}`)
    .join('\n');
}

test('the LeaderWorkerSet as written validates against LWS v0.10.0\'s CRD schema', () => {
  assert.equal(errorsText(written), '');
});

test('the LeaderWorkerSet as `kubectl kustomize` renders it validates too', async () => {
  const rendered = lwsOf(await kustomize(dir));
  assert.equal(errorsText(rendered), '');
  assert.equal(rendered.metadata.labels['app.kubernetes.io/part-of'], 'nim-supervisor', 'the kustomization\'s labels reach it');
});

test('the validator rejects what the API server would: unknown fields, wrong types, values outside an enum, duplicate list keys', () => {
  const cases: Array<[string, (o: Obj) => void, RegExp]> = [
    ['a misspelt field', (o) => { o.spec.leaderWorkerTemplate.sise = 2; }, /\/spec\/leaderWorkerTemplate: unknown field "sise"/],
    ['a field of the embedded pod spec', (o) => { o.spec.leaderWorkerTemplate.workerTemplate.spec.containers[0].imagePullPolcy = 'Always'; }, /containers\/0: unknown field "imagePullPolcy"/],
    ['a string for an integer', (o) => { o.spec.leaderWorkerTemplate.size = '2'; }, /\/spec\/leaderWorkerTemplate\/size: must be of type integer/],
    ['a value outside the enum', (o) => { o.spec.startupPolicy = 'LeaderStarted'; }, /\/spec\/startupPolicy: must be one of "LeaderCreated", "LeaderReady"/],
    ['a restart policy LWS does not know', (o) => { o.spec.leaderWorkerTemplate.restartPolicy = 'Always'; }, /leaderWorkerTemplate\/restartPolicy: must be one of /],
    ['a missing required field', (o) => { delete o.spec.leaderWorkerTemplate.workerTemplate.spec.containers[0].name; }, /containers\/0: missing required field "name"/],
    ['an int32 out of range', (o) => { o.spec.replicas = 2 ** 31; }, /\/spec\/replicas: must be a valid int32/],
    ['a repeated env name (list-type map)', (o) => { const env = o.spec.leaderWorkerTemplate.leaderTemplate.spec.containers[0].env; env.push({ ...env[0] }); }, /env: has a duplicate entry for key name/],
  ];
  for (const [what, mutate, expected] of cases) {
    const obj = structuredClone(written);
    mutate(obj);
    assert.match(errorsText(obj), expected, what);
  }
  // int-or-string fields take both.
  const obj = structuredClone(written);
  obj.spec.rolloutStrategy.rollingUpdateConfiguration.maxUnavailable = '50%';
  assert.equal(errorsText(obj), '', 'maxUnavailable may be a percentage');
});
