// One vLLM log line split into NIM's JSONL fields. vLLM (vllm/logger.py, v0.11.0
// and v0.31.0) formats `%(levelname)s %(asctime)s [%(filename)s:%(lineno)d] %(message)s`
// with asctime as `%m-%d %H:%M:%S`, behind one or more process prefixes such as
// `(APIServer pid=42) ` or `(EngineCore_DP0 pid=7) (Worker pid=9) `.
const VLLM_LINE_RE =
  /^((?:\([^)]*\)\s+)*)(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\s+\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+\[([^\]:]+):(\d+)\]\s?(.*)$/;

export interface VllmLineFields {
  file_name: string;
  line_number: number;
  /** The process prefix(es) without parentheses, e.g. "APIServer pid=42". */
  process?: string;
  /** The message without vLLM's prefix. */
  message: string;
}

/** The fields of a vLLM-formatted line; undefined for other lines (uvicorn's, tracebacks), which keep their whole text. */
export function vllmLineFields(line: string): VllmLineFields | undefined {
  const m = VLLM_LINE_RE.exec(line);
  if (!m) return undefined;
  const process = [...m[1]!.matchAll(/\(([^)]*)\)/g)].map((p) => p[1]).join(' ');
  return { file_name: m[2]!, line_number: Number(m[3]), ...(process ? { process } : {}), message: m[4]! };
}
