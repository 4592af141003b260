/**
 * The Redis store: no form of the token in any key, value, command, pub/sub channel or
 * message the store sends to Redis (every command seen by MONITOR, every key under the prefix
 * with its contents, every message on the prefix's channels), nor in what it adds to the
 * limiter (events, state, the limiter as printed, every string reachable from it), including
 * when Redis is unreachable (`store-unavailable`). A real Redis (spec/helpers/redis.ts), a unique prefix.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type Redis } from 'ioredis';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { inspect } from 'node:util';
import { catchError, EMPTY, from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { fromFetch } from 'rxjs/fetch';

import { createLimiter, providers, rateLimit, type Limiter } from '../../lib/index.js';
import { redisKeys, redisStore } from '../../lib/stores/redis/index.js';
import { startSimulator, type Simulator } from '../../lib/testing/index.js';
import { REDIS, processClient } from '../helpers/redis.js';
import { reachableStrings } from '../helpers/scan.js';
import { makeToken, scanLimiter, SecretScan, watch } from './secretScan.js';

const prefix = `rxrl-secrets-${process.pid}-${randomBytes(4).toString('hex')}:`;
const scan = new SecretScan();
/** The store's secret: like the token, it must appear in no key, value, message or output. */
const STORE_SECRET = scan.token(makeToken('storesecret'));
const clients: Redis[] = [];
const client = (port = REDIS.port) => processClient(port, clients);

let sim: Simulator;
let procoreSim: Simulator;
let monitor: Awaited<ReturnType<Redis['monitor']>>;
const commands: string[][] = [];
const messages: string[][] = [];
let subscriber: Redis;

beforeAll(async () => {
  sim = await startSimulator({
    latencyMs: 2,
    pipedrive: { plan: 'essential' },
    abuse: { '429sBeforeBlock': 2, blockMs: 1500 },
  });
  procoreSim = await startSimulator({ latencyMs: 2, timeScale: 3600, procore: { limit: 10 } });
  monitor = await client().monitor();
  monitor.on('monitor', (_time: string, args: string[]) => commands.push(args));
  subscriber = client();
  subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => messages.push([channel, message]));
  await subscriber.psubscribe(`${prefix}*`);
});

afterAll(async () => {
  // Clean up every key under the prefix.
  const c = client();
  let cursor = '0';
  do {
    const [next, keys] = await c.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await c.del(...keys);
  } while (cursor !== '0');
  monitor.disconnect();
  for (const x of clients) x.disconnect();
  await sim.close();
  await procoreSim.close();
});

/** Sends `n` GETs through the limiter, the token as the provider wants it; collects errors. */
function run(limiter: Limiter, base: string, pipedrive: boolean, token: string, n: number, errors: unknown[]) {
  return lastValueFrom(
    from(Array.from({ length: n }, (_, i) => i)).pipe(
      mergeMap((i) => {
        const url = pipedrive ? `${base}/v1/deals/${i}?api_token=${token}` : `${base}/rest/v1.0/projects/${i}`;
        return fromFetch(url, pipedrive ? {} : { headers: { Authorization: `Bearer ${token}` } }).pipe(
          rateLimit(limiter, { url, priority: i % 2 }, { maxRetries: 1 }),
          mergeMap(async (res) => {
            await res.arrayBuffer();
            return res.status;
          }),
          catchError((e: unknown) => {
            errors.push(e);
            return EMPTY;
          }),
        );
      }, 10),
      toArray(),
    ),
  );
}

