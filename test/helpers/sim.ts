// Helpers for the simulator tests: start `bin/vllm serve` on a free loopback
// port, and a strict parser for the Prometheus text exposition format.
import path from 'node:path';
import { binDir, freePort, pathWith, start, type Proc } from './process.js';

export interface RunningSim {
  proc: Proc;
  port: number;
  base: string;
}

/** The vLLM releases the simulator models; the e2e tests run against each (a matrix). */
export const SIM_VERSIONS = ['0.11', '0.31'] as const;
export type SimVersion = (typeof SIM_VERSIONS)[number];

/** Env for a fast simulator: no start-up delay, no per-token delay. */
export function simEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Nothing from the outer environment may change the simulator's behaviour.
  for (const k of Object.keys(env)) if (k.startsWith('VLLM_')) delete env[k];
  return { ...env, PATH: pathWith(binDir), VLLM_SIM_STARTUP_MS: '0', VLLM_SIM_TTFT_MS: '0', VLLM_SIM_TOKEN_MS: '0', ...extra };
}

/** `vllm serve MODEL --host 127.0.0.1 --port P ...args` through bin/vllm; waits for start-up unless wait=false. */
export async function startSim(
  args: string[] = [],
  env: Record<string, string> = {},
  { model = 'meta/llama-3.1-8b-instruct', wait = true } = {},
): Promise<RunningSim> {
  const port = await freePort();
  const proc = start(path.join(binDir, 'vllm'), ['serve', model, '--host', '127.0.0.1', '--port', String(port), ...args], { env: simEnv(env) });
  if (wait) await proc.waitForOutput(/Application startup complete\./, 15_000);
  return { proc, port, base: `http://127.0.0.1:${port}` };
}

/** startSim behaving as one vLLM release. */
export function startSimVersion(version: SimVersion, args: string[] = [], env: Record<string, string> = {}, opts: { model?: string; wait?: boolean } = {}): Promise<RunningSim> {
  return startSim(args, { VLLM_SIM_VERSION: version, ...env }, opts);
}

export async function postJson(base: string, p: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const res = await fetch(base + p, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text, headers: res.headers };
}

// ---------- Prometheus text format (version 0.0.4), parsed strictly ----------

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | null;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(s: string, line: string): number {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN' || s === 'Nan') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad sample value ${JSON.stringify(s)} in: ${line}`);
  return Number(s);
}

function parseLabels(src: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < src.length) {
    const eq = src.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = src.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) throw new Error(`bad label name ${JSON.stringify(name)} in: ${line}`);
    if (src[eq + 1] !== '"') throw new Error(`label value not quoted in: ${line}`);
    let j = eq + 2;
    let value = '';
    for (; j < src.length && src[j] !== '"'; j++) {
      if (src[j] === '\\') {
        const n = src[++j];
        if (n === 'n') value += '\n';
        else if (n === '\\' || n === '"') value += n;
        else throw new Error(`bad escape in: ${line}`);
      } else value += src[j];
    }
    if (j >= src.length) throw new Error(`unterminated label value in: ${line}`);
    if (name in labels) throw new Error(`duplicate label ${name} in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (src[i] === ',') i++;
    else if (i < src.length) throw new Error(`expected , between labels in: ${line}`);
  }
  return labels;
}

/** Which family a sample name belongs to, given the declared families. */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(name);
  if (direct) return direct;
  for (const suffix of ['_bucket', '_sum', '_count', '_total', '_created']) {
    if (name.endsWith(suffix)) {
      const f = families.get(name.slice(0, -suffix.length));
      if (f) return f;
    }
  }
  return undefined;
}

/** Parse an exposition; throws on anything malformed, undeclared or inconsistent. */
export function parsePrometheus(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map<string, Family>();
  const seenSeries = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
      let f = families.get(name);
      if (kind === 'TYPE') {
        if (f && f.samples.length) throw new Error(`TYPE after samples for ${name}`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type in: ${line}`);
        if (f && f.type !== 'untyped') throw new Error(`duplicate TYPE for ${name}`);
        if (!f) families.set(name, (f = { name, type: rest as Family['type'], help: null, samples: [] }));
        else f.type = rest as Family['type'];
      } else {
        if (f?.help !== undefined && f?.help !== null) throw new Error(`duplicate HELP for ${name}`);
        if (!f) families.set(name, (f = { name, type: 'untyped', help: rest, samples: [] }));
        else f.help = rest;
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!m) throw new Error(`malformed sample line: ${line}`);
    const [, name, labelSrc, valueSrc] = m as unknown as [string, string, string | undefined, string];
    const labels = labelSrc ? parseLabels(labelSrc, line) : {};
    const value = parseValue(valueSrc, line);
    const fam = familyOf(name, families);
    if (!fam) throw new Error(`sample without TYPE: ${line}`);
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
    if (seenSeries.has(key)) throw new Error(`duplicate series ${key}`);
    seenSeries.add(key);
    if (fam.type === 'histogram' && !/_(bucket|sum|count|created)$/.test(name)) throw new Error(`bad histogram sample ${name}`);
    if (fam.type === 'counter' && value < 0) throw new Error(`negative counter ${line}`);
    fam.samples.push({ name, labels, value });
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const series = new Map<string, Sample[]>();
  for (const s of f.samples) {
    if (!s.name.endsWith('_bucket')) continue;
    if (!('le' in s.labels)) throw new Error(`bucket without le in ${f.name}`);
    const { le: _le, ...rest } = s.labels;
    const k = JSON.stringify(Object.entries(rest).sort());
    series.set(k, [...(series.get(k) ?? []), s]);
  }
  for (const [k, buckets] of series) {
    const sorted = [...buckets].sort((a, b) => parseValue(a.labels.le!, '') - parseValue(b.labels.le!, ''));
    if (sorted[sorted.length - 1]!.labels.le !== '+Inf') throw new Error(`${f.name}${k}: no +Inf bucket`);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.value < sorted[i - 1]!.value) throw new Error(`${f.name}${k}: buckets not cumulative`);
    }
    const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(Object.entries(s.labels).sort()) === k);
    if (!count || count.value !== sorted[sorted.length - 1]!.value) throw new Error(`${f.name}${k}: _count differs from +Inf bucket`);
  }
}

/** Value of the one sample of `name` whose labels include `labels`. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const fam = familyOf(name, families);
  if (!fam) throw new Error(`no family for ${name}`);
  const hits = fam.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${hits.length}`);
  return hits[0]!.value;
}

export async function scrape(base: string): Promise<Map<string, Family>> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheus(await res.text());
}

/** Read an SSE body into its `data:` payloads (checking the framing on the way). */
export function sseEvents(text: string): string[] {
  if (!text.endsWith('\n\n')) throw new Error('SSE body does not end with a blank line');
  return text
    .slice(0, -2)
    .split('\n\n')
    .map((ev) => {
      if (!ev.startsWith('data: ') || ev.includes('\n')) throw new Error(`bad SSE event: ${JSON.stringify(ev.slice(0, 200))}`);
      return ev.slice(6);
    });
}
