// What the supervisor's own traffic to the engine depends on -- where it
// listens, the API key it enforces, the names it serves -- read from the FINAL
// engine command line and environment (profile engine_args and
// NIM_PASSTHROUGH_ARGS included), the way vLLM's argparse reads them:
// `--flag v` and `--flag=v`, `--flag_name` as `--flag-name`, the last
// occurrence wins, and --api-key / --served-model-name take one or more values
// (`nargs='+'`). VLLM_API_KEY applies when no --api-key is given
// (vllm/entrypoints/openai/cli_args.py and envs.py at v0.11.0; see
// /work/shared/reference/research-vllm.md §5–6). Pure.
import { ConfigError } from '../errors.js';
import type { EngineCommand } from '../selection/types.js';

export interface EngineEndpoint {
  host: string;
  port: number;
  /** Keys the engine accepts (vLLM checks `Authorization: Bearer` on /v1*); empty = none. */
  apiKeys: string[];
  /** Every name the engine serves; `/v1/models` lists each. */
  servedModelNames: string[];
  /** vLLM's VLLM_HTTP_TIMEOUT_KEEP_ALIVE in ms: uvicorn closes idle connections after it. */
  keepAliveMs: number;
}

/** uvicorn's idle-connection timeout when VLLM_HTTP_TIMEOUT_KEEP_ALIVE is unset (vllm/envs.py). */
export const DEFAULT_ENGINE_KEEP_ALIVE_MS = 5000;

const MULTI = new Set(['--api-key', '--served-model-name']);
const SINGLE = new Set(['--host', '--port', '--uds']);

function isOption(t: string): boolean {
  // argparse: "-5" is a value when it looks like a negative number.
  return t.startsWith('-') && !/^-\d/.test(t) && t !== '-';
}

/** The last value(s) of each flag we care about, parsed like argparse. */
function lastValues(args: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const tok = args[i]!;
    if (tok === '--') break;
    if (!tok.startsWith('--')) continue;
    const eq = tok.indexOf('=');
    const name = '--' + (eq >= 0 ? tok.slice(2, eq) : tok.slice(2)).replace(/_/g, '-');
    if (!MULTI.has(name) && !SINGLE.has(name)) continue;
    const values: string[] = [];
    if (eq >= 0) values.push(tok.slice(eq + 1));
    else if (MULTI.has(name)) while (i + 1 < args.length && !isOption(args[i + 1]!)) values.push(args[++i]!);
    else if (i + 1 < args.length && !isOption(args[i + 1]!)) values.push(args[++i]!);
    if (values.length > 0) out.set(name, values);
  }
  return out;
}

/**
 * Read the engine's endpoint from its final command and environment, and
 * check it still listens where the supervisor put it. Throws a ConfigError
 * (exit 2) when the engine's arguments (NIM_PASSTHROUGH_ARGS or the profile's
 * engine_args) move it to another host or port, or onto a Unix socket.
 *
 * @param command the command as built (args include the supervisor's --host/--port first)
 * @param baseEnv the environment the engine inherits (command.env goes on top)
 * @param expected the private host and port the supervisor chose
 */
export function engineEndpoint(command: EngineCommand, baseEnv: NodeJS.ProcessEnv, expected: { host: string; port: number }): EngineEndpoint {
  const flags = lastValues(command.args);
  const env = { ...baseEnv, ...command.env };
  if (flags.has('--uds')) {
    throw new ConfigError('NIM_PASSTHROUGH_ARGS (or the profile\'s engine_args) sets --uds: the engine must listen on the supervisor\'s private loopback port', {
      hint: 'remove --uds; the supervisor chooses the engine\'s host and port itself and serves clients on NIM_SERVER_HOST:NIM_SERVER_PORT',
    });
  }
  const host = flags.get('--host')?.[0] ?? expected.host;
  const portText = flags.get('--port')?.[0] ?? String(expected.port);
  if (host !== expected.host || portText !== String(expected.port)) {
    const moved = host !== expected.host ? `--host ${host}` : `--port ${portText}`;
    throw new ConfigError(`NIM_PASSTHROUGH_ARGS (or the profile's engine_args) sets ${moved}: the engine must listen on the supervisor's private address ${expected.host}:${expected.port}`, {
      hint: 'remove --host/--port from NIM_PASSTHROUGH_ARGS; set NIM_SERVER_HOST / NIM_SERVER_PORT for the address clients use',
    });
  }
  const fromFlag = flags.get('--api-key');
  const envKey = env.VLLM_API_KEY;
  const apiKeys = fromFlag ?? (envKey !== undefined && envKey !== '' ? [envKey] : []);
  const servedModelNames = flags.get('--served-model-name') ?? [];
  const rawKeepAlive = Number(env.VLLM_HTTP_TIMEOUT_KEEP_ALIVE);
  const keepAliveMs =
    env.VLLM_HTTP_TIMEOUT_KEEP_ALIVE !== undefined && env.VLLM_HTTP_TIMEOUT_KEEP_ALIVE.trim() !== '' && Number.isFinite(rawKeepAlive) && rawKeepAlive > 0
      ? rawKeepAlive * 1000
      : DEFAULT_ENGINE_KEEP_ALIVE_MS;
  return { host, port: expected.port, apiKeys, servedModelNames, keepAliveMs };
}
