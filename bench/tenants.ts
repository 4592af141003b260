/**
 * `npm run bench:tenants`: what many tenants cost in one process, through a limiter pool
 * (`createLimiterPool`), and in Redis. It measures the built package (dist/: `npm run build`
 * first; the npm script does it).
 *
 * - 10,000 tenants idle (each used once) and active (each with 3 requests queued behind a
 *   spent window): heap per limiter, timers in use;
 * - pool eviction: 100,000 tenants touched once, then idle: heap before, after, and once
 *   evicted;
 * - per-request CPU through `pool.get(key)`, at 1 tenant and spread over 10,000: each request
 *   admitted at once (admit, read the response, release), and each tenant with 3 requests
 *   queued behind one in flight (`maxConcurrent: 1`: a request joins the queue, and the
 *   response to the one in flight admits the queue's head). The two tenant counts are timed
 *   in interleaved rounds, each round's ratio from its own pair; the 10,000 tenants' queued
 *   load also against one tenant carrying it all (10,000 in flight, 30,000 queued), which
 *   tells what the tenants cost from what their waiting requests cost; for scale, the same
 *   queued rows with p-queue (a queue per tenant, concurrency 1), timed in the same rounds;
 * - with `REDIS=1` (needs `redis-server` on PATH): 100,000 tenants' keys in Redis (one
 *   admission and one response each): Redis memory per tenant and Redis CPU per admission,
 *   and the client connections the store holds.
 *
 * Each row: min / median / max over `BENCH_RUNS` runs or rounds (3 by default);
 * `BENCH_ONLY=redis` runs the Redis figures alone, `BENCH_ONLY=cpu` the per-request CPU rows
 * alone; `BENCH_REQUESTS` sets the requests timed per CPU row and round, `BENCH_WINDOW=rolling`
 * makes the bench's window a sliding one. Run alone, on an idle machine: `npm run build && BENCH_ONLY=cpu BENCH_RUNS=9 node
 * --expose-gc --import tsx bench/tenants.ts`.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import PQueue from 'p-queue';
import type * as Lib from '../lib/index.js';
import type { Limiter, Permit } from '../lib/index.js';
import type * as RedisStore from '../lib/stores/redis/index.js';

/**
 * The library as published: the build in dist/esm (`npm run build`), which tsx leaves as it is.
 * Through tsx, lib/ itself is transformed with every closure wrapped in a naming call, a cost
 * (about 1.4 µs a request here) that the built package does not have.
 */
const DIST = new URL('../dist/esm/', import.meta.url);
async function built(): Promise<typeof Lib> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const entry = fileURLToPath(new URL('index.js', DIST));
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce(
      (t, e) => Math.max(t, e.isDirectory() ? newest(`${dir}/${e.name}`) : statSync(`${dir}/${e.name}`).mtimeMs),
      0,
    );
  if (!existsSync(entry) || statSync(entry).mtimeMs < newest(`${root}lib`)) {
    throw new Error(
      'bench/tenants.ts measures the built package: run `npm run build` first (dist/ is missing or older than lib/)',
    );
  }
  return (await import(new URL('index.js', DIST).href)) as typeof Lib;
}
const { createLimiterPool, defineProvider, responseLike, rollingWindows } = await built();

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TENANTS = 10_000;
const EVICT_TENANTS = 100_000;
/**
 * Requests timed per CPU row and round (`BENCH_REQUESTS`, 200,000 by default). A longer row also
 * pays for the old generation's collections of what the requests promote: 200,000 requests over
 * 10,000 tenants (20 each) end before one comes, and the full collection before the next row is
 * not timed.
 */
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200_000);
/** Requests queued per tenant behind the one in flight, in the queued CPU rows. */
const QUEUED = 3;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run bench:tenants)');
function heapBytes(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Timers the process holds (each RxJS action and each lease is one). */
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/**
 * The bench's window: fixed (by default), or sliding with `BENCH_WINDOW=rolling` (as TEOS,
 * HubSpot, GitHub and Fieldwire's buckets are: each call kept in the limiter's log for a window).
 */
const ROLLING = process.env.BENCH_WINDOW === 'rolling';
/**
 * Per minute: never the bottleneck. A sliding window keeps every call of the last minute, and
 * the one-tenant rows make more than a million in one: it takes a larger limit.
 */
const LIMIT = ROLLING ? 1_000_000_000 : 1_000_000;
/** One bucket of `LIMIT` per minute unless a response says it is spent. */
const provider = defineProvider({
  name: 'bench',
  ...(ROLLING ? { bucketKinds: [rollingWindows] } : {}),
  buckets: [{ name: 'main', limit: LIMIT, windowMs: 60_000, rolling: ROLLING }],
  read(res) {
    const remaining = res.header('x-ratelimit-remaining');
    return {
      outcome: 'ok',
      buckets:
        remaining === undefined
          ? []
          : [
              {
                name: 'main',
                limit: LIMIT,
                remaining: Number(remaining),
                reset: { inMs: Number(res.header('x-ratelimit-reset') ?? 60) * 1000 },
              },
            ],
    };
  },
});
const plenty = responseLike(200, { 'x-ratelimit-remaining': String(LIMIT - 1), 'x-ratelimit-reset': '60' });
const spent = responseLike(200, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '60' });
const key = (i: number | string) => `tenant-token-${i}-0123456789abcdef`;

