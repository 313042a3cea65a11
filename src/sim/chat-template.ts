// Chat messages -> one prompt string, in the Llama-3 instruct layout
// (<|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>...).
// Used by chat completions, /tokenize with messages and the render route, so
// all three agree on the prompt and its token count.
import { badRequest, validationError, type PydanticError } from './errors.js';
import { checkMediaUrl, checkMmCount, type MmLimits, type Modality, type Part } from './multimodal.js';
import { pyJsonDumps } from './pyrepr.js';
import { isObject, type Json } from './validate.js';

export interface ChatMessage {
  role: string;
  parts: Part[];
  /** The content as vLLM's "string" content format flattens it (text parts joined by newlines). */
  text: string;
  name?: string;
  toolCalls?: Array<{ id?: string; name: string; arguments: string }>;
  toolCallId?: string;
}

export interface ParsedChat {
  messages: ChatMessage[];
  media: Record<Modality, number>;
}

const TEXT_TYPES = new Set(['text', 'input_text', 'refusal', 'thinking']);

/**
 * Validate and normalise request messages. Shape errors are FastAPI-style
 * validation errors; content problems are vLLM's 400 BadRequestError with the
 * chat path's trailing " None" (`f"{e} {e.__cause__}"`).
 */
export function parseMessages(raw: unknown[], limits: MmLimits, suffix = ' None'): ParsedChat {
  const errors: PydanticError[] = [];
  const messages: ChatMessage[] = [];
  const media: Record<Modality, number> = { image: 0, audio: 0, video: 0 };
  const mediaChecks: Array<() => void> = [];
  raw.forEach((m, i) => {
    if (!isObject(m)) {
      errors.push({ type: 'model_attributes_type', loc: ['body', 'messages', i], msg: 'Input should be a valid dictionary or object to extract fields from', input: m });
      return;
    }
    if (typeof m.role !== 'string') {
      errors.push(
        m.role === undefined
          ? { type: 'missing', loc: ['body', 'messages', i, 'role'], msg: 'Field required', input: m }
          : { type: 'string_type', loc: ['body', 'messages', i, 'role'], msg: 'Input should be a valid string', input: m.role },
      );
      return;
    }
    const parts: Part[] = [];
    const content = m.content;
    if (typeof content === 'string') parts.push({ kind: 'text', text: content });
    else if (Array.isArray(content)) {
      content.forEach((p, j) => {
        if (typeof p === 'string') {
          parts.push({ kind: 'text', text: p });
          return;
        }
        if (!isObject(p) || typeof p.type !== 'string') {
          errors.push({ type: 'missing', loc: ['body', 'messages', i, 'content', j, 'type'], msg: 'Field required', input: p });
          return;
        }
        const t = p.type;
        if (TEXT_TYPES.has(t)) {
          const text = p[t === 'input_text' ? 'text' : t];
          if (typeof text !== 'string') {
            errors.push({ type: 'missing', loc: ['body', 'messages', i, 'content', j, t === 'input_text' ? 'text' : t], msg: 'Field required', input: p });
            return;
          }
          parts.push({ kind: 'text', text });
          return;
        }
        const modality: Modality | null =
          t === 'image_url' || t === 'input_image' ? 'image' : t === 'audio_url' || t === 'input_audio' ? 'audio' : t === 'video_url' ? 'video' : null;
        if (modality === null) throw badRequest(`Unknown part type: ${t}${suffix}`);
        media[modality]++;
        parts.push({ kind: modality });
        const holder = p[t];
        const url = t === 'input_image' ? holder : t === 'input_audio' ? audioDataUrl(holder) : isObject(holder) ? holder.url : undefined;
        mediaChecks.push(() => checkMediaUrl(url, modality, suffix));
      });
    } else if (content !== undefined && content !== null) {
      errors.push({ type: 'string_type', loc: ['body', 'messages', i, 'content', 'str'], msg: 'Input should be a valid string', input: content });
      return;
    }
    const msg: ChatMessage = {
      role: m.role,
      parts,
      text: parts
        .filter((p): p is { kind: 'text'; text: string } => p.kind === 'text')
        .map((p) => p.text)
        .join('\n'),
    };
    if (typeof m.name === 'string') msg.name = m.name;
    if (typeof m.tool_call_id === 'string') msg.toolCallId = m.tool_call_id;
    if (Array.isArray(m.tool_calls)) {
      msg.toolCalls = m.tool_calls.filter(isObject).map((tc) => {
        const fn = isObject(tc.function) ? tc.function : {};
        return {
          ...(typeof tc.id === 'string' ? { id: tc.id } : {}),
          name: typeof fn.name === 'string' ? fn.name : '',
          arguments: typeof fn.arguments === 'string' ? fn.arguments : pyJsonDumps(fn.arguments ?? {}),
        };
      });
    }
    messages.push(msg);
  });
  if (errors.length) throw validationError(errors);
  // vLLM counts items as it parses them, so the limit error wins over a bad URL.
  checkMmCount(media, limits, suffix);
  for (const check of mediaChecks) check();
  return { messages, media };
}

