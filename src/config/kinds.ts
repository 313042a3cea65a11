// The kinds of value a variable can hold: how its text is parsed, what it
// accepts (for the one-line error) and how a value is shown (docs, help).
// Plain parsers rather than zod: this is on the start-up path, and zod's
// import alone costs ~55 ms.
import { isIP } from 'node:net';
import { parse as parseShell } from 'shell-quote';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export type TlsMode = 'DISABLED' | 'TLS' | 'MTLS';

/** One kind of value. `parse` returns undefined for text it does not accept. */
export interface Kind<T> {
  /** Short type name for docs and `help env`: integer, seconds, boolean … */
  type: string;
  /** What it accepts, for the error message: "expected <accepts>". */
  accepts: string;
  parse: (raw: string) => T | undefined;
  /** A parsed value as the operator would write it (default: String(value)). */
  show?: (value: T) => string;
}

const LOG_LEVELS: Record<string, LogLevel> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  WARN: 'warn',
  ERROR: 'error',
  CRITICAL: 'fatal',
};

/** Python's level names for our levels (NIM and vLLM speak Python logging). */
export const PYTHON_LEVEL: Record<LogLevel, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

const BOOLS: Record<string, boolean> = {
  '1': true,
  true: true,
  yes: true,
  on: true,
  '0': false,
  false: false,
  no: false,
  off: false,
};

