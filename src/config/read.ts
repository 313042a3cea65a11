// Parse every variable of the table from an environment: one ConfigError that
// names the variable, its value and what it accepts for the first bad one;
// one warning for each older (NIM 1.x) name read in place of its new one.
import { ConfigError } from '../errors.js';
import { TABLE, VARIABLES, type Values, type Variable, type VariableName } from './variables.js';

export interface ReadResult {
  values: Values;
  /** The variables the environment set (under their own or an older name). */
  set: Set<VariableName>;
  /** Which name each set variable was read from (an older name differs from the variable's). */
  from: Map<VariableName, string>;
  warnings: string[];
}

function isSet(raw: string | undefined, v: Variable): raw is string {
  return raw !== undefined && (raw !== '' || v.emptyIsValue === true);
}

/** Parse one variable's text; throws a ConfigError naming it (without the value if secret). */
export function parseVariable(v: Variable, name: string, raw: string): unknown {
  const value = v.kind.parse(raw);
  if (value === undefined) {
    const shown = v.secret ? '' : `=${JSON.stringify(raw)}`;
    const alias = name === v.name ? '' : ` (read as ${v.name})`;
    throw new ConfigError(`${name}${shown}${alias} is invalid: expected ${v.kind.accepts}`);
  }
  return value;
}

export function readVariables(env: NodeJS.ProcessEnv): ReadResult {
  const values: Record<string, unknown> = {};
  const set = new Set<VariableName>();
  const from = new Map<VariableName, string>();
  const warnings: string[] = [];
  for (const v of VARIABLES) {
    let name: string = v.name;
    let raw = env[v.name];
    const olds = (v.renamedFrom ?? []).filter((old) => isSet(env[old], v));
    for (const old of olds) {
      if (isSet(raw, v)) {
        warnings.push(`${old} is the NIM 1.x name of ${v.name}; ${name} is set too, so ${old} is ignored`);
      } else {
        name = old;
        raw = env[old];
        const maps = v.engine ? ` (${v.engine})` : '';
        warnings.push(`${old} is the NIM 1.x name of ${v.name}${maps}: read as ${v.name}; NIM 2.x reads only ${v.name}`);
      }
    }
    if (isSet(raw, v)) {
      values[v.name] = parseVariable(v, name, raw);
      set.add(v.name);
      from.set(v.name, name);
    } else {
      values[v.name] = v.default;
    }
  }
  return { values: values as Values, set, from, warnings };
}

/** The table's row for a name (undefined for names it does not know). */
export function variable(name: string): Variable | undefined {
  return Object.hasOwn(TABLE, name) ? VARIABLES.find((v) => v.name === name) : undefined;
}
