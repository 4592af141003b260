/**
 * Cost figures, one measurement per process (started by `bench/run.ts` with `--expose-gc`):
 *
 * - `overhead <lib>`: time per request through the limiter with an unlimited budget and a no-op
 *   request, minus the same no-op work without a limiter, in batches of 1,000 requests at once;
 * - `queue <lib>`: heap and timers while 100,000 requests wait on one limiter whose budget is
 *   spent for the next 5 minutes, and after they are all cancelled;
 * - `keys <lib>`: 10,000 credentials, one limiter each, each having sent one request; heap and
 *   timers while idle, and (rx-ratelimit) while each has one request waiting.
 *
 * Prints nothing; sends one `CostResult` to the parent.
 */
import Bottleneck from 'bottleneck';
import PQueue from 'p-queue';
import { of, type MonoTypeOperatorFunction, type Subscription } from 'rxjs';
import {
  createLimiter,
  providers,
  rateLimit,
  responseLike,
  throttleByHeaders,
  type Limiter,
  type ResponseLike,
} from '../lib/index.js';

export type CostTest = 'overhead' | 'queue' | 'keys';
export type CostLib = 'rx-ratelimit' | 'bottleneck' | 'p-queue';

export interface CostResult {
  readonly test: CostTest;
  readonly lib: CostLib;
  readonly figures: Readonly<Record<string, number>>;
  /** Figures so far, sent before a step that may not end in time. */
  readonly partial?: boolean;
}

const gcFn = (globalThis as { gc?: () => void }).gc;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

async function heapMb(): Promise<number> {
  if (!gcFn) throw new Error('run with --expose-gc');
  for (let k = 0; k < 4; k++) {
    gcFn();
    await tick();
  }
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/**
 * Timers alive: created by `setTimeout`/`setInterval` and neither fired (a timeout) nor cleared.
 * Counted by wrapping the globals (installed before any library code runs), so that unref'd
 * timers, which `process.getActiveResourcesInfo()` leaves out, count too.
 */
const live = new Set<unknown>();
function trackTimers(): void {
  const { setTimeout: st, setInterval: si, clearTimeout: ct, clearInterval: ci } = globalThis;
  const forget = (h: unknown) => live.delete(h);
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const h = st(
      (...a: unknown[]) => {
        live.delete(h);
        fn(...a);
      },
      ms,
      ...args,
    );
    live.add(h);
    return h;
  }) as typeof setTimeout;
  globalThis.setInterval = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const h = si(fn, ms, ...args);
    live.add(h);
    return h;
  }) as typeof setInterval;
  globalThis.clearTimeout = ((h: Parameters<typeof clearTimeout>[0]) => {
    forget(h);
    ct(h);
  }) as typeof clearTimeout;
  globalThis.clearInterval = ((h: Parameters<typeof clearInterval>[0]) => {
    forget(h);
    ci(h);
  }) as typeof clearInterval;
}
const timers = () => live.size;

/** A response without rate-limit headers: the generic provider sees no limit. */
/** The request headers given to `rateLimit` (one object for all): what lets it share identical GETs. */
const REQUEST_HEADERS = {};
const NO_HEADERS: ResponseLike = responseLike(200, {});
const task = () => Promise.resolve(NO_HEADERS);
/** One handler for every request's failure (the caller allocates nothing per request for it). */
const ignore = () => undefined;

// ---- overhead --------------------------------------------------------------------------

const BATCH = 1000;