export function intKind(min: number, max: number = Number.MAX_SAFE_INTEGER): Kind<number> {
  return {
    type: 'integer',
    accepts: max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`,
    parse: (raw) => {
      if (!/^\s*-?\d+\s*$/.test(raw)) return undefined;
      const n = Number(raw.trim());
      return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
    },
  };
}

/** Seconds as a decimal number, returned as milliseconds. */
export function secondsKind(min: number): Kind<number> {
  return {
    type: 'seconds',
    accepts: `a number of seconds >= ${min}`,
    parse: (raw) => {
      if (!/^\s*\d+(\.\d+)?\s*$/.test(raw)) return undefined;
      const n = Number(raw);
      return n >= min ? Math.round(n * 1000) : undefined;
    },
    show: (ms) => String(ms / 1000),
  };
}

/** Seconds (>= min) as milliseconds, or 0 for off. */
export function secondsOrOffKind(min: number): Kind<number> {
  return {
    type: 'seconds',
    accepts: `a number of seconds >= ${min}, or 0 to turn it off`,
    parse: (raw) => {
      if (!/^\s*\d+(\.\d+)?\s*$/.test(raw)) return undefined;
      const n = Number(raw);
      return n === 0 ? 0 : n >= min ? Math.round(n * 1000) : undefined;
    },
    show: (ms) => String(ms / 1000),
  };
}

/** `*` alone (any), or a comma-separated list whose items each match `item` (normalized, deduplicated). */
export function listOrAnyKind(what: string, item: RegExp, normalize: (s: string) => string): Kind<'*' | string[]> {
  return {
    type: 'list',
    accepts: `* or a comma-separated list of ${what}`,
    parse: (raw) => {
      const items = raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      if (items.length === 1 && items[0] === '*') return '*';
      if (items.length === 0 || !items.every((s) => item.test(s))) return undefined;
      return [...new Set(items.map(normalize))];
    },
    show: (v) => (v === '*' ? '*' : v.join(',')),
  };
}

/** RFC 9110 token: method and header names. */
export const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A serialized origin as browsers send it: scheme://host[:port], no path, no trailing slash. */
export const HTTP_ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/(\[[0-9a-fA-F:.]+\]|[^/:\s?#]+)(:\d{1,5})?$/i;

/** A share of something, 0 < x <= 1 (vLLM's --gpu-memory-utilization). */
export function fractionKind(note = ''): Kind<number> {
  return {
    type: 'fraction',
    accepts: `a number above 0 and at most 1, e.g. 0.5${note}`,
    parse: (raw) => {
      if (!/^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(raw)) return undefined;
      const n = Number(raw);
      return n > 0 && n <= 1 ? n : undefined;
    },
  };
}

export const boolKind: Kind<boolean> = {
  type: 'boolean',
  accepts: '1, 0, true, false, yes, no, on or off',
  parse: (raw) => BOOLS[raw.trim().toLowerCase()],
  show: (b) => (b ? '1' : '0'),
};

export const stringKind: Kind<string> = {
  type: 'string',
  accepts: 'a non-empty string',
  parse: (raw) => (raw.trim() === '' ? undefined : raw.trim()),
};

/** A file or directory path (not checked here: the consumer says what it needs). */
export const pathKind: Kind<string> = { ...stringKind, type: 'path', accepts: 'a file path' };

/** One of a fixed set of words (case-insensitive), returned in the set's spelling. */
export function enumKind<T extends string>(values: readonly T[]): Kind<T> {
  return {
    type: 'enum',
    accepts: `one of ${values.join(', ')}`,
    parse: (raw) => values.find((v) => v.toLowerCase() === raw.trim().toLowerCase()),
  };
}

/** vLLM's human-readable ints: 32k = 32000, 32K = 32768, 1m = 1e6, 1M = 2^20. */
export const contextLenKind: Kind<number> = {
  type: 'tokens',
  accepts: 'a positive integer, optionally with k/K/m/M like vLLM (32k = 32000, 32K = 32768)',
  parse: (raw) => {
    const m = /^\s*(\d+)([kKmM]?)\s*$/.exec(raw);
    if (!m) return undefined;
    const mult = { '': 1, k: 1e3, K: 1024, m: 1e6, M: 1024 * 1024 }[m[2] as '' | 'k' | 'K' | 'm' | 'M'];
    const n = Number(m[1]) * mult;
    return n > 0 && Number.isSafeInteger(n) ? n : undefined;
  },
};

export const logLevelKind: Kind<LogLevel> = {
  type: 'level',
  accepts: 'DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)',
  parse: (raw) => LOG_LEVELS[raw.trim().toUpperCase()],
  show: (l) => PYTHON_LEVEL[l],
};

export const argsKind: Kind<string[]> = {
  type: 'flags',
  accepts: 'vLLM flags as a shell would split them, e.g. "--max-num-seqs 8 --enforce-eager"',
  parse: (raw) => {
    const parts = parseShell(raw);
    // shell-quote returns objects for operators (|, ;, >) and globs: those are not flags.
    if (!parts.every((p): p is string => typeof p === 'string')) return undefined;
    return parts;
  },
  show: (a) => a.join(' '),
};

export const tlsModeKind: Kind<TlsMode> = {
  type: 'enum',
  accepts: 'DISABLED, TLS or MTLS',
  parse: (raw) => {
    const v = raw.trim().toUpperCase();
    return v === 'DISABLED' || v === 'TLS' || v === 'MTLS' ? v : undefined;
  },
};

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
};

export const sizeKind: Kind<number> = {
  type: 'bytes',
  accepts: 'a size in bytes, optionally with a unit (e.g. 67108864, 64MiB, 100MB)',
  parse: (raw) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw);
    const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
    if (!m || unit === undefined) return undefined;
    const n = Math.floor(Number(m[1]) * unit);
    return n > 0 ? n : undefined;
  },
  show: (n) => (n % 1024 ** 2 === 0 ? `${n / 1024 ** 2}MiB` : String(n)),
};

/** A host name or an IP address, without a port (LWS_LEADER_ADDRESS). */
export const hostKind: Kind<string> = {
  type: 'host',
  accepts: 'a host name or IP address without a port, e.g. my-lws-0.my-lws.default or 10.0.0.5',
  parse: (raw) => {
    const v = raw.trim();
    if (/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/.test(v) && v.length <= 253) return v;
    return isIP(v) !== 0 ? v : undefined; // IPv4 (also matched above) or IPv6
  },
};

/** Taken as given (CUDA_VISIBLE_DEVICES: an empty value means "no GPUs" to CUDA). */
export const rawKind: Kind<string> = { type: 'string', accepts: 'any text', parse: (raw) => raw };

/** An http(s) URL, returned without a trailing slash (HF_ENDPOINT). */
export const urlKind: Kind<string> = {
  type: 'URL',
  accepts: 'an http:// or https:// URL, e.g. https://huggingface.co',
  parse: (raw) => {
    try {
      const u = new URL(raw.trim());
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href.replace(/\/+$/, '') : undefined;
    } catch {
      return undefined;
    }
  },
};
