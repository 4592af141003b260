/**
 * The Redis store's ACQUIRE and OBSERVE scripts on a clock the test sets: each script's own
 * `TIME` read is replaced by a read of a key, so that a seeded run against real Redis is the same
 * sequence every time, whatever the machine's load.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { Redis } from 'ioredis';

import { ACQUIRE } from '../../lib/stores/redis/scriptAcquire.js';
import { OBSERVE } from '../../lib/stores/redis/scriptObserve.js';
import { REDIS } from './redis.js';

/** Virtual time starts here (Redis ms). */
export const START = 1_800_000_000_000;

const CLOCK = "local t = redis.call('TIME')\n  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

export interface VirtualScripts {
  /** The client the scripts are defined on. */
  readonly client: Redis;
  simAcquire(...args: Array<string | number>): Promise<Array<string | number>>;
  simObserve(...args: Array<string | number>): Promise<unknown>;
  /** Sets the scripts' clock to `now` ms after {@link START}. */
  setNow(now: number): Promise<unknown>;
}

/**
 * Defines the scripts on a client of the tests' Redis before the spec's tests, their clock read
 * from a key named after `name`, and disconnects after them. Use the returned object inside tests.
 */
export function virtualScripts(name: string): VirtualScripts {
  const nowKey = `rxrl-${name}-${process.pid}:now`;
  const virtual = (script: string): string => {
    if (!script.includes(CLOCK)) throw new Error('the scripts read their clock otherwise: update spec/helpers');
    return script.replace(CLOCK, `return tonumber(redis.call('GET', '${nowKey}'))`);
  };
  const out = {} as { client: Redis } & VirtualScripts;
  beforeAll(() => {
    const client = new Redis({ port: REDIS.port, host: REDIS.host });
    client.defineCommand('simAcquire', { lua: virtual(ACQUIRE) });
    client.defineCommand('simObserve', { lua: virtual(OBSERVE) });
    const defined = client as unknown as Pick<VirtualScripts, 'simAcquire' | 'simObserve'>;
    Object.assign(out, {
      client,
      simAcquire: defined.simAcquire.bind(client),
      simObserve: defined.simObserve.bind(client),
      setNow: (now: number) => client.set(nowKey, String(START + now)),
    });
  });
  afterAll(async () => {
    await out.client.del(nowKey);
    out.client.disconnect();
  });
  return out;
}

/** One bucket's keys (`window`) of a credential named `name`, and its shape (what the scripts are told). */
export interface ScriptBucket {
  readonly pause: string;
  readonly peers: string;
  readonly channel: string;
  readonly bucket: string;
  readonly inflight: string;
  readonly log: string;
  readonly limit: number;
  readonly windowMs: number;
  readonly guardMs: number;
}

export function scriptBucket(name: string, limit: number, windowMs: number, guardMs: number): ScriptBucket {
  const base = `rxrl-script-${process.pid}-${name}{s}:`;
  return {
    pause: `${base}pause`,
    peers: `${base}peers`,
    channel: `${base}changed`,
    bucket: `${base}bucket:window`,
    inflight: `${base}inflight:window`,
    log: `${base}log:window`,
    limit,
    windowMs,
    guardMs,
  };
}

/** The Redis keys of a {@link ScriptBucket} (to delete). */
export const redisKeysOf = (k: ScriptBucket): string[] => [k.pause, k.peers, k.channel, k.bucket, k.inflight, k.log];

/**
 * ACQUIRE one request of a fixed window (no cold start past one in flight) as process `peer`,
 * lease prefix `prefix`: [granted, wait ms, …, its admission index at 12].
 */
export function acquireOne(
  s: VirtualScripts,
  k: ScriptBucket,
  peer: string,
  prefix: string,
): Promise<Array<string | number>> {
  // ARGV as the session sends them (scriptAcquire.ts), then the bucket's hint limit and window.
  return s.simAcquire(
    5,
    k.pause,
    k.peers,
    k.bucket,
    k.inflight,
    k.log,
    1,
    prefix,
    60_000,
    120_000,
    k.guardMs,
    1,
    peer,
    10_000,
    '',
    10_000,
    k.limit,
    k.windowMs,
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

/** An answer as OBSERVE reads it. */
export interface ScriptAnswer {
  /** How long ago its request was sent, ms. */
  readonly sentAgoMs: number;
  /** What was left, with the reset in ms; or, for none of this bucket, '0' nothing told, '2' a success that described other buckets, '3' a server error that described none. */
  readonly figure: { readonly remaining: number; readonly resetMs: number } | '0' | '2' | '3';
  /** The server counted the request (it was not refused). */
  readonly counted: boolean;
}

/** OBSERVE the answer to lease `lease` (admission `index`). */
export function observeOne(
  s: VirtualScripts,
  k: ScriptBucket,
  lease: string,
  index: number,
  a: ScriptAnswer,
): Promise<unknown> {
  const f = typeof a.figure === 'object' ? a.figure : undefined;
  return s.simObserve(
    4,
    k.bucket,
    k.inflight,
    k.log,
    k.pause,
    lease,
    120_000,
    k.channel,
    a.sentAgoMs,
    k.guardMs,
    f ? 1 : (a.figure as string),
    f ? k.limit : '',
    f ? f.remaining : '',
    f ? f.resetMs : '',
    '',
    index,
    k.limit,
    k.windowMs,
    0,
    '',
    '',
    '',
    '',
    '',
    '',
    a.counted ? 1 : '',
  );
}