/** Admits one request on `l` (synchronously, with the memory store), reads `res`, releases. */
function once(l: Limiter, res = plenty): void {
  let permit: Permit | undefined;
  l.acquire({ method: 'GET', url: '/v1/deals' }, { granted: (p) => (permit = p), rejected: () => undefined });
  if (!permit) throw new Error('not admitted at once');
  permit.observe(res);
  permit.release();
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const f = (x: number | undefined) => (x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(2));
  return `${f(s[0])} / ${f(s[Math.floor(s.length / 2)])} / ${f(s.at(-1))}`;
}

async function idleAndActive(): Promise<{ idle: number; active: number; timers: number; timersIdle: number }> {
  const base = heapBytes();
  const baseTimers = timers();
  const pool = createLimiterPool({ provider, idleMs: 3_600_000 });
  for (let i = 0; i < TENANTS; i++) once(pool.get(key(i)));
  await sleep(50);
  const idle = (heapBytes() - base) / TENANTS;
  const timersIdle = timers() - baseTimers;
  // Each tenant's window spent for a minute, and 3 requests queued behind it.
  const tickets = [];
  for (let i = 0; i < TENANTS; i++) {
    const l = pool.get(key(i));
    once(l, spent);
    for (let q = 0; q < 3; q++)
      tickets.push(
        l.acquire({ method: 'GET', url: '/v1/deals' }, { granted: () => undefined, rejected: () => undefined }),
      );
  }
  await sleep(50);
  const active = (heapBytes() - base) / TENANTS;
  const inUse = timers() - baseTimers;
  for (const t of tickets) t.cancel();
  await pool.close();
  return { idle, active, timers: inUse, timersIdle };
}

/**
 * Before a timed loop: a full collection, so that the loop pays for its own garbage only, not
 * for the making of 10,000 limiters or for the row before (whose incremental marking otherwise
 * lands in whichever row runs next: one run's ratio read anywhere from 1.0 to 2.3 within an hour).
 */
function settle(): void {
  heapBytes();
}

/**
 * The handlers of every timed request: one object made once, so that the loop makes no closure
 * of its own. tsx, which runs this file, wraps every closure it makes in a naming call
 * (esbuild's `keepNames`): a closure per request cost both rows 1.3–1.5 µs that no user pays,
 * and read the ratio lower than it is. The library itself is the built one (dist/), which tsx
 * does not transform.
 */
let granted: Permit | undefined;
let refused: unknown;
const handlers = {
  granted(p: Permit) {
    granted = p;
  },
  rejected(e: unknown) {
    refused = e;
  },
};
const info = { method: 'GET', url: '/v1/deals' };

/** The next permit a handler was given (synchronously, with the memory store), or an error. */
function take(): Permit {
  const p = granted;
  if (!p) throw new Error('not admitted at once', { cause: refused });
  granted = undefined;
  return p;
}

/**
 * A CPU row: `tenants` limiters of one pool, made and used once before any round (their cold
 * start over), then `step(i)` timed `REQUESTS` times per round, round-robin over the tenants.
 */
interface CpuRow {
  readonly step: (i: number) => void;
  readonly close: () => Promise<void>;
  /**
   * For a row whose work goes on in promise callbacks: may step `i` go? The timed loop runs
   * promise callbacks until it may, and lets the event loop turn every 1,000 steps.
   */
  readonly ready?: (i: number) => boolean;
}

