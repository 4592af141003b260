/**
 * Rolling (sliding-window) buckets in the Redis store, as TEOS has: four real processes (forked
 * with tsx) on one token, real Redis, the TEOS simulator over loopback with time compressed;
 * and what one token's log costs in Redis at 10,000 calls in the window.
 */
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import { credentialLabel, startSimulator, type Simulator } from '../../../lib/testing/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import type { StoreSession } from '../../../lib/core/store.js';
import { REDIS } from '../../helpers/redis.js';
import { startWorker, type Worker, type WorkerJob } from './fork.js';

/** TEOS's minute and day, 6,000 times faster: a minute of 10 ms, a day of 14.4 s. */
const SCALE = 6000;
const MINUTE_MS = 60_000 / SCALE;
const DAY_MS = 86_400_000 / SCALE;
const PER_MINUTE = 20;
const PER_DAY = 80;
const PROCESSES = 4;
const REQUESTS = 40;

let sim: Simulator | undefined;
let workers: Worker[] = [];
const clients: Redis[] = [];

afterEach(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  workers = [];
  await sim?.close();
  sim = undefined;
});
afterAll(() => {
  for (const c of clients) c.disconnect();
});

describe('redis store: rolling windows shared by processes', () => {
  it("TEOS's rolling minute and day, four processes on one token: every request once, zero 429s", async () => {
    sim = await startSimulator({ timeScale: SCALE, latencyMs: 2, teos: { perMinute: PER_MINUTE, perDay: PER_DAY } });
    const job: WorkerJob = {
      url: sim.urlFor('teos'),
      token: 'teos-shared',
      requests: REQUESTS,
      streams: 10,
      redisPort: REDIS.port,
      prefix: `rxrl-rolling-${process.pid}-${Date.now()}:`,
      limit: PER_DAY,
      windowMs: DAY_MS,
      provider: 'teos',
      teos: { perMinute: PER_MINUTE, perDay: PER_DAY, minuteMs: MINUTE_MS, dayMs: DAY_MS },
      // A call counts until a window after it ended (at the latest when the server logged it):
      // the guard is a margin on top, one compressed minute here (a minute at this scale).
      resetGuardMs: MINUTE_MS,
      // A busy machine answers slowly at times: this test is about sharing, not outages.
      timeoutMs: 2000,
    };
    workers = Array.from({ length: PROCESSES }, () => startWorker(job));
    await Promise.all(workers.map((w) => w.ready));
    const started = Date.now();
    for (const w of workers) w.go();
    const results = await Promise.all(workers.map((w) => w.result));
    const elapsed = Math.max(...results.map((r) => r?.finishedAt ?? Infinity)) - started;
    const total = PROCESSES * REQUESTS;
    for (const r of results) {
      expect(r?.statuses).toHaveLength(REQUESTS);
      expect(r?.statuses.filter((s) => s !== 200)).toEqual([]);
    }
    if (process.env['RXRL_TRACE'])
      console.log(
        JSON.stringify(
          results.map((r) => r?.events.filter((e) => e.type !== 'admitted').map((e) => `${e.type}@${e.at - started}`)),
        ),
      );
    const counts = sim.stats().teos[credentialLabel('Bearer teos-shared')];
    expect(counts).toMatchObject({ ok: total, limited: 0, blocked: 0, sentWhileLimited: 0 });
    // The rolling day lets PER_DAY go at once, then each call waits for one to age out:
    // the last of `total` cannot go before window ⌈total / PER_DAY⌉ - 1 has passed.
    const physical = (Math.ceil(total / PER_DAY) - 1) * DAY_MS;
    // Printed, not asserted: a real-time ratio would measure how busy the machine is.
    console.log(
      `redis, ${PROCESSES} processes, TEOS rolling minute + day: ${total} requests in ${elapsed} ms; ` +
        `physical limit ${physical} ms; ratio ${(elapsed / physical).toFixed(3)}`,
    );
  }, 60_000);

  it("one token's rolling day in Redis at 10,000 calls in the window: memory measured, log bounded", async () => {
    const client = new Redis({ port: REDIS.port, host: '127.0.0.1' });
    clients.push(client);
    const secret = 'rx-ratelimit-test-secret';
    const prefix = `rxrl-rolling-mem-${process.pid}-${Date.now()}:`;
    const store = redisStore({ client, secret, prefix, subscribe: false });
    const session = store.open({ key: 'teos-token', provider: 'teos', emit: () => undefined });
    if (!session) throw new Error('no session');
    const day = {
      name: 'day',
      limit: 10_000,
      windowMs: 86_400_000,
      quota: true,
      pacing: 'burst',
      rolling: true,
    } as const;
    const options = { coldStartConcurrency: 1, resetGuardMs: 50 };
    // The first call ends the cold start.
    const first = await session.acquire([day], 1, options);
    session.observe(
      first.leases[0],
      [{ name: 'day', limit: 10_000, remaining: 9_999, resetInMs: undefined, windowMs: undefined, index: 0 }],
      [day],
    );
    let sent = 1;
    while (sent < 10_000) {
      const grant = await session.acquire([day], Math.min(64, 10_000 - sent), options);
      expect(grant.leases.length).toBeGreaterThan(0);
      for (const lease of grant.leases) session.release(lease, [day]);
      sent += grant.leases.length;
    }
    // The 10,001st waits for the oldest call to age out: about a day.
    const full = await session.acquire([day], 1, options);
    expect(full.leases).toHaveLength(0);
    expect(full.waitMs).toBeGreaterThan(86_000_000);
    expect(full.buckets[0]?.remaining).toBe(0);
    await client.ping(); // the releases have run
    const keys = redisKeys(prefix, 'teos', 'teos-token', secret);
    expect(await client.llen(keys.log('day'))).toBe(10_000);
    const names = await client.keys(`${prefix}*`);
    let bytes = 0;
    const each: string[] = [];
    for (const name of names) {
      const n = Number((await client.call('MEMORY', 'USAGE', name, 'SAMPLES', '0')) ?? 0);
      bytes += n;
      each.push(`${name.slice(prefix.length + 19)} ${n}`);
    }
    console.log(
      `redis memory of one token's rolling day at 10,000 calls in the window: ${bytes} bytes ` +
        `(${(bytes / 10_000).toFixed(1)} per call; ${each.join(', ')})`,
    );
    // A list of times: tens of bytes per call at most (a sorted set of ids would take ~100).
    expect(bytes).toBeLessThan(10_000 * 40);
    await session.close();
  }, 60_000);
});