describe('redis store', () => {
  it('two processes sharing a token: 429s, pauses, a block, a full queue; nothing in Redis or in output holds the token', async () => {
    const before = scan.leaks.length;
    const errors: unknown[] = [];
    const limiters: Limiter[] = [];
    for (const target of ['pipedrive', 'procore'] as const) {
      const token = scan.token(makeToken(`redis${target.slice(0, 4)}`));
      const base = (target === 'pipedrive' ? sim : procoreSim).urlFor(target);
      const provider = () =>
        target === 'pipedrive'
          ? providers.pipedrive({ plan: 'essential' })
          : providers.procore({ hints: { hourly: { limit: 10, windowMs: 1000 } } });
      const make = (o = {}) => {
        const l = createLimiter({
          provider: provider(),
          key: token,
          maxWaitMs: 3000,
          store: redisStore({ client: client(), secret: STORE_SECRET, prefix, timeoutMs: 500, retryMs: 200 }),
          ...o,
        });
        watch(scan, l, ' (Redis)');
        limiters.push(l);
        return l;
      };
      const a = make();
      const b = make({ maxQueue: 2 });
      await Promise.all([
        run(a, base, target === 'pipedrive', token, 15, errors),
        run(b, base, target === 'pipedrive', token, 15, errors),
      ]);
      // Someone else spends the budget: 429s shared as pauses, Pipedrive's block shared.
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          fetch(
            target === 'pipedrive' ? `${base}/v1/deals/${i}?api_token=${token}` : `${base}/rest/v1.0/projects/${i}`,
            target === 'pipedrive' ? {} : { headers: { Authorization: `Bearer ${token}` } },
          ).then((r) => r.arrayBuffer()),
        ),
      );
      const busy = Promise.all([
        run(a, base, target === 'pipedrive', token, 10, errors),
        run(b, base, target === 'pipedrive', token, 10, errors),
      ]);
      for (const l of [a, b]) scanLimiter(scan, l, ' (Redis)');
      await busy;
      a.unblock();
    }
    for (const l of limiters) {
      scanLimiter(scan, l, ' (Redis)');
      scan.strings('every string reachable from the limiter (Redis)', reachableStrings(l));
    }
    for (const e of errors) scan.error('errors delivered (Redis)', e);
    expect(new Set(errors.map((e) => (e as Error).name))).toContain('BlockedError');
    await new Promise((r) => setTimeout(r, 100));

    // Everything under the prefix: names and contents.
    const c = client();
    let cursor = '0';
    const keys: string[] = [];
    do {
      const [next, found] = await c.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    // Bucket hashes and peers of both tokens at least (pauses and in-flight sets may have lapsed).
    expect(keys.length).toBeGreaterThanOrEqual(4);
    scan.strings('Redis key names', keys, keys.length);
    for (const key of keys) {
      const type = await c.type(key);
      const contents =
        type === 'hash'
          ? Object.entries(await c.hgetall(key)).flat()
          : type === 'zset'
            ? await c.zrange(key, '0', '-1', 'WITHSCORES')
            : type === 'string'
              ? [(await c.get(key)) ?? '']
              : type === 'set'
                ? await c.smembers(key)
                : type === 'list'
                  ? await c.lrange(key, 0, -1)
                  : [`<${type}>`];
      scan.strings('Redis values', contents);
    }
    // Every command any client sent while the test ran (MONITOR), ours marked by the prefix.
    const ours = commands.filter((args) => args.some((a) => a.includes(prefix)));
    expect(ours.length).toBeGreaterThan(10);
    scan.strings('Redis commands (MONITOR, with the prefix)', ours.flat(), ours.length);
    scan.strings('Redis commands (MONITOR, all)', commands.flat(), commands.length);
    expect(messages.length).toBeGreaterThan(0);
    scan.strings('Redis pub/sub (channel, message)', messages.flat(), messages.length);
    for (const l of limiters) await l.close();
    expect(scan.leaks.slice(before)).toEqual([]);
    // Floors for the figures in docs/reliability.md.
    const values = (surface: string) => scan.tallies.get(surface)?.values ?? 0;
    expect(values('state$ (Redis)')).toBeGreaterThanOrEqual(100);
    expect(values('events$ (Redis)')).toBeGreaterThanOrEqual(100);
    expect(values('errors delivered (Redis) (ours)')).toBeGreaterThanOrEqual(20);
    expect(values('Redis commands (MONITOR, with the prefix)')).toBeGreaterThanOrEqual(500);
    // The store publishes a change only when another process's wait may end sooner (a pause, a
    // block, a resume, a window that frees early), not at every answer: a handful per run.
    expect(values('Redis pub/sub (channel, message)')).toBeGreaterThanOrEqual(5);
  }, 60_000);

  it('Redis unreachable: store-unavailable and local shares carry no token', async () => {
    const before = scan.leaks.length;
    const token = scan.token(makeToken('redisdown'));
    const errors: unknown[] = [];
    // Nothing listens on port 1.
    const l = createLimiter({
      provider: providers.procore({ hints: { hourly: { limit: 10, windowMs: 1000 } } }),
      key: token,
      maxWaitMs: 3000,
      store: redisStore({
        client: client(1),
        secret: STORE_SECRET,
        prefix,
        timeoutMs: 100,
        retryMs: 100,
        subscribe: false,
      }),
    });
    const { events } = watch(scan, l, ' (Redis down)');
    await run(l, procoreSim.urlFor('procore'), false, token, 5, errors);
    expect(events.map((e) => e.type)).toContain('store-unavailable');
    scanLimiter(scan, l, ' (Redis down)');
    scan.strings('every string reachable from the limiter (Redis down)', reachableStrings(l));
    for (const e of errors) scan.error('errors delivered (Redis down)', e);
    scan.strings('limiter itself (Redis down)', [inspect(l, { depth: Infinity })]);
    await l.close();
    expect(scan.leaks.slice(before)).toEqual([]);
  }, 30_000);

  it('key names are keyed by the secret: trying every 4-digit PIN with an unkeyed SHA-256 finds nothing', async () => {
    const pin = String(randomInt(10_000)).padStart(4, '0');
    const pinPrefix = `${prefix}pin:`;
    const l = createLimiter({
      provider: providers.procore({ hints: { hourly: { limit: 10, windowMs: 1000 } } }),
      key: pin,
      store: redisStore({ client: client(), secret: STORE_SECRET, prefix: pinPrefix, subscribe: false }),
    });
    await run(l, procoreSim.urlFor('procore'), false, pin, 3, []);
    await l.close();
    const c = client();
    const names: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await c.scan(cursor, 'MATCH', `${pinPrefix}*`, 'COUNT', 1000);
      cursor = next;
      names.push(...keys);
    } while (cursor !== '0');
    const tags = new Set(names.map((n) => /\{([0-9a-f]{16})\}/.exec(n)?.[1]));
    expect(tags.size).toBe(1);
    // The names are the HMAC under the store's secret, and another secret gives others.
    expect(tags.has(redisKeys(pinPrefix, 'procore', pin, STORE_SECRET).hash)).toBe(true);
    expect(tags.has(redisKeys(pinPrefix, 'procore', pin, 'another-secret-0123456789').hash)).toBe(false);
    // The brute force that reversed the unkeyed names (SHA-256 of provider and key, or of the key).
    const found: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const guess = String(i).padStart(4, '0');
      for (const text of [`procore\n${guess}`, guess]) {
        if (tags.has(createHash('sha256').update(text).digest('hex').slice(0, 16))) found.push(guess);
      }
    }
    expect(found).toEqual([]);
  }, 60_000);

  it('a store without a secret, or with a short one, is refused with a TypeError naming `secret` (never echoed)', () => {
    expect(() => redisStore({ client: client() } as never)).toThrow(
      new TypeError('redisStore: option `secret` must be of type string, got (hidden)'),
    );
    expect(() => redisStore({ client: client(), secret: 'short' })).toThrow(
      new TypeError('redisStore: option `secret` must be a string of at least 16 characters, got (hidden)'),
    );
  });

  afterAll(() => {
    console.log(
      `secrets scan (Redis):\n${scan
        .table()
        .map((r) => `${r.surface}\t${r.values}\t${r.strings}`)
        .join('\n')}`,
    );
  });
});