/** Each request admitted at once (nothing queued): admit, read the response, release. */
function atOnce(tenants: number, prefix: string): CpuRow {
  const pool = createLimiterPool({ provider, idleMs: 3_600_000 });
  const keys = Array.from({ length: tenants }, (_, i) => key(`${prefix}${i}`));
  const step = (i: number) => {
    pool.get(keys[i % tenants] as string).acquire(info, handlers);
    const p = take();
    p.observe(plenty);
    p.release();
  };
  for (let i = 0; i < tenants; i++) step(i);
  return { step, close: () => pool.close() };
}

/**
 * A queued row's step: a request joins `l`'s queue, and the answer to the one in flight in
 * slot `t` (read, released) admits the queue's head, which takes the slot.
 */
function answerOneInFlight(l: Limiter, inFlight: Permit[], t: number): void {
  l.acquire(info, handlers);
  const p = inFlight[t] as Permit;
  p.observe(plenty);
  p.release();
  inFlight[t] = take();
}

/**
 * Each tenant with `QUEUED` requests queued behind one in flight (`maxConcurrent: 1`), as a
 * busy tenant is: a request joins its tenant's queue, and the response to the one in flight
 * (read, released) admits the queue's head, which is then in flight.
 */
function queued(tenants: number, prefix: string): CpuRow {
  const pool = createLimiterPool({
    provider: provider,
    idleMs: 3_600_000,
    maxConcurrent: 1,
  });
  const keys = Array.from({ length: tenants }, (_, i) => key(`${prefix}${i}`));
  const inFlight: Permit[] = [];
  for (let t = 0; t < tenants; t++) {
    const l = pool.get(keys[t] as string);
    l.acquire(info, handlers);
    inFlight.push(take());
    for (let q = 0; q < QUEUED; q++) l.acquire(info, handlers);
    if (granted) throw new Error('a request that should wait was admitted');
  }
  const step = (i: number) => answerOneInFlight(pool.get(keys[i % tenants] as string), inFlight, i % tenants);
  for (let i = 0; i < tenants; i++) step(i);
  return {
    step,
    close: () => {
      // Each tenant's queue run out: every response admits the next, the last admits none.
      const done = (p: Permit) => (p.observe(plenty), p.release());
      for (const p of inFlight) {
        done(p);
        while (granted) done(take());
      }
      return pool.close();
    },
  };
}

/**
 * The queued row's load carried by one tenant: `tenants` requests in flight (`maxConcurrent`)
 * and `QUEUED` per slot queued behind them, a step reading and releasing the oldest in flight,
 * which admits the queue's head. As many requests wait and as long as over `tenants` tenants,
 * on one limiter's state: set beside the 10,000 tenants, it tells what the tenants themselves
 * cost from what the requests waiting cost.
 */
function queuedInOne(tenants: number, prefix: string): CpuRow {
  const pool = createLimiterPool({ provider, idleMs: 3_600_000, maxConcurrent: tenants });
  const k = key(`${prefix}0`);
  const l = pool.get(k);
  once(l); // the cold start's one request, answered: then the window lets every slot go
  const inFlight: Permit[] = [];
  for (let t = 0; t < tenants; t++) {
    l.acquire(info, handlers);
    inFlight.push(take());
  }
  for (let q = 0; q < QUEUED * tenants; q++) l.acquire(info, handlers);
  if (granted) throw new Error('a request that should wait was admitted');
  const step = (i: number) => answerOneInFlight(pool.get(k), inFlight, i % tenants);
  for (let i = 0; i < tenants; i++) step(i);
  return {
    step,
    close: () => {
      // The queue run out, as in `queued`: each release admits the queue's head, released in
      // turn. Left queued, its requests would wait out `maxWaitMs` (10 minutes) on the
      // limiter's timer, which keeps the process alive that long after the figures print.
      const done = (p: Permit) => (p.observe(plenty), p.release());
      for (const p of inFlight) {
        done(p);
        while (granted) done(take());
      }
      return pool.close();
    },
  };
}

/**
 * For scale, the queued row with p-queue: a queue per tenant (`concurrency: 1`), each with
 * `QUEUED` tasks waiting behind the one running. A step adds a task to its tenant's queue and
 * ends the running one; the queue starts the next in a promise callback, which the timed loop
 * waits for (`ready`) before the tenant's next step.
 */
