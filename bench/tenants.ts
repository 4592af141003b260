/**
 * `npm run bench:tenants`: what many tenants cost in one process, through a limiter pool
 * (`createLimiterPool`), and in Redis.
 *
 * - 10,000 tenants idle (each used once) and active (each with 3 requests queued behind a
 *   spent window): heap per limiter, timers in use;
 * - per-request CPU (admit, read the response, release) through one limiter, and through
 *   `pool.get(key)` spread over 10,000 tenants;
 * - pool eviction: 100,000 tenants touched once, then idle: heap before, after, and once
 *   evicted;
 * - with `REDIS=1` (needs `redis-server` on PATH): 100,000 tenants' keys in Redis (one
 *   admission and one response each): Redis memory per tenant and Redis CPU per admission,
 *   and the client connections the store holds.
 *
 * Each row: min / median / max over 3 runs (`BENCH_RUNS`); `BENCH_ONLY=redis` runs the Redis
 * figures alone, `BENCH_ONLY=cpu` the per-request CPU rows alone. Run alone, on an idle machine:
 * `node --expose-gc --import tsx bench/tenants.ts`.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createLimiterPool, defineProvider, responseLike, type Limiter, type Permit } from '../lib/index.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TENANTS = 10_000;
const EVICT_TENANTS = 100_000;
const REQUESTS = 200_000;

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

/** One bucket of 1,000,000 per minute (never the bottleneck) unless a response says it is spent. */
const provider = defineProvider({
  name: 'bench',
  buckets: [{ name: 'main', limit: 1_000_000, windowMs: 60_000 }],
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
                limit: 1_000_000,
                remaining: Number(remaining),
                reset: { inMs: Number(res.header('x-ratelimit-reset') ?? 60) * 1000 },
              },
            ],
    };
  },
});
const plenty = responseLike(200, { 'x-ratelimit-remaining': '999999', 'x-ratelimit-reset': '60' });
const spent = responseLike(200, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '60' });
const key = (i: number) => `tenant-token-${i}-0123456789abcdef`;

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
  const pool = createLimiterPool({ provider, idleMs: 3_600_000, permitTimeoutMs: 0 });
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
 * for the making of 10,000 limiters or for the pool of the row before (whose incremental
 * marking otherwise lands in whichever row runs next: one run's ratio read anywhere from 1.0 to
 * 2.3 within an hour).
 */
function settle(): void {
  heapBytes();
}

/** µs per request (admit, read, release) over `REQUESTS`, spread over `tenants` keys of one pool. */
function cpuPerRequest(tenants: number): number {
  const pool = createLimiterPool({ provider, idleMs: 3_600_000, permitTimeoutMs: 0 });
  const keys = Array.from({ length: tenants }, (_, i) => key(i));
  for (const k of keys) once(pool.get(k)); // warm: every limiter made, its cold start over
  settle();
  const start = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) once(pool.get(keys[i % tenants] as string));
  const used = process.cpuUsage(start);
  void pool.close();
  return (used.user + used.system) / REQUESTS;
}

/** The same over `tenants` limiters held in an array: the cost of many limiters without the pool's lookup. */
function cpuPerRequestDirect(tenants: number): number {
  const pool = createLimiterPool({ provider, idleMs: 3_600_000, permitTimeoutMs: 0 });
  const limiters = Array.from({ length: tenants }, (_, i) => pool.get(key(i)));
  for (const l of limiters) once(l);
  settle();
  const start = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) once(limiters[i % tenants] as Limiter);
  const used = process.cpuUsage(start);
  void pool.close();
  return (used.user + used.system) / REQUESTS;
}

async function eviction(): Promise<{ before: number; touched: number; after: number; ms: number }> {
  const before = heapBytes();
  const pool = createLimiterPool({ provider, idleMs: 1_000, permitTimeoutMs: 0 });
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
  const { redisStore } = await import('../lib/stores/redis/index.js');
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
    const pool = createLimiterPool({ provider, store, idleMs: 3_600_000, permitTimeoutMs: 0 });
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
  // Alone, the CPU rows get the warm-up the heap rows give them otherwise: the code compiled
  // before the first one is timed.
  if (cpuOnly) cpuPerRequest(TENANTS);
  const rows: Record<string, number[]> = {};
  const add = (name: string, v: number) => (rows[name] ??= []).push(v);
  for (let run = 0; run < RUNS; run++) {
    if (!cpuOnly) {
      const a = await idleAndActive();
      add('heap per idle limiter (bytes)', a.idle);
      add('heap per active limiter, 3 queued (bytes)', a.active);
      add(`timers, ${TENANTS.toLocaleString('en')} idle limiters`, a.timersIdle);
      add(`timers, ${TENANTS.toLocaleString('en')} active limiters`, a.timers);
    }
    const one = cpuPerRequest(1);
    const direct = cpuPerRequestDirect(TENANTS);
    const many = cpuPerRequest(TENANTS);
    await sleep(10);
    add('CPU per request, 1 tenant via pool.get (µs)', one);
    add(`CPU per request, ${TENANTS.toLocaleString('en')} limiters in an array (µs)`, direct);
    add(`CPU per request, ${TENANTS.toLocaleString('en')} tenants via pool.get (µs)`, many);
    add('ratio, 10,000 tenants via pool.get / 1 tenant', many / one);
    if (cpuOnly) continue;
    const e = await eviction();
    add('eviction: heap before (MB)', e.before / 2 ** 20);
    add(`eviction: heap with ${EVICT_TENANTS.toLocaleString('en')} touched (MB)`, e.touched / 2 ** 20);
    add('eviction: heap once evicted (MB)', e.after / 2 ** 20);
    add('eviction: heap left per evicted tenant (bytes)', (e.after - e.before) / EVICT_TENANTS);
  }
  console.log(`node ${process.version}, ${RUNS} runs (min / median / max)`);
  for (const [name, xs] of Object.entries(rows)) console.log(`${name.padEnd(60)} ${stats(xs)}`);
  if (process.env.REDIS === '1') await redisFigures();
}

await main();
