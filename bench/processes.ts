/**
 * `npm run bench:processes`: several processes sharing one token through the Redis store, against
 * the simulator over loopback sockets, through a redis-server of its own (needs `redis-server`
 * on the PATH; started on a free port, no persistence).
 *
 * - Pipedrive, essential plan (20 per 2 s window, the window starts at its first request, resets
 *   in whole seconds left): 2, 4 and 8 processes, 200 requests in all, 10 streams per process;
 * - TEOS (rolling minute and day, time compressed 6,000 times): 4 processes, 160 requests.
 *
 * Each row: the ratio to the physical limit (the shortest time the provider's windows allow for
 * the work, divided by the time taken: 1 is the limit, higher is impossible without 429s) and
 * the 429s, min / median / max over 3 runs (`BENCH_RUNS`). `BENCH_TRACE=1` prints, per run, how
 * long each Pipedrive window took beyond its 2 s (from the first admission of one window to the
 * first of the next). Run alone, on an idle machine: `npm run bench:processes`.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Redis } from 'ioredis';

import { startSimulator } from '../lib/testing/index.js';
import type { ProcessJob, ProcessReport } from './processWorker.js';

const here = dirname(fileURLToPath(import.meta.url));
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const TRACE = process.env['BENCH_TRACE'] === '1';
const LATENCY_MS = 20;
const STREAMS = 10;
const PIPEDRIVE_LIMIT = 20;
const PIPEDRIVE_WINDOW_MS = 2000;
const PIPEDRIVE_REQUESTS = 200;
const TEOS_SCALE = 6000;
const TEOS = { perMinute: 20, perDay: 80, minuteMs: 60_000 / TEOS_SCALE, dayMs: 86_400_000 / TEOS_SCALE };
const TEOS_REQUESTS = 160;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

async function startRedis(): Promise<{ port: number; stop: () => void }> {
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  probe.on('error', () => undefined); // refused until the server is up: retried below
  for (let i = 0; ; i++) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch (error) {
      if (i >= 50) throw error;
      probe.disconnect();
      await sleep(100);
    }
  }
  probe.disconnect();
  return { port, stop: () => server.kill('SIGKILL') };
}

interface Child {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly report: Promise<ProcessReport | undefined>;
}

function startChild(job: ProcessJob): Child {
  const child = fork(join(here, 'processWorker.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, NODE_OPTIONS: '', RXRL_BENCH_JOB: JSON.stringify(job) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let ready: () => void = () => undefined;
  let failed: (e: Error) => void = () => undefined;
  return {
    child,
    ready: new Promise<void>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    }),
    report: new Promise((resolve) => {
      child.on('message', (m: { type: string; error?: string }) => {
        if (m.type === 'ready') ready();
        else if (m.type === 'error') failed(new Error(m.error));
        else if (m.type === 'done') resolve(m as ProcessReport);
      });
      child.on('exit', () => {
        failed(new Error('client process exited'));
        resolve(undefined);
      });
    }),
  };
}

interface Run {
  readonly ratio: number;
  readonly limited: number;
  readonly lost: number;
  /** Pipedrive: ms each window took beyond its 2 s. */
  readonly overrun: number[];
}

