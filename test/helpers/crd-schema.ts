// Validation of custom resources against a CRD's published OpenAPI v3 schema,
// the way the API server and `kubectl apply` treat them:
// - every constraint of the structural schema (type, format, enum, required,
//   minimum/maximum, pattern, lengths, anyOf for int-or-string) is checked;
// - unknown fields are errors, as with kubectl's default `--validate=strict`
//   (the API server would otherwise prune them silently): every object schema
//   with `properties` is closed, unless it says x-kubernetes-preserve-unknown-fields;
// - `x-kubernetes-list-type: map` lists may not repeat a key tuple
//   (`x-kubernetes-list-map-keys`), and `set` lists may not repeat an item,
//   as the API server enforces.
// CEL rules (x-kubernetes-validations) are not evaluated: a schema that has any
// is refused, so that a new CRD release cannot silently skip them.
import { Validator, type ValidationError } from 'jsonschema';

type Schema = Record<string, unknown>;

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };

function isObject(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A copy of `schema` with every object schema that lists properties closed to unknown fields. */
export function closeObjects(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closeObjects);
  if (!isObject(schema)) return schema;
  if ('x-kubernetes-validations' in schema) {
    throw new Error('the schema has CEL rules (x-kubernetes-validations), which this validator does not evaluate');
  }
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema)) {
    // Field names under `properties` are not schema keywords: copy the map, close its values.
    out[k] = k === 'properties' && isObject(v) ? Object.fromEntries(Object.entries(v).map(([f, s]) => [f, closeObjects(s)])) : closeObjects(v);
  }
  if (isObject(out.properties) && out.additionalProperties === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  return out;
}

/**
 * `x-kubernetes-list-type`: a `map` list may not repeat a tuple of its
 * `x-kubernetes-list-map-keys`, a `set` list may not repeat an item.
 */
function listType(instance: unknown, schema: Schema): string | undefined {
  const type = schema['x-kubernetes-list-type'];
  if (!Array.isArray(instance) || (type !== 'map' && type !== 'set')) return undefined;
  const keys = (schema['x-kubernetes-list-map-keys'] as string[] | undefined) ?? [];
  const seen = new Set<string>();
  for (const item of instance) {
    const id = JSON.stringify(type === 'map' ? keys.map((k) => (isObject(item) ? (item[k] ?? null) : null)) : item);
    if (seen.has(id)) return type === 'map' ? `has a duplicate entry for key ${keys.join(', ')} = ${id}` : `has a duplicate item ${id}`;
    seen.add(id);
  }
  return undefined;
}

export interface SchemaError {
  /** JSON pointer into the object, e.g. /spec/leaderWorkerTemplate/size. */
  path: string;
  message: string;
}

function describe(e: ValidationError): string {
  switch (e.name) {
    case 'additionalProperties':
      return `unknown field "${String(e.argument)}"`;
    case 'required':
      return `missing required field "${String(e.argument)}"`;
    case 'type':
      return `must be of type ${([] as unknown[]).concat(e.argument).join(' or ')}`;
    case 'enum':
      return `must be one of ${([] as unknown[]).concat(e.argument).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'format':
      return `must be a valid ${String(e.argument)}`;
    default:
      return e.message; // also the x-kubernetes-list-type check's own message
  }
}

/**
 * A validator for one CRD version's openAPIV3Schema (jsonschema, which
 * interprets the schema: Ajv's code generation takes tens of seconds for a CRD
 * that embeds whole pod templates). The returned function gives the errors for
 * an object ([] when valid), each with the field's path.
 */
export function crdValidator(openAPIV3Schema: Schema): (obj: unknown) => SchemaError[] {
  const schema = closeObjects(openAPIV3Schema) as Schema;
  const v = new Validator();
  v.customFormats.int32 = (n: unknown) => typeof n !== 'number' || (Number.isInteger(n) && n >= INT32.min && n <= INT32.max);
  v.customFormats.int64 = (n: unknown) => typeof n !== 'number' || Number.isInteger(n);
  v.attributes['x-kubernetes-list-type'] = (instance, s) => listType(instance, s as Schema) as string;
  return (obj) =>
    v.validate(obj, schema, { nestedErrors: false }).errors.map((e) => ({
      path: `/${e.path.join('/')}`,
      message: describe(e),
    }));
}
