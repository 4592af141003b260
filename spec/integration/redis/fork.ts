/** Helpers of the Redis integration tests: worker processes and a throwaway redis-server. */
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freePort } from '../../helpers/ports.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface WorkerJob {
  readonly url: string;
  readonly token: string;
  readonly requests: number;
  readonly streams: number;
  readonly redisPort: number;
  readonly prefix: string;
  readonly limit: number;
  readonly windowMs: number;
  readonly timeoutMs?: number;
  readonly leaseMs?: number;
  readonly provider?: 'procore' | 'pipedrive' | 'teos' | 'shopify';
  /**
   * Shopify's bucket as the simulator runs it: its capacity and restore rate (a second). `api`:
   * which Admin API (default REST); GraphQL queries are POSTs whose body the limiter reads.
   */
  readonly shopify?: { readonly bucket: number; readonly perSecond: number; readonly api?: 'rest' | 'graphql' };
  /** TEOS's windows as the simulator runs them (compressed): limits and lengths in ms. */
  readonly teos?: {
    readonly perMinute: number;
    readonly perDay: number;
    readonly minuteMs: number;
    readonly dayMs: number;
  };
  /** The limiter's `resetGuardMs`. */
  readonly resetGuardMs?: number;
}

export interface WorkerResult {
  readonly type: 'done';
  readonly statuses: number[];
  /** Shopify GraphQL: the answers whose body held an error (`THROTTLED` among them). */
  readonly errors?: string[];
  /**
   * The longest a request took from its admission to its answer read, ms: its lease in Redis
   * must outlast it (`leaseMs`), or its unit stops counting before a figure read in Redis counts it.
   */
  readonly slowestMs?: number;
  readonly elapsed: number;
  readonly finishedAt: number;
  /** `error`: a `store-unavailable`'s reason. */
  readonly events: Array<{ type: string; at: number; error?: string }>;
}

type Message = WorkerResult | { type: 'ready' } | { type: 'progress'; done: number } | { type: 'error'; error: string };

export interface Worker {
  readonly child: ChildProcess;
  /** Requests answered so far (reported every 10). */
  done: number;
  readonly ready: Promise<void>;
  /** Resolves with the worker's report, or with `undefined` if it died first. */
  readonly result: Promise<WorkerResult | undefined>;
  go(): void;
}

/** Forks one worker process (`node --import tsx worker.ts`) that waits for `go`. */
export function startWorker(job: WorkerJob): Worker {
  const child = fork(join(here, 'worker.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, NODE_OPTIONS: '', RXRL_JOB: JSON.stringify(job) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let readyResolve: () => void = () => undefined;
  let readyReject: (e: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    readyResolve = resolve;
    readyReject = reject;
  });
  const worker: Worker = {
    child,
    done: 0,
    ready,
    result: new Promise((resolve) => {
      child.on('message', (m: Message) => {
        if (m.type === 'ready') readyResolve();
        else if (m.type === 'progress') worker.done = m.done;
        else if (m.type === 'error') readyReject(new Error(m.error));
        else if (m.type === 'done') resolve(m);
      });
      child.on('exit', () => {
        readyReject(new Error('worker exited'));
        resolve(undefined);
      });
    }),
    go: () => child.send('go'),
  };
  return worker;
}

/** Resolves when `check` holds (polled every 20 ms), or rejects after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until just after a multiple of `windowMs` (plus `afterMs`), so runs start at a window's start. */
export async function alignTo(windowMs: number, afterMs = 30): Promise<void> {
  const now = Date.now();
  const next = Math.ceil(now / windowMs) * windowMs + afterMs;
  const wait = next - now > windowMs ? next - now - windowMs : next - now;
  await new Promise((r) => setTimeout(r, wait));
}

/** A throwaway redis-server (no persistence) on `port` (take one from `freePort`), never the tests' shared one. */
export interface TempRedis {
  readonly port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** `args`: extra redis-server arguments (e.g. `['--enable-debug-command', 'local']`). */
export function tempRedis(port: number, args: readonly string[] = []): TempRedis {
  let proc: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await exited;
  };
  const start = async (): Promise<void> => {
    proc = spawn(
      'redis-server',
      ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', ...args],
      { stdio: 'ignore' },
    );
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 50 });
    probe.on('error', () => undefined);
    try {
      const deadline = Date.now() + 5000;
      for (;;) {
        try {
          await probe.connect();
          await probe.ping();
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((r) => setTimeout(r, 50));
          probe.disconnect();
        }
      }
    } finally {
      probe.disconnect();
    }
  };
  return { port, stop, start };
}

/**
 * A throwaway Redis Cluster of masters on `ports` (no replicas, no persistence; config files in
 * a temporary directory), made with `redis-cli --cluster create`. Resolves when every slot is
 * served (`cluster_state:ok` on every node).
 */
/**
 * A throwaway Redis Cluster of `count` masters on free ports, started again on others if a port
 * was taken between the check and the start (another suite's server or connection): the ports
 * it got, and how to stop it.
 */
export async function freshCluster(count: number): Promise<{ ports: number[]; stop(): Promise<void> }> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    while (ports.length < count) {
      const port = await freePort(true);
      if (!ports.includes(port)) ports.push(port);
    }
    try {
      return { ports, ...(await tempCluster(ports)) };
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

export async function tempCluster(ports: readonly number[]): Promise<{ stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-cluster-'));
  const nodes = ports.map((port) =>
    tempRedis(port, [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, `nodes-${port}.conf`),
      '--dir',
      dir,
    ]),
  );
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await new Promise<void>((resolve, reject) => {
      const args = ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0'];
      execFile('redis-cli', [...args, '--cluster-yes'], (error) => (error ? reject(error) : resolve()));
    });
    const probes = ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: true }));
    try {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const infos = await Promise.all(probes.map((p) => p.call('CLUSTER', 'INFO') as Promise<string>));
        if (infos.every((i) => i.includes('cluster_state:ok'))) break;
        if (Date.now() > deadline) throw new Error('cluster not ready');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      for (const p of probes) p.disconnect();
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}

/**
 * The Shopify GraphQL queries a worker sends (the same mix in every process): `requested`
 * points asked (20…100), `actual` what the query costs (half of it for every third: fewer nodes
 * came back), and `estimate` the `cost` the request gives the limiter: the requested cost, or
 * none for every fourth query (the profile's `queryCost` of 100 then stands for it).
 */
export function shopifyQuery(i: number): { requested: number; actual: number; estimate: number | undefined } {
  const requested = 20 + ((i * 37) % 81);
  return {
    requested,
    actual: i % 3 === 0 ? Math.ceil(requested / 2) : requested,
    estimate: i % 4 === 1 ? undefined : requested,
  };
}

/** The profile's `queryCost` in the workers: no query of `shopifyQuery` asks more. */
export const SHOPIFY_QUERY_COST = 100;
