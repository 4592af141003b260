/**
 * Several processes, one Shopify token, one leaky bucket in Redis: real processes (forked with
 * tsx, spec/integration/redis/worker.ts), real Redis, the simulator's Shopify REST Admin API
 * over real sockets (a bucket of 40 that restores 20 a second, `X-Shopify-Shop-Api-Call-Limit`
 * on every answer). Each process alone would believe the whole bucket is its own; through Redis
 * they share it: every request answered once, zero 429s, and never faster than the bucket
 * allows. And Redis stopped mid-run and restarted empty: each process spends its share of the
 * capacity and rate meanwhile, and what it spent is taken off the bucket when Redis is back.
 * The GraphQL Admin API the same way, in cost points: each query's cost is estimated before it
 * goes and reconciled from its answer's body (`actualQueryCost`, `throttleStatus`), and no
 * query of any process is `THROTTLED`.
 */
import { afterEach, describe, expect, it } from '@jest/globals';

import { credentialLabel, startSimulator, type Simulator } from '../../../lib/testing/index.js';
import { freePort, REDIS } from '../../helpers/redis.js';
import { shopifyQuery, startWorker, tempRedis, until, type Worker, type WorkerJob } from './fork.js';

const BUCKET = 40;
const PER_SECOND = 20;
const PROCESSES = 3;
const REQUESTS = 40;

let sim: Simulator | undefined;
let workers: Worker[] = [];

afterEach(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  workers = [];
  await sim?.close();
  sim = undefined;
});

function job(s: Simulator, over: Partial<WorkerJob> = {}): WorkerJob {
  return {
    url: s.urlFor('shopify'),
    token: 'shpat-shared',
    requests: REQUESTS,
    streams: 10,
    redisPort: REDIS.port,
    prefix: `rxrl-shopify-${process.pid}-${Date.now()}:`,
    limit: BUCKET,
    windowMs: 0,
    provider: 'shopify',
    shopify: { bucket: BUCKET, perSecond: PER_SECOND },
    // Redis's own default timeout (1 s): on a loaded 2-core machine 300 ms declared Redis away
    // now and then, and this test is about sharing (the outage test below is about that).
    timeoutMs: 1000,
    ...over,
  };
}

async function startAll(j: WorkerJob): Promise<Worker[]> {
  workers = Array.from({ length: PROCESSES }, () => startWorker(j));
  await Promise.all(workers.map((w) => w.ready));
  return workers;
}

const counts = (s: Simulator) => s.stats().shopify[credentialLabel('Bearer shpat-shared')];