/** Wall and CPU nanoseconds per request of `batch` (BATCH requests), timed over `ms`. */
async function round(batch: () => Promise<void>, ms: number): Promise<{ wall: number; cpu: number }> {
  let n = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  while (performance.now() - start < ms) {
    await batch();
    n += BATCH;
  }
  const wall = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { wall: (wall * 1e6) / n, cpu: ((used.user + used.system) * 1e3) / n };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

async function overhead(lib: CostLib): Promise<Record<string, number>> {
  let batch: () => Promise<void>;
  let base: () => Promise<void>;
  if (lib === 'rx-ratelimit') {
    const limiter = createLimiter({ provider: providers.generic(), key: 'bench-overhead' });
    let id = 0;
    const run = (through: boolean) => () =>
      new Promise<void>((resolve) => {
        let left = BATCH;
        const complete = () => {
          if (--left === 0) resolve();
        };
        for (let k = 0; k < BATCH; k++) {
          // With the headers it is sent with (none), as the adapters give them: the sharing path runs.
          const info = { method: 'GET', url: `/items/${id++}`, headers: REQUEST_HEADERS };
          const source = of(NO_HEADERS);
          (through ? source.pipe(rateLimit(limiter, info)) : source).subscribe({ complete });
        }
      });
    batch = run(true);
    base = run(false);
  } else if (lib === 'bottleneck') {
    const limiter = new Bottleneck();
    batch = async () => {
      await Promise.all(range(BATCH).map(() => limiter.schedule(task)));
    };
    base = async () => {
      await Promise.all(range(BATCH).map(() => task()));
    };
  } else {
    const queue = new PQueue();
    batch = async () => {
      await Promise.all(range(BATCH).map(() => queue.add(task)));
    };
    base = async () => {
      await Promise.all(range(BATCH).map(() => task()));
    };
  }
  await round(base, 200);
  await round(batch, 400);
  const withLimiter: Array<{ wall: number; cpu: number }> = [];
  const without: Array<{ wall: number; cpu: number }> = [];
  for (let k = 0; k < 5; k++) {
    without.push(await round(base, 150));
    withLimiter.push(await round(batch, 250));
  }
  const per = median(withLimiter.map((r) => r.wall));
  const baseNs = median(without.map((r) => r.wall));
  const cpu = median(withLimiter.map((r) => r.cpu));
  const baseCpu = median(without.map((r) => r.cpu));
  return {
    nsPerRequest: per,
    baselineNs: baseNs,
    overheadNs: Math.max(0, per - baseNs),
    perSecond: 1e9 / per,
    cpuNs: cpu,
    cpuOverheadNs: Math.max(0, cpu - baseCpu),
  };
}

// ---- 100,000 queued --------------------------------------------------------------------

const QUEUED = 100_000;
const SPENT_FOR_MS = 300_000;
/** Requests per layer in the breakdown of rx-ratelimit's heap per queued request. */
const LAYER_N = 20_000;

/** Sends figures known so far (a cancellation that does not end in time leaves these). */
function partial(figures: Record<string, number>): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) throw new Error('bench/cost.ts runs under bench/run.ts (needs an IPC channel)');
    process.send({ test: 'queue', lib: process.argv[3], figures, partial: true }, () => resolve());
  });
}

/**
 * Bytes per queued request of each layer of `rateLimit`, on a limiter paused for 5 minutes:
 * the limiter's own queue entry (`acquire`), `throttleByHeaders`, the three operators without
 * in-flight sharing, and `rateLimit` as users call it. Each includes the caller's Subscription.
 */
async function layers(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const handlers = { granted: () => undefined, rejected: () => undefined };
  const source = of(NO_HEADERS);
  const observer = { error: ignore };
  /** Subscribes the one shared no-op request through `op`; returns its cancel. */
  const through = (op: MonoTypeOperatorFunction<typeof NO_HEADERS>) => {
    const s = source.pipe(op).subscribe(observer);
    return () => s.unsubscribe();
  };
  const variants: Array<[string, (limiter: Limiter, i: number) => () => void]> = [
    [
      'acquire',
      (l, i) => {
        const t = l.acquire({ method: 'GET', url: `/items/${i}` }, handlers);
        return () => t.cancel();
      },
    ],
    ['throttle', (l, i) => through(throttleByHeaders(l, { method: 'GET', url: `/items/${i}` }))],
    ['noShare', (l, i) => through(rateLimit(l, { method: 'GET', url: `/items/${i}`, shareKey: false }))],
    ['rateLimit', (l, i) => through(rateLimit(l, { method: 'GET', url: `/items/${i}`, headers: REQUEST_HEADERS }))],
  ];
  for (const [name, make] of variants) {
    const limiter = createLimiter({ provider: providers.generic(), key: `bench-layer-${name}` });
    limiter.pause(SPENT_FOR_MS);
    for (const c of range(500).map((i) => make(limiter, i))) c();
    const before = await heapMb();
    let cancels: Array<() => void> | undefined = range(LAYER_N).map((i) => make(limiter, i));
    out[`layer:${name}`] = (((await heapMb()) - before) * 2 ** 20) / LAYER_N;
    for (const c of cancels) c();
    cancels = undefined;
  }
  return out;
}

