// One HTTP request on a connection of its own: with proxy workers (NIM_PROXY_WORKERS > 1)
// the kernel hands each new connection to whichever worker accepts it first.
import http from 'node:http';

export interface Answer {
  status: number;
  body: string;
}

/** `method target` to 127.0.0.1:`port`; `body` is sent as JSON when given. Rejects after 20 s without an answer. */
export function requestOnNewConnection(port: number, method: string, target: string, opts: { headers?: Record<string, string>; body?: unknown } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: target,
        agent: false,
        headers: { ...opts.headers, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${target}: no answer in 20 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}
