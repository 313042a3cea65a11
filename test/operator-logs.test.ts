// What an operator reads: engine line levels (worker prefixes included), the
// root cause of a failed start, the probe access-log filter, short lists and
// ids in errors, and the start-up report's phase lines. Pure pieces, fast.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { describeInventory, formatSeconds, publicUrl, StartupReport } from '../src/cli/startup-report.js';
import { engineNotFoundHint } from '../src/cli/hints.js';
import { explainEngineFailure } from '../src/engine/engine-failure.js';
import { OutputLog } from '../src/process/output-log.js';
import { isOwnAccessLine, markOwnAgent } from '../src/engine/own-requests.js';
import { engineLineLevel, parseAccessLine, RootCauseReader, stripEnginePrefixes } from '../src/log/engine-lines.js';
import { shortId, someOf } from '../src/log/lists.js';
import { createLogger, formatReadable } from '../src/log/logger.js';
import { packageRoot } from '../src/config/env.js';
import type { HardwareInventory } from '../src/hardware/types.js';

/** A logger writing JSON records into an array. */
function memoryLogger(level: 'debug' | 'info' = 'info'): { logger: ReturnType<typeof createLogger>; records: Array<Record<string, any>> } {
  const records: Array<Record<string, any>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line));
      cb();
    },
  });
  return { logger: createLogger({ level, jsonl: true, destination }), records };
}

// The OOM start-up failure as vLLM 0.11 prints it (two processes, the engine core's traceback first).
const OOM_FAILURE = [
  '(EngineCore_DP0 pid=8) ERROR 11-29 09:12:18 [core.py:708] EngineCore failed to start.',
  '(EngineCore_DP0 pid=8) Traceback (most recent call last):',
  '(EngineCore_DP0 pid=8)   File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py", line 699, in run_engine_core',
  '(EngineCore_DP0 pid=8)     engine_core = EngineCoreProc(*args, **kwargs)',
  '(EngineCore_DP0 pid=8)                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^',
  '(EngineCore_DP0 pid=8) torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.02 GiB is free.',
  '(APIServer pid=7) Traceback (most recent call last):',
  '(APIServer pid=7)   File "/usr/local/bin/vllm", line 10, in <module>',
  '(APIServer pid=7)     sys.exit(main())',
  '(APIServer pid=7) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}',
];

describe('engine line levels', () => {
  const cases: Array<[string, string | undefined]> = [
    ['(APIServer pid=7) INFO 11-24 12:00:00 [api_server.py:1839] vLLM API server version 0.11.0', 'info'],
    ['(EngineCore_DP0 pid=8) (Worker pid=9) ERROR 11-24 12:00:01 [multiproc_executor.py:671] WorkerProc hit an exception.', 'error'],
    ['(EngineCore_DP0 pid=8) (Worker_TP1 pid=10) WARNING 11-24 12:00:01 [custom_all_reduce.py:1] Custom allreduce is disabled', 'warn'],
    ['(VllmWorker TP0 pid=9) DEBUG 11-24 12:00:01 [x.py:1] detail', 'debug'],
    ['(RayWorkerWrapper pid=9, ip=10.0.0.2) CRITICAL 11-24 12:00:01 [x.py:1] gone', 'fatal'],
    ['\u001b[1;36m(APIServer pid=7)\u001b[0;0m ERROR 11-24 12:00:01 [x.py:1] coloured prefix', 'error'],
    ['ERROR 11-24 12:00:01 [x.py:1] no prefix', 'error'],
    ['(APIServer pid=7) INFO:     127.0.0.1:52344 - "GET /health HTTP/1.1" 200 OK', 'info'],
    ['vllm: error: unrecognized arguments: --disable-log-requests', 'error'],
    ['(EngineCore_DP0 pid=8)   File "/x.py", line 1, in f', undefined],
    ['plain text', undefined],
  ];
  for (const [line, level] of cases) {
    test(`${level ?? 'none'}: ${line.slice(0, 60)}`, () => assert.equal(engineLineLevel(line), level));
  }

  test('a traceback after an ERROR record is logged at ERROR line by line; the next INFO record is INFO', async () => {
    const { logger, records } = memoryLogger();
    const log = new OutputLog();
    const { PassThrough } = await import('node:stream');
    const stream = new PassThrough();
    const done = log.follow(stream, 'stderr', logger);
    stream.end([...OOM_FAILURE.slice(0, 6), '(APIServer pid=7) INFO 11-29 09:12:19 [launcher.py:1] after'].join('\n'));
    await done;
    const levels = records.map((r) => r.level);
    assert.deepEqual(levels, ['ERROR', 'ERROR', 'ERROR', 'ERROR', 'ERROR', 'ERROR', 'INFO']);
    assert.equal(log.rootCause.rootCause, OOM_FAILURE[5]!.replace('(EngineCore_DP0 pid=8) ', ''));
  });

  test('prefixes are stripped, nested ones too', () => {
    assert.equal(stripEnginePrefixes('(EngineCore_DP0 pid=8) (Worker pid=9) ERROR x'), 'ERROR x');
  });
});

