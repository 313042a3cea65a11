// Python-style repr() of JSON-ish values. vLLM prints argument dicts and
// validation errors with Python's repr, so the simulator mirrors that format.

export function pyStr(s: string): string {
  // Python picks single quotes unless the string holds a ' and no ".
  const useDouble = s.includes("'") && !s.includes('"');
  const q = useDouble ? '"' : "'";
  let out = q;
  for (const ch of s) {
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += '\\' + q;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch < ' ') out += '\\x' + ch.charCodeAt(0).toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + q;
}

/** A tuple marker so reprs can print `('body', 0)` like pydantic error locations. */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') {
    if (Number.isInteger(v) && !Object.is(v, -0)) return String(v);
    if (Number.isNaN(v)) return 'nan';
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    return String(v);
  }
  if (typeof v === 'string') return pyStr(v);
  if (v instanceof PyTuple) {
    const inner = v.items.map(pyRepr).join(', ');
    return v.items.length === 1 ? `(${inner},)` : `(${inner})`;
  }
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') {
    const parts = Object.entries(v as Record<string, unknown>).map(([k, val]) => `${pyStr(k)}: ${pyRepr(val)}`);
    return `{${parts.join(', ')}}`;
  }
  return pyStr(String(v));
}

/**
 * JSON text the way Python's json.dumps() writes it by default (", " and ": "
 * separators, non-ASCII escaped). Tool-call parsers in vLLM build argument
 * strings with json.dumps, so clients see this spacing.
 */
export function pyJsonDumps(v: unknown, ensureAscii = false): string {
  const walk = (x: unknown): string => {
    if (x === null || x === undefined) return 'null';
    if (typeof x === 'string') {
      const s = JSON.stringify(x);
      return ensureAscii ? s.replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) : s;
    }
    if (typeof x === 'number') return Number.isFinite(x) ? (Number.isInteger(x) ? String(x) : String(x)) : 'NaN';
    if (typeof x === 'boolean') return x ? 'true' : 'false';
    if (Array.isArray(x)) return `[${x.map(walk).join(', ')}]`;
    if (typeof x === 'object') {
      return `{${Object.entries(x as Record<string, unknown>)
        .map(([k, val]) => `${walk(k)}: ${walk(val)}`)
        .join(', ')}}`;
    }
    return 'null';
  };
  return walk(v);
}
