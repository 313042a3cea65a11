// Matching a detected GPU to its catalogue entry. Kept apart from catalogue.ts
// (which loads and validates profiles/gpus.yaml with yaml and zod) so that the
// nvidia-smi parser does not pull those in on the start-up path.
import type { GpuCatalogueEntry } from './types.js';

const patternCache = new Map<string, RegExp | null>();

function compiled(pattern: string): RegExp | null {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern, 'i');
    } catch {
      re = null;
    }
    patternCache.set(pattern, re);
  }
  return re;
}

/**
 * Find a GPU in the catalogue: by PCI id (`2330:10de`, any case) first; when
 * that is null or unknown, by the first entry whose name pattern matches the
 * driver's product name. Null when neither matches. Pure.
 */
export function lookupGpu(
  catalogue: ReadonlyArray<GpuCatalogueEntry & { namePattern?: string }>,
  pciDeviceId: string | null,
  name: string | null,
): GpuCatalogueEntry | null {
  if (pciDeviceId) {
    const id = pciDeviceId.trim().toLowerCase();
    const byId = catalogue.find((e) => e.pciDeviceId.toLowerCase() === id);
    if (byId) return byId;
  }
  const n = name?.trim().replace(/\s+/g, ' ');
  if (n) {
    for (const e of catalogue) {
      if (!e.namePattern) continue;
      if (compiled(e.namePattern)?.test(n)) return e;
    }
  }
  return null;
}
