/**
 * Calls that end without a figure of a fixed window, through the Redis store, against the tests'
 * Redis (spec/helpers/redis.ts; own key prefix, every key with a TTL): answered without one (a
 * HubSpot search's answer tells no daily count), let go (an error, an abort), or their lease
 * lapsed. The server may count such a call after a call whose figure is read later, so that
 * figure does not hold it: as `Bucket` in memory (`endedUnread`), Redis keeps their units off
 * every figure, as it does calls in flight, until a figure from a call admitted after the last
 * of them ended is read, and a refill ends them. Before, Redis gave the unit back (or forgot the
 * call), and processes sharing a HubSpot token earned a 429 DAILY at the end of the day.
 *
 * Each session or limiter has its own store (and each limiter its own ioredis client), as
 * separate processes would. Time is asserted as order only, never as margins.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Redis } from 'ioredis';

import {
  createLimiter,
  isQuotaExhaustedError,
  providers,
  responseLike,
  type Limiter,
  type Permit,
  type RateLimitError,
  type ResponseLike,
} from '../../../lib/index.js';
import type { StoreAcquireOptions, StoreBucketSpec, StoreSession } from '../../../lib/core/store.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { createSimulatorEngine, type SimulatorEngine } from '../../../lib/testing/index.js';
import { closedAfterEach, REDIS } from '../../helpers/redis.js';
import { until } from './fork.js';

const secret = 'rx-ratelimit-test-secret';
const prefix = `rxrl-ended-unread-${process.pid}-${Date.now()}:`;
const { clients, limiters, tickets } = closedAfterEach();
const sessions: StoreSession[] = [];
afterAll(async () => {
  for (const s of sessions.splice(0)) await s.close();
});

const client = () => {
  const c = new Redis({ port: REDIS.port, host: REDIS.host });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};

let keys = 0;

describe('redis store: a fixed window keeps the calls that ended without its figure', () => {
  const spec: StoreBucketSpec = {
    name: 'b',
    limit: 5,
    windowMs: 60_000,
    quota: false,
    pacing: 'burst',
    rolling: false,
  };
  const options: StoreAcquireOptions = { coldStartConcurrency: 1, resetGuardMs: 50 };

  /** A process's session of credential `key` (its own store; `leaseMs` as given). */
  function open(c: Redis, key: string, leaseMs?: number): StoreSession {
    const s = redisStore({
      client: c,
      secret,
      prefix,
      subscribe: false,
      timeoutMs: 2000,
      ...(leaseMs === undefined ? {} : { leaseMs }),
    }).open({
      key,
      provider: 'ended-unread',
      emit: () => undefined,
    });
    if (!s) throw new Error('no session');
    sessions.push(s);
    return s;
  }

  /** One request admitted: its lease and admission index. */
  async function admit(s: StoreSession): Promise<{ lease: string; index: number }> {
    const grant = await s.acquire([spec], 1, options);
    const lease = grant.leases[0];
    if (lease === undefined) throw new Error('not granted');
    return { lease, index: grant.buckets[0]?.admitted ?? -1 };
  }

  /** The answer to a request: the window's figure (`remaining`), or none. */
  async function answer(c: Redis, s: StoreSession, r: { lease: string; index: number }, remaining?: number) {
    const figure = remaining === undefined ? {} : { limit: 5, remaining, resetInMs: 30_000 };
    s.observe(
      r.lease,
      [
        {
          name: 'b',
          limit: undefined,
          remaining: undefined,
          resetInMs: undefined,
          windowMs: undefined,
          ...figure,
          ...{ index: r.index },
        },
      ],
      [spec],
    );
    await c.ping(); // the store's write has run
  }

  /**
   * The window read (4 left), a call of process a and one of process b admitted, b's ended
   * (`end`), then a's answer read: 3 left, which may not count b's call. Returns a's session.
   */
  async function endedBeforeFigure(
    c: Redis,
    end: (b: StoreSession, r: { lease: string; index: number }) => Promise<void>,
    leaseMs?: number,
  ): Promise<StoreSession> {
    const key = `token-${++keys}`;
    const a = open(c, key);
    const b = open(c, key, leaseMs);
    await answer(c, a, await admit(a), 4);
    const first = await admit(a);
    const searched = await admit(b);
    await end(b, searched);
    await answer(c, a, first, 3);
    return a;
  }

  /**
   * What the window has next: 2 left (3 less b's call), 1 after one more call; then that call's
   * figure (it was admitted after b's call ended, so the server counted b's first) counts b's
   * call: 1 left is 1, not 1 less b's.
   */
  async function countedUntilLaterFigure(c: Redis, a: StoreSession): Promise<void> {
    // Before the fix: 2 left after it (3 left, b's call forgotten), where the server had 1.
    const next = await a.acquire([spec], 1, options);
    expect({ granted: next.leases.length, remaining: next.buckets[0]?.remaining }).toEqual({
      granted: 1,
      remaining: 1,
    });
    await answer(c, a, { lease: next.leases[0] as string, index: next.buckets[0]?.admitted ?? -1 }, 1);
    const last = await a.acquire([spec], 5, options);
    expect({ granted: last.leases.length, remaining: last.buckets[0]?.remaining }).toEqual({
      granted: 1,
      remaining: 0,
    });
  }

  it('a call answered without the figure stays counted until a figure from a call admitted after it is read', async () => {
    const c = client();
    const a = await endedBeforeFigure(c, (b, r) => answer(c, b, r));
    await countedUntilLaterFigure(c, a);
  });

  it('a call let go without an answer (RELEASE) stays counted the same', async () => {
    const c = client();
    const a = await endedBeforeFigure(c, async (b, r) => {
      b.release(r.lease, [spec]);
      await c.ping();
    });
    await countedUntilLaterFigure(c, a);
  });

  it('a call whose lease lapsed (its process died) stays counted the same', async () => {
    const c = client();
    // Process b's leases lapse after 100 ms; it never answers.
    const a = await endedBeforeFigure(c, () => new Promise((r) => setTimeout(r, 300)), 100);
    await countedUntilLaterFigure(c, a);
  });

  it('a call whose figure is dropped as a window refilled past stays counted the same', async () => {
    // A call sent just before the window's end may be counted by the server in the next window,
    // its answer read once the store has refilled past that end: the store drops its figure (it
    // may be the old window's), but the call stays counted beside the new window's figures.
    const c = client();
    const a = open(c, `token-${++keys}`);
    const told = async (r: { lease: string; index: number }, remaining: number, resetInMs?: number) => {
      a.observe(r.lease, [{ name: 'b', limit: 5, remaining, resetInMs, windowMs: undefined, index: r.index }], [spec]);
      await c.ping();
    };
    // The window read: 4 left, ending within a second.
    await told(await admit(a), 4, 500);
    const late = await admit(a);
    // Past its end (and the guard): the next admission refills the window, and goes.
    await new Promise((r) => setTimeout(r, 1_600));
    const next = await admit(a);
    // The server counted `next` first (4 left), then `late` (3 left), whose answer comes first.
    await told(late, 3);
    await told(next, 4);
    // Before: 4 left once `late` left the calls in flight, where the server had 3.
    const rest = await a.acquire([spec], 5, options);
    expect({ granted: rest.leases.length, remaining: rest.buckets[0]?.remaining }).toEqual({
      granted: 3,
      remaining: 0,
    });
  });

  /**
   * The round trips take about 800 ms; a call let go 20 ms after it went may still reach the
   * server up to a trip after it went. Then a call sent after the release, on a faster path, is
   * counted first: its figure (3 left) does not count the call let go. Returns the session.
   */
  async function letGoOnItsWay(c: Redis): Promise<StoreSession> {
    const a = open(c, `token-${++keys}`);
    const slow = await admit(a);
    await new Promise((r) => setTimeout(r, 800));
    await answer(c, a, slow, 4);
    const gone = await admit(a);
    await new Promise((r) => setTimeout(r, 20));
    a.release(gone.lease, [spec]);
    await c.ping();
    await answer(c, a, await admit(a), 3);
    return a;
  }

  it('a call let go on its way stays counted beside a figure from a call that may have overtaken it', async () => {
    // Before, the figure of the call sent after the release ended it, and the window's last unit
    // went twice: 3 granted where the server had 2 left once the call let go arrived.
    const a = await letGoOnItsWay(client());
    const next = await a.acquire([spec], 5, options);
    expect({ granted: next.leases.length, remaining: next.buckets[0]?.remaining }).toEqual({
      granted: 2,
      remaining: 0,
    });
  });

  it('a call let go on its way is counted by the figure of a call sent once it could have arrived', async () => {
    const c = client();
    const a = await letGoOnItsWay(c);
    await new Promise((r) => setTimeout(r, 1_000));
    // The server: the call let go arrived (2 left), then this one (1 left).
    await answer(c, a, await admit(a), 1);
    const last = await a.acquire([spec], 5, options);
    expect({ granted: last.leases.length, remaining: last.buckets[0]?.remaining }).toEqual({
      granted: 1,
      remaining: 0,
    });
  });

  it('a figure from a call admitted before the call ended does not end it, however many come', async () => {
    const c = client();
    const key = `token-${++keys}`;
    const a = open(c, key);
    const b = open(c, key);
    await answer(c, a, await admit(a), 4);
    const early = [await admit(a), await admit(a)];
    const searched = await admit(b);
    await answer(c, b, searched);
    // Both early calls were counted before the search (2 left, then 1 after the search).
    await answer(c, a, early[0] as { lease: string; index: number }, 2);
    await answer(c, a, early[1] as { lease: string; index: number }, 2);
    const next = await a.acquire([spec], 5, options);
    expect({ granted: next.leases.length, remaining: next.buckets[0]?.remaining }).toEqual({
      granted: 1,
      remaining: 0,
    });
  });
});

