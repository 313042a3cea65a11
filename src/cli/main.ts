#!/usr/bin/env node
// `nim-supervisor <command>`: the container entrypoint. `serve` is the default
// command. Every failure ends here as one clear line and a documented exit code.
import { ConfigError, describeError, exitCodeOf } from '../errors.js';
import { supervisorVersion } from '../config/paths.js';
import { PROXY_WORKER_ENV } from '../workers/marker.js';

interface Command {
  summary: string;
  run: (args: string[]) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'detect GPUs, select a profile, start vLLM and serve the public API (default); vLLM flags may follow',
    run: async (args) => (await import('./serve.js')).serveCommand(args),
  },
  'nim-serve': {
    summary: "the same as serve (NIM 2.x's name for it)",
    run: async (args) => (await import('./serve.js')).serveCommand(args),
  },
  'list-model-profiles': {
    summary: 'print the system info and the manifest\'s profiles, compatible and not (--json for JSON)',
    run: async (args) => (await import('./list-model-profiles.js')).listModelProfilesCommand(args),
  },
  'download-to-cache': {
    summary: 'download the model files into NIM_CACHE_PATH without serving (--profile ID|NAME, --all)',
    run: async (args) => (await import('./download-to-cache.js')).downloadToCacheCommand(args),
  },
  'select-profile': {
    summary: 'print the profile that serve would run and the exact engine command and env (--json for JSON)',
    run: async (args) => (await import('./select-profile.js')).selectProfileCommand(args),
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(22)}${c.summary}`);
  return [
    'Usage: nim-supervisor [command] [options]',
    '       nim-supervisor [serve] [--vllm-flag value …]   (vLLM flags win over every other setting)',
    '',
    'Commands:',
    ...lines,
    `  ${'help [env [NAME…]]'.padEnd(22)}this help, or the environment variables (one in full with NAME)`,
    '',
    'Options:',
    '  -h, --help            show this help',
    '  -v, --version         print the version',
    '',
    'Configuration comes from environment variables: `nim-supervisor help env` lists them',
    '(`help env NAME` shows one in full); docs/configuration.md has the same table.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '-h' || first === '--help' || first === 'help') {
    if (first === 'help' && rest[0] === 'env') {
      const { renderHelpEnv } = await import('../config/docs.js');
      process.stdout.write(renderHelpEnv(rest.slice(1), process.env));
      return 0;
    }
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (first === '-v' || first === '--version') {
    process.stdout.write(`${supervisorVersion()}\n`);
    return 0;
  }
  // Like NIM's entrypoint, no command (or only options) means serve.
  const name = first === undefined || first.startsWith('-') ? 'serve' : first;
  const args = first === undefined || first.startsWith('-') ? argv : rest;
  const command = COMMANDS[name];
  if (!command) {
    throw new ConfigError(`unknown command "${name}"`, { hint: `expected one of: ${Object.keys(COMMANDS).join(', ')}` });
  }
  return await command.run(args);
}

const debug = /^debug$/i.test(process.env.NIM_LOG_LEVEL ?? '');
// At debug, stack traces point into src/*.ts through the bundle's source maps (dist/src/chunks/*.map).
if (debug) process.setSourceMapsEnabled(true);
// A proxy worker (NIM_PROXY_WORKERS > 1) is this same script (process.argv[1]) forked by
// node:cluster with PROXY_WORKER_ENV set: checked here without loading node:cluster.
const run =
  process.env[PROXY_WORKER_ENV] === '1' && process.send !== undefined
    ? import('../workers/proxy-worker.js').then(async (w) => {
        await w.runProxyWorker();
        return new Promise<number>(() => undefined); // it ends with process.exit
      })
    : main(process.argv.slice(2));
run.then(
  // Exit explicitly: a finished command must not linger on a stray handle.
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`nim-supervisor: error: ${describeError(err)}\n`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exit(exitCodeOf(err));
  },
);