async function run(
  provider: 'pipedrive' | 'teos',
  processes: number,
  redisPort: number,
  runId: string,
  memory = false,
): Promise<Run> {
  const sim = await startSimulator({
    latencyMs: LATENCY_MS,
    ...(provider === 'teos'
      ? { timeScale: TEOS_SCALE, teos: { perMinute: TEOS.perMinute, perDay: TEOS.perDay } }
      : { pipedrive: { plan: 'essential' } }),
  });
  const total = provider === 'teos' ? TEOS_REQUESTS : PIPEDRIVE_REQUESTS;
  const token = `bench-${runId}`;
  const children: Child[] = [];
  try {
    for (let p = 0; p < processes; p++) {
      const requests = Math.floor(total / processes) + (p < total % processes ? 1 : 0);
      children.push(
        startChild({
          url: sim.urlFor(provider),
          token,
          requests,
          streams: STREAMS,
          redisPort,
          prefix: `rxrl-bench-${runId}:`,
          provider,
          ...(provider === 'teos' ? { teos: TEOS, resetGuardMs: 100 } : {}),
          ...(memory ? { memory } : {}),
        }),
      );
    }
    await Promise.all(children.map((c) => c.ready));
    const started = Date.now();
    for (const c of children) c.child.send('go');
    const reports = await Promise.all(children.map((c) => c.report));
    const finished = Math.max(...reports.map((r) => r?.finishedAt ?? Infinity));
    const statuses = reports.flatMap((r) => r?.statuses ?? []);
    // The shortest time the windows allow: Pipedrive's window starts at its first request, so
    // the last of N goes at the start of window ⌈N/L⌉; TEOS's rolling day lets PER_DAY go at
    // once, then each call waits for one to age out. Plus the last answer's latency.
    const physical =
      provider === 'teos'
        ? (Math.ceil(total / TEOS.perDay) - 1) * TEOS.dayMs + LATENCY_MS
        : (Math.ceil(total / PIPEDRIVE_LIMIT) - 1) * PIPEDRIVE_WINDOW_MS + LATENCY_MS;
    const admitted = reports.flatMap((r) => r?.admitted ?? []).sort((a, b) => a - b);
    // Pipedrive's windows, as the admissions show them: a window starts at the first admission
    // more than a second after the previous window's start.
    const starts: number[] = [];
    for (const t of admitted) if (starts.length === 0 || t - (starts.at(-1) ?? 0) > 1000) starts.push(t);
    const overrun =
      provider === 'pipedrive' ? starts.slice(1).map((t, k) => t - (starts[k] ?? 0) - PIPEDRIVE_WINDOW_MS) : [];
    if (TRACE && provider === 'pipedrive') {
      const tagged = reports
        .flatMap((r, p) => (r?.admitted ?? []).map((t) => [t, p] as const))
        .sort((a, b) => a[0] - b[0]);
      for (const [k, first] of starts.entries()) {
        const line = tagged
          .filter(([t]) => t >= first && t < (starts[k + 1] ?? Infinity))
          .map(([t, p]) => `${t - first}:${p}`);
        process.stdout.write(`    window at ${first - started}: ${line.join(' ')}\n`);
      }
    }
    const counts = Object.values(sim.stats()[provider]).find((c) => c.total >= total);
    if (TRACE) process.stdout.write(`    ${JSON.stringify(sim.stats()[provider])} ${statuses.length}\n`);
    return {
      ratio: physical / (finished - started),
      limited: statuses.filter((s) => s === 429).length,
      lost: total - statuses.filter((s) => s === 200).length + (counts ? counts.total - total : 0),
      overrun,
    };
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
    await sim.close();
  }
}

function stats(xs: number[], digits = 3): string {
  const s = [...xs].sort((a, b) => a - b);
  const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(digits));
  return `${f(s[0])} / ${f(s[Math.floor(s.length / 2)])} / ${f(s.at(-1))}`;
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const only = process.env['BENCH_PROCESSES']?.split(',').map(Number);
  // Processes 0: one process with the memory store, the reference (what one limiter alone reaches).
  const rows: Array<[string, number]> = [
    ['pipedrive', 0],
    ['pipedrive', 2],
    ['pipedrive', 4],
    ['pipedrive', 8],
    ['teos', 4],
  ].filter(([, n]) => !only || only.includes(n as number)) as Array<[string, number]>;
  const onlyProvider = process.env['BENCH_PROVIDER'];
  try {
    process.stdout.write(
      `Processes sharing one token through Redis (redis-server on a free port), simulator on loopback, ` +
        `${LATENCY_MS} ms latency, ${STREAMS} streams per process; min / median / max of ${RUNS} runs.\n`,
    );
    for (const [provider, n] of rows) {
      if (onlyProvider && provider !== onlyProvider) continue;
      const runs: Run[] = [];
      for (let i = 0; i < RUNS; i++) {
        const id = `${process.pid}-${provider}-${n}-${i}`;
        const r = await run(provider as 'pipedrive' | 'teos', Math.max(1, n), redis.port, id, n === 0);
        runs.push(r);
        if (TRACE)
          process.stdout.write(
            `  run ${i + 1}: ratio ${r.ratio.toFixed(3)}, window overrun ms ${r.overrun.join(' ')}\n`,
          );
      }
      const label =
        provider === 'teos'
          ? `TEOS (rolling minute ${TEOS.perMinute}, day ${TEOS.perDay}), ${n} processes, ${TEOS_REQUESTS} requests`
          : n === 0
            ? `Pipedrive essential (${PIPEDRIVE_LIMIT} per 2 s), 1 process, memory store (reference), ${PIPEDRIVE_REQUESTS} requests`
            : `Pipedrive essential (${PIPEDRIVE_LIMIT} per 2 s), ${n} processes, ${PIPEDRIVE_REQUESTS} requests`;
      process.stdout.write(
        `${label}: ratio to the physical limit ${stats(runs.map((r) => r.ratio))}; ` +
          `429s ${stats(
            runs.map((r) => r.limited),
            0,
          )}; lost ${stats(
            runs.map((r) => r.lost),
            0,
          )}\n`,
      );
    }
  } finally {
    redis.stop();
  }
}

await main();
