#!/usr/bin/env node
// CLI edge of the vLLM simulator: `vllm serve MODEL [flags]`. Parses argv and
// the knobs, prints vLLM's start-up story while "loading" (the port stays
// closed meanwhile, as with vLLM), then serves, and handles signals, crashes
// and failures the way the knobs ask. All process-wide state lives here.
import { spawn as spawnChild } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgv, type ServeArgs } from './args.js';
import { buildConfig, type SimConfig } from './config.js';
import { KnobError, readKnobs, type Knobs } from './knobs.js';
import { createLogger, type SimLogger, type Sink } from './log.js';
import { pyRepr } from './pyrepr.js';
import { RELEASES, type Release } from './release.js';
import { createSimServer, type SimServer } from './server.js';
import { resolveModelFiles } from './model-files.js';

/** stdout/stderr batched per event-loop turn: one write for many access-log lines. */
function batchedSink(): Sink & { flush(): void } {
  let out = '';
  let err = '';
  let queued = false;
  const flush = () => {
    queued = false;
    if (out) {
      process.stdout.write(out);
      out = '';
    }
    if (err) {
      process.stderr.write(err);
      err = '';
    }
  };
  const queue = () => {
    if (!queued) {
      queued = true;
      setImmediate(flush);
    }
  };
  return {
    stdout(t) {
      out += t;
      queue();
    },
    stderr(t) {
      err += t;
      queue();
    },
    flush,
  };
}

function maskedArgs(nonDefault: Record<string, unknown>): Record<string, unknown> {
  const out = { ...nonDefault };
  if (Array.isArray(out.api_key)) out.api_key = out.api_key.map(() => '***');
  return out;
}

function portFree(host: string, port: number): Promise<Error | null> {
  return new Promise((resolve) => {
    const s = createNetServer();
    s.once('error', (e) => resolve(e));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(null)));
  });
}

function gib(n: number): string {
  return n.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
}

