// Option parsing shared by the report commands (list-model-profiles,
// select-profile): `--json` and `--help`; anything else is a ConfigError.
import { ConfigError } from '../errors.js';

export interface ReportOptions {
  json: boolean;
  help: boolean;
}

export function parseReportOptions(command: string, args: readonly string[]): ReportOptions {
  const opts: ReportOptions = { json: false, help: false };
  for (const a of args) {
    if (a === '--json') opts.json = true;
    else if (a === '-h' || a === '--help') opts.help = true;
    else {
      throw new ConfigError(`unknown option ${JSON.stringify(a)} for ${command}`, {
        hint: `usage: nim-supervisor ${command} [--json]`,
      });
    }
  }
  return opts;
}
