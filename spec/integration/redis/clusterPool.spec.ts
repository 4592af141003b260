/**
 * Limiter pools on a real Redis Cluster: three throwaway masters on free ports (never the tests'
 * shared Redis), 1,000 tenants spread over the slots, two "processes" (each a pool over its own
 * ioredis `Cluster` client and store) sharing every tenant's budget. Admission holds per tenant,
 * a pause or a block touches its tenant only, change notices reach the tenant's limiters over
 * sharded pub/sub, and closing the pools leaves no subscriber connection behind.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster } from 'ioredis';
import { asyncScheduler } from 'rxjs';

import {
  BlockedError,
  createLimiterPool,
  defineProvider,
  isQuotaExhaustedError,
  responseLike,
  type Limiter,
  type LimiterEvent,
  type LimiterPool,
  type Permit,
} from '../../../lib/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { freshCluster } from './fork.js';

const secret = 'rx-ratelimit-test-secret';
const prefix = `rxrl-cpool-${process.pid}-${Date.now()}:`;
const TENANTS = 1000;
const tenant = (i: number) => `cluster-tenant-token-${i}`;

let PORTS: number[] = [];
let cluster: { stop(): Promise<void> } | undefined;
const clients: Cluster[] = [];
const pools: LimiterPool[] = [];
/** Every store trouble any limiter reported: a timeout would put it on a local share and blur the counts. */
const troubles: string[] = [];

beforeAll(async () => {
  const started = await freshCluster(3);
  PORTS = started.ports;
  cluster = started;
}, 30_000);

afterAll(async () => {
  for (const p of pools) await p.close();
  for (const c of clients) c.disconnect();
  await cluster?.stop();
});

/** A `Cluster` client whose connections (its duplicates' included) carry `name` in `CLIENT LIST`. */
const client = (name: string) => {
  const c = new Cluster([{ host: '127.0.0.1', port: PORTS[0] ?? 0 }], { redisOptions: { connectionName: name } });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};

/**
 * One bucket of 5 per 10 minutes (no window may end during the test, however slow the machine:
 * a new window would refill); 429 pauses, 403 blocks (as Pipedrive's HTML page does).
 */
const fixed = defineProvider({
  name: 'fixed',
  buckets: [{ name: 'main', limit: 5, windowMs: 600_000 }],
  read(res) {
    const remaining = res.header('x-ratelimit-remaining');
    return {
      outcome: res.status === 429 ? 'limited' : res.status === 403 ? 'blocked' : 'ok',
      buckets:
        remaining === undefined
          ? []
          : [{ name: 'main', limit: 5, remaining: Number(remaining), reset: { inMs: 600_000 } }],
    };
  },
});

/**
 * The pauses of the pause-and-block test: long enough that everything that must happen before
 * they end (a notice, 30 other tenants' grants) still does on a stalled, busy machine.
 */
const PAUSE_MS = 5000;

/** A "process": a pool of the tenants' limiters over its own Cluster client and store. */
function processPool(name: string): LimiterPool {
  const pool = createLimiterPool({
    provider: fixed,
    // 30 s: a loaded 2-core machine running three masters must not make a slow call look like an
    // outage (the limiter would then spend a local share, which this test does not measure).
    store: redisStore({ client: client(name), secret, prefix, timeoutMs: 30_000, keyTtlMs: 900_000 }),
    idleMs: 600_000,
    // Past a pause of PAUSE_MS; short of a window's reset (such a request is refused at once).
    maxWaitMs: PAUSE_MS + 1000,
    blockCooldownMs: 60_000,
    // Named, the scheduler keeps this pool's limiters its own: without it, one process's pools
    // share one limiter per provider and key (shareLimiter), and A and B would be one limiter.
    scheduler: asyncScheduler,
  });
  pools.push(pool);
  return pool;
}

/** A `get` that also records any store trouble of the limiter it returns (once per limiter). */
const watched = new WeakSet<Limiter>();
function get(pool: LimiterPool, key: string): Limiter {
  const l = pool.get(key);
  if (!watched.has(l)) {
    watched.add(l);
    l.events$.subscribe((e: LimiterEvent) => {
      if (e.type === 'store-unavailable') troubles.push(`${key}: ${e.error}`);
    });
  }
  return l;
}

/** Resolves with the permit, or with the error the request was refused with. */
const acquire = (l: Limiter) =>
  new Promise<Permit | unknown>((resolve) =>
    l.acquire({ method: 'GET', url: '/x' }, { granted: resolve, rejected: resolve }),
  );

const isPermit = (x: unknown): x is Permit => typeof (x as Partial<Permit> | null)?.observe === 'function';
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `work` for each index, `width` at a time. */
async function each(n: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await work(next++);
    }),
  );
}

