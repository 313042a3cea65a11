// Where the package's own files live (manifests/ and profiles/ under its root).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The nearest directory at or above `from` holding package.json and manifests/:
 * the same answer whether this code runs as tsc's dist/src/config/paths.js or
 * inside an esbuild chunk (dist/src/chunks/…), which sit at different depths.
 * Undefined when there is none.
 */
export function findPackageRoot(from: string): string | undefined {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'manifests'))) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** The repository (or installed package) root: manifests/ and profiles/ live here. */
export const packageRoot = findPackageRoot(here) ?? path.resolve(here, '..', '..', '..');
export const DEFAULT_MANIFEST = path.join(packageRoot, 'manifests', 'nemotron-3-content-safety.yaml');

/** The supervisor's version (package.json): --version, /v1/version, and service.version of every process's spans. */
export function supervisorVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}