/**
 * Calls of ours that reach the server in another order than they were sent, with another client
 * of the token spending in the window, through the Redis store's scripts: a model server (limit
 * 5, a window far longer than the test) counts each call when it arrives and refuses one that
 * finds the window full.
 */
describe('redis store: rolling windows whose calls reach the server out of order', () => {
  const LIMIT = 5;
  const spec = {
    name: 'b',
    limit: LIMIT,
    windowMs: 60_000,
    quota: false,
    pacing: 'burst',
    rolling: true,
  } as const;
  const options = { coldStartConcurrency: 1, resetGuardMs: 50 };
  const sessions: StoreSession[] = [];
  afterEach(async () => {
    for (const session of sessions.splice(0)) await session.close();
  });

  async function open(name: string) {
    const client = new Redis({ port: REDIS.port, host: REDIS.host });
    clients.push(client);
    const store = redisStore({
      client,
      secret: 'rx-ratelimit-test-secret',
      subscribe: false,
      prefix: `rxrl-reorder-${process.pid}-${Date.now()}:`,
    });
    const session = store.open({ key: name, provider: 'hubspot', emit: () => undefined });
    if (!session) throw new Error('no session');
    sessions.push(session);
    /** Calls the model server counted in the window (the other client's first), and each refusal. */
    const counted: string[] = [];
    const refused: string[] = [];
    /** A call reaches the server: counted, or refused when the window is full. Returns what is left. */
    const arrive = (call: string): number => {
      if (counted.length >= LIMIT) refused.push(call);
      else counted.push(call);
      return LIMIT - counted.length;
    };
    /** The answer of a call comes back with what was left when it arrived. */
    const answer = async (lease: string | undefined, index: number, remaining: number) => {
      session.observe(
        lease,
        [{ name: 'b', limit: LIMIT, remaining, resetInMs: undefined, windowMs: undefined, index }],
        [spec],
      );
      await client.ping(); // the script has run
    };
    const acquire = async (count: number) => (await session.acquire([spec], count, options)).leases;
    return { session, counted, refused, arrive, answer, acquire };
  }

  it('a later call read first does not count an earlier one still on its way: no sixth call in the window', async () => {
    // Another client spent 2 calls. Our first call (0) reads 2 left. Calls 1 and 2 go together;
    // 2 reaches the server first, its answer reads 1 left while 1 is still on its way. Taking 1
    // as counted by that answer read one call of the other client as ours, and a fourth call of
    // ours went: with 1, the sixth in the window.
    const s = await open('reorder');
    s.arrive('other');
    s.arrive('other');
    const [a] = await s.acquire(1);
    await s.answer(a, 0, s.arrive('a'));
    const [b, c] = await s.acquire(2);
    expect(c).toBeDefined();
    await s.answer(c, 2, s.arrive('c'));
    const more = await s.acquire(1);
    for (const lease of more) s.arrive(lease);
    await s.answer(b, 1, s.arrive('b'));
    // Every slot of the window is spent: nothing more goes, and the server refused nothing.
    expect(await s.acquire(1)).toEqual([]);
    expect(s.refused).toEqual([]);
    expect(more).toEqual([]);
  });

  it('a later call let go before its answer is not counted by an earlier one that arrived first', async () => {
    // Another client spent 1 call. Our first call (0) reads 3 left. Calls 1 and 2 go together;
    // 2 is let go before any answer and reaches the server after 1, whose answer (2 left) did
    // not count it. Taking 2 as counted read the other client's call as ours: two more calls
    // went, and the second was the sixth in the window.
    const s = await open('let-go');
    s.arrive('other');
    const [a] = await s.acquire(1);
    await s.answer(a, 0, s.arrive('a'));
    const [b, c] = await s.acquire(2);
    expect(c).toBeDefined();
    if (c !== undefined) s.session.release(c, [spec]);
    await s.answer(b, 1, s.arrive('b'));
    s.arrive('c');
    const more = await s.acquire(2);
    for (const lease of more) s.arrive(lease);
    expect(s.refused).toEqual([]);
    expect(more).toHaveLength(1);
  });
  it('a call let go before its answer and still on its way is not counted by a later call that arrived first', async () => {
    // Another client spent 2 calls. Our first call (0) is let go before any answer, still on
    // its way; call 1, sent after, arrives first and reads 2 left. Taking 0 as counted because
    // a call sent after it was let go was read took one call of the other client as ours: two
    // more calls went, and with 0 the sixth in the window.
    const s = await open('let-go-slow');
    s.arrive('other');
    s.arrive('other');
    const [a] = await s.acquire(1);
    expect(a).toBeDefined();
    if (a !== undefined) s.session.release(a, [spec]);
    const [b] = await s.acquire(1);
    expect(b).toBeDefined();
    await s.answer(b, 1, s.arrive('b'));
    const more = await s.acquire(3);
    for (const lease of more) s.arrive(lease);
    s.arrive('a');
    expect(s.refused).toEqual([]);
    expect(more).toHaveLength(1);
  });
});
