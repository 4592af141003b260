/**
 * The Redis store on a real Redis Cluster: three throwaway masters on free ports (never the
 * tests' shared Redis), made with `redis-cli --cluster create`. Each limiter has its own
 * ioredis `Cluster` client, as separate processes would.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster } from 'ioredis';

import {
  BlockedError,
  createLimiter,
  providers,
  responseLike,
  type Limiter,
  type Permit,
  type RequestInfo,
  type Ticket,
} from '../../../lib/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { freshCluster } from './fork.js';

/** The store's secret: names the keys, the same for every limiter (and process) of a test. */
const secret = 'rx-ratelimit-test-secret';

let PORTS: number[] = [];
let cluster: { stop(): Promise<void> } | undefined;
const clients: Cluster[] = [];
const limiters: Limiter[] = [];
const tickets: Ticket[] = [];

beforeAll(async () => {
  const started = await freshCluster(3);
  PORTS = started.ports;
  cluster = started;
}, 30_000);

afterAll(async () => {
  for (const t of tickets) t.cancel();
  for (const l of limiters) await l.close();
  for (const c of clients) c.disconnect();
  await cluster?.stop();
});

const client = () => {
  const c = new Cluster([{ host: '127.0.0.1', port: PORTS[0] ?? 0 }]);
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};

const prefix = `rxrl-cluster-${process.pid}-${Date.now()}:`;
const token = 'cluster-token';

function limiter(extra: object = {}): Limiter {
  const l = createLimiter({
    provider: providers.pipedrive({ plan: 'advanced' }),
    key: token,
    store: redisStore({ client: client(), secret, prefix, timeoutMs: 1000, keyTtlMs: 60_000 }),
    ...extra,
  });
  limiters.push(l);
  return l;
}

/** Acquires a permit: resolves with it, or with the error the request was refused with. */
function acquire(l: Limiter, info: RequestInfo = { method: 'GET', url: '/v1/deals' }): Promise<Permit | unknown> {
  return new Promise((resolve) => {
    tickets.push(l.acquire(info, { granted: resolve, rejected: resolve }));
  });
}

const ok = (remaining: number) =>
  responseLike(200, {
    'x-ratelimit-limit': '40',
    'x-ratelimit-remaining': String(remaining),
    'x-ratelimit-reset': '2',
  });

/** Subscribers of `channel` on every master: sharded (SSUBSCRIBE) and classic (SUBSCRIBE). */
async function subscribers(c: Cluster, channel: string): Promise<{ sharded: number; classic: number }> {
  let sharded = 0;
  let classic = 0;
  for (const node of c.nodes('master')) {
    const s = (await node.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
    const n = (await node.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
    sharded += Number(s[1]);
    classic += Number(n[1]);
  }
  return { sharded, classic };
}

describe('redis store on a Redis Cluster', () => {
  it('admits on the shard of the hash tag; change notices go over sharded pub/sub (a block reaches the other process at once)', async () => {
    const a = limiter();
    const b = limiter({ maxConcurrent: 1 });
    const keys = redisKeys(prefix, 'pipedrive', token, secret);
    // Admission and a response's merge run as scripts on the limiter's shard.
    const first = (await acquire(a)) as Permit;
    first.observe(ok(39));
    first.release();
    const held = (await acquire(b)) as Permit;
    held.observe(ok(38));
    const c = client();
    // The answers are written, and the subscribers subscribe, on their own time (later on a busy
    // machine): wait until both processes listen (5 s at most), then look.
    const ready = async () =>
      (await c.hget(keys.bucket('window'), 'rem')) !== null && (await subscribers(c, keys.channel)).sharded >= 2;
    const deadline = Date.now() + 5000;
    while (!(await ready()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await c.hget(keys.bucket('window'), 'rem')).toMatch(/^\d+$/);
    // Both processes listen with SSUBSCRIBE on the shard; nobody with SUBSCRIBE.
    expect(await subscribers(c, keys.channel)).toEqual({ sharded: 2, classic: 0 });
    // B: one permit held (maxConcurrent 1), three requests queued behind it: only a notice can fail them.
    const queued = [acquire(b), acquire(b), acquire(b)];
    await new Promise((r) => setTimeout(r, 50));
    expect(b.snapshot.queued).toBe(3);
    // A meets Pipedrive's 403 page: the block goes to Redis and out with SPUBLISH.
    const p = (await acquire(a)) as Permit;
    const blockedAt = Date.now();
    p.observe(responseLike(403, { 'content-type': 'text/html' }));
    p.release();
    const errors = await Promise.race([
      Promise.all(queued),
      new Promise<string[]>((r) => setTimeout(() => r(['no notice within 2 s']), 2000)),
    ]);
    expect(errors).toHaveLength(3);
    const tookMs = Date.now() - blockedAt;
    for (const e of errors) expect(e).toBeInstanceOf(BlockedError);
    // The race above is what proves a notice failed them (nothing else can before B's permit is
    // released); this bound only says it came soon, with room for a stalled machine.
    expect(tookMs).toBeLessThan(1500);
    expect(b.isBlocked).toBe(true);
    held.release();
    a.unblock();
    const unblockBy = Date.now() + 2000;
    while (b.isBlocked && Date.now() < unblockBy) await new Promise((r) => setTimeout(r, 20));
    expect(b.isBlocked).toBe(false);
    console.log(
      `redis cluster (3 masters): sharded subscribers 2, classic 0; B's 3 queued requests failed ${tookMs} ms after A's 403`,
    );
  }, 30_000);
});
