// Tracing settings: NIM's switch (`NIM_ENABLE_OTEL`, `NIM_OTEL_SERVICE_NAME`, as
// NIM 1.x documents them) and the standard OpenTelemetry variables (OTEL_* per the
// OpenTelemetry specification's "Environment Variable Specification" and "OTLP
// Exporter Configuration"), all declared in src/config/variables.ts. The OTEL_*
// ones are checked here, and only while tracing is on: other software in the pod
// may share them. Pure: the same values always give the same settings, or one ConfigError.
import { ConfigError } from '../errors.js';

/** The table's values this module reads (src/config/variables.ts). */
export interface TracingValues {
  NIM_ENABLE_OTEL: boolean;
  NIM_OTEL_ENGINE_TRACES: boolean;
  NIM_OTEL_SERVICE_NAME?: string | undefined;
  OTEL_SERVICE_NAME?: string | undefined;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_PROTOCOL?: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?: string | undefined;
  OTEL_TRACES_EXPORTER?: string | undefined;
  OTEL_TRACES_SAMPLER?: string | undefined;
  OTEL_TRACES_SAMPLER_ARG?: string | undefined;
}

export type TracesExporter = 'otlp' | 'console';

export interface TracingSettings {
  /** NIM_ENABLE_OTEL, and OTEL_TRACES_EXPORTER is not `none`. */
  enabled: boolean;
  /** NIM_OTEL_SERVICE_NAME, else OTEL_SERVICE_NAME, else `nim-supervisor`. */
  serviceName: string;
  exporter: TracesExporter;
  /** Where spans go over OTLP/HTTP: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`. */
  tracesEndpoint: string;
  /** NIM_OTEL_ENGINE_TRACES (opt-in: vLLM needs its optional OpenTelemetry packages): also start vLLM with `--otlp-traces-endpoint` so its spans join the trace. */
  engineTraces: boolean;
}

export const TRACING_OFF: TracingSettings = {
  enabled: false,
  serviceName: 'nim-supervisor',
  exporter: 'otlp',
  tracesEndpoint: 'http://localhost:4318/v1/traces',
  engineTraces: false,
};

function httpUrl(name: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected an http:// or https:// URL, e.g. http://otel-collector:4318`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected an http:// or https:// URL, e.g. http://otel-collector:4318`);
  }
  return url;
}

/** The OTLP/HTTP traces URL (the spec: a signal-specific endpoint is used as is; the base one gets `v1/traces` appended). */
function tracesEndpoint(env: TracingValues): string {
  const specific = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (specific !== undefined && specific.trim() !== '') return httpUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', specific).href;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (base === undefined || base.trim() === '') return TRACING_OFF.tracesEndpoint;
  const url = httpUrl('OTEL_EXPORTER_OTLP_ENDPOINT', base);
  return `${url.href.replace(/\/+$/, '')}/v1/traces`;
}

const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'];

/** Checks what the SDK would otherwise only complain about on its diagnostic channel and then ignore. */
function checkSampler(env: TracingValues): void {
  const sampler = env.OTEL_TRACES_SAMPLER?.trim();
  if (sampler !== undefined && sampler !== '' && !SAMPLERS.includes(sampler)) {
    throw new ConfigError(`OTEL_TRACES_SAMPLER=${JSON.stringify(sampler)} is invalid: expected one of ${SAMPLERS.join(', ')}`);
  }
  const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  if (arg !== undefined && arg !== '' && sampler?.endsWith('traceidratio')) {
    const n = Number(arg);
    if (!Number.isFinite(n) || n < 0 || n > 1) {
      throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(arg)} is invalid: expected a sampling ratio from 0 to 1`);
    }
  }
}

function checkProtocol(env: TracingValues): void {
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'] as const) {
    const v = env[name]?.trim();
    if (v === undefined || v === '' || v === 'http/json' || v === 'http/protobuf') continue;
    throw new ConfigError(`${name}=${JSON.stringify(v)} is not supported: the supervisor exports spans over OTLP/HTTP (http/json or http/protobuf)`, {
      hint: "point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's OTLP/HTTP port (4318 by default), not its gRPC port",
    });
  }
}

/**
 * The tracing settings from the table's values.
 * @throws ConfigError naming the variable when an OTEL_* value is not accepted (tracing on only).
 */
export function readTracingSettings(env: TracingValues): TracingSettings {
  const on = env.NIM_ENABLE_OTEL;
  const serviceName = env.NIM_OTEL_SERVICE_NAME?.trim() || env.OTEL_SERVICE_NAME?.trim() || TRACING_OFF.serviceName;
  if (!on) return { ...TRACING_OFF, serviceName };
  const rawExporter = (env.OTEL_TRACES_EXPORTER ?? 'otlp').trim().toLowerCase() || 'otlp';
  if (!['otlp', 'console', 'none'].includes(rawExporter)) {
    throw new ConfigError(`OTEL_TRACES_EXPORTER=${JSON.stringify(env.OTEL_TRACES_EXPORTER)} is invalid: expected otlp, console or none`);
  }
  const engineTraces = env.NIM_OTEL_ENGINE_TRACES;
  checkSampler(env);
  checkProtocol(env);
  return {
    enabled: rawExporter !== 'none',
    serviceName,
    exporter: rawExporter === 'console' ? 'console' : 'otlp',
    tracesEndpoint: tracesEndpoint(env),
    engineTraces: engineTraces && rawExporter === 'otlp',
  };
}

/**
 * What vLLM needs to export its own spans to the same collector: `--otlp-traces-endpoint`
 * (vLLM's flag, vllm/engine/arg_utils.py) and, since vLLM's exporter defaults to gRPC
 * (vllm/tracing.py reads OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, default "grpc"), the
 * http/protobuf protocol that matches the OTLP/HTTP endpoint. Nothing when tracing is
 * off, engine traces are off, or the operator already passes the flag.
 */
export function engineTracing(settings: TracingSettings | undefined, laterArgs: readonly string[]): { args: string[]; env: Record<string, string> } {
  if (!settings?.enabled || !settings.engineTraces) return { args: [], env: {} };
  if (laterArgs.some((a) => a === '--otlp-traces-endpoint' || a.startsWith('--otlp-traces-endpoint='))) return { args: [], env: {} };
  return {
    args: ['--otlp-traces-endpoint', settings.tracesEndpoint],
    env: { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf', OTEL_SERVICE_NAME: `${settings.serviceName}-engine` },
  };
}
