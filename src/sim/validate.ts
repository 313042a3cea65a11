// Small hand-written request validation with pydantic-style error records.
// (zod per request would cost more than the rest of a zero-latency request.)
import { badRequest, validationError, type PydanticError } from './errors.js';

/**
 * How vLLM's own request-model validators fail. 0.11: a ValueError, which
 * pydantic reports as a 400 "Bad Request" validation list. 0.31: a
 * VLLMValidationError, which pydantic does not catch, answered as 400
 * BadRequestError `"<message> (parameter=p)"` (vllm/exceptions.py@M:27-54,
 * serve/exception_handling/error_response.py@M:38-41).
 */
export type ValidatorStyle = 'value-error' | 'vllm-validation-error';

export type Json = Record<string, unknown>;

export class Checker {
  readonly errors: PydanticError[] = [];
  constructor(
    readonly body: Json,
    readonly style: ValidatorStyle = 'value-error',
  ) {}

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

  /**
   * A failure of one of vLLM's model validators: a pydantic value error in
   * 0.11; in 0.31 a VLLMValidationError thrown at once (`message031` when
   * the wording changed too).
   */
  modelError(message: string, parameter: string | null = null, message031: string = message): void {
    if (this.style === 'value-error') {
      this.valueError(message);
      return;
    }
    throw badRequest(parameter === null ? message031 : `${message031} (parameter=${parameter})`, parameter);
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
