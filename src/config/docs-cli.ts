// `npm run docs:config`: rewrite the generated part of docs/configuration.md
// from the table of variables (test/config-table.test.ts checks it is current).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spliceGenerated } from './docs.js';
import { packageRoot } from './paths.js';

const file = path.join(packageRoot, 'docs', 'configuration.md');
const before = readFileSync(file, 'utf8');
const after = spliceGenerated(before);
if (after !== before) writeFileSync(file, after);
process.stdout.write(`${path.relative(process.cwd(), file)}: ${after === before ? 'already current' : 'rewritten'}\n`);