describe('root cause of a failed start', () => {
  test('the first exception of the first traceback, not "See root cause above"', () => {
    const r = new RootCauseReader();
    for (const l of OOM_FAILURE) r.push(l);
    assert.match(r.rootCause!, /^torch\.OutOfMemoryError: CUDA out of memory\. Tried to allocate 1\.96 GiB/);
    assert.equal(r.isUsageError, false);
  });

  test('the wrapper alone is quoted when nothing better was printed', () => {
    const r = new RootCauseReader();
    for (const l of OOM_FAILURE.slice(6)) r.push(l);
    assert.match(r.rootCause!, /^RuntimeError: Engine core initialization failed/);
  });

  test('chained exceptions: the first one is the cause', () => {
    const r = new RootCauseReader();
    for (const l of [
      'Traceback (most recent call last):',
      '  File "a.py", line 1, in <module>',
      'FileNotFoundError: [Errno 2] No such file or directory: \'/models/x/config.json\'',
      '',
      'The above exception was the direct cause of the following exception:',
      '',
      'Traceback (most recent call last):',
      '  File "b.py", line 2, in <module>',
      'OSError: Can\'t load the configuration of \'/models/x\'',
    ]) r.push(l);
    assert.match(r.rootCause!, /^FileNotFoundError: /);
  });

  test('argparse: the usage error line, flagged as a usage error', () => {
    const r = new RootCauseReader();
    r.push('usage: vllm serve [model_tag] [options]');
    r.push('vllm serve: error: unrecognized arguments: --disable-log-requests');
    assert.equal(r.rootCause, 'vllm serve: error: unrecognized arguments: --disable-log-requests');
    assert.equal(r.isUsageError, true);
    const e = explainEngineFailure({ rootCause: r.rootCause, usageError: r.isUsageError, lastLine: undefined });
    assert.match(e.detail, /^vLLM rejected its command line: vllm serve: error: unrecognized arguments: --disable-log-requests$/);
    assert.match(e.hint!, /NIM_PASSTHROUGH_ARGS/);
    assert.doesNotMatch(e.hint!, /NIM_STARTUP_TIMEOUT/);
  });

  test('reset forgets the previous process', () => {
    const r = new RootCauseReader();
    for (const l of OOM_FAILURE) r.push(l);
    r.reset();
    assert.equal(r.rootCause, undefined);
  });

  test('hints follow the cause; without one, the last line is quoted', () => {
    assert.match(explainEngineFailure({ rootCause: 'torch.OutOfMemoryError: CUDA out of memory.', usageError: false, lastLine: 'x' }).hint!, /NIM_MAX_MODEL_LEN/);
    assert.match(
      explainEngineFailure({ rootCause: 'huggingface_hub.errors.GatedRepoError: 401 Client Error.', usageError: false, lastLine: 'x' }).hint!,
      /HF_TOKEN/,
    );
    assert.deepEqual(explainEngineFailure({ rootCause: undefined, usageError: false, lastLine: 'last words' }).detail, 'it last logged: last words');
  });
});

