// Profile ids: NIM identifies a profile by 64 hex digits. A manifest may give
// one; otherwise it is the sha256 of the profile's canonical content, so the
// same profile keeps its id whatever the key order, quoting or layout of the
// YAML, and any change to what it runs gives it a new one.
import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level and no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** What the id covers: the model, the normalised tags (NIM's string form, defaults filled in), the engine args and env. */
export interface ProfileIdContent {
  model: string;
  tags: Record<string, string>;
  engineArgs: readonly string[];
  env: Readonly<Record<string, string>>;
}

export function computeProfileId(content: ProfileIdContent): string {
  const canonical = canonicalJson({
    model: content.model,
    tags: content.tags,
    engine_args: [...content.engineArgs],
    env: content.env,
  });
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}
