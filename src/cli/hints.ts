// Hints for mistakes a new user makes on a development machine.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../config/env.js';

/**
 * The hint for an engine executable that cannot be found. From a source
 * checkout (the bundled simulator is at bin/vllm) it names `npm start` and the
 * simulator, since `npx nim-supervisor serve` does not put bin/ on PATH.
 */
export function engineNotFoundHint(command: string, root: string = packageRoot): string {
  const base = 'install vLLM in the image or point NIM_ENGINE_COMMAND at the vllm executable';
  const simulator = path.join(root, 'bin', 'vllm');
  if (command !== 'vllm' || !existsSync(simulator)) return base;
  const rel = path.relative(process.cwd(), simulator) || simulator;
  return `${base}; without vLLM, \`npm start\` runs the supervisor on the bundled vLLM simulator, or set NIM_ENGINE_COMMAND=${rel.startsWith('.') || path.isAbsolute(rel) ? rel : `./${rel}`}`;
}
