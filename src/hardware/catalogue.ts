// The GPU catalogue (profiles/gpus.yaml): which data-center GPUs we know, by
// PCI device id, and the family name model manifests use for them in their
// `gpu` tag. The file format is described in its header comment and in
// docs/hardware.md.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import * as z from 'zod/mini';
import '../config/zod-mini.js'; // zod's English messages
import { packageRoot } from '../config/paths.js';
import { SupervisorError, EXIT_CONFIG } from '../errors.js';
import type { GpuCatalogueEntry } from './types.js';

export const DEFAULT_GPU_CATALOGUE = path.join(packageRoot, 'profiles', 'gpus.yaml');

/**
 * A catalogue entry as loaded from the YAML file: the shared contract plus the
 * optional name pattern used when a GPU's PCI id is unknown. Plain
 * `GpuCatalogueEntry` objects (without a pattern) are accepted everywhere too.
 */
export interface GpuCatalogueRecord extends GpuCatalogueEntry {
  /** Regular expression source, matched case-insensitively against the driver's product name. */
  namePattern?: string;
}

/** The catalogue file cannot be read, parsed or validated. `file` and `yamlPath` say where. */
export class CatalogueError extends SupervisorError {
  readonly file: string;
  readonly yamlPath: string | undefined;
  readonly line: number | undefined;
  constructor(file: string, problem: string, opts: { yamlPath?: string; line?: number; cause?: unknown } = {}) {
    const where = [file, opts.line !== undefined ? `line ${opts.line}` : undefined, opts.yamlPath]
      .filter(Boolean)
      .join(': ');
    super(`${where}: ${problem}`, {
      exitCode: EXIT_CONFIG,
      hint: 'the GPU catalogue format is described in docs/hardware.md',
      cause: opts.cause,
    });
    this.file = file;
    this.yamlPath = opts.yamlPath;
    this.line = opts.line;
  }
}

const PCI_ID_RE = /^[0-9a-f]{4}:[0-9a-f]{4}$/;

const entrySchema = z.strictObject({
  pci_device_id: z.string().check(z.regex(PCI_ID_RE, 'expected "<device>:<vendor>" in lower-case hex, e.g. "2330:10de"')),
  family: z
    .string()
    .check(z.regex(/^[A-Z0-9][A-Z0-9_]*$/, 'expected a NIM gpu tag value: upper-case letters, digits and _, e.g. "H100_NVL"')),
  product: z.string().check(z.trim(), z.minLength(1, 'must not be empty')),
  memory_gib: z.number().check(z.positive(), z.maximum(4096)),
  compute_capability: z.string().check(z.regex(/^\d+\.\d+$/, 'expected a quoted "major.minor" string, e.g. "9.0"')),
  name_pattern: z.optional(
    z.string().check(
      z.minLength(1),
      z.refine((s: string) => {
        try {
          new RegExp(s, 'i');
          return true;
        } catch {
          return false;
        }
      }, 'is not a valid regular expression'),
    ),
  ),
});

const fileSchema = z
  .strictObject({
    gpus: z.array(entrySchema).check(z.minLength(1, 'must list at least one GPU')),
  })
  .check(z.superRefine((data, ctx) => {
    const seen = new Map<string, number>();
    data.gpus.forEach((g, i) => {
      const first = seen.get(g.pci_device_id);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['gpus', i, 'pci_device_id'],
          message: `duplicate PCI id ${g.pci_device_id} (also gpus[${first}])`,
        });
      } else {
        seen.set(g.pci_device_id, i);
      }
    });
  }));

/** `['gpus', 3, 'family']` → `gpus[3].family`. */
function formatPath(p: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const k of p) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out;
}

/** The 1-based line of the deepest node on `p` that exists in the document. */
function lineOf(doc: Document, lc: LineCounter, p: ReadonlyArray<PropertyKey>): number | undefined {
  for (let n = p.length; n >= 0; n--) {
    const node = doc.getIn(p.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Read and validate a GPU catalogue file (default: profiles/gpus.yaml). Throws CatalogueError. */
export function loadGpuCatalogue(file: string = DEFAULT_GPU_CATALOGUE): GpuCatalogueRecord[] {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CatalogueError(abs, code === 'ENOENT' ? 'file not found' : `cannot read file (${String(code ?? err)})`, {
      cause: err,
    });
  }
  return parseGpuCatalogue(text, abs);
}

/** Validate catalogue YAML text; `file` is only used in error messages. Throws CatalogueError. */
export function parseGpuCatalogue(text: string, file: string): GpuCatalogueRecord[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const yamlErr = doc.errors[0];
  if (yamlErr) {
    const line = yamlErr.linePos?.[0]?.line ?? lc.linePos(yamlErr.pos[0]).line;
    throw new CatalogueError(file, `invalid YAML: ${yamlErr.message.split('\n')[0]}`, {
      ...(line !== undefined ? { line } : {}),
      cause: yamlErr,
    });
  }
  const data: unknown = doc.toJS();
  const parsed = fileSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const yamlPath = formatPath(issue.path);
    const line = lineOf(doc, lc, issue.path);
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problem(s))` : '';
    throw new CatalogueError(file, `${issue.message}${more}`, {
      yamlPath: yamlPath === '' ? '(top level)' : yamlPath,
      ...(line !== undefined ? { line } : {}),
    });
  }
  return parsed.data.gpus.map((g) => ({
    pciDeviceId: g.pci_device_id,
    family: g.family,
    product: g.product,
    memoryGiB: g.memory_gib,
    computeCapability: g.compute_capability,
    ...(g.name_pattern !== undefined ? { namePattern: g.name_pattern } : {}),
  }));
}

let defaultCatalogue: GpuCatalogueRecord[] | undefined;

/** The default catalogue, loaded once per process. */
export function defaultGpuCatalogue(): GpuCatalogueRecord[] {
  defaultCatalogue ??= loadGpuCatalogue();
  return defaultCatalogue;
}

// lookupGpu lives in gpu-lookup.ts (no zod, no yaml): nvidia-smi parsing needs it on the start-up path.
export { lookupGpu } from './gpu-lookup.js';
