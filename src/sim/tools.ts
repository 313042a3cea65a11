// Tool calls: pick the function, invent arguments from its JSON schema
// (deterministic values per type) and produce what a hermes-style parser
// would hand back to the client.
import { randomUUID } from 'node:crypto';
import { pyJsonDumps } from './pyrepr.js';
import { isObject, type Json } from './validate.js';

export interface ToolCall {
  id: string;
  name: string;
  /** JSON text, spaced like Python's json.dumps as vLLM's parsers write it. */
  arguments: string;
}

export function sampleValue(schema: unknown, name: string, depth = 0): unknown {
  if (!isObject(schema) || depth > 6) return `example ${name}`.trim();
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  if ('const' in schema) return schema.const;
  if ('default' in schema && schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    const alts = schema[k];
    if (Array.isArray(alts)) {
      const pick = alts.find((a) => !(isObject(a) && a.type === 'null')) ?? alts[0];
      return sampleValue(pick, name, depth + 1);
    }
  }
  let type = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== 'null') ?? 'null';
  if (type === undefined && isObject(schema.properties)) type = 'object';
  switch (type) {
    case 'string': {
      const fmt = schema.format;
      if (fmt === 'date') return '2024-01-01';
      if (fmt === 'date-time') return '2024-01-01T00:00:00Z';
      if (fmt === 'email') return 'user@example.com';
      if (fmt === 'uri' || fmt === 'url') return 'https://example.com';
      return `example ${name}`.trim();
    }
    case 'integer': {
      const lo = typeof schema.minimum === 'number' ? Math.ceil(schema.minimum) : undefined;
      const hi = typeof schema.maximum === 'number' ? Math.floor(schema.maximum) : undefined;
      return clamp(42, lo, hi);
    }
    case 'number':
      return clamp(3.5, schema.minimum as number | undefined, schema.maximum as number | undefined);
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'array': {
      const n = typeof schema.minItems === 'number' && schema.minItems > 1 ? schema.minItems : 1;
      return Array.from({ length: Math.min(n, 8) }, () => sampleValue(schema.items, name, depth + 1));
    }
    case 'object': {
      const out: Json = {};
      const props = isObject(schema.properties) ? schema.properties : {};
      for (const [k, sub] of Object.entries(props)) out[k] = sampleValue(sub, k, depth + 1);
      return out;
    }
    default:
      return `example ${name}`.trim();
  }
}

function clamp(v: number, lo?: number, hi?: number): number {
  if (typeof lo === 'number' && v < lo) v = lo;
  if (typeof hi === 'number' && v > hi) v = hi;
  return v;
}

/** vLLM's tool-call id: "chatcmpl-tool-" + uuid4 hex. */
export function toolCallId(): string {
  return `chatcmpl-tool-${randomUUID().replace(/-/g, '')}`;
}

export function makeToolCall(tool: Json): ToolCall {
  const fn = isObject(tool.function) ? tool.function : {};
  const name = typeof fn.name === 'string' ? fn.name : '';
  const params = isObject(fn.parameters) ? fn.parameters : { type: 'object', properties: {} };
  const args = sampleValue(params, name);
  return { id: toolCallId(), name, arguments: pyJsonDumps(isObject(args) ? args : {}) };
}

/** The raw text a hermes-style model would emit for the call (used for token counts). */
export function toolCallText(tc: ToolCall): string {
  return `<tool_call>\n{"name": ${JSON.stringify(tc.name)}, "arguments": ${tc.arguments}}\n</tool_call>`;
}
