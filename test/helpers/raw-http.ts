// Raw HTTP/1.1 over a TCP socket, for requests no client library would send
// (absolute-form targets, dot segments, conflicting framing headers).
import { connect } from 'node:net';

export interface RawResponse {
  /** Everything the server sent. */
  text: string;
  status: number | undefined;
  /** True when the server closed the connection. */
  closed: boolean;
}

/** Send `request` verbatim and collect the answer until the server closes or `waitMs` passes. */
export function rawRequest(port: number, request: string | Buffer, waitMs = 1500): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ text, status: m ? Number(m[1]) : undefined, closed });
    };
    const timer = setTimeout(done, waitMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => {
      closed = true;
      done();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') {
        closed = true;
        done();
      } else reject(err);
    });
    socket.write(request);
  });
}