/** The engine-core start-up lines, spread over the start-up delay. */
async function loadEngine(config: SimConfig, args: ServeArgs, knobs: Knobs, log: SimLogger, core: SimLogger): Promise<void> {
  const total = knobs.VLLM_SIM_STARTUP_MS as number;
  const slice = total / 4;
  log.log('INFO', 'model.py:547', `Resolved architecture: ${config.architecture ?? 'LlamaForCausalLM'}`);
  log.log('INFO', 'model.py:1510', `Using max model len ${config.maxModelLen}`);
  log.log('INFO', 'scheduler.py:205', 'Chunked prefill is enabled with max_num_batched_tokens=2048.');
  core.log('INFO', 'core.py:644', 'Waiting for init message from front-end.');
  core.log(
    'INFO',
    'core.py:77',
    `Initializing a V1 LLM engine (v${config.version}) with config: model=${pyRepr(config.model)}, speculative_config=None, ` +
      `tokenizer=${pyRepr(config.model)}, skip_tokenizer_init=False, tokenizer_mode=auto, revision=None, ` +
      `trust_remote_code=${args.trust_remote_code ? 'True' : 'False'}, dtype=torch.bfloat16, max_seq_len=${config.maxModelLen}, ` +
      `download_dir=None, load_format=auto, tensor_parallel_size=${args.tensor_parallel_size}, ` +
      `pipeline_parallel_size=${args.pipeline_parallel_size}, data_parallel_size=${args.data_parallel_size}, ` +
      `disable_custom_all_reduce=False, quantization=${args.quantization ?? 'None'}, enforce_eager=${args.enforce_eager ? 'True' : 'False'}, ` +
      `kv_cache_dtype=${config.cacheDtype}, device_config=cuda, seed=${args.seed ?? 0}, served_model_name=${config.servedNames[0]}, ` +
      `enable_prefix_caching=${config.prefixCaching ? 'True' : 'False'}, chunked_prefill_enabled=True`,
  );
  core.log('INFO', 'parallel_state.py:1208', 'rank 0 in world size 1 is assigned as DP rank 0, PP rank 0, TP rank 0, EP rank 0');
  core.log('INFO', 'gpu_model_runner.py:2602', `Starting to load model ${config.model}...`);
  core.log('INFO', 'cuda.py:366', 'Using Flash Attention backend on V1 engine.');
  await sleep(slice);
  if (knobs.VLLM_SIM_FAIL_AT_STARTUP !== null) return;
  const weights = 2.2 + (config.model.length % 7) * 1.7;
  core.log('INFO', 'default_loader.py:267', `Loading weights took ${((total * 0.3) / 1000).toFixed(2)} seconds`);
  const loadSecs = ((total * 0.35) / 1000).toFixed(6);
  if (config.release.logWording === '0.11') core.log('INFO', 'gpu_model_runner.py:2653', `Model loading took ${gib(weights)} GiB and ${loadSecs} seconds`);
  else core.log('INFO', 'gpu_model_runner.py:5516', `Model loading took ${gib(weights)} GiB memory and ${loadSecs} seconds`);
  if (knobs.VLLM_SIM_NEVER_LISTEN) return;
  await sleep(slice);
  const kvGiB = (config.kvTokens * 128 * 1024) / 1024 ** 3 / 8;
  core.log('INFO', 'gpu_worker.py:298', `Available KV cache memory: ${kvGiB.toFixed(2)} GiB`);
  const kvSize = `GPU KV cache size: ${config.kvTokens.toLocaleString('en-US')} tokens`;
  const concurrency = `Maximum concurrency for ${config.maxModelLen.toLocaleString('en-US')} tokens per request: ${(config.kvTokens / config.maxModelLen).toFixed(2)}x`;
  if (config.release.logWording === '0.11') {
    core.log('INFO', 'kv_cache_utils.py:1087', kvSize);
    core.log('INFO', 'kv_cache_utils.py:1091', concurrency);
  } else core.log('INFO', 'kv_cache_utils.py:1875', `${kvSize}, ${concurrency}`); // one line (v1/core/kv_cache_utils.py@M:1875-1881)
  await sleep(slice);
  if (!args.enforce_eager) core.log('INFO', 'gpu_model_runner.py:3480', `Graph capturing finished in ${Math.max(1, Math.round(total / 4000))} secs, took 0.49 GiB`);
  core.log('INFO', 'core.py:210', `init engine (profile, create kv cache, warmup model) took ${((total * 0.6) / 1000).toFixed(2)} seconds`);
  await sleep(slice);
  log.log('INFO', 'loggers.py:147', `Engine 000: vllm cache_config_info with initialization after num_gpu_blocks is: ${Math.floor(config.kvTokens / config.blockSize)}`);
  if (config.release.logWording === '0.11') log.log('INFO', 'api_server.py:1634', "Supported_tasks: ['generate']");
  else log.log('INFO', 'api_server.py:544', "Supported tasks: ['generate']");
}

function startupFailure(log: SimLogger, core: SimLogger): void {
  core.log('ERROR', 'core.py:708', 'EngineCore failed to start.');
  core.raw(
    [
      'Traceback (most recent call last):',
      '  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py", line 699, in run_engine_core',
      '    engine_core = EngineCoreProc(*args, **kwargs)',
      '                  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^',
      '  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py", line 498, in __init__',
      '    super().__init__(vllm_config, executor_class, log_stats,',
      '  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py", line 92, in __init__',
      '    self._initialize_kv_caches(vllm_config)',
      '  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/worker/gpu_model_runner.py", line 2653, in load_model',
      '    self.model = model_loader.load_model(',
      'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.02 GiB is free. Including non-PyTorch memory, this process has 78.16 GiB memory in use. Of the allocated memory 77.12 GiB is allocated by PyTorch, and 402.61 MiB is reserved by PyTorch but unallocated.',
    ].join('\n'),
    'stderr',
  );
  log.raw(
    [
      'Traceback (most recent call last):',
      '  File "/usr/local/bin/vllm", line 10, in <module>',
      '    sys.exit(main())',
      '  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/utils.py", line 881, in wait_for_engine_startup',
      '    raise RuntimeError("Engine core initialization failed. "',
      'RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}',
    ].join('\n'),
    'stderr',
  );
}

