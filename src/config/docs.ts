// The table of variables rendered for people: the generated part of
// docs/configuration.md, and `nim-supervisor help env [NAME…]`.
import { ConfigError } from '../errors.js';
import { NOT_SUPPORTED } from './unknown.js';
import { GROUPS, VARIABLES, defaultText, type GroupId, type Variable } from './variables.js';

export const BEGIN_MARK = '<!-- BEGIN GENERATED: variables (src/config/variables.ts; `npm run docs:config` rewrites this part) -->';
export const END_MARK = '<!-- END GENERATED: variables -->';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function typeText(v: Variable): string {
  return v.unit ? `${v.kind.type} (${v.unit})` : v.kind.type;
}

/** `--flag` and `VLLM_*` in code style; prose as is. */
function engineText(engine: string): string {
  return engine.replace(/(--[a-z0-9-]+|\b[A-Z][A-Z0-9_]{3,}\b)/g, '`$1`');
}

function nameCell(v: Variable): string {
  const olds = v.renamedFrom?.length ? ` (1.x: ${v.renamedFrom.map((o) => `\`${o}\``).join(', ')})` : '';
  return `\`${v.name}\`${olds}`;
}

/** The generated Markdown: one section per group, one row per variable, then NIM variables not supported. */
export function renderVariablesMarkdown(): string {
  const out: string[] = [BEGIN_MARK, ''];
  for (const [id, group] of Object.entries(GROUPS) as [GroupId, (typeof GROUPS)[GroupId]][]) {
    const rows = VARIABLES.filter((v) => v.group === id);
    if (rows.length === 0) continue;
    out.push(`## ${group.title}`, '');
    if (group.intro) out.push(group.intro, '');
    out.push('| Variable | Type | Default | NIM | Maps to (vLLM) | Meaning | Example |', '|---|---|---|---|---|---|---|');
    for (const v of rows) {
      out.push(
        `| ${[
          nameCell(v),
          typeText(v),
          defaultText(v),
          v.nim,
          v.engine ? engineText(v.engine) : '—',
          v.description,
          v.example ? `\`${v.example}\`` : '',
        ]
          .map(cell)
          .join(' | ')} |`,
      );
    }
    out.push('');
  }
  out.push('## NIM variables this supervisor does not read', '');
  out.push('Each of these, when set, gets one warning at start and is otherwise ignored.', '');
  out.push('| Variable | Instead |', '|---|---|');
  for (const [name, instead] of Object.entries(NOT_SUPPORTED).sort(([a], [b]) => a.localeCompare(b))) {
    out.push(`| \`${name}\` | ${cell(instead)} |`);
  }
  out.push('', END_MARK);
  return out.join('\n');
}

/** `doc` with its generated part replaced by the current table's. */
export function spliceGenerated(doc: string): string {
  const begin = doc.indexOf(BEGIN_MARK);
  const end = doc.indexOf(END_MARK);
  if (begin < 0 || end < begin) throw new Error(`docs/configuration.md lacks the ${BEGIN_MARK} … ${END_MARK} markers`);
  return doc.slice(0, begin) + renderVariablesMarkdown() + doc.slice(end + END_MARK.length);
}

/** Markdown to plain text for the terminal: no backticks, links as their text. */
function plain(md: string): string {
  return md.replace(/\[([^\]]+)\]\([^)]+\)/g, '$1').replace(/`/g, '');
}

function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(indent + line);
  return lines;
}

/** "NIM 1.x, 2.x", "nim-supervisor" or the system that sets it (CUDA, LeaderWorkerSet…). */
function origin(v: Variable): string {
  if (v.nim === 'ours') return 'nim-supervisor';
  return /\d\.x/.test(v.nim) ? `NIM ${v.nim}` : v.nim;
}

function firstSentence(text: string): string {
  const m = /^(.+?[.!?])(\s|$)/.exec(text);
  return m ? m[1]! : text;
}

/**
 * `help env`: every variable, one short entry each, grouped; with names, the
 * full entry of each (and its value in `env`, masked when secret). An unknown
 * name is a ConfigError.
 */
export function renderHelpEnv(names: readonly string[] = [], env: NodeJS.ProcessEnv = {}): string {
  const out: string[] = [];
  if (names.length === 0) {
    out.push('Environment variables (nim-supervisor help env NAME … for one in full; docs/configuration.md):', '');
    for (const [id, group] of Object.entries(GROUPS) as [GroupId, (typeof GROUPS)[GroupId]][]) {
      const rows = VARIABLES.filter((v) => v.group === id);
      if (rows.length === 0) continue;
      out.push(`${group.title}:`);
      for (const v of rows) {
        const meta = [typeText(v), `default ${plain(defaultText(v))}`, v.engine ? `→ ${v.engine}` : undefined, origin(v)]
          .filter(Boolean)
          .join('; ');
        out.push(`  ${v.name}  (${meta})`);
        out.push(...wrap(plain(firstSentence(v.description)), 76, '      '));
      }
      out.push('');
    }
    return `${out.join('\n')}`;
  }
  for (const name of names) {
    const v = VARIABLES.find((x) => x.name === name.toUpperCase() || x.renamedFrom?.includes(name.toUpperCase()));
    if (!v) throw new ConfigError(`unknown variable ${JSON.stringify(name)}`, { hint: 'nim-supervisor help env lists them all' });
    out.push(`${v.name}${v.renamedFrom?.length ? ` (NIM 1.x name: ${v.renamedFrom.join(', ')})` : ''}`);
    out.push(...wrap(plain(v.description), 76, '  '));
    out.push(`  type:     ${typeText(v)}, ${v.kind.accepts}`);
    out.push(`  default:  ${plain(defaultText(v))}`);
    if (v.engine) out.push(`  maps to:  ${v.engine}`);
    out.push(`  from:     ${origin(v)}`);
    if (v.example) out.push(`  example:  ${v.name}=${v.example}`);
    const raw = env[v.name];
    if (raw !== undefined) out.push(`  set here: ${v.secret ? '***' : JSON.stringify(raw)}`);
    out.push('');
  }
  return out.join('\n');
}