async function queue(lib: CostLib): Promise<Record<string, number>> {
  if (lib === 'rx-ratelimit') {
    const limiter = createLimiter({ provider: providers.generic(), key: 'bench-queue' });
    limiter.pause(SPENT_FOR_MS); // the budget is spent until the reset, 5 minutes away
    // Like for like with the others' one shared `task`: one source observable and one observer
    // for all requests; per request only what rx-ratelimit needs, the `{ method, url }`.
    const source = of(NO_HEADERS);
    const observer = { error: ignore };
    const fill = (n: number): Subscription[] =>
      range(n).map((i) => source.pipe(rateLimit(limiter, { method: 'GET', url: `/items/${i}` })).subscribe(observer));
    // As callers often write it: a fresh `of(x)` and observer per request (the caller's own objects).
    const fillOwn = (n: number): Subscription[] =>
      range(n).map((i) =>
        of(NO_HEADERS)
          .pipe(rateLimit(limiter, { method: 'GET', url: `/items/${i}` }))
          .subscribe({ error: () => undefined }),
      );
    // Warm-up: the code paths compile before the baseline.
    for (const s of fill(1000)) s.unsubscribe();
    for (const s of fillOwn(1000)) s.unsubscribe();
    const ownBefore = await heapMb();
    let own: Subscription[] | undefined = fillOwn(QUEUED);
    const ownQueued = await heapMb();
    for (const s of own) s.unsubscribe();
    own = undefined;
    const before = await heapMb();
    const timersBefore = timers();
    const t = performance.now();
    let subs: Subscription[] | undefined = fill(QUEUED);
    const enqueueMs = performance.now() - t;
    const queued = await heapMb();
    const waiting = limiter.snapshot.queued;
    const timersQueued = timers();
    const c = performance.now();
    for (const s of subs) s.unsubscribe();
    const cancelMs = performance.now() - c;
    subs = undefined;
    const after = await heapMb();
    const figures = {
      before,
      queued,
      after,
      waiting,
      timersBefore,
      timersQueued,
      timersAfter: timers(),
      enqueueMs,
      cancelMs,
      left: limiter.snapshot.queued,
      ownBefore,
      ownQueued,
    };
    return { ...figures, ...(await layers()) };
  }
  if (lib === 'bottleneck') {
    const spent = () =>
      new Bottleneck({ reservoir: 0, reservoirRefreshAmount: 100, reservoirRefreshInterval: SPENT_FOR_MS });
    const warm = spent();
    for (let i = 0; i < 1000; i++) warm.schedule(task).catch(ignore);
    await warm.stop({ dropWaitingJobs: true });
    await warm.disconnect();
    const limiter = spent();
    const before = await heapMb();
    const timersBefore = timers();
    const t = performance.now();
    for (let i = 0; i < QUEUED; i++) limiter.schedule(task).catch(ignore);
    const enqueueMs = performance.now() - t;
    await tick();
    const queued = await heapMb();
    const counts = limiter.counts();
    // Jobs wait in bottleneck's submit lock (RECEIVED) before its queue (QUEUED); both wait.
    const waiting = (counts.RECEIVED ?? 0) + (counts.QUEUED ?? 0);
    const timersQueued = timers();
    const figures = { before, queued, waiting, timersBefore, timersQueued, enqueueMs };
    await partial(figures);
    // README: stop({ dropWaitingJobs: true }). It first lets every pending schedule() through
    // the submit lock (a macrotask each), so the parent may end this process
    // after CANCEL_CAP_MS (bench/run.ts).
    const c = performance.now();
    await limiter.stop({ dropWaitingJobs: true });
    const cancelMs = performance.now() - c;
    await limiter.disconnect();
    const after = await heapMb();
    return { ...figures, after, timersAfter: timers(), cancelMs, left: 0 };
  }
  // p-queue: the interval's one run is used up for the next 5 minutes.
  const spent = async () => {
    const q = new PQueue({ intervalCap: 1, interval: SPENT_FOR_MS });
    await q.add(task);
    return q;
  };
  const warm = await spent();
  for (let i = 0; i < 1000; i++) void warm.add(task);
  warm.clear();
  const q = await spent();
  const before = await heapMb();
  const timersBefore = timers();
  const t = performance.now();
  // The promises of cleared tasks never settle; nothing is attached to them.
  for (let i = 0; i < QUEUED; i++) void q.add(task);
  const enqueueMs = performance.now() - t;
  const queued = await heapMb();
  const waiting = q.size;
  const timersQueued = timers();
  const c = performance.now();
  q.clear(); // README: "Clear the queue." (one AbortSignal per task costs O(n) per removal)
  const cancelMs = performance.now() - c;
  await tick();
  const after = await heapMb();
  return {
    before,
    queued,
    after,
    waiting,
    timersBefore,
    timersQueued,
    timersAfter: timers(),
    enqueueMs,
    cancelMs,
    left: q.size,
  };
}

