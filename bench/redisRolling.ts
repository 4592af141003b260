/**
 * Redis CPU per script call on a rolling (sliding-window) bucket: admissions of 8 calls at a
 * time, each answered (newest first, so figures come back out of order) with what the server
 * left, 3,000 calls; Redis's own `INFO commandstats` time for the scripts, per call.
 *
 * Run on an idle machine, with Redis on 127.0.0.1:6379: `npx tsx bench/redisRolling.ts`
 * (BENCH_RUNS=5 by default; min / median / max).
 */
import { Redis } from 'ioredis';

import { redisStore } from '../lib/stores/redis/index.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CALLS = 3000;
const BATCH = 8;
const spec = {
  name: 'b',
  limit: 1_000_000,
  windowMs: 60_000,
  quota: false,
  pacing: 'burst',
  rolling: true,
} as const;

async function once(client: Redis, run: number): Promise<number> {
  const session = redisStore({
    client,
    secret: 'rx-ratelimit-bench-secret',
    prefix: `rxrl-bench-rolling-${process.pid}-${run}:`,
    subscribe: false,
  }).open({ key: 'token', provider: 'bench', emit: () => undefined });
  if (!session) throw new Error('no session');
  const asked = { coldStartConcurrency: BATCH, resetGuardMs: 50 };
  await client.config('RESETSTAT');
  let left = spec.limit;
  for (let k = 0; k < CALLS; k += BATCH) {
    const grant = await session.acquire([spec], BATCH, asked);
    const first = grant.buckets[0]?.admitted ?? 0;
    for (let j = grant.leases.length - 1; j >= 0; j--) {
      left--;
      const reading = { name: 'b', limit: spec.limit, remaining: left, resetInMs: undefined, windowMs: undefined };
      session.observe(grant.leases[j] as string, [{ ...reading, index: first + j }], [spec]);
    }
    await client.ping(); // every answer's script has run
  }
  const stats = await client.info('commandstats');
  await session.close();
  const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(stats);
  return m ? Number(m[2]) / Number(m[1]) : NaN;
}

const client = new Redis({ port: 6379, host: '127.0.0.1' });
const figures: number[] = [];
for (let run = 0; run < RUNS; run++) figures.push(await once(client, run));
figures.sort((a, b) => a - b);
const at = (q: number) => (figures[Math.min(figures.length - 1, Math.floor(q * figures.length))] ?? NaN).toFixed(1);
console.log(
  `Redis CPU per script call, rolling bucket: ${at(0)} / ${at(0.5)} / ${at(0.999)} µs (min / median / max, ${RUNS} runs)`,
);
client.disconnect();