/**
 * The first line. 0.11: `vLLM API server version X` (api_server.py:1839).
 * 0.31: log_version_and_model (serve/utils/api_utils.py@M:311-333): a logo
 * with version and model, monochrome when not a TTY, or the plain
 * `vLLM server version X, serving model M` with VLLM_DISABLE_LOG_LOGO.
 */
function versionBanner(log: SimLogger, release: Release, model: string, noLogo: boolean): void {
  if (release.logWording === '0.11') {
    log.log('INFO', 'api_server.py:1839', `vLLM API server version ${release.version}`);
    return;
  }
  if (noLogo) {
    log.log('INFO', 'api_utils.py:333', `vLLM server version ${release.version}, serving model ${model}`);
    return;
  }
  const logo = [
    '',
    '       █     █     █▄   ▄█',
    ` ▄▄ ▄█ █     █     █ ▀▄▀ █  version ${release.version}`,
    `  █▄█▀ █     █     █     █  model   ${model}`,
    '   ▀▀  ▀▀▀▀▀ ▀▀▀▀▀ ▀     ▀',
    '',
  ].join('\n');
  log.log('INFO', 'api_utils.py:333', logo);
}

/** Resolve once nothing is running or waiting, or after `ms` (0: at once; in-flight work is cut). */
async function drain(sim: SimServer, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until && (sim.state.engine.numRunning > 0 || sim.state.engine.numWaiting > 0)) await sleep(20);
}

/**
 * 0.31's EngineArgs._resolve_device_ids (engine/arg_utils.py@M:1878-1916):
 * duplicates and mixed ids are ValueErrors; a non-integer id is looked up as
 * a GPU UUID through NVML, which finds none here (so `--device cuda`, taken
 * by argparse as `--device-ids cuda`, fails at start-up). Null when fine.
 */
function deviceIdsError(raw: string | null): string | null {
  if (raw === null) return null;
  const ids = raw.split(',').map((p) => p.trim()).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  const shown = pyRepr(ids);
  if (new Set(ids).size !== ids.length) return `ValueError: --device-ids must not contain duplicates: ${shown}`;
  const strings = ids.filter((i) => typeof i === 'string');
  if (strings.length === ids.length) return 'pynvml.NVMLError_NotFound: Not Found';
  if (strings.length > 0) return 'ValueError: --device-ids must not mix integer IDs and UUIDs';
  return null;
}

