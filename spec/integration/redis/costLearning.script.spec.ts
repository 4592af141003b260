/**
 * OBSERVE's cost attribution driven at the script level against real Redis, with the arguments
 * the session sends. A "server" is modelled by hand: `truth` is
 * what the API really has left. Each test asserts that the cost learnt is never below what the
 * request really cost (a learnt cost too low is over-admission: 429s).
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

const LIMIT = 100;
const WINDOW = 60_000;

function bucketOf(name: string) {
  const base = `${name}{learn}:`;
  return {
    pause: `${base}pause`,
    peers: `${base}peers`,
    channel: `${base}changed`,
    bucket: `${base}bucket:b`,
    inflight: `${base}inflight:b`,
    log: `${base}log:b`,
  };
}

type Keys = ReturnType<typeof bucketOf>;

interface AcquireOpts {
  cost?: number;
  debit?: number;
  debitResetIn?: number | '';
  recoverPeers?: number | '';
  share?: number | '';
}

let seq = 0;
/** ACQUIRE one request; returns its lease and index on the bucket. */
async function acquire(k: Keys, o: AcquireOpts = {}): Promise<{ lease: string; index: number }> {
  const prefix = `peer:${++seq}`;
  const s = client as unknown as ScriptClient;
  const reply = await s.rxrlAcquire(
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
    0,
    1,
    'peer',
    10_000,
    o.recoverPeers ?? '',
    10_000,
    LIMIT,
    WINDOW,
    0,
    o.debit ?? 0,
    o.debitResetIn ?? '',
    o.share ?? '',
    0,
    o.cost ?? 1,
    '',
    '',
  );
  expect(reply[0]).toBe(1);
  return { lease: `${prefix}:1`, index: Number(reply[12]) };
}

/** OBSERVE one answer (remaining `rem`, reset in 30 s); returns the cost learnt (0: none). */
async function observe(k: Keys, lease: string, index: number, rem: number, learns: boolean): Promise<number> {
  const s = client as unknown as ScriptClient;
  const reply = (await s.rxrlObserve(
    4,
    k.bucket,
    k.inflight,
    k.log,
    k.pause,
    lease,
    120_000,
    k.channel,
    '',
    0,
    1,
    LIMIT,
    rem,
    30_000,
    '',
    index,
    LIMIT,
    WINDOW,
    0,
    '',
    '',
    '',
    '',
    '',
    learns ? 1 : '',
  )) as number[];
  return Number(reply[1]);
}

describe('OBSERVE never learns a cost below what the request really cost', () => {
  it('after a recovering process debits its local spending with a reserve for its peers', async () => {
    const k = bucketOf(`learn-reserve-${Date.now()}`);
    let truth = LIMIT;
    // A request answered with nothing else in flight: drops count from 99.
    const a = await acquire(k);
    truth -= 1;
    await observe(k, a.lease, a.index, truth, false);
    // A process comes back from an outage: it spent 5 on its local share in this window, and
    // reserves one share (3) for the one other peer it saw (which spends nothing).
    truth -= 5;
    const b = await acquire(k, { debit: 5, debitResetIn: 30_000, recoverPeers: 2, share: 3 });
    truth -= 1;
    await observe(k, b.lease, b.index, truth, false);
    // Nothing of any process in flight, nothing admitted since: the next request learns.
    const l = await acquire(k);
    const realCost = 10;
    truth -= realCost;
    const learnt = await observe(k, l.lease, l.index, truth, true);
    expect(learnt === 0 || learnt >= realCost).toBe(true);
  });

  it('after a debit taken while another request was held at more than it cost', async () => {
    const k = bucketOf(`learn-held-${Date.now()}`);
    let truth = LIMIT;
    const a = await acquire(k);
    truth -= 1;
    await observe(k, a.lease, a.index, truth, false);
    // Another process's request held at 5 (an estimate on the high side, as learnt costs are),
    // that really costs 1.
    const q = await acquire(k, { cost: 5 });
    // A process back from an outage debits the 5 it spent on its local share (no peers seen).
    truth -= 5;
    const b = await acquire(k, { debit: 5, debitResetIn: 30_000 });
    truth -= 1; // q
    truth -= 1; // b
    await observe(k, q.lease, q.index, truth, false);
    await observe(k, b.lease, b.index, truth, false);
    const l = await acquire(k);
    const realCost = 10;
    truth -= realCost;
    const learnt = await observe(k, l.lease, l.index, truth, true);
    expect(learnt === 0 || learnt >= realCost).toBe(true);
  });

  it('an answer that read 0 left (a floor: the request may have cost more than was left)', async () => {
    const k = bucketOf(`learn-floor-${Date.now()}`);
    const a = await acquire(k);
    // 3 left; the next request (admitted at the guess, 1) costs 10 and the API, which charges
    // after running it, answers 0 left (it does not report below 0).
    await observe(k, a.lease, a.index, 3, false);
    const l = await acquire(k);
    const learnt = await observe(k, l.lease, l.index, 0, true);
    expect(learnt === 0 || learnt >= 10).toBe(true);
  });

  it('control: with no outage the same drop is learnt exactly', async () => {
    const k = bucketOf(`learn-control-${Date.now()}`);
    let truth = LIMIT;
    const a = await acquire(k);
    truth -= 1;
    await observe(k, a.lease, a.index, truth, false);
    const l = await acquire(k);
    truth -= 10;
    expect(await observe(k, l.lease, l.index, truth, true)).toBe(10);
  });
});
