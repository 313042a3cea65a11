// Renders a kustomization as a user's `kubectl apply -k` would: with the
// kustomize built into kubectl (`kubectl kustomize DIR`), or a standalone
// `kustomize build DIR`. .ci/run installs kubectl when neither is on PATH.
import { execFile } from 'node:child_process';
import { parseAllDocuments } from 'yaml';

function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException;
        reject(e.code === 'ENOENT' ? Object.assign(new Error(`${cmd} not found on PATH`), { code: 'ENOENT' }) : new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`));
      } else resolve({ stdout, stderr });
    });
  });
}

/** `kubectl kustomize DIR` (or `kustomize build DIR`): the rendered objects, and what it printed on stderr. */
export async function kustomizeRaw(dir: string): Promise<{ docs: Array<Record<string, any>>; stderr: string; tool: string }> {
  let out: { stdout: string; stderr: string };
  let tool = 'kubectl kustomize';
  try {
    out = await run('kubectl', ['kustomize', dir]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    tool = 'kustomize build';
    try {
      out = await run('kustomize', ['build', dir]);
    } catch (err2) {
      if ((err2 as NodeJS.ErrnoException).code !== 'ENOENT') throw err2;
      throw new Error('neither kubectl nor kustomize is on PATH: .ci/run installs kubectl (see docs/deployment.md)');
    }
  }
  const docs = parseAllDocuments(out.stdout).map((d) => {
    if (d.errors.length > 0) throw new Error(`${tool} ${dir}: unparsable output: ${d.errors[0]!.message}`);
    return d.toJS() as Record<string, any>;
  });
  return { docs: docs.filter((d) => d !== null && d !== undefined), stderr: out.stderr, tool };
}

/** The objects `kubectl kustomize DIR` renders. */
export async function kustomize(dir: string): Promise<Array<Record<string, any>>> {
  return (await kustomizeRaw(dir)).docs;
}
