// `npm run build`'s last step: write the precompiled form of each shipped
// manifest (manifests/*.yaml) under dist/src/manifests-precompiled/ (see
// precompiled.ts). A manifest the parser rejects is skipped with a warning: at
// start-up it fails with the parser's own error, as without this step.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../config/paths.js';
import { describeError } from '../errors.js';
import { parseManifestText } from './load.js';
import { PRECOMPILED_DIR, writePrecompiled } from './precompiled.js';

const dir = path.join(packageRoot, 'manifests');
rmSync(PRECOMPILED_DIR, { recursive: true, force: true });
let names: string[] = [];
try {
  names = readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort();
} catch {
  // No manifests/ next to the build (e.g. an image build stage without them): nothing to precompile.
}
for (const name of names) {
  const file = path.join(dir, name);
  const text = readFileSync(file, 'utf8');
  try {
    writePrecompiled(text, parseManifestText(text, file));
  } catch (err) {
    process.stderr.write(`precompile: skipped ${path.relative(packageRoot, file)}: ${describeError(err)}\n`);
  }
}