describe('access log of the supervisor\'s own requests', () => {
  test('uvicorn access lines parse, with and without prefixes, IPv4 and IPv6', () => {
    assert.deepEqual(parseAccessLine('(APIServer pid=7) INFO:     127.0.0.1:52344 - "GET /health HTTP/1.1" 200 OK'), {
      client: '127.0.0.1',
      clientPort: 52344,
      method: 'GET',
      path: '/health',
      status: 200,
    });
    assert.equal(parseAccessLine('INFO:     [::1]:40000 - "POST /v1/chat/completions HTTP/1.1" 400 Bad Request')?.clientPort, 40000);
    assert.equal(parseAccessLine('INFO:     Started server process [7]'), undefined);
  });

  test('a request through a marked agent is ours; one through another agent is a client\'s', async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const ports: number[] = [];
    server.on('connection', (s) => ports.push(s.remotePort!));
    const get = (agent: http.Agent) =>
      new Promise<void>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/health', agent }, (res) => res.resume().on('end', resolve)).on('error', reject);
      });
    const own = markOwnAgent(new http.Agent({ keepAlive: false }));
    const other = new http.Agent({ keepAlive: false });
    await get(own);
    await get(other);
    server.close();
    const line = (p: number) => `(APIServer pid=7) INFO:     127.0.0.1:${p} - "GET /health HTTP/1.1" 200 OK`;
    assert.equal(isOwnAccessLine(line(ports[0]!)), true);
    assert.equal(isOwnAccessLine(line(ports[1]!)), false);
  });
});

