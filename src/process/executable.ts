// Resolve an executable the way execvp would, so a missing engine is reported
// as a configuration problem before anything is spawned.
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Absolute path of `command` (searched on `pathEnv` unless it contains a slash), or undefined. */
export function findExecutable(command: string, pathEnv: string | undefined): string | undefined {
  if (command.includes('/')) {
    const abs = path.resolve(command);
    return isExecutableFile(abs) ? abs : undefined;
  }
  for (const dir of (pathEnv ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}
