/**
 * `npm run bench:endpoints`: the cost of many endpoints through one limiter (Fieldwire, whose
 * buckets are per endpoint), in virtual time (no network: the limiter alone).
 *
 * - one endpoint, 100,000 requests, against 100,000 distinct endpoints: admission cost per
 *   request (admit, read the response, release);
 * - the heap and bucket count after the distinct endpoints went idle (an hour and more later,
 *   one request sweeps): memory comes back;
 * - 20,000 distinct endpoints waiting behind a spent catch-all: cost per enqueue, then per
 *   admission when the window resets.
 *
 * Each row: min / median / max over 3 runs. Run alone: `node --expose-gc --import tsx bench/endpoints.ts`.
 */
import { VirtualTimeScheduler } from 'rxjs';
import { createLimiter, providers, responseLike, type Limiter, type Permit } from '../lib/index.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const N = 100_000;
const WAITING = 20_000;

const gc = (globalThis as { gc?: () => void }).gc;
function heapMb(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

function catchAll(now: number, remaining: number) {
  return responseLike(200, {
    'x-ratelimit-limit': '1000000',
    'x-ratelimit-remaining': String(remaining),
    'x-ratelimit-reset': String(Math.floor(now / 1000) + 300),
  });
}

function limiterOn(scheduler: VirtualTimeScheduler): Limiter {
  // No permit lease: rxjs's VirtualTimeScheduler sorts its whole action list on each schedule,
  // which would time the scheduler, not the limiter (with asyncScheduler a lease is one timer).
  return createLimiter({
    provider: providers.fieldwire(),
    key: 'bench',
    scheduler,
    maxWaitMs: Infinity,
    permitTimeoutMs: 0,
  });
}

/** Sends `n` requests one after the other, each answered at once; returns µs per request. */
function sequential(limiter: Limiter, n: number, url: (i: number) => string): number {
  let left = 1_000_000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    limiter.acquire(
      { url: url(i) },
      {
        granted: (p: Permit) => {
          p.observe(catchAll(limiter.now(), --left));
          p.release();
        },
        rejected: () => {
          throw new Error('rejected');
        },
      },
    );
  }
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

interface Run {
  oneUs: number;
  distinctUs: number;
  heapBefore: number;
  heapPeak: number;
  heapIdle: number;
  bucketsPeak: number;
  bucketsIdle: number;
  enqueueUs: number;
  admitUs: number;
}

function run(): Run {
  // One endpoint (a warm-up of the same code paths, too).
  const s1 = new VirtualTimeScheduler();
  const oneUs = sequential(limiterOn(s1), N, () => '/api/v3/projects/1/tasks');

  const s2 = new VirtualTimeScheduler();
  const limiter = limiterOn(s2);
  const heapBefore = heapMb();
  const distinctUs = sequential(limiter, N, (i) => `/api/v3/projects/1/attachments/plan-${i}.pdf`);
  const bucketsPeak = limiter.snapshot.buckets.length;
  const heapPeak = heapMb();
  // Two hours later (every window over, every bucket idle), one request sweeps.
  s2.schedule(() => undefined, 2 * 3_600_000);
  s2.flush();
  sequential(limiter, 1, () => '/api/v3/projects/1/tasks');
  const bucketsIdle = limiter.snapshot.buckets.length;
  const heapIdle = heapMb();

  // Waiting: the catch-all is spent for 5 minutes; 20,000 endpoints queue behind it.
  const s3 = new VirtualTimeScheduler();
  const waiting = limiterOn(s3);
  waiting.acquire(
    { url: '/api/v3/projects/1/first' },
    {
      granted: (p) => {
        p.observe(catchAll(waiting.now(), 0));
        p.release();
      },
      rejected: () => undefined,
    },
  );
  let admitted = 0;
  let left = 1_000_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < WAITING; i++)
    waiting.acquire(
      { url: `/api/v3/projects/1/attachments/w-${i}.pdf` },
      {
        granted: (p) => {
          admitted++;
          p.observe(catchAll(waiting.now(), --left));
          p.release();
        },
        rejected: () => {
          throw new Error('rejected');
        },
      },
    );
  const t1 = process.hrtime.bigint();
  s3.flush();
  const t2 = process.hrtime.bigint();
  if (admitted !== WAITING) throw new Error(`bench: ${admitted} of ${WAITING} admitted`);
  return {
    oneUs,
    distinctUs,
    heapBefore,
    heapPeak,
    heapIdle,
    bucketsPeak,
    bucketsIdle,
    enqueueUs: Number(t1 - t0) / 1000 / WAITING,
    admitUs: Number(t2 - t1) / 1000 / WAITING,
  };
}

function stats(xs: number[], digits: number): string {
  const s = [...xs].sort((a, b) => a - b);
  const f = (x: number | undefined) => (x ?? NaN).toFixed(digits);
  return `${f(s[0])} / ${f(s[Math.floor(s.length / 2)])} / ${f(s[s.length - 1])}`;
}

if (!gc) console.warn('bench: run with --expose-gc for heap figures');
const runs: Run[] = [];
for (let i = 0; i < RUNS; i++) runs.push(run());
const col = <K extends keyof Run>(k: K) => runs.map((r) => r[k]);
const rows: Array<[string, string]> = [
  [`one endpoint, ${N.toLocaleString('en')} requests: µs per request`, stats(col('oneUs'), 2)],
  [`${N.toLocaleString('en')} distinct endpoints: µs per request`, stats(col('distinctUs'), 2)],
  [
    'distinct / one endpoint (per-run ratio)',
    stats(
      runs.map((r) => r.distinctUs / r.oneUs),
      2,
    ),
  ],
  ['heap before the distinct run (MB)', stats(col('heapBefore'), 1)],
  ['heap with every endpoint just used (MB)', stats(col('heapPeak'), 1)],
  ['heap once they went idle (MB)', stats(col('heapIdle'), 1)],
  ['buckets just used / once idle', `${stats(col('bucketsPeak'), 0)}  →  ${stats(col('bucketsIdle'), 0)}`],
  [`${WAITING.toLocaleString('en')} endpoints waiting: µs per enqueue`, stats(col('enqueueUs'), 2)],
  ['…then µs per admission when the window resets', stats(col('admitUs'), 2)],
];
const width = Math.max(...rows.map(([k]) => k.length));
console.log(`rx-ratelimit, many endpoints (Fieldwire), ${RUNS} runs: min / median / max`);
for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
