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