/** The simulator's clock: noon UTC of a fixed day, running in real time (midnight, the reset, is 12 h off). */
const ROUND_START = Date.UTC(2026, 10, 23, 12, 0, 0);
const SEARCH = '/crm/v3/objects/contacts/search';

/** A fresh HubSpot account of `perDay` calls a day (its own keys in Redis) and the simulator that counts its day. */
function account(perDay: number): { key: string; engine: SimulatorEngine; inflight: () => Promise<number> } {
  const key = `hubspot-ended-${++keys}`;
  const t0 = Date.now();
  const engine = createSimulatorEngine({ hubspot: { perDay }, now: () => ROUND_START + (Date.now() - t0) });
  const set = redisKeys(prefix, 'hubspot', key, secret).inflight('daily');
  const admin = client();
  return { key, engine, inflight: () => admin.zcard(set) };
}

/** A limiter of `key` on the Redis store, as one process would have it (its own client and store). */
function limiter(key: string, perDay: number): Limiter {
  const l = createLimiter({
    provider: providers.hubspot({ hints: { daily: { limit: perDay } } }),
    key,
    coldStartConcurrency: 3,
    store: redisStore({ client: client(), secret, prefix, timeoutMs: 1000, retryMs: 200, keyTtlMs: 60_000 }),
  });
  limiters.push(l);
  return l;
}

