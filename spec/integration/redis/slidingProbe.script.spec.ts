/**
 * The Redis store's scripts (ACQUIRE and OBSERVE, real Redis) on a fixed window's bucket, with
 * the clock given: the scripts read it from a key the test sets (their own `TIME` replaced).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import { ACQUIRE } from '../../../lib/stores/redis/scriptAcquire.js';
import { OBSERVE } from '../../../lib/stores/redis/scriptObserve.js';
import { REDIS } from '../../helpers/redis.js';

const LIMIT = 20;
const WINDOW_MS = 2000;
const GUARD_MS = 50;
/** Virtual time starts here (Redis ms). */
const START = 1_800_000_000_000;
const NOW_KEY = `rxrl-sliding-probe-${process.pid}:now`;

const CLOCK = "local t = redis.call('TIME')\n  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/** A script reading its clock from {@link NOW_KEY}. */
function virtual(script: string): string {
  if (!script.includes(CLOCK)) throw new Error('the scripts read their clock otherwise: update this spec');
  return script.replace(CLOCK, `return tonumber(redis.call('GET', '${NOW_KEY}'))`);
}

interface Scripts {
  simAcquire(...args: Array<string | number>): Promise<Array<string | number>>;
  simObserve(...args: Array<string | number>): Promise<unknown>;
}

let client: Redis;
let scripts: Scripts;
beforeAll(() => {
  client = new Redis({ port: REDIS.port, host: REDIS.host });
  client.defineCommand('simAcquire', { lua: virtual(ACQUIRE) });
  client.defineCommand('simObserve', { lua: virtual(OBSERVE) });
  scripts = client as unknown as Scripts;
});
afterAll(async () => {
  await client.del(NOW_KEY);
  client.disconnect();
});

type Keys = ReturnType<typeof keysOf>;

function keysOf(name: string) {
  const base = `rxrl-sliding-probe-${process.pid}-${name}{s}:`;
  return {
    pause: `${base}pause`,
    peers: `${base}peers`,
    channel: `${base}changed`,
    bucket: `${base}bucket:window`,
    inflight: `${base}inflight:window`,
    log: `${base}log:window`,
  };
}

/** The scripts' clock, ms from {@link START}. */
const setNow = (now: number) => client.set(NOW_KEY, String(START + now));

/** ACQUIRE one request on the bucket, as process `proc` (lease prefix `prefix`). */
function acquire(keys: Keys, proc: number, prefix: string): Promise<Array<string | number>> {
  return scripts.simAcquire(
    5,
    keys.pause,
    keys.peers,
    keys.bucket,
    keys.inflight,
    keys.log,
    1,
    prefix,
    60_000,
    120_000,
    GUARD_MS,
    1,
    `p${proc}`,
    10_000,
    '',
    10_000,
    LIMIT,
    WINDOW_MS,
    0,
    0,
    '',
    '',
    0,
    1,
    '',
    '',
  );
}

/** OBSERVE a request's answer: what was left, the reset in whole seconds. */
function observe(
  keys: Keys,
  lease: string,
  index: number,
  sentAgo: number,
  remaining: number,
  resetS: number,
): Promise<unknown> {
  return scripts.simObserve(
    4,
    keys.bucket,
    keys.inflight,
    keys.log,
    keys.pause,
    lease,
    120_000,
    keys.channel,
    sentAgo,
    GUARD_MS,
    1,
    LIMIT,
    remaining,
    resetS * 1000,
    '',
    index,
    LIMIT,
    WINDOW_MS,
    0,
    '',
    '',
    '',
    '',
    '',
    '',
  );
}

describe('lowest figures in a bucket hash that no limiter wrote', () => {
  // Entries not of numbers (by hand, another version) are skipped: OBSERVE, whose rules read
  // every entry at each answer, failed on them, and every process took Redis as away.
  it('damaged entries are skipped: the answers are read and the next request goes', async () => {
    const keys = keysOf('damaged');
    await client.del(...Object.values(keys));
    await setNow(0);
    const first = await acquire(keys, 0, 'd:1');
    await setNow(100);
    await observe(keys, 'd:1:1', Number(first[12]), 100, 19, 2);
    await client.hset(keys.bucket, 'lowh', 'x,y,z;5,nan,;1,2;19,0,1,oops;');
    await setNow(200);
    const second = await acquire(keys, 1, 'd:2');
    expect(Number(second[0])).toBe(1);
    await setNow(300);
    // More left than the lowest figure less its cost: the rules walk every entry kept.
    await expect(observe(keys, 'd:2:1', Number(second[12]), 100, 19, 2)).resolves.toBeDefined();
    const third = await acquire(keys, 2, 'd:3');
    expect(Number(third[0])).toBe(1);
    await client.del(...Object.values(keys));
  });
});