function pQueueQueued(tenants: number): CpuRow {
  const queues = Array.from({ length: tenants }, () => new PQueue({ concurrency: 1 }));
  const running: Array<(() => void) | undefined> = new Array(tenants);
  const tasks = Array.from({ length: tenants }, (_, t) => () => new Promise<void>((r) => (running[t] = r)));
  const add = (t: number) => void (queues[t] as PQueue).add(tasks[t] as () => Promise<void>);
  for (let t = 0; t < tenants; t++) for (let q = 0; q <= QUEUED; q++) add(t);
  const step = (i: number) => {
    const t = i % tenants;
    add(t);
    const end = running[t];
    running[t] = undefined;
    end?.();
  };
  return {
    step,
    ready: (i) => running[i % tenants] !== undefined,
    close: async () => {
      for (const q of queues) q.clear();
      for (const end of running) end?.();
    },
  };
}

/** µs of CPU per request over `REQUESTS` steps of `row`, after a full collection. */
async function timeRow(row: CpuRow, requests = REQUESTS): Promise<number> {
  settle();
  const start = process.cpuUsage();
  const ready = row.ready;
  if (ready) {
    for (let i = 0; i < requests; i++) {
      while (!ready(i)) await Promise.resolve();
      row.step(i);
      if (i % 1000 === 999) await new Promise(setImmediate);
    }
  } else for (let i = 0; i < requests; i++) row.step(i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / requests;
}

/**
 * The CPU rows: 1 tenant and 10,000 tenants, each admitted at once and each with requests
 * queued, in one process. The rows are made once and timed in interleaved rounds (the order
 * reversed every other round), so that what else the machine runs weighs on both alike; each
 * round's ratio is of its own two timings.
 */
async function cpuRows(rounds: number, add: (name: string, v: number) => void): Promise<void> {
  const n = TENANTS.toLocaleString('en');
  const queuedOne = queued(1, 'q-one-');
  const queuedMany = queued(TENANTS, 'q-many-');
  // [name, what the first row is, the first row, the row over 10,000 tenants]
  const pairs: Array<[string, string, CpuRow, CpuRow]> = [
    ['admitted at once', '1 tenant', atOnce(1, 'one-'), atOnce(TENANTS, 'many-')],
    [`${QUEUED} queued per tenant`, '1 tenant', queuedOne, queuedMany],
    [
      `${QUEUED} queued per tenant`,
      `their load in 1 tenant (${n} in flight)`,
      queuedInOne(TENANTS, 'q-all-'),
      queuedMany,
    ],
    [`${QUEUED} queued per tenant, p-queue`, '1 tenant', pQueueQueued(1), pQueueQueued(TENANTS)],
  ];
  // Warm-up: every step compiled before the first one is timed.
  for (const [, , one, many] of pairs) for (const row of [one, many]) await timeRow(row, REQUESTS / 4);
  for (let round = 0; round < rounds; round++) {
    for (const [name, first, one, many] of round % 2 ? [...pairs].reverse() : pairs) {
      const [a, b] =
        round % 2 ? [await timeRow(many), await timeRow(one)].reverse() : [await timeRow(one), await timeRow(many)];
      add(`CPU per request, ${name}: ${first} (µs)`, a as number);
      add(`CPU per request, ${name}: ${n} tenants (µs)`, b as number);
      add(`ratio, ${name}: ${n} tenants / ${first}`, (b as number) / (a as number));
      await sleep(1);
    }
  }
  const rows = new Set(pairs.flatMap(([, , one, many]) => [one, many]));
  await Promise.all([...rows].map((row) => row.close()));
}

async function eviction(): Promise<{ before: number; touched: number; after: number; ms: number }> {
  const before = heapBytes();
  const pool = createLimiterPool({ provider, idleMs: 1_000 });
  for (let i = 0; i < EVICT_TENANTS; i++) once(pool.get(key(i)));
  const touched = heapBytes();
  const t0 = performance.now();
  while (pool.size > 0) await sleep(100);
  const ms = performance.now() - t0;
  const after = heapBytes();
  await pool.close();
  return { before, touched, after, ms };
}

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

async function redisFigures(): Promise<void> {
  const { Redis } = await import('ioredis');
  const { redisStore } = (await import(new URL('stores/redis/index.js', DIST).href)) as typeof RedisStore;
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  try {
    const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined); // refused until the server is up: retried below
    for (let i = 0; i < 50; i++) {
      try {
        await admin.connect();
        break;
      } catch {
        await sleep(100);
      }
    }
    const info = async (section: string, field: string) => {
      const text = await admin.info(section);
      return Number(/^(\w+):(.*)$/m.exec(text.split('\n').find((l) => l.startsWith(`${field}:`)) ?? '')?.[2] ?? NaN);
    };
    const client = new Redis({ port, host: '127.0.0.1', connectionName: 'bench' });
    const store = redisStore({ client, secret: 'bench-secret-0123456789', keyTtlMs: 3_600_000 });
    const pool = createLimiterPool({ provider, store, idleMs: 3_600_000 });
    const memBefore = await info('memory', 'used_memory');
    const cpuBefore = (await info('cpu', 'used_cpu_user')) + (await info('cpu', 'used_cpu_sys'));
    const admit = (l: Limiter) =>
      new Promise<void>((resolve, reject) =>
        l.acquire(
          { method: 'GET', url: '/v1/deals' },
          {
            granted: (p) => {
              p.observe(plenty);
              p.release();
              resolve();
            },
            rejected: reject,
          },
        ),
      );
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        while (next < EVICT_TENANTS) await admit(pool.get(key(next++)));
      }),
    );
    await sleep(500);
    const ms = performance.now() - t0;
    const memAfter = await info('memory', 'used_memory');
    const cpuAfter = (await info('cpu', 'used_cpu_user')) + (await info('cpu', 'used_cpu_sys'));
    // Redis CPU of the scripts alone, with 100,000 tenants' keys in place: INFO commandstats over
    // admissions of tenants already known (each an ACQUIRE and an OBSERVE, the lease's end inside it).
    await admin.call('CONFIG', 'RESETSTAT');
    const MEASURED = 20_000;
    let measured = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (measured < MEASURED) await admit(pool.get(key((measured++ * 7919) % EVICT_TENANTS)));
      }),
    );
    const stats = await admin.info('commandstats');
    const script = { calls: 0, usec: 0 };
    for (const m of stats.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+),usec=(\d+),/gm)) {
      script.calls += Number(m[2]);
      script.usec += Number(m[3]);
    }
    console.log(
      `Redis scripts at ${EVICT_TENANTS.toLocaleString('en')} tenants' keys (INFO commandstats, ${MEASURED.toLocaleString('en')} admissions):` +
        ` ${(script.usec / script.calls).toFixed(1)} µs per script call (usec_per_call), ${(script.calls / MEASURED).toFixed(2)} calls` +
        ` and ${(script.usec / MEASURED).toFixed(1)} µs of scripts per admission`,
    );
    const list = (await admin.call('CLIENT', 'LIST')) as string;
    const conns = list.split('\n').filter((l) => l.includes(' name=bench ')).length;
    const keys = await admin.dbsize();
    console.log(
      `Redis, ${EVICT_TENANTS.toLocaleString('en')} tenants: ${((memAfter - memBefore) / EVICT_TENANTS).toFixed(0)} bytes per tenant` +
        ` (${keys.toLocaleString('en')} keys), Redis CPU ${(((cpuAfter - cpuBefore) * 1e6) / EVICT_TENANTS).toFixed(1)} µs per admission` +
        ` (with its response and release), ${conns} client connections for ${pool.size.toLocaleString('en')} limiters, ${(ms / 1000).toFixed(1)} s`,
    );
    await pool.close();
    client.disconnect();
    admin.disconnect();
  } finally {
    server.kill();
  }
}