/** One call through `acquire`: sent (counted by the server) when the test says, answered when it says. */
interface Call {
  readonly path: string;
  permit?: Permit;
  answer?: ResponseLike;
  error?: RateLimitError;
}

function ask(l: Limiter, path: string): Call {
  const call: Call = { path };
  const search = path === SEARCH;
  tickets.push(
    l.acquire(
      { method: search ? 'POST' : 'GET', url: path },
      { granted: (permit) => (call.permit = permit), rejected: (e) => (call.error = e) },
    ),
  );
  return call;
}

function send(engine: SimulatorEngine, call: Call): number {
  const res = engine.handle({
    provider: 'hubspot',
    method: call.path === SEARCH ? 'POST' : 'GET',
    path: call.path,
    headers: { Authorization: 'Bearer hs' },
  });
  call.answer = responseLike(res.status, res.headers, res.body);
  return res.status;
}

function answer(call: Call): void {
  call.permit?.observe(call.answer as ResponseLike);
  call.permit?.release();
}

describe('redis store: processes sharing a HubSpot token, searches among their calls', () => {
  it('a search the server counts after a call whose figure is read later: its unit stays spent, no call past the day', async () => {
    // Four a day. Process a's GET and process b's search go out together; the server counts the
    // GET (3 left… 2 left, it reads) and then the search, whose answer (no daily figure) is back
    // before the GET's. Forgotten once answered, the search left Redis one unit the server had
    // not: both of b's next GETs went, and the second met a 429 DAILY.
    const perDay = 4;
    const acct = account(perDay);
    const a = limiter(acct.key, perDay);
    const b = limiter(acct.key, perDay);
    const statuses: number[] = [];
    const first = ask(a, '/crm/v3/objects/contacts/1');
    await until(() => first.permit !== undefined);
    statuses.push(send(acct.engine, first));
    answer(first);
    await until(async () => (await acct.inflight()) === 0);
    const get = ask(a, '/crm/v3/objects/contacts/2');
    const search = ask(b, SEARCH);
    await until(() => get.permit !== undefined && search.permit !== undefined);
    statuses.push(send(acct.engine, get), send(acct.engine, search));
    answer(search);
    await until(async () => (await acct.inflight()) === 1);
    answer(get);
    await until(async () => (await acct.inflight()) === 0);
    // One unit is left of the day: one of the two goes, the other fails typed, never sent.
    const later = [ask(b, '/crm/v3/objects/contacts/3'), ask(b, '/crm/v3/objects/contacts/4')];
    await until(() => later.every((c) => c.permit !== undefined || c.error !== undefined));
    for (const c of later) if (c.permit) statuses.push(send(acct.engine, c));
    for (const c of later) answer(c);
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(later.filter((c) => c.permit !== undefined)).toHaveLength(1);
    const refused = later.find((c) => c.permit === undefined);
    expect(isQuotaExhaustedError(refused?.error)).toBe(true);
    expect(refused?.error).toMatchObject({ bucket: 'daily' });
  });

  it('two processes, GETs and searches at any time with jittered latency: no 429; the day spent but for at most one unit per search', async () => {
    // In real time: each call is counted by the server a few ms after its grant and answered a
    // few ms after that, so the server counts in another order than Redis admitted and answers
    // come back in yet another. As the memory property (spec/reliability/hubspot.properties.spec.ts).
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          perDay: fc.integer({ min: 2, max: 8 }),
          calls: fc.array(
            fc.record({
              search: fc.boolean(),
              process: fc.integer({ min: 0, max: 1 }),
              at: fc.integer({ min: 0, max: 20 }),
              up: fc.integer({ min: 0, max: 12 }),
              down: fc.integer({ min: 0, max: 12 }),
            }),
            { minLength: 1, maxLength: 12 },
          ),
        }),
        async ({ perDay, calls }) => {
          const acct = account(perDay);
          const processes = [limiter(acct.key, perDay), limiter(acct.key, perDay)];
          const statuses: number[] = [];
          const ended: string[] = [];
          await Promise.all(
            calls.map(async (c, i) => {
              await sleep(c.at);
              const path = c.search ? SEARCH : `/crm/v3/objects/contacts/${i}`;
              const call = ask(processes[c.process] as Limiter, path);
              await until(() => call.permit !== undefined || call.error !== undefined);
              if (!call.permit) {
                ended.push(isQuotaExhaustedError(call.error) ? 'quota' : String(call.error?.name));
                return;
              }
              await sleep(c.up);
              statuses.push(send(acct.engine, call));
              await sleep(c.down);
              answer(call);
              ended.push('answered');
            }),
          );
          for (const l of processes) await l.close();
          const searches = calls.filter((c) => c.search).length;
          const answered = ended.filter((e) => e === 'answered').length;
          const most = Math.min(perDay, calls.length);
          expect(statuses.filter((s) => s === 429)).toEqual([]);
          expect(answered).toBeLessThanOrEqual(most);
          expect(answered).toBeGreaterThanOrEqual(most - searches);
          expect(ended.filter((e) => e !== 'answered' && e !== 'quota')).toEqual([]);
        },
      ),
      { numRuns: 12 },
    );
  }, 120_000);
});
