// Small hand-written request validation with pydantic-style error records.
// (zod per request would cost more than the rest of a zero-latency request.)
import { validationError, type PydanticError } from './errors.js';

export type Json = Record<string, unknown>;

export class Checker {
  readonly errors: PydanticError[] = [];
  constructor(readonly body: Json) {}

  private push(type: string, loc: Array<string | number>, msg: string, input: unknown): void {
    this.errors.push({ type, loc: ['body', ...loc], msg, input });
  }

  required(key: string): void {
    if (this.body[key] === undefined) this.push('missing', [key], 'Field required', this.body);
  }

  str(key: string, v = this.body[key], loc: Array<string | number> = [key]): void {
    if (v !== undefined && v !== null && typeof v !== 'string') this.push('string_type', loc, 'Input should be a valid string', v);
  }

  bool(key: string): void {
    const v = this.body[key];
    if (v !== undefined && v !== null && typeof v !== 'boolean') this.push('bool_type', [key], 'Input should be a valid boolean', v);
  }

  int(key: string, min?: number): void {
    const v = this.body[key];
    if (v === undefined || v === null) return;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.push(typeof v === 'string' ? 'int_parsing' : 'int_type', [key], 'Input should be a valid integer', v);
    } else if (min !== undefined && v < min) {
      this.errors.push({
        type: 'greater_than_equal',
        loc: ['body', key],
        msg: `Input should be greater than or equal to ${min}`,
        input: v,
        ctx: { ge: min },
      });
    }
  }

  num(key: string): void {
    const v = this.body[key];
    if (v !== undefined && v !== null && typeof v !== 'number') this.push('float_type', [key], 'Input should be a valid number', v);
  }

  list(key: string): boolean {
    const v = this.body[key];
    if (v === undefined || v === null) return false;
    if (!Array.isArray(v)) {
      this.push('list_type', [key], 'Input should be a valid list', v);
      return false;
    }
    return true;
  }

  obj(key: string): void {
    const v = this.body[key];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v))) {
      this.push('dict_type', [key], 'Input should be a valid dictionary', v);
    }
  }

  /** A model_validator failure (pydantic prefixes "Value error, "). */
  valueError(message: string): void {
    this.errors.push({ type: 'value_error', loc: ['body'], msg: `Value error, ${message}`, input: this.body, ctx: { error: {} } });
  }

  custom(type: string, loc: Array<string | number>, msg: string, input: unknown): void {
    this.push(type, loc, msg, input);
  }

  done(): void {
    if (this.errors.length) throw validationError(this.errors);
  }
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