describe('short messages', () => {
  test('someOf: "and N more" past the limit', () => {
    assert.equal(someOf(['a', 'b', 'c']), 'a, b, c');
    assert.equal(someOf(['a', 'b', 'c', 'd', 'e', 'f']), 'a, b, c, d, e, f');
    assert.equal(someOf(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']), 'a, b, c, d, e and 3 more');
    assert.equal(someOf(['x: 1', 'y: 2', 'z: 3'], 1, ' | '), 'x: 1 and 2 more');
  });

  test('shortId: 8 characters of a 64-character id', () => {
    assert.equal(shortId('04bc972331b9326094ce83c64161b51ead0e64d1f4bf6feb78a5495bb57e34ee'), '04bc9723');
    assert.equal(shortId('abc'), 'abc');
  });

  test('engine not found from a checkout names npm start and the simulator', () => {
    const hint = engineNotFoundHint('vllm', packageRoot);
    assert.match(hint, /`npm start`/);
    assert.match(hint, /simulator/);
    assert.match(hint, /NIM_ENGINE_COMMAND=\S*bin\/vllm/);
    assert.doesNotMatch(engineNotFoundHint('/opt/venv/bin/vllm', packageRoot), /npm start/);
    assert.doesNotMatch(engineNotFoundHint('vllm', '/nonexistent'), /npm start/);
  });
});

describe('start-up report', () => {
  const inventory = (names: string[]): HardwareInventory =>
    ({ gpus: names.map((name, index) => ({ index, name })), nvidiaSmi: names.length ? 'ok' : 'missing', warnings: [] }) as unknown as HardwareInventory;

  test('phase lines with elapsed time, progress with the engine\'s last line, one ready line', () => {
    const { logger, records } = memoryLogger();
    let now = 120;
    let tick: () => void = () => undefined;
    let stopped = false;
    const state = { state: 'starting' as const as 'starting' | 'loading' | 'ready', reason: 'spawning engine', lastLine: undefined as string | undefined };
    const report = new StartupReport({
      logger,
      now: () => now,
      progressIntervalMs: 10_000,
      progress: () => state,
      every: (fn, ms) => {
        assert.equal(ms, 10_000);
        tick = fn;
        return () => (stopped = true);
      },
    });
    report.hardware(inventory(['NVIDIA H100 80GB HBM3', 'NVIDIA H100 80GB HBM3']));
    now = 250;
    report.profile('04bc9723 (vllm-fp8-tp2-pp1-h100-latency)', 'auto', { profileId: '04bc9723…' });
    report.serving('http://localhost:8000', 'google/gemma-3-27b-it');
    now = 310;
    report.spawned(4242, 39000, 0, 0);
    state.state = 'loading';
    tick(); // before the engine printed anything
    state.lastLine = '(EngineCore_DP0 pid=4243) INFO 11-29 09:00:10 [default_loader.py:267] Loading weights took 8.10 seconds';
    now = 20_310;
    tick();
    report.engineReady(); // the app is not serving yet: no ready line
    now = 21_000;
    report.appReady();
    state.state = 'ready';
    tick(); // ready: no progress line
    report.close();
    const msgs = records.map((r) => r.message ?? r.msg);
    assert.deepEqual(msgs, [
      'hardware detected after 0.12 s: 2 GPUs: 2 × NVIDIA H100 80GB HBM3',
      'profile selected after 0.25 s: 04bc9723 (vllm-fp8-tp2-pp1-h100-latency), automatically',
      'engine spawned after 0.31 s: pid 4242, loading the model',
      'still loading after 0.31 s: (the engine has printed nothing yet)',
      'still loading after 20.3 s: (EngineCore_DP0 pid=4243) INFO 11-29 09:00:10 [default_loader.py:267] Loading weights took 8.10 seconds',
      'ready: http://localhost:8000 model google/gemma-3-27b-it in 21.0 s',
    ]);
    assert.deepEqual(records.map((r) => r.phase), ['hardware', 'profile', 'spawned', 'loading', 'loading', 'ready']);
    assert.equal(records[5]!.elapsedS, 21);
    assert.equal(records[2]!.pid, 4242);
    assert.equal(stopped, true);
  });

  test('a restart says so, and readiness after it is "ready again"', () => {
    const { logger, records } = memoryLogger();
    const report = new StartupReport({ logger, now: () => 5000, progressIntervalMs: 0, progress: () => ({ state: 'ready', reason: '', lastLine: undefined }) });
    report.serving('http://localhost:8000', 'm');
    report.appReady();
    report.spawned(1, 2, 0, 1);
    report.engineReady();
    report.spawned(3, 2, 1, 1);
    report.engineReady();
    assert.deepEqual(
      records.map((r) => r.message ?? r.msg),
      [
        'engine spawned after 5.00 s: pid 1, loading the model',
        'ready: http://localhost:8000 model m in 5.00 s',
        'engine restarted (restart 1 of 1) after 5.00 s: pid 3, loading the model',
        'ready again after 5.00 s: http://localhost:8000 model m',
      ],
    );
  });

  test('formatting helpers', () => {
    assert.equal(formatSeconds(421), '0.42');
    assert.equal(formatSeconds(31_400), '31.4');
    assert.equal(formatSeconds(125_400), '125');
    assert.equal(publicUrl('http', '0.0.0.0', 8000), 'http://localhost:8000');
    assert.equal(publicUrl('https', '::1', 8443), 'https://[::1]:8443');
    assert.equal(describeInventory(inventory([])), 'no GPUs visible (nvidia-smi missing)');
  });

  test('the readable format shows a phase record\'s words only', () => {
    const line = formatReadable(JSON.stringify({ level: 30, time: 0, source: 'supervisor', message: 'ready: http://localhost:8000 model m in 1.00 s', phase: 'ready', elapsedS: 1, url: 'x' }));
    assert.match(line, /INFO {5}\[supervisor\] ready: http:\/\/localhost:8000 model m in 1\.00 s\n$/);
  });
});
