// Deterministic text generation. The output of a request is decided up front
// (token pieces, finish reason); the engine then only paces their delivery.
// Seeded from (seed, prompt, choice index), so the same request gives the same
// text, and every generated piece is one vocabulary token.
import type { Tokenizer } from './tokenizer.js';
import { WORDS } from './vocab.js';

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface Plan {
  /** Text of each generated token; the EOS token, when generated, is ''. */
  pieces: string[];
  text: string;
  finishReason: FinishReason;
  /** null at EOS, the matched stop string otherwise. */
  stopReason: string | null;
}

/** FNV-1a over the UTF-16 units of the given strings. */
export function hash32(...parts: string[]): number {
  let h = 0x811c9dc5;
  for (const s of parts) {
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: tiny, fast, good enough for picking words. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CAPS = WORDS.map((w) => w[0]!.toUpperCase() + w.slice(1));
const SPACED = WORDS.map((w) => ` ${w}`);

/** `count` pieces of English-ish prose. */
function prose(next: () => number, count: number, leadingSpace: boolean): string[] {
  const out: string[] = [];
  let left = 0;
  let capital = true;
  while (out.length < count) {
    if (left === 0) {
      if (out.length > 0) {
        out.push('.');
        capital = true;
        if (out.length >= count) break;
      }
      left = 5 + Math.floor(next() * 10);
    }
    const k = Math.floor(next() * WORDS.length);
    out.push(capital ? (out.length === 0 && !leadingSpace ? CAPS[k]! : ` ${CAPS[k]!}`) : SPACED[k]!);
    capital = false;
    left--;
    if (left > 1 && next() < 0.08 && out.length < count) out.push(',');
  }
  return out;
}

export interface GenOptions {
  seedKey: number;
  maxTokens: number;
  minTokens: number;
  ignoreEos: boolean;
  stop: readonly string[];
  includeStopStr: boolean;
  /** Continue a text prompt (completions): the first word gets a leading space. */
  continuation?: boolean;
  /** Echo mode: the text to repeat back instead of prose. */
  echo?: string | undefined;
}

export function plan(tok: Tokenizer, o: GenOptions): Plan {
  const next = rng(o.seedKey);
  let body: string[];
  if (o.echo !== undefined) body = tok.pieces(o.echo);
  else {
    // A natural answer length, as if the model emitted EOS there.
    const natural = Math.max(o.minTokens, 12 + Math.floor(next() * 52));
    const want = o.ignoreEos ? o.maxTokens : Math.min(natural, o.maxTokens);
    body = prose(next, want, o.continuation === true);
    if (!o.ignoreEos && body.length === natural && body[body.length - 1] !== '.' && body.length < o.maxTokens - 1) body.push('.');
  }
  let pieces: string[];
  let finishReason: FinishReason;
  if (!o.ignoreEos && body.length + 1 <= o.maxTokens && body.length >= o.minTokens) {
    pieces = [...body, ''];
    finishReason = 'stop';
  } else {
    pieces = o.ignoreEos && o.echo !== undefined ? body.slice(0, o.maxTokens) : body.slice(0, o.maxTokens);
    finishReason = 'length';
  }
  let stopReason: string | null = null;
  if (o.stop.length) {
    const cut = applyStop(pieces, o.stop, o.includeStopStr);
    if (cut) {
      pieces = cut.pieces;
      finishReason = 'stop';
      stopReason = cut.stop;
    }
  }
  return { pieces, text: pieces.join(''), finishReason, stopReason };
}

/** Truncate at the first stop string; the token that completes it is the last one. */
function applyStop(pieces: string[], stops: readonly string[], include: boolean): { pieces: string[]; stop: string } | null {
  let text = '';
  for (let i = 0; i < pieces.length; i++) {
    const before = text.length;
    text += pieces[i]!;
    let best = -1;
    let which = '';
    for (const s of stops) {
      if (!s) continue;
      const at = text.indexOf(s, Math.max(0, before - s.length + 1));
      if (at >= 0 && (best < 0 || at < best)) {
        best = at;
        which = s;
      }
    }
    if (best >= 0) {
      const keep = include ? best + which.length : best;
      const out = pieces.slice(0, i + 1);
      out[i] = keep >= before ? text.slice(before, keep) : '';
      // A stop string that began in an earlier piece also trims those pieces.
      if (keep < before) {
        let acc = 0;
        for (let j = 0; j < i; j++) {
          const p = out[j]!;
          if (acc + p.length > keep) out[j] = p.slice(0, Math.max(0, keep - acc));
          acc += p.length;
        }
      }
      return { pieces: out, stop: which };
    }
  }
  return null;
}