describe('redis store: processes sharing one Shopify token (a leaky bucket)', () => {
  it('three processes complete every request once with zero 429s, never faster than the bucket allows', async () => {
    sim = await startSimulator({ latencyMs: 2, shopify: { restBucket: BUCKET, restPerSecond: PER_SECOND } });
    const all = await startAll(job(sim));
    const started = Date.now();
    for (const w of all) w.go();
    const results = await Promise.all(all.map((w) => w.result));
    const elapsed = Math.max(...results.map((r) => r?.finishedAt ?? Infinity)) - started;
    const total = PROCESSES * REQUESTS;
    // The bucket is full at the start: 40 at once, the other 80 at 20 a second.
    const least = ((total - BUCKET) / PER_SECOND) * 1000;
    // Shown beside the counts when they fail: whether a process fell back to its local share.
    const outages = results.flatMap((r) => (r?.events ?? []).filter((e) => e.type === 'store-unavailable')).length;
    for (const r of results) {
      expect(r?.statuses).toHaveLength(REQUESTS);
      expect(r?.statuses.filter((s) => s !== 200)).toEqual([]);
    }
    expect({ counts: counts(sim), outages }).toMatchObject({
      counts: { ok: total, limited: 0, blocked: 0, sentWhileLimited: 0 },
      outages,
    });
    expect(elapsed).toBeGreaterThanOrEqual(least);
    // How close to the least time: a real-time ratio here would measure how busy the machine is.
    console.log(
      `redis, ${PROCESSES} processes, shopify REST: ${total} requests in ${elapsed} ms; least ${least} ms; ratio ${(elapsed / least).toFixed(3)}`,
    );
  }, 60_000);

  it('GraphQL: three processes spend one bucket of cost points, estimated then reconciled from the body: every query answered once, none THROTTLED', async () => {
    // 1,000 points restoring 1,000 a second; each process sends 40 queries of 20…100 points.
    const points = 1000;
    sim = await startSimulator({ latencyMs: 2, shopify: { graphqlBucket: points, graphqlPerSecond: points } });
    const all = await startAll(job(sim, { shopify: { bucket: points, perSecond: points, api: 'graphql' } }));
    const started = Date.now();
    for (const w of all) w.go();
    const results = await Promise.all(all.map((w) => w.result));
    const elapsed = Math.max(...results.map((r) => r?.finishedAt ?? Infinity)) - started;
    const total = PROCESSES * REQUESTS;
    // What the queries really cost, all processes together: the bucket holds 1,000 of it at
    // the start, the rest comes back at 1,000 a second.
    const spent =
      PROCESSES * Array.from({ length: REQUESTS }, (_, i) => shopifyQuery(i).actual).reduce((a, b) => a + b);
    const least = ((spent - points) / points) * 1000;
    const outages = results.flatMap((r) => (r?.events ?? []).filter((e) => e.type === 'store-unavailable')).length;
    for (const r of results) {
      expect(r?.statuses).toHaveLength(REQUESTS);
      expect(r?.statuses.filter((s) => s !== 200)).toEqual([]);
      // No query ended in a GraphQL error (a throttled one would be sent again: the
      // simulator's count below says whether any was).
      expect(r?.errors).toEqual([]);
    }
    // `limited`: THROTTLED answers (a 200 refusing the query), none from any process.
    expect({ counts: counts(sim), outages }).toMatchObject({
      counts: { ok: total, limited: 0, blocked: 0, sentWhileLimited: 0 },
      outages,
    });
    expect(elapsed).toBeGreaterThanOrEqual(least);
    console.log(
      `redis, ${PROCESSES} processes, shopify GraphQL: ${total} queries (${spent} points) in ${elapsed} ms; least ${least} ms; ratio ${(elapsed / least).toFixed(3)}`,
    );
  }, 60_000);

  it('Redis stopped and restarted empty mid-run: every request answered once, zero 429s', async () => {
    const redis = tempRedis(await freePort());
    await redis.start();
    try {
      sim = await startSimulator({ latencyMs: 2, shopify: { restBucket: BUCKET, restPerSecond: PER_SECOND } });
      // The 1 s timeout of the tests above: a stopped Redis is noticed at once all the same (its
      // connection closes; checked below). With 300 ms a process stalled by a loaded machine
      // could declare Redis away while the others kept using it.
      const all = await startAll(job(sim, { redisPort: redis.port, requests: 60 }));
      for (const w of all) w.go();
      await until(() => all.reduce((n, w) => n + w.done, 0) >= 60);
      // Timed from before the stop: a process may notice it before redis-server's exit is seen here.
      const stoppedAt = Date.now();
      await redis.stop();
      await new Promise((r) => setTimeout(r, 1500));
      const restartedAt = Date.now();
      await redis.start();
      const results = await Promise.all(all.map((w) => w.result));
      const events = results.map((r) => (r?.events ?? []).map((e) => e.type));
      for (const r of results) {
        expect(r?.statuses).toHaveLength(60);
        expect(r?.statuses.filter((s) => s !== 200)).toEqual([]);
      }
      expect({ counts: counts(sim), events }).toMatchObject({
        counts: { ok: PROCESSES * 60, limited: 0, blocked: 0, sentWhileLimited: 0 },
      });
      // Each process met the outage and came back from it.
      for (const e of events) {
        expect(e).toContain('store-unavailable');
        expect(e).toContain('store-recovered');
      }
      // Noticed at once despite the 1 s timeout: the calls met the closed connection's own error
      // (ioredis gives up after one reconnect), none waited out the timeout ("no answer within").
      const during = results.flatMap((r) =>
        (r?.events ?? []).filter((e) => e.type === 'store-unavailable' && e.at >= stoppedAt && e.at <= restartedAt),
      );
      expect(during.length).toBeGreaterThanOrEqual(1);
      expect(during.filter((e) => e.error?.startsWith('no answer within'))).toEqual([]);
    } finally {
      await redis.stop();
    }
  }, 90_000);
});