function audioDataUrl(holder: unknown): unknown {
  if (!isObject(holder) || typeof holder.data !== 'string') return undefined;
  const fmt = typeof holder.format === 'string' ? holder.format : 'wav';
  return `data:audio/${fmt};base64,${holder.data}`;
}

export interface RenderOptions {
  addGenerationPrompt: boolean;
  continueFinalMessage: boolean;
  tools?: Json[] | undefined;
  responseRole?: string;
}

const PLACEHOLDER: Record<Modality, string> = { image: '<|image|>', audio: '', video: '' };

function header(role: string): string {
  return `<|start_header_id|>${role}<|end_header_id|>\n\n`;
}

function body(m: ChatMessage): string {
  if (m.toolCalls && m.toolCalls.length) {
    return m.toolCalls.map((tc) => `{"name": ${JSON.stringify(tc.name)}, "parameters": ${tc.arguments}}`).join('\n');
  }
  let out = '';
  let sep = '';
  for (const p of m.parts) {
    if (p.kind === 'text') {
      out += sep + p.text;
      sep = '\n';
    } else out += PLACEHOLDER[p.kind];
  }
  return out;
}

export function renderChat(messages: ChatMessage[], opts: RenderOptions): string {
  let out = '<|begin_of_text|>';
  let rest = messages;
  if (opts.tools && opts.tools.length) {
    // Tool definitions go into the system turn, as Llama 3.1's template does.
    const sys = messages[0]?.role === 'system' ? body(messages[0]) : '';
    if (messages[0]?.role === 'system') rest = messages.slice(1);
    const defs = opts.tools.map((t) => pyJsonDumps(t)).join('\n\n');
    out += `${header('system')}Environment: ipython\n\nYou have access to the following functions:\n\n${defs}\n\n${sys}<|eot_id|>`;
  }
  rest.forEach((m, i) => {
    const role = m.role === 'tool' ? 'ipython' : m.role;
    const last = i === rest.length - 1;
    out += header(role) + body(m);
    if (!(last && opts.continueFinalMessage)) out += '<|eot_id|>';
  });
  if (opts.addGenerationPrompt && !opts.continueFinalMessage) out += header(opts.responseRole ?? 'assistant');
  return out;
}

/** vLLM's ConversationMessage list, as the render route returns it. */
export function conversationOf(messages: ChatMessage[]): Json[] {
  return messages.map((m) => {
    const c: Json = { role: m.role, content: m.text };
    if (m.name !== undefined) c.name = m.name;
    if (m.toolCalls) {
      c.tool_calls = m.toolCalls.map((tc) => ({ ...(tc.id ? { id: tc.id } : {}), type: 'function', function: { name: tc.name, arguments: tc.arguments } }));
    }
    if (m.toolCallId !== undefined) c.tool_call_id = m.toolCallId;
    return c;
  });
}