// ---- 10,000 keys -----------------------------------------------------------------------

const KEYS = 10_000;
/** A Pipedrive-like answer, so each limiter holds real bucket state. */
const PIPEDRIVE_OK: ResponseLike = responseLike(200, {
  'x-ratelimit-limit': '40',
  'x-ratelimit-remaining': '39',
  'x-ratelimit-reset': '2',
});

async function keys(lib: CostLib): Promise<Record<string, number>> {
  const before = await heapMb();
  const timersBefore = timers();
  const t = performance.now();
  if (lib === 'rx-ratelimit') {
    const provider = providers.pipedrive({ plan: 'advanced' });
    const limiters: Limiter[] = range(KEYS).map((k) => createLimiter({ provider, key: `token-${k}` }));
    await Promise.all(
      limiters.map(
        (l) =>
          new Promise<void>((resolve) => {
            of(PIPEDRIVE_OK)
              .pipe(rateLimit(l, { method: 'GET', url: '/v1/deals/1' }))
              .subscribe({ complete: resolve, error: () => resolve() });
          }),
      ),
    );
    const createMs = performance.now() - t;
    const idle = await heapMb();
    const timersIdle = timers();
    // One request waiting on each (every budget spent for 5 minutes): one timer per limiter.
    const subs = limiters.map((l) => {
      l.pause(SPENT_FOR_MS);
      return of(PIPEDRIVE_OK)
        .pipe(rateLimit(l, { method: 'GET', url: '/v1/deals/2' }))
        .subscribe({ error: () => undefined });
    });
    const waiting = await heapMb();
    const timersWaiting = timers();
    for (const s of subs) s.unsubscribe();
    const timersCancelled = timers();
    return {
      before,
      idle,
      waiting,
      createMs,
      timersBefore,
      timersIdle,
      timersWaiting,
      timersCancelled,
      kept: limiters.length,
    };
  }
  if (lib === 'bottleneck') {
    const group = new Bottleneck.Group({ reservoir: 40, reservoirRefreshAmount: 40, reservoirRefreshInterval: 2000 });
    await Promise.all(range(KEYS).map((k) => group.key(`token-${k}`).schedule(task)));
    const createMs = performance.now() - t;
    const idle = await heapMb();
    const timersIdle = timers();
    const kept = group.keys().length;
    await Promise.all(group.limiters().map(({ limiter }) => limiter.disconnect()));
    return { before, idle, createMs, timersBefore, timersIdle, kept };
  }
  const queues = new Map(
    range(KEYS).map((k) => [`token-${k}`, new PQueue({ intervalCap: 40, interval: 2000, strict: true })]),
  );
  await Promise.all([...queues.values()].map((q) => q.add(task)));
  const createMs = performance.now() - t;
  const idle = await heapMb();
  const timersIdle = timers();
  return { before, idle, createMs, timersBefore, timersIdle, kept: queues.size };
}

async function main(): Promise<void> {
  trackTimers();
  const [test, lib] = process.argv.slice(2) as [CostTest, CostLib];
  const figures = test === 'overhead' ? await overhead(lib) : test === 'queue' ? await queue(lib) : await keys(lib);
  const result: CostResult = { test, lib, figures };
  await new Promise<void>((resolve) => {
    if (!process.send) throw new Error('bench/cost.ts runs under bench/run.ts (needs an IPC channel)');
    process.send(result, () => resolve());
  });
  process.exit(0);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