async function main(): Promise<void> {
  if (process.env.BENCH_ONLY === 'redis') return redisFigures();
  const cpuOnly = process.env.BENCH_ONLY === 'cpu';
  const rows: Record<string, number[]> = {};
  const add = (name: string, v: number) => (rows[name] ??= []).push(v);
  for (let run = 0; run < RUNS && !cpuOnly; run++) {
    const a = await idleAndActive();
    add('heap per idle limiter (bytes)', a.idle);
    add('heap per active limiter, 3 queued (bytes)', a.active);
    add(`timers, ${TENANTS.toLocaleString('en')} idle limiters`, a.timersIdle);
    add(`timers, ${TENANTS.toLocaleString('en')} active limiters`, a.timers);
    const e = await eviction();
    add('eviction: heap before (MB)', e.before / 2 ** 20);
    add(`eviction: heap with ${EVICT_TENANTS.toLocaleString('en')} touched (MB)`, e.touched / 2 ** 20);
    add('eviction: heap once evicted (MB)', e.after / 2 ** 20);
    add('eviction: heap left per evicted tenant (bytes)', (e.after - e.before) / EVICT_TENANTS);
  }
  await cpuRows(RUNS, add);
  console.log(
    `node ${process.version}, ${RUNS} runs (min / median / max), load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  for (const [name, xs] of Object.entries(rows)) console.log(`${name.padEnd(66)} ${stats(xs)}`);
  if (process.env.REDIS === '1') await redisFigures();
}

await main();
