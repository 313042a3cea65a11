// `npm run build`, after the bundle (the paths to rewrite are its arguments).
// The bundle's banner gives every output file a CommonJS `require`
// (createRequire(import.meta.url)) for the bundled CommonJS packages (pino,
// express, …), but only files that use the name need it: the others pay
// ~0.1 ms each at load for nothing, ~40 of them before the engine's spawn
// (docs/benchmarks.md, "Start-up"). This empties the banner's line in every
// file where `require` appears nowhere else (a mention in a string or comment
// keeps it: the test errs on the safe side). The line stays, empty, so source
// maps still match.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const BANNER = /^import \{ createRequire as __nimCreateRequire \} from 'node:module'; const require = __nimCreateRequire\(import\.meta\.url\);$/m;
const USES_REQUIRE = /(?<![\w$.])require\b/;

/** Empty the banner line of `file` if nothing else in it uses `require`; true if it did. */
function stripUnusedRequireBanner(file: string): boolean {
  const text = readFileSync(file, 'utf8');
  const m = BANNER.exec(text);
  if (!m) return false;
  const without = text.slice(0, m.index) + text.slice(m.index + m[0].length);
  if (USES_REQUIRE.test(without)) return false;
  writeFileSync(file, without);
  return true;
}

/** stripUnusedRequireBanner on each path given, and on each .js file directly in each directory given; returns how many. */
function stripUnusedRequireBanners(paths: readonly string[]): number {
  let stripped = 0;
  for (const p of paths) {
    const files = statSync(p).isDirectory() ? readdirSync(p).filter((n) => n.endsWith('.js')).map((n) => path.join(p, n)) : [p];
    for (const f of files) if (stripUnusedRequireBanner(f)) stripped += 1;
  }
  return stripped;
}

stripUnusedRequireBanners(process.argv.slice(2));
