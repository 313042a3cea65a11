// Where the package's own files live (manifests/ and profiles/ under its root).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (or installed package) root: manifests/ and profiles/ live here. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_MANIFEST = path.join(packageRoot, 'manifests', 'nemotron-3-content-safety.yaml');
