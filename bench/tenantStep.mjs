// CPU per request of one step of `bench/tenants.ts`'s admitted-at-once row (`pool.get(key)`,
// `acquire`, `observe`, `release`), or with `queued` of its row with 3 requests queued per tenant
// behind one in flight (`maxConcurrent: 1`), over 1 tenant or many, in a process of its own: for
// A/B figures of two builds, whose rows timed in one process weigh on each other (the garbage one
// leaves is collected during the next). Plain JavaScript, so that no loader wraps its closures.
//
//   npm run build && node --expose-gc bench/tenantStep.mjs [tenants=10000] [requests=1000000] [queued]
//
// `DIST=<folder>` times another build's `dist/` (a copy of it beside a `node_modules` link).
// Run the builds and tenant counts alternated, several times, on an idle machine.
const dist = process.env.DIST ?? new URL('../dist', import.meta.url).pathname;
const { createLimiterPool, defineProvider, responseLike } = await import(`${dist}/esm/index.js`);

const LIMIT = 1_000_000;
const provider = defineProvider({
  name: 'bench',
  buckets: [{ name: 'main', limit: LIMIT, windowMs: 60_000 }],
  read(res) {
    const remaining = res.header('x-ratelimit-remaining');
    return {
      outcome: 'ok',
      buckets:
        remaining === undefined
          ? []
          : [{ name: 'main', limit: LIMIT, remaining: Number(remaining), reset: { inMs: 60_000 } }],
    };
  },
});
const plenty = responseLike(200, { 'x-ratelimit-remaining': String(LIMIT - 1), 'x-ratelimit-reset': '60' });
const info = { method: 'GET', url: '/v1/deals' };
let granted;
const handlers = {
  granted: (p) => (granted = p),
  rejected: (e) => {
    throw e;
  },
};
const tenants = Number(process.argv[2] ?? 10_000);
const requests = Number(process.argv[3] ?? 1_000_000);
const queued = process.argv[4] === 'queued';
const pool = createLimiterPool({ provider, idleMs: 3_600_000, ...(queued ? { maxConcurrent: 1 } : {}) });
const keys = Array.from({ length: tenants }, (_, i) => `tenant-token-${i}-0123456789abcdef`);
const take = () => {
  const p = granted;
  granted = undefined;
  return p;
};
const done = (p) => {
  p.observe(plenty);
  p.release();
};
// Queued: each tenant's one request in flight, 3 queued behind it; a step queues one more and
// answers the one in flight, which admits the queue's head.
const inFlight = [];
if (queued) {
  for (let t = 0; t < tenants; t++) {
    const l = pool.get(keys[t]);
    l.acquire(info, handlers);
    inFlight.push(take());
    for (let q = 0; q < 3; q++) l.acquire(info, handlers);
  }
}
const step = queued
  ? (i) => {
      const t = i % tenants;
      pool.get(keys[t]).acquire(info, handlers);
      done(inFlight[t]);
      inFlight[t] = take();
    }
  : (i) => {
      pool.get(keys[i % tenants]).acquire(info, handlers);
      done(take());
    };
// Every tenant made and every step compiled before the timing.
for (let i = 0; i < Math.max(tenants, 200_000); i++) step(i);
globalThis.gc?.();
const start = process.cpuUsage();
for (let i = 0; i < requests; i++) step(i);
const used = process.cpuUsage(start);
console.log(
  `${tenants} tenants${queued ? ', 3 queued each' : ''}: ${((used.user + used.system) / requests).toFixed(2)} µs of CPU per request`,
);
// Each tenant's queue run out (a request left queued would wait out its deadline on a timer).
for (const p of inFlight) {
  done(p);
  while (granted) done(take());
}
await pool.close();
