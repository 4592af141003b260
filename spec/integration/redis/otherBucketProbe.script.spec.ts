/**
 * The Redis store's scripts (ACQUIRE and OBSERVE, real Redis, a virtual clock) after a window
 * refilled at a told reset: one request probes it. A success that described other buckets of
 * its request, not this one (Planning Center's high-offset answer on the default bucket), is
 * that endpoint's answer: the window is open, as in memory. Only an answer that described none
 * of the server's limits (a gateway's error page) leaves the probe unanswered, and the next goes
 * PROBE_MS later.
 */
import { describe, expect, it } from '@jest/globals';

import { PROBE_MS } from '../../../lib/core/window.js';
import {
  acquireOne,
  observeOne,
  redisKeysOf,
  scriptBucket,
  virtualScripts,
  type ScriptBucket,
} from '../../helpers/virtualScripts.js';

const LIMIT = 20;
const WINDOW_MS = 2000;
const GUARD_MS = 50;
const scripts = virtualScripts('other-probe');

type Keys = ScriptBucket;

const keysOf = (name: string): Keys => scriptBucket(`other-probe-${name}`, LIMIT, WINDOW_MS, GUARD_MS);

const setNow = (now: number) => scripts.setNow(now);

/** ACQUIRE one request: [granted, wait ms, …, its admission index at 12]. */
const acquire = (keys: Keys, prefix: string) => acquireOne(scripts, keys, 'p1', prefix);

/**
 * OBSERVE an answer: `figure` what was left (reset 2 s), or `code` for an answer with none of
 * this bucket: '2' a success that described other buckets, '3' a server error that described none.
 */
const observe = (keys: Keys, lease: string, index: number, answer: number | '2' | '3') =>
  observeOne(scripts, keys, lease, index, {
    sentAgoMs: 20,
    figure: typeof answer === 'number' ? { remaining: answer, resetMs: 2000 } : answer,
    counted: typeof answer === 'number' || answer === '2',
  });

/** A window spent (its figures told, reset 2 s), then refilled at that reset: the probe goes. Returns the wait after it. */
async function probeAfterRefill(name: string, answer: '2' | '3'): Promise<number> {
  const keys = keysOf(name);
  await scripts.client.del(...redisKeysOf(keys));
  await setNow(0);
  const first = await acquire(keys, 'a');
  await setNow(20);
  await observe(keys, 'a:1', Number(first[12]), 0);
  // Past the reset (and the guard): the refill lets one request go, the probe.
  await setNow(2200);
  const probe = await acquire(keys, 'b');
  expect(Number(probe[0])).toBe(1);
  await setNow(2220);
  await observe(keys, 'b:1', Number(probe[12]), answer);
  const next = await acquire(keys, 'c');
  return Number(next[0]) > 0 ? 0 : Number(next[1]);
}

describe('Redis store: the probe of a refilled window answered with no figure of it (scripts, virtual time)', () => {
  it('answered by a success that described other buckets of the request: the window is open at once', async () => {
    expect(await probeAfterRefill('others', '2')).toBe(0);
  });

  it('answered by a server error that described no bucket: the next request probes PROBE_MS later', async () => {
    const wait = await probeAfterRefill('error', '3');
    expect(wait).toBeGreaterThan(PROBE_MS - 100);
    expect(wait).toBeLessThanOrEqual(PROBE_MS);
  });
});
