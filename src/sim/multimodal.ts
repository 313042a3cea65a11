// Chat message content: text and media parts. Media is only accepted as
// base64 data URLs (the simulator never fetches), checked the way vLLM's
// MediaConnector would fail on it, and counted against --limit-mm-per-prompt.
import { badRequest } from './errors.js';

export type Modality = 'image' | 'audio' | 'video';
export type Part = { kind: 'text'; text: string } | { kind: Modality };

const DATA_URL_RE = /^data:([^,;]*)((?:;[^,;]*)*),/;
const B64_STRIP_RE = /[^A-Za-z0-9+/=]/g;
const B64_BAD_CHAR_RE = /[^A-Za-z0-9+/=]/;

/** Python's base64.b64decode (validate=False) error text for malformed input, or null if it decodes. */
export function b64Problem(data: string): string | null {
  // Python silently drops characters outside the alphabet before decoding.
  const s = B64_BAD_CHAR_RE.test(data) ? data.replace(B64_STRIP_RE, '') : data;
  const firstPad = s.indexOf('=');
  const body = firstPad >= 0 ? s.slice(0, firstPad) : s;
  if (body.length % 4 === 1) {
    return `Invalid base64-encoded string: number of data characters (${body.length}) cannot be 1 more than a multiple of 4`;
  }
  const padNeeded = (4 - (body.length % 4)) % 4;
  const pads = firstPad >= 0 ? s.length - firstPad : 0;
  if (pads < padNeeded) return 'Incorrect padding';
  return null;
}

const IMAGE_MAGIC: Array<[number[], number]> = [
  [[0x89, 0x50, 0x4e, 0x47], 0], // PNG
  [[0xff, 0xd8, 0xff], 0], // JPEG
  [[0x47, 0x49, 0x46, 0x38], 0], // GIF
  [[0x42, 0x4d], 0], // BMP
  [[0x57, 0x45, 0x42, 0x50], 8], // WEBP (RIFF....WEBP)
  [[0x49, 0x49, 0x2a, 0x00], 0], // TIFF LE
  [[0x4d, 0x4d, 0x00, 0x2a], 0], // TIFF BE
];

function looksLikeImage(bytes: Buffer): boolean {
  return IMAGE_MAGIC.some(([sig, off]) => sig.every((b, i) => bytes[off + i] === b));
}

/** Validate one media URL; throws vLLM-style 400 errors. */
export function checkMediaUrl(url: unknown, modality: Modality, suffix: string): void {
  if (typeof url !== 'string') throw badRequest(`${modality}_url.url must be a string${suffix}`);
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase() ?? '';
  if (scheme === 'http' || scheme === 'https') {
    throw badRequest(`Fetching remote media (${scheme} URLs) is not available in the vLLM simulator; send a base64 data URL instead.${suffix}`);
  }
  if (scheme === 'file') throw badRequest(`Cannot load local files without \`--allowed-local-media-path\`.${suffix}`);
  if (scheme !== 'data') throw badRequest(`The URL must be either a HTTP, data or file URL.${suffix}`);
  const m = DATA_URL_RE.exec(url);
  if (!m) throw badRequest(`Only base64 data URLs are supported for now.${suffix}`);
  const mime = (m[1] ?? '').toLowerCase();
  const params = (m[2] ?? '').split(';').filter(Boolean);
  if (!params.includes('base64')) throw badRequest(`Only base64 data URLs are supported for now.${suffix}`);
  if (!mime.startsWith(`${modality}/`)) {
    throw badRequest(`Invalid media type ${JSON.stringify(mime || '(none)')} for ${modality}_url: expected ${modality}/*.${suffix}`);
  }
  const data = url.slice(m[0].length);
  const problem = b64Problem(data);
  if (problem) throw badRequest(`${problem}${suffix}`);
  if (modality === 'image') {
    // Only the first bytes are needed to recognise the format.
    const head = Buffer.from(data.slice(0, 64), 'base64');
    if (!looksLikeImage(head)) throw badRequest(`cannot identify image file <_io.BytesIO object>${suffix}`);
  }
}

export interface MmLimits {
  image: number;
  audio: number;
  video: number;
  /** True where the limit came from --limit-mm-per-prompt (vLLM then suggests raising it). */
  configured: Record<Modality, boolean>;
}

export const DEFAULT_MM_LIMIT = 999;

export function mmLimits(flag: unknown): MmLimits {
  const obj = (typeof flag === 'object' && flag !== null ? flag : {}) as Record<string, unknown>;
  const get = (k: Modality) => (typeof obj[k] === 'number' ? (obj[k] as number) : DEFAULT_MM_LIMIT);
  return {
    image: get('image'),
    audio: get('audio'),
    video: get('video'),
    configured: { image: 'image' in obj, audio: 'audio' in obj, video: 'video' in obj },
  };
}

export function checkMmCount(counts: Record<Modality, number>, limits: MmLimits, suffix: string): void {
  for (const m of ['image', 'audio', 'video'] as const) {
    if (counts[m] > limits[m]) {
      const hint = limits.configured[m] && limits[m] < DEFAULT_MM_LIMIT ? ' Set --limit-mm-per-prompt to increase this limit.' : '';
      throw badRequest(`At most ${limits[m]} ${m}(s) may be provided in one prompt.${hint}${suffix}`);
    }
  }
}