/** Units left in tenant i's window after its first response: 0, 1 or 2. */
const leftOf = (i: number) => i % 3;

/** Connections on all masters of the client named `name` (its duplicates' included), and how many subscribe. */
async function connections(admin: Cluster, name: string): Promise<{ all: number; subscribers: number }> {
  let all = 0;
  let subscribers = 0;
  for (const node of admin.nodes('master')) {
    const list = (await node.call('CLIENT', 'LIST')) as string;
    for (const line of list.split('\n')) {
      // ioredis names a sharded subscriber's connections `ioredis-cluster(ssubscriber):<name>`.
      if (!line.includes(` name=${name} `) && !line.includes(`:${name} `)) continue;
      all++;
      if (/ cmd=(ssubscribe|subscribe)/.test(line) || / flags=\w*P/.test(line)) subscribers++;
    }
  }
  return { all, subscribers };
}

describe('limiter pools on a Redis Cluster of three masters, 1,000 tenants', () => {
  let a: LimiterPool;
  let b: LimiterPool;

  it('spreads the tenants over the three masters and admits no tenant past what its window has left', async () => {
    a = processPool(`rxrl-cpool-a-${process.pid}`);
    b = processPool(`rxrl-cpool-b-${process.pid}`);
    // Each tenant's first request: its response says 0, 1 or 2 are left for 10 minutes.
    await each(TENANTS, 50, async (i) => {
      const p = await acquire(get(a, tenant(i)));
      if (!isPermit(p)) throw new Error(`tenant ${i}: first request refused: ${String(p)}`);
      p.observe(responseLike(200, { 'x-ratelimit-remaining': String(leftOf(i)) }));
      p.release();
    });
    // Then 3 requests from each process at once, per tenant: exactly what is left is admitted,
    // across both processes; the rest are refused with a quota error (the reset is past maxWaitMs).
    const over: string[] = [];
    let granted = 0;
    await each(TENANTS, 25, async (i) => {
      const results = await Promise.all([
        ...[0, 1, 2].map(() => acquire(get(a, tenant(i)))),
        ...[0, 1, 2].map(() => acquire(get(b, tenant(i)))),
      ]);
      const permits = results.filter(isPermit);
      for (const p of permits) p.release();
      granted += permits.length;
      const refused = results.filter((r) => !isPermit(r));
      if (permits.length !== leftOf(i) || !refused.every(isQuotaExhaustedError)) {
        over.push(`tenant ${i}: ${permits.length} admitted of ${leftOf(i)} left`);
      }
    });
    expect(troubles).toEqual([]);
    expect(over).toEqual([]);
    expect(granted).toBe(Array.from({ length: TENANTS }, (_, i) => leftOf(i)).reduce((x, y) => x + y, 0));
    // The tenants live on every master, about a third each (a tenant's keys share one hash tag).
    const admin = client(`rxrl-cpool-admin-${process.pid}`);
    await admin.ping(); // connected: its list of masters is known
    const perMaster = await Promise.all(admin.nodes('master').map((n) => n.dbsize()));
    const keys = perMaster.reduce((x, y) => x + y, 0);
    expect(perMaster).toHaveLength(3);
    for (const n of perMaster) expect(n).toBeGreaterThan(keys / 5);
    console.log(
      `redis cluster pool: keys per master ${perMaster.join(' / ')}; ${granted} admitted over both processes, exactly what the windows had left`,
    );
  }, 280_000);

  it('keeps one subscriber per store however many tenants, and every tenant channel has both processes on its shard', async () => {
    const admin = clients.at(-1) as Cluster;
    for (const name of ['a', 'b']) {
      // A subscriber connection slowed past ioredis's connect timeout by a busy machine reconnects.
      let c = await connections(admin, `rxrl-cpool-${name}-${process.pid}`);
      for (let t = 0; t < 100 && c.subscribers < 3; t++) {
        await settle(100);
        c = await connections(admin, `rxrl-cpool-${name}-${process.pid}`);
      }
      // One sharded subscriber per master for the store's 1,000 limiters; beside them only the
      // client's own connections (one per master, and ioredis's for the slot map).
      expect(c.subscribers).toBe(3);
      expect(c.all).toBeLessThanOrEqual(8);
    }
    for (const i of [0, 1, 2, 499, 998, 999]) {
      const channel = redisKeys(prefix, 'fixed', tenant(i), secret).channel;
      let sharded = 0;
      let classic = 0;
      for (const node of admin.nodes('master')) {
        sharded += Number(((await node.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]);
        classic += Number(((await node.call('PUBSUB', 'NUMSUB', channel)) as [string, number])[1]);
      }
      expect({ tenant: i, sharded, classic }).toEqual({ tenant: i, sharded: 2, classic: 0 });
    }
  }, 30_000);

  it("a pause and a block reach the tenant's limiters in the other process, and no other tenant's", async () => {
    const paused = 'cluster-fresh-paused';
    const blocked = 'cluster-fresh-blocked';
    for (const key of [paused, blocked]) {
      const p = await acquire(get(a, key));
      if (!isPermit(p)) throw new Error(`${key}: refused`);
      p.observe(responseLike(200, { 'x-ratelimit-remaining': '4' }));
      p.release();
    }
    // A pauses `paused` for 5 s (as after a 429's Retry-After): B's request for it waits, then goes.
    // Timed from before the pause: nothing it holds can go sooner than PAUSE_MS after this.
    const pausedAt = Date.now();
    get(a, paused).pause(PAUSE_MS);
    await settle(200);
    const waiting = acquire(get(b, paused));
    // On `blocked`, A holds a permit whose answer will be the provider's 403; meanwhile B's two
    // requests wait on a pause (5 s): only the block's notice can fail them before it ends.
    const sent = await acquire(get(a, blocked));
    if (!isPermit(sent)) throw new Error('blocked: A refused before the block');
    get(b, blocked).pause(PAUSE_MS);
    await settle(100);
    const queued = [acquire(get(b, blocked)), acquire(get(b, blocked))];
    await settle(100);
    expect(get(b, blocked).snapshot.queued).toBe(2);
    const blockedAt = Date.now();
    sent.observe(responseLike(403, {}));
    sent.release();
    const errors = await Promise.race([Promise.all(queued), settle(3000).then(() => ['no notice within 3 s'])]);
    const tookMs = Date.now() - blockedAt;
    expect(errors).toHaveLength(2);
    for (const e of errors) expect(e).toBeInstanceOf(BlockedError);
    // Well before the pause could end (5 s): the notice failed them, and at once (a few ms; up
    // to a stall of a busy machine).
    expect(tookMs).toBeLessThan(2000);
    expect(get(b, blocked).isBlocked).toBe(true);
    // No other tenant of either process is blocked or paused.
    const now = Date.now();
    for (const pool of [a, b]) {
      const s = pool.snapshot().limiters;
      expect(s.length).toBeGreaterThan(TENANTS);
      expect(s.filter((l) => l.blocked !== null)).toHaveLength(1);
      expect(s.filter((l) => l.pausedUntil !== null && l.pausedUntil > now).length).toBeLessThanOrEqual(2);
    }
    // Other tenants, on every shard, are admitted meanwhile: all before either pause ends (held
    // by one, none could go sooner), which leaves seconds for 30 round trips on a busy machine.
    const fresh = Array.from({ length: 30 }, (_, i) => `cluster-fresh-other-${i}`);
    const t0 = Date.now();
    const others = await Promise.all(fresh.map((k) => acquire(get(b, k))));
    const othersMs = Date.now() - t0;
    expect(others.filter(isPermit)).toHaveLength(fresh.length);
    expect(Date.now()).toBeLessThan(pausedAt + PAUSE_MS);
    for (const q of others) (q as Permit).release();
    // The paused tenant's request in B went only once A's pause was over.
    const w = await waiting;
    expect(isPermit(w)).toBe(true);
    expect(Date.now() - pausedAt).toBeGreaterThanOrEqual(PAUSE_MS - 100);
    (w as Permit).release();
    get(a, blocked).unblock();
    const deadline = Date.now() + 2000;
    while (get(b, blocked).isBlocked && Date.now() < deadline) await settle(20);
    expect(get(b, blocked).isBlocked).toBe(false);
    expect(troubles).toEqual([]);
    console.log(
      `redis cluster pool: the block reached the other process's queued requests in ${tookMs} ms; ` +
        `30 other tenants admitted in ${othersMs} ms`,
    );
  }, 30_000);

  it('closing the pools closes their subscriber connections and leaves their clients alone', async () => {
    const admin = clients.at(-1) as Cluster;
    await a.close();
    await b.close();
    const deadline = Date.now() + 3000;
    let left = { all: 0, subscribers: 1 };
    while (Date.now() < deadline) {
      const ca = await connections(admin, `rxrl-cpool-a-${process.pid}`);
      const cb = await connections(admin, `rxrl-cpool-b-${process.pid}`);
      left = { all: ca.all + cb.all, subscribers: ca.subscribers + cb.subscribers };
      if (left.subscribers === 0) break;
      await settle(50);
    }
    expect(left.subscribers).toBe(0);
    // The callers' own clients are theirs to close: still connected.
    expect(await (clients[0] as Cluster).ping()).toBe('PONG');
  }, 30_000);
});
