// The `model` of a JSON request body, read from its first chunks while the body
// streams on to the engine untouched (the proxy never buffers bodies). Only with
// tracing on. Good enough for a span attribute: a body whose `model` comes after
// the first 64 KiB (a large inline image first) is simply not attributed.
import type { IncomingMessage } from 'node:http';

const MODEL = /"model"\s*:\s*"((?:[^"\\]|\\.){1,256})"/;
const LIMIT = 64 * 1024;

/** Call `found` with the body's `model` once seen in the first 64 KiB (never for other bodies). */
export function sniffModel(req: IncomingMessage, found: (model: string) => void): void {
  if (!String(req.headers['content-type'] ?? '').includes('json')) return;
  let head = '';
  // Watch 'data' as it is emitted rather than listening for it: a listener would
  // switch the body to flowing mode before the proxy pipes it, and lose chunks.
  const emit = req.emit;
  const done = (): void => {
    req.emit = emit;
  };
  req.emit = function (this: IncomingMessage, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'data') {
      const chunk = args[0];
      head += typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
      const m = MODEL.exec(head);
      if (m) {
        done();
        try {
          found(JSON.parse(`"${m[1]}"`) as string);
        } catch {
          /* not a valid JSON string: no attribute */
        }
      } else if (head.length > LIMIT) {
        done();
      }
    } else if (event === 'end' || event === 'close') {
      done();
    }
    return (emit as (this: IncomingMessage, e: string | symbol, ...a: unknown[]) => boolean).call(this, event, ...args);
  } as typeof req.emit;
}
