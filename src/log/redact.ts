// Secrets never reach logs or responses. Environment variables whose names look
// like secrets are collected once; their values are masked wherever engine
// output is logged or quoted back (the readiness body, error messages).

const SECRET_NAME = /(_KEY|_TOKEN|_SECRET)$|PASSWORD|^HF_TOKEN$|^NGC_API_KEY$|^NIM_API_KEY$/i;

/** Names of environment variables treated as secrets. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Values of secret-looking variables (short values are skipped: masking "1" would mangle every line). */
export function secretValues(env: NodeJS.ProcessEnv, extra: Array<string | undefined> = []): string[] {
  const values = Object.entries(env)
    .filter(([k, v]) => isSecretName(k) && v !== undefined)
    .map(([, v]) => v!.trim());
  return [...new Set([...values, ...extra.filter((v): v is string => v !== undefined)])].filter((v) => v.length >= 6);
}

export type Redact = (text: string) => string;

/** A function that replaces every occurrence of each secret with `***`. */
export function createRedactor(secrets: readonly string[]): Redact {
  if (secrets.length === 0) return (t) => t;
  // Longest first, so a secret that contains another is masked whole.
  const sorted = [...secrets].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const s of sorted) if (out.includes(s)) out = out.split(s).join('***');
    return out;
  };
}
