/**
 * The mark `limiter.resume()` leaves in a credential's pause hash, driven at the script level
 * against real Redis, with the clock given (the shared `load`/`save` of scriptCommon.ts and
 * RESUME): a bucket written in the resume's own millisecond is saved past the mark, so that
 * its next load keeps what was written, whether the bucket was known before or is new.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import { COMMON } from '../../../lib/stores/redis/scriptCommon.js';
import { RESUME } from '../../../lib/stores/redis/scriptControl.js';
import { REDIS } from '../../helpers/redis.js';

let client: Redis;
beforeAll(() => {
  client = new Redis({ port: REDIS.port, host: REDIS.host });
});
afterAll(() => client.disconnect());

const RESUMED = 1_000_000;

/** Loads the bucket, sets its next smooth slot to `nxt`, saves it at `now`; returns its `at`. */
const WRITE = `${COMMON}
local s = load(KEYS[1], 10, 60000, KEYS[2])
s.nxt = tonumber(ARGV[2])
save(KEYS[1], s, 60000, tonumber(ARGV[1]))
return redis.call('HGET', KEYS[1], 'at')`;

/** What the next load of the bucket sees of its next slot. */
const READ = `${COMMON}
local s = load(KEYS[1], 10, 60000, KEYS[2])
return tostring(s.nxt)`;

function keys(name: string) {
  const base = `rxrl-resume-mark-${process.pid}-${name}{m}:`;
  return { bucket: `${base}bucket:b`, pause: `${base}pause` };
}

describe("a bucket written in a resume's millisecond keeps what was written", () => {
  it.each([
    ['known before the resume', true],
    ['first written after it', false],
  ])('a bucket %s is saved past the mark and its next load keeps it', async (_case, known) => {
    const k = keys(known ? 'known' : 'new');
    await client.del(k.bucket, k.pause);
    if (known) await client.eval(WRITE, 2, k.bucket, k.pause, RESUMED - 5, 0);
    await client.hset(k.pause, 'resumed', RESUMED);
    // Written twice in the resume's millisecond (the first write of a known bucket forgets
    // what it knew): each is saved past the mark, and the next load keeps what it wrote.
    for (const nxt of [7, 9]) {
      const at = await client.eval(WRITE, 2, k.bucket, k.pause, RESUMED, nxt);
      expect(Number(at)).toBe(RESUMED + 1);
      expect(await client.eval(READ, 2, k.bucket, k.pause)).toBe(String(nxt));
    }
    await client.del(k.bucket, k.pause);
  });

  it("a resume after Redis's clock stepped back still marks later than the last one", async () => {
    const k = keys('stepped');
    // The last mark, an hour ahead of Redis's clock now (a failover to a replica behind it).
    const last = Date.now() + 3_600_000;
    await client.hset(k.pause, 'resumed', last);
    await client.eval(RESUME, 1, k.pause, `${k.pause}:channel`, 60_000, '1');
    expect(Number(await client.hget(k.pause, 'resumed'))).toBe(last + 1);
    await client.del(k.pause);
  });
});