async function main(): Promise<void> {
  // The knobs come first: VLLM_SIM_VERSION decides which flags the parser has.
  let knobs: Knobs;
  try {
    knobs = readKnobs(process.env);
  } catch (e) {
    if (e instanceof KnobError) {
      process.stderr.write(`vllm-sim: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
  const release = RELEASES[knobs.VLLM_SIM_VERSION as keyof typeof RELEASES];
  const parsed = parseArgv(process.argv.slice(2), release);
  if (parsed.kind === 'exit') {
    if (parsed.stdout) process.stdout.write(parsed.stdout);
    if (parsed.stderr) process.stderr.write(parsed.stderr);
    process.exitCode = parsed.code;
    return;
  }
  // A supervisor that stops reading our pipes must not crash us with EPIPE.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  const sink = batchedSink();
  const log = createLogger(sink, { pid: process.pid });
  // vLLM V1 runs the engine in a child process (EngineCore_DP0) of the API server. With
  // VLLM_SIM_ENGINE_CORE_PROCESS=1 a stand-in child (`sleep`) runs in our process group and,
  // like a real EngineCore whose parent was SIGKILLed, stays behind unless its group is killed.
  const coreChild = knobs.VLLM_SIM_ENGINE_CORE_PROCESS ? spawnChild('sleep', ['2147483647'], { stdio: 'ignore' }) : undefined;
  if (coreChild) process.once('exit', () => coreChild.kill('SIGKILL'));
  const core = createLogger(sink, { pid: coreChild?.pid ?? process.pid + 1, processName: 'EngineCore_DP0' });
  const { args, nonDefault } = parsed;
  const config = buildConfig(args, knobs, release);
  const host = args.host ?? '0.0.0.0';
  const port = args.port;
  const exit = (code: number): never => {
    sink.flush();
    process.exit(code);
  };

  versionBanner(log, release, config.servedNames[0]!, Boolean(knobs.VLLM_DISABLE_LOG_LOGO));
  log.log('INFO', 'utils.py:233', `non-default args: ${pyRepr(maskedArgs(nonDefault))}`);
  if (args.enable_auto_tool_choice && !args.tool_call_parser) {
    log.raw('TypeError: Error: --enable-auto-tool-choice requires --tool-call-parser', 'stderr');
    exit(1);
  }

  if (config.loraError !== null) {
    // LoRAConfig validation happens while the engine config is built, before anything loads.
    log.raw(`ValueError: ${config.loraError}`, 'stderr');
    exit(1);
  }
  const badIds = deviceIdsError(config.deviceIds);
  if (badIds) {
    log.raw(['Traceback (most recent call last):', '  File "/usr/local/bin/vllm", line 10, in <module>', '    sys.exit(main())', badIds].join('\n'), 'stderr');
    exit(1);
  }

  // The model's files, as vLLM reads them: config.json (context length) from a directory or the offline hub cache.
  const files = resolveModelFiles(args.model);
  if (!files.ok) {
    if (files.stage === 'weights') core.log('ERROR', 'core.py:708', 'EngineCore failed to start.');
    log.raw(['Traceback (most recent call last):', '  File "/usr/local/bin/vllm", line 10, in <module>', '    sys.exit(main())', files.error].join('\n'), 'stderr');
    exit(1);
  } else {
    config.architecture = files.files.architecture;
    if (files.files.maxPositionEmbeddings !== undefined && args.max_model_len == null && knobs.VLLM_SIM_MAX_MODEL_LEN == null) {
      config.maxModelLen = files.files.maxPositionEmbeddings; // vLLM's default: the model's own context length
      config.kvTokens = Math.max(config.kvTokens, config.maxModelLen);
    }
  }

  // vLLM binds its socket before loading, so a busy port fails at once.
  const busy = await portFree(host, port);
  if (busy) {
    log.raw(`OSError: [Errno 98] Address already in use (${host}:${port}): ${busy.message}`, 'stderr');
    exit(1);
  }

  let phase: 'loading' | 'serving' | 'stopping' = 'loading';
  let sim: SimServer | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (sig === 'SIGTERM' && knobs.VLLM_SIM_HANG_ON_SIGTERM) return; // pretend to be stuck (e.g. in NCCL)
    if (phase === 'stopping') return;
    const wasServing = phase === 'serving';
    phase = 'stopping';
    if (!wasServing || !sim) return exit(0);
    const server = sim;
    const finish = (): never => {
      void server.close();
      log.raw('INFO:     Shutting down', 'stderr');
      log.raw('INFO:     Waiting for application shutdown.', 'stderr');
      log.raw('INFO:     Application shutdown complete.', 'stderr');
      return exit(0);
    };
    if (release.logWording === '0.11') {
      // As in vLLM 0.11, in-flight requests are cut rather than drained.
      log.log('INFO', 'launcher.py:101', 'Shutting down FastAPI HTTP server.');
      return finish();
    }
    // 0.31 (entrypoints/launcher.py@M:111-163): --shutdown-timeout 0 aborts
    // in-flight work; above 0 the engine drains it for at most that long.
    const timeout = (args.shutdown_timeout as number | undefined) ?? 0;
    log.log('INFO', 'launcher.py:114', '[shutdown] API server: shutdown triggered');
    log.log('INFO', 'launcher.py:131', `[shutdown] API server: stopping engine client mode=${timeout === 0 ? 'abort' : 'drain'} timeout=${timeout}s`);
    void drain(server, timeout * 1000).then(() => {
      log.log('INFO', 'launcher.py:139', '[shutdown] API server: engine client stopped');
      log.log('INFO', 'launcher.py:142', '[shutdown] API server: signalling HTTP server shutdown');
      log.log('INFO', 'launcher.py:163', '[shutdown] API server: shutting down FastAPI HTTP server');
      finish();
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onSignal);

  await loadEngine(config, args, knobs, log, core);
  if (knobs.VLLM_SIM_FAIL_AT_STARTUP !== null) {
    startupFailure(log, core);
    exit(knobs.VLLM_SIM_FAIL_AT_STARTUP as number);
  }
  if (knobs.VLLM_SIM_NEVER_LISTEN) {
    // Stuck loading forever; only a signal ends it.
    setInterval(() => {}, 1 << 30);
    return;
  }
  if (phase !== 'loading') return;

  const tracer = args.otlp_traces_endpoint ? (await import('./tracing.js')).createSimTracer(args.otlp_traces_endpoint as string) : undefined;
  sim = createSimServer({
    config,
    logger: log,
    tracer,
    healthFail: knobs.VLLM_SIM_HEALTH === 'fail',
    healthFile: knobs.VLLM_SIM_HEALTH_FILE as string | null,
    healthDelayMs: knobs.VLLM_SIM_HEALTH_DELAY_MS as number,
  });
  if (config.lora.runtimeUpdates) {
    log.log('WARNING', 'api_server.py:1683', 'LoRA dynamic loading & unloading is enabled in the API server. This should ONLY be used for local development!');
  }
  // init_static_loras: every --lora-modules adapter loads before the server listens; one failure ends the start-up.
  for (const m of config.loras) {
    try {
      sim.state.lora.load(m.name, m.path, m.baseModelName);
      log.log('INFO', 'serving_models.py:191', `Loaded new LoRA adapter: name '${m.name}', path '${m.path}'`);
    } catch (e) {
      if (e instanceof Error && /^Call to add_lora/.test(e.message)) {
        core.log('ERROR', 'core.py:720', 'Invocation of add_lora method failed');
      }
      log.raw(['Traceback (most recent call last):', '  File "/usr/local/lib/python3.12/dist-packages/vllm/entrypoints/openai/serving_models.py", line 92, in init_static_loras', '    raise ValueError(load_result.error.message)', `ValueError: ${(e as Error).message}`].join('\n'), 'stderr');
      exit(1);
    }
  }
  const shownHost = host.includes(':') ? `[${host}]` : host;
  if (release.logWording === '0.11') log.log('INFO', 'api_server.py:1880', `Starting vLLM API server 0 on http://${shownHost}:${port}`);
  else log.log('INFO', 'api_server.py:548', `Starting vLLM server on http://${shownHost}:${port}`);
  log.log('INFO', 'launcher.py:34', 'Available routes are:');
  for (const r of sim.routes) log.log('INFO', 'launcher.py:42', `Route: ${r.path}, Methods: ${r.methods.join(', ')}`);
  try {
    await sim.listen(host, port);
  } catch (e) {
    log.raw(`OSError: [Errno 98] ${(e as Error).message}`, 'stderr');
    exit(1);
  }
  log.raw(`INFO:     Started server process [${process.pid}]`, 'stderr');
  log.raw('INFO:     Waiting for application startup.', 'stderr');
  log.raw('INFO:     Application startup complete.', 'stderr');
  phase = 'serving';

  if (knobs.VLLM_SIM_CRASH_AFTER_MS !== null) {
    setTimeout(() => {
      if (release.logWording === '0.11') log.log('ERROR', 'core_client.py:564', 'Engine core proc EngineCore_DP0 died unexpectedly, shutting down client.');
      else log.log('WARNING', 'core_client.py:728', '[shutdown] MPClient: engine core exited unexpectedly; starting cleanup');
      sim?.markDead();
      exit(knobs.VLLM_SIM_EXIT_CODE as number);
    }, knobs.VLLM_SIM_CRASH_AFTER_MS as number);
  }
  if (config.logStats) {
    const interval = knobs.VLLM_LOG_STATS_INTERVAL as number;
    setInterval(() => {
      const line = sim?.state.engine.statsLine(interval);
      if (line) log.log('INFO', 'loggers.py:123', line);
    }, interval * 1000).unref();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
