// Responses the edge writes itself (refusals, 502s), as the bytes node:http
// would have written for sendError(): status line, Date, the given headers,
// Content-Length, and the OpenAI-style error body of server/errors.ts.
import { STATUS_CODES } from 'node:http';
import { openAIError } from '../server/errors.js';

let dateSecond = 0;
let dateValue = '';

/** The Date header's value (RFC 9110 §5.6.7), recomputed at most once a second. */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

/** A header block (`name: value\r\n` lines) from a record. */
export function headerLines(headers: Record<string, string> | undefined): string {
  let s = '';
  if (headers) for (const k in headers) s += `${k}: ${headers[k]}\r\n`;
  return s;
}

/**
 * A complete error response. `connection` is the value of the Connection
 * header (`keep-alive` adds the Keep-Alive hint when given).
 */
export function errorResponse(status: number, message: string, extra: string, connection: 'keep-alive' | 'close', keepAliveHint?: string): Buffer {
  const body = Buffer.from(JSON.stringify(openAIError(status, message)), 'utf8');
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    `date: ${httpDate()}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n` +
    extra +
    `connection: ${connection}\r\n` +
    (connection === 'keep-alive' && keepAliveHint ? `keep-alive: ${keepAliveHint}\r\n` : '') +
    '\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}
