// Error bodies exactly as vLLM (>= 0.10.1) writes them:
// {"error":{"message","type","param","code"}}, plus FastAPI's {"detail":...}
// for routing errors and the auth middleware's {"error":"Unauthorized"}.
import { PyTuple, pyRepr } from './pyrepr.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }

  body(): string {
    return errorBody(this.status, this.type, this.message, this.param);
  }
}

export function errorBody(status: number, type: string, message: string, param: string | null = null): string {
  return JSON.stringify({ error: { message, type, param, code: status } });
}

/** vLLM's create_error_response(): 400 BadRequestError. */
export function badRequest(message: string, param: string | null = null): ApiError {
  return new ApiError(400, 'BadRequestError', message, param);
}

export function modelNotFound(name: string): ApiError {
  return new ApiError(404, 'NotFoundError', `The model \`${name}\` does not exist.`, 'model');
}

/** One pydantic-style validation error, e.g. {type:'missing', loc:['body','messages'], msg:'Field required', input:{...}}. */
export interface PydanticError {
  type: string;
  loc: Array<string | number>;
  msg: string;
  input: unknown;
  ctx?: Record<string, unknown>;
}

/**
 * FastAPI RequestValidationError as vLLM's handler reports it: 400 with type
 * "Bad Request" and `f"{exc} {exc.errors()}"` as the message.
 */
export function validationError(errors: Array<PydanticError | string>): ApiError {
  const asPy = errors.map((e) =>
    typeof e === 'string'
      ? e
      : { type: e.type, loc: new PyTuple(e.loc), msg: e.msg, input: e.input, ...(e.ctx ? { ctx: e.ctx } : {}) },
  );
  const n = errors.length;
  let str = `${n} validation error${n === 1 ? '' : 's'}:\n`;
  for (const e of asPy) str += `  ${typeof e === 'string' ? e : pyRepr(e)}\n`;
  return new ApiError(400, 'Bad Request', `${str} ${pyRepr(asPy)}`);
}

export const UNSUPPORTED_MEDIA_TYPE = "Unsupported Media Type: Only 'application/json' is allowed";

// Static bodies, built once.
export const BODY_UNAUTHORIZED = '{"error":"Unauthorized"}';
export const BODY_NOT_FOUND = '{"detail":"Not Found"}';
export const BODY_METHOD_NOT_ALLOWED = '{"detail":"Method Not Allowed"}';
/**
 * 0.31: EngineDeadError is a VLLMServerError, so the handler answers 500
 * InternalServerError with its fixed message (v1/engine/exceptions.py@M:12-18,
 * serve/exception_handling/error_response.py@M:58-62).
 */
export const ENGINE_DEAD_BODY = errorBody(500, 'InternalServerError', 'EngineCore encountered an issue. See stack trace (above) for the root cause.');
