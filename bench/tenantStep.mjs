// CPU per request of one step of `bench/tenants.ts`'s admitted-at-once row (`pool.get(key)`,
// `acquire`, `observe`, `release`), over 1 tenant or many, in a process of its own: for A/B
// figures of two builds, whose rows timed in one process weigh on each other (the garbage one
// leaves is collected during the next). Plain JavaScript, so that no loader wraps its closures.
//
//   npm run build && node --expose-gc bench/tenantStep.mjs [tenants=10000] [requests=1000000]
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
const pool = createLimiterPool({ provider, idleMs: 3_600_000 });
const keys = Array.from({ length: tenants }, (_, i) => `tenant-token-${i}-0123456789abcdef`);
const step = (i) => {
  pool.get(keys[i % tenants]).acquire(info, handlers);
  const p = granted;
  granted = undefined;
  p.observe(plenty);
  p.release();
};
// Every tenant made and every step compiled before the timing.
for (let i = 0; i < Math.max(tenants, 200_000); i++) step(i);
globalThis.gc?.();
const start = process.cpuUsage();
for (let i = 0; i < requests; i++) step(i);
const used = process.cpuUsage(start);
console.log(`${tenants} tenants: ${((used.user + used.system) / requests).toFixed(2)} µs of CPU per request`);
await pool.close();
