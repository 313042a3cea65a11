// The Kustomize output, as `kubectl apply -k` would send it: both
// kustomizations under deploy/kubernetes/ render without warnings, the
// rendered objects are exactly the listed files' objects plus what the
// kustomization adds (the part-of label, the image), nothing else changes
// (selectors in particular, which are immutable), the built-in kinds validate
// against the Kubernetes schemas (kubernetes-models), and an overlay as a user
// writes one (their registry, a namespace) reaches every container.
// The LeaderWorkerSet's own schema check is in deploy-lws-schema.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { kustomize, kustomizeRaw } from './helpers/kustomize.js';
import { repoRoot } from './helpers/process.js';

type Obj = Record<string, any>;
const base = path.join(repoRoot, 'deploy', 'kubernetes');
const dirs = { single: base, multi: path.join(base, 'multi-node') };

const BUILT_IN: Record<string, (o: Obj) => { validate(): void }> = {
  'apps/v1/Deployment': (o) => new Deployment(o as never),
  'autoscaling/v2/HorizontalPodAutoscaler': (o) => new HorizontalPodAutoscaler(o as never),
  'v1/PersistentVolumeClaim': (o) => new PersistentVolumeClaim(o as never),
  'v1/Service': (o) => new Service(o as never),
};

const id = (o: Obj): string => `${o.apiVersion}/${o.kind}/${o.metadata?.name}`;

/** The kustomization of a directory and the objects of the files it lists. */
function sources(dir: string): { kustomization: Obj; objects: Obj[] } {
  const kustomization = parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Obj;
  const objects = (kustomization.resources as string[]).flatMap((f) =>
    parseAllDocuments(readFileSync(path.join(dir, f), 'utf8'))
      .map((d) => d.toJS() as Obj)
      .filter(Boolean),
  );
  return { kustomization, objects };
}

/** Every container (and init container) of an object, wherever its pod templates are. */
function containersOf(o: Obj): Obj[] {
  const found: Obj[] = [];
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (n && typeof n === 'object') {
      for (const [k, v] of Object.entries(n)) {
        if ((k === 'containers' || k === 'initContainers') && Array.isArray(v)) found.push(...(v as Obj[]));
        walk(v);
      }
    }
  };
  walk(o);
  return found;
}

for (const [which, dir] of Object.entries(dirs)) {
  test(`${which}: kubectl kustomize renders the listed objects, adding only the part-of label and the image`, async () => {
    const { docs: rendered, stderr, tool } = await kustomizeRaw(dir);
    assert.equal(stderr.trim(), '', `${tool} warns (a deprecated field?)`);
    const { kustomization, objects } = sources(dir);
    assert.deepEqual(rendered.map(id).sort(), objects.map(id).sort(), 'the same objects');
    const labels = Object.assign({}, ...(kustomization.labels as Array<{ pairs: Record<string, string> }>).map((l) => l.pairs)) as Record<string, string>;
    const image = (kustomization.images as Obj[])[0]!;
    for (const r of rendered) {
      for (const [k, v] of Object.entries(labels)) assert.equal(r.metadata.labels?.[k], v, `${id(r)}: label ${k}`);
      for (const c of containersOf(r)) assert.equal(c.image, `${image.newName}:${image.newTag}`, `${id(r)}: ${c.name}'s image`);
      // Undo what the kustomization adds: what is left must be the file's object, unchanged.
      const back = structuredClone(r);
      for (const k of Object.keys(labels)) delete back.metadata.labels[k];
      const src = objects.find((o) => id(o) === id(r))!;
      const srcContainers = containersOf(src);
      containersOf(back).forEach((c, i) => (c.image = srcContainers[i]!.image));
      if (Object.keys(back.metadata.labels).length === 0 && src.metadata.labels === undefined) delete back.metadata.labels;
      assert.deepEqual(back, src, `${id(r)}: nothing else changes (selectors stay as written)`);
    }
  });
}

test('single: the rendered built-in objects validate against the Kubernetes schemas', async () => {
  const rendered = await kustomize(dirs.single);
  let checked = 0;
  for (const o of rendered) {
    const make = BUILT_IN[`${o.apiVersion}/${o.kind}`];
    if (!make) {
      assert.equal(`${o.apiVersion}/${o.kind}`, 'monitoring.coreos.com/v1/ServiceMonitor', 'the only custom kind');
      continue;
    }
    assert.doesNotThrow(() => make(o).validate(), id(o));
    checked += 1;
  }
  assert.equal(checked, 4, 'Deployment, Service, PVC, HPA');
});

test('a user\'s overlay (their registry and tag, a namespace) reaches every container and object', async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'nim-kustomize-'));
  try {
    for (const [which, dir] of Object.entries(dirs)) {
      const overlay = path.join(tmp, which);
      mkdirSync(overlay);
      const kustomization = [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'namespace: llm',
        'resources:',
        `  - ${path.relative(overlay, dir)}`,
        'images:',
        '  - name: nim-supervisor',
        '    newName: registry.example.com/team/nim-supervisor',
        '    newTag: "1.2.3"',
        '',
      ].join('\n');
      writeFileSync(path.join(overlay, 'kustomization.yaml'), kustomization);
      const rendered = await kustomize(overlay);
      assert.ok(rendered.length >= 2, which);
      for (const o of rendered) {
        assert.equal(o.metadata.namespace, 'llm', `${which}: ${id(o)} in the overlay's namespace`);
        for (const c of containersOf(o)) assert.equal(c.image, 'registry.example.com/team/nim-supervisor:1.2.3', `${which}: ${id(o)} ${c.name}`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
