// A deterministic, reversible tokenizer. Text is split GPT-style into pieces
// (" word", digits, punctuation runs, whitespace); a piece found in the fixed
// vocabulary is one token, anything else is spelled as its UTF-8 bytes, two
// bytes per token (plus single-byte tokens for an odd tail). Decoding
// concatenates bytes, so decode(encode(s)) === s for every well-formed string.
import { FIXED_IDS, PUNCTUATION, SPECIAL_TOKENS, WORDS } from './vocab.js';

export const BOS_ID = 128000;
export const EOS_ID = 128009; // <|eot_id|>, what a Llama-3 instruct model stops on
export const IMAGE_ID = 128256;
export const VOCAB_SIZE = 128257;

const PAIR_BASE = 60000; // 65536 ids: two raw bytes each
const BYTE_BASE = PAIR_BASE + 65536; // 256 ids: one raw byte each
const WORD_BASE = 1000;

const SPECIAL_RE = new RegExp(SPECIAL_TOKENS.map(([s]) => s.replace(/[|<>]/g, (c) => `\\${c}`)).join('|'), 'g');
const PIECE_RE = / ?\p{L}+| ?\p{N}{1,3}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export class Tokenizer {
  private readonly toId = new Map<string, number>();
  private readonly toText = new Map<number, string>();
  private readonly specialIds = new Set<number>();

  constructor() {
    const pieces = new Set<string>(PUNCTUATION);
    for (const w of WORDS) {
      const cap = w[0]!.toUpperCase() + w.slice(1);
      for (const p of [w, ` ${w}`, cap, ` ${cap}`]) pieces.add(p);
    }
    for (const [p, id] of FIXED_IDS) this.add(p, id);
    const used = new Set(FIXED_IDS.values());
    let next = WORD_BASE;
    for (const p of pieces) {
      if (this.toId.has(p)) continue;
      while (used.has(next)) next++;
      this.add(p, next++);
    }
    for (const [s, id] of SPECIAL_TOKENS) {
      this.add(s, id);
      this.specialIds.add(id);
    }
  }

  private add(piece: string, id: number): void {
    this.toId.set(piece, id);
    this.toText.set(id, piece);
  }

  get vocabSize(): number {
    return VOCAB_SIZE;
  }

  /** Id of a vocabulary piece, if it is one. */
  idOf(piece: string): number | undefined {
    return this.toId.get(piece);
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Split text into pre-tokenizer pieces (special tokens kept whole). */
  pieces(text: string): string[] {
    const out: string[] = [];
    const pushPlain = (seg: string) => {
      if (seg === '') return;
      PIECE_RE.lastIndex = 0;
      for (const m of seg.matchAll(PIECE_RE)) out.push(m[0]);
    };
    if (!text.includes('<|')) {
      pushPlain(text);
      return out;
    }
    let last = 0;
    SPECIAL_RE.lastIndex = 0;
    for (const m of text.matchAll(SPECIAL_RE)) {
      pushPlain(text.slice(last, m.index));
      out.push(m[0]);
      last = m.index + m[0].length;
    }
    pushPlain(text.slice(last));
    return out;
  }

  encode(text: string, addBos = false): number[] {
    const ids: number[] = addBos ? [BOS_ID] : [];
    for (const p of this.pieces(text)) this.encodePiece(p, ids);
    return ids;
  }

  /** Token count without materialising an array of ids. */
  count(text: string): number {
    let n = 0;
    for (const p of this.pieces(text)) {
      if (this.toId.has(p)) n++;
      else n += Math.ceil(Buffer.byteLength(p, 'utf8') / 2);
    }
    return n;
  }

  private encodePiece(p: string, ids: number[]): void {
    const id = this.toId.get(p);
    if (id !== undefined) {
      ids.push(id);
      return;
    }
    const bytes = Buffer.from(p, 'utf8');
    let i = 0;
    for (; i + 1 < bytes.length; i += 2) ids.push(PAIR_BASE + ((bytes[i]! << 8) | bytes[i + 1]!));
    if (i < bytes.length) ids.push(BYTE_BASE + bytes[i]!);
  }

  /** True if every id is in range; decode() of an out-of-range id throws. */
  inRange(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < VOCAB_SIZE;
  }

  decode(ids: readonly number[], skipSpecial = false): string {
    let out = '';
    let pending: number[] = [];
    const flush = () => {
      if (pending.length) {
        out += Buffer.from(pending).toString('utf8');
        pending = [];
      }
    };
    for (const id of ids) {
      if (!this.inRange(id)) throw new RangeError(`Token id ${id} is out of vocabulary`);
      if (id >= BYTE_BASE && id < BYTE_BASE + 256) pending.push(id - BYTE_BASE);
      else if (id >= PAIR_BASE && id < BYTE_BASE) pending.push((id - PAIR_BASE) >> 8, (id - PAIR_BASE) & 0xff);
      else {
        flush();
        if (skipSpecial && this.specialIds.has(id)) continue;
        out += this.toText.get(id) ?? '';
      }
    }
    flush();
    return out;
  }

  /** The string form of each token, like HF's convert_ids_to_tokens (raw bytes shown as <0xNN>). */
  tokenStrings(ids: readonly number[]): string[] {
    return ids.map((id) => {
      if (id >= BYTE_BASE && id < BYTE_BASE + 256) return `<0x${(id - BYTE_BASE).toString(16).toUpperCase().padStart(2, '0')}>`;
      if (id >= PAIR_BASE && id < BYTE_BASE) {
        const v = id - PAIR_BASE;
        const h = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
        return h(v >> 8) + h(v & 0xff);
      }
      return this.toText.get(id) ?? '';
    });
  }
}
