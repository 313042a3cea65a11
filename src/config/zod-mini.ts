// zod for schemas on the start-up path (the manifest, the GPU catalogue): its
// tree-shakable "mini" API, with zod's own English messages. Why not
// `import { z } from 'zod'`: the classic API cannot be tree-shaken, and loading
// it (~730 KB) cost ~100 ms of CPU before the engine was spawned, against ~5 ms
// for the parts used here (docs/benchmarks.md, "Start-up"). Same package, same
// checks and messages; only the spelling differs (`z.optional(s)` for
// `s.optional()`, `s.check(z.refine(…))` for `s.refine(…)`).
// Use: `import * as z from 'zod/mini'` beside an import of this module (which
// must run first: it sets the messages). Not re-exported from here: a namespace
// passed around as a value cannot be tree-shaken.
import { config, transform as miniTransform } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

// zod/mini ships no locale: without this, its own messages would read "Invalid input".
config(en());

/** What a transform may report, as classic zod's `ctx.addIssue` takes it. */
export interface CustomIssue {
  code: 'custom';
  message: string;
  /** Relative to the value being transformed. */
  path?: PropertyKey[];
}

/**
 * classic zod's `.transform((v, ctx) => …)` for zod/mini, whose transforms get
 * no `ctx.addIssue`: report with `ctx.addIssue(…)` and return `z.NEVER`.
 */
export function transform<I, O>(fn: (value: I, ctx: { addIssue(issue: CustomIssue): void }) => O) {
  return miniTransform<I, O>((value, payload) =>
    fn(value, {
      addIssue: (issue) => payload.issues.push({ ...issue, input: value, path: issue.path ?? [] }),
    }),
  );
}
