// Combining Prometheus text expositions into one valid scrape: the supervisor's
// own families first, then the engine's unchanged, minus any family whose name
// the supervisor already uses (a duplicate `# HELP`/`# TYPE` would make the
// whole scrape invalid for Prometheus).

/** Family names declared (`# HELP` or `# TYPE`) in an exposition. */
export function declaredFamilies(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# (?:HELP|TYPE) (\S+)/gm)) names.add(m[1]!);
  return names;
}

/** The family a sample line belongs to, given the declared families (histogram/summary suffixes stripped). */
function familyOf(sampleName: string, families: Set<string>): string {
  if (families.has(sampleName)) return sampleName;
  for (const suffix of ['_bucket', '_sum', '_count', '_total', '_created', '_info']) {
    if (sampleName.endsWith(suffix)) {
      const base = sampleName.slice(0, -suffix.length);
      if (families.has(base)) return base;
    }
  }
  return sampleName;
}

/**
 * Append `extra` to `primary`, dropping the families (and their samples) of
 * `extra` that `primary` also declares. Returns the merged text and the names dropped.
 */
export function mergeExpositions(primary: string, extra: string): { text: string; dropped: string[] } {
  const taken = declaredFamilies(primary);
  const extraFamilies = declaredFamilies(extra);
  const clashes = [...extraFamilies].filter((f) => taken.has(f));
  let body = extra;
  if (clashes.length > 0) {
    const drop = new Set(clashes);
    body = extra
      .split('\n')
      .filter((line) => {
        if (line === '') return true;
        const meta = /^# (?:HELP|TYPE) (\S+)/.exec(line);
        if (meta) return !drop.has(meta[1]!);
        if (line.startsWith('#')) return true;
        const name = /^[^\s{]+/.exec(line)?.[0] ?? '';
        return !drop.has(familyOf(name, extraFamilies));
      })
      .join('\n');
  }
  const head = primary.endsWith('\n') || primary === '' ? primary : `${primary}\n`;
  const tail = body === '' || body.endsWith('\n') ? body : `${body}\n`;
  return { text: head + tail, dropped: clashes };
}
