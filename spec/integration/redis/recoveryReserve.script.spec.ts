/**
 * The reserve a process takes when it comes back from an outage, driven at the script level
 * against real Redis with the arguments the session sends. The other processes it last saw may
 * still be spending their local shares, so their shares are reserved; but a process that reached
 * Redis after the outage began was not on its local share then (what it spent on it before was
 * debited when it came back). Reserving for it too paused the whole token: one process's 370 ms
 * blip, with a share of 50 against a limit of 30, held every process for the rest of a 20 s
 * window. Time is asserted as order only (sleeps of tens of ms between steps).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import { defineScripts, type ScriptClient } from '../../../lib/stores/redis/connection.js';
import { REDIS } from '../../helpers/redis.js';

let client: Redis;
beforeAll(() => {
  client = new Redis({ port: REDIS.port, host: REDIS.host });
  defineScripts(client);
});
afterAll(() => client.disconnect());

const LIMIT = 30;
const WINDOW = 60_000;
const SHARE = 10;

let made = 0;
function keysOf() {
  const base = `rxrl-recovery-reserve-${process.pid}-${Date.now()}-${++made}{r}:`;
  return {
    pause: `${base}pause`,
    peers: `${base}peers`,
    bucket: `${base}bucket:b`,
    inflight: `${base}inflight:b`,
    log: `${base}log:b`,
  };
}
type Keys = ReturnType<typeof keysOf>;

let seq = 0;
/**
 * ACQUIRE up to `count` requests as process `peer`; `recovering`: it comes back from an outage
 * that began `downForMs` ago, having last seen `peers` processes (itself among them).
 */
async function acquire(
  k: Keys,
  peer: string,
  count: number,
  recovering?: { peers: number; downForMs: number },
): Promise<number> {
  const s = client as unknown as ScriptClient;
  const reply = await s.rxrlAcquire(
    5,
    k.pause,
    k.peers,
    k.bucket,
    k.inflight,
    k.log,
    count,
    `${peer}:${++seq}`,
    60_000,
    120_000,
    0,
    // No cold start: the window's room is known (its hint).
    100,
    peer,
    10_000,
    recovering ? `${recovering.peers}:${recovering.downForMs}` : '',
    10_000,
    LIMIT,
    WINDOW,
    0,
    0,
    '',
    recovering ? SHARE : '',
    0,
    1,
    '',
    '',
  );
  return Number(reply[0]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('redis store: the reserve of a process back from an outage', () => {
  it('reserves nothing for a peer that reached Redis during the outage', async () => {
    const k = keysOf();
    // Both known to each other; the window has room for 30.
    expect(await acquire(k, 'p', 1)).toBe(1);
    expect(await acquire(k, 'q', 1)).toBe(1);
    // p's outage begins; q keeps admitting through Redis.
    const down = Date.now();
    await sleep(30);
    expect(await acquire(k, 'q', 1)).toBe(1);
    await sleep(30);
    // p comes back: q was on Redis, not on a local share. 27 left, none reserved.
    expect(await acquire(k, 'p', 30, { peers: 2, downForMs: Date.now() - down })).toBe(27);
  });

  it('reserves the share of a peer not seen since the outage began', async () => {
    const k = keysOf();
    expect(await acquire(k, 'p', 1)).toBe(1);
    expect(await acquire(k, 'q', 1)).toBe(1);
    await sleep(30);
    // The outage (of Redis for both, say) begins after q's last call: q may be on its share.
    const down = Date.now();
    await sleep(30);
    expect(await acquire(k, 'p', 30, { peers: 2, downForMs: Date.now() - down })).toBe(28 - SHARE);
  });

  it('of three peers, reserves for the one not seen and not for the one seen', async () => {
    const k = keysOf();
    for (const peer of ['p', 'q', 'r']) expect(await acquire(k, peer, 1)).toBe(1);
    await sleep(30);
    const down = Date.now();
    await sleep(30);
    // q reaches Redis during p's outage; r does not.
    expect(await acquire(k, 'q', 1)).toBe(1);
    await sleep(30);
    expect(await acquire(k, 'p', 30, { peers: 3, downForMs: Date.now() - down })).toBe(26 - SHARE);
  });
});
