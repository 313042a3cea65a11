// The chunked transfer coding (RFC 9112 §7.1), scanned, not decoded: the edge
// passes a chunked body on byte for byte and only needs to know where it ends,
// how many payload bytes it carried, whether it is between two chunks (where a
// keep-alive comment may be inserted as a chunk of its own), and whether the
// payload so far ends with a blank line (an SSE event boundary).

export class ChunkedSyntaxError extends Error {}

const enum S {
  Size, // reading hex digits (at least one)
  Ext, // after `;`: chunk extension up to CR
  SizeLf, // expecting LF after the size line's CR
  Data, // `left` payload bytes to go
  DataCr,
  DataLf,
  Trailer, // a trailer line (or the final empty line) starts
  TrailerLine, // inside a trailer line
  TrailerLf, // expecting LF that ends a trailer line
  FinalLf, // expecting the LF of the final empty line
  Done,
}

/** Longest chunk-size line accepted (hex digits, leading zeros included), and the largest size. */
const MAX_SIZE_DIGITS = 20;
const MAX_SIZE = 2 ** 52;

/** CTLs but HTAB, and DEL: never inside a chunk extension or trailer line (bare LF included). */
function isCtl(c: number): boolean {
  return (c < 32 && c !== 9) || c === 127;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

export class ChunkedScanner {
  #state = S.Size;
  #size = 0;
  #digits = 0;
  #left = 0;
  /** Payload bytes seen so far. */
  payloadBytes = 0;
  /** The last payload bytes (up to 4, newest in the low byte), and how many there are. */
  #tail = 0;
  #tailLen = 0;

  /** True when the body has ended (the last chunk and the trailer section were seen). */
  get done(): boolean {
    return this.#state === S.Done;
  }

  /** True between two chunks: bytes written now form a whole chunk of their own. */
  get atChunkBoundary(): boolean {
    return this.#state === S.Size && this.#digits === 0;
  }

  /** True when the payload so far ends at an SSE event boundary (nothing yet, or a blank line). */
  get atEventBoundary(): boolean {
    if (this.#tailLen === 0) return true;
    const t = this.#tail;
    const two = t & 0xffff;
    // A blank line: LF LF, CR CR, CRLF CRLF, LF CRLF, or CRLF CR (CRLF, LF and CR all end SSE lines).
    if (this.#tailLen >= 2 && (two === 0x0a0a || two === 0x0d0d)) return true;
    if (this.#tailLen >= 3 && ((t & 0xffffff) === 0x0a0d0a || (t & 0xffffff) === 0x0d0a0d)) return true;
    return this.#tailLen >= 4 && t >>> 0 === 0x0d0a0d0a;
  }

  /**
   * Scan `buf[start, end)`. Returns the offset just past the body's last byte
   * when it ends inside this range, or -1 when all of it belongs to the body.
   * Throws ChunkedSyntaxError on a malformed body.
   */
  scan(buf: Buffer, start = 0, end = buf.length): number {
    let i = start;
    while (i < end) {
      switch (this.#state) {
        case S.Size: {
          const c = buf[i]!;
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.#digits > MAX_SIZE_DIGITS) throw new ChunkedSyntaxError('chunk size too long');
            this.#size = this.#size * 16 + v;
            if (this.#size > MAX_SIZE) throw new ChunkedSyntaxError('chunk size too large');
            i++;
            break;
          }
          if (this.#digits === 0) throw new ChunkedSyntaxError('chunk size expected');
          if (c === 13) this.#state = S.SizeLf;
          else if (c === 59 /* ; */) this.#state = S.Ext;
          else throw new ChunkedSyntaxError('bad character after chunk size');
          i++;
          break;
        }
        case S.Ext: {
          const cr = buf.indexOf(13, i);
          const stop = cr < 0 || cr >= end ? end : cr;
          for (let k = i; k < stop; k++) if (isCtl(buf[k]!)) throw new ChunkedSyntaxError('control character in chunk extension');
          i = stop;
          if (stop < end) {
            this.#state = S.SizeLf;
            i++;
          }
          break;
        }
        case S.SizeLf:
          if (buf[i] !== 10) throw new ChunkedSyntaxError('CR without LF after chunk size');
          i++;
          this.#digits = 0;
          if (this.#size === 0) this.#state = S.Trailer;
          else {
            this.#left = this.#size;
            this.#state = S.Data;
          }
          this.#size = 0;
          break;
        case S.Data: {
          const take = Math.min(this.#left, end - i);
          this.#left -= take;
          this.payloadBytes += take;
          for (let k = i + take - Math.min(take, 4); k < i + take; k++) this.#tail = ((this.#tail << 8) | buf[k]!) >>> 0;
          this.#tailLen = Math.min(4, this.#tailLen + take);
          i += take;
          if (this.#left === 0) this.#state = S.DataCr;
          break;
        }
        case S.DataCr:
          if (buf[i] !== 13) throw new ChunkedSyntaxError('chunk data longer than its size');
          i++;
          this.#state = S.DataLf;
          break;
        case S.DataLf:
          if (buf[i] !== 10) throw new ChunkedSyntaxError('CR without LF after chunk data');
          i++;
          this.#state = S.Size;
          break;
        case S.Trailer:
          if (buf[i] === 13) {
            this.#state = S.FinalLf;
            i++;
          } else this.#state = S.TrailerLine;
          break;
        case S.TrailerLine: {
          const cr = buf.indexOf(13, i);
          const stop = cr < 0 || cr >= end ? end : cr;
          for (let k = i; k < stop; k++) if (isCtl(buf[k]!)) throw new ChunkedSyntaxError('control character in trailer');
          i = stop;
          if (stop < end) {
            this.#state = S.TrailerLf;
            i++;
          }
          break;
        }
        case S.TrailerLf:
          if (buf[i] !== 10) throw new ChunkedSyntaxError('CR without LF in trailer');
          i++;
          this.#state = S.Trailer;
          break;
        case S.FinalLf:
          if (buf[i] !== 10) throw new ChunkedSyntaxError('CR without LF at the end of the body');
          i++;
          this.#state = S.Done;
          return i;
        case S.Done:
          return i;
      }
    }
    return this.#state === S.Done ? i : -1;
  }
}

/** One chunk carrying `payload` (a latin1/ASCII string), as bytes to write between chunks. */
export function chunkOf(payload: string): string {
  return `${Buffer.byteLength(payload).toString(16)}\r\n${payload}\r\n`;
}
