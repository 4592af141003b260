/**
 * Counterexamples the adversarial properties found (adversarial.*.properties.spec.ts) whose fix
 * lies in the window rules the memory buckets share with the Redis store's scripts
 * (lib/core/bucket.ts, rollingBucket.ts and window.ts, mirrored in lib/stores/redis/script*.ts),
 * kept here as `it.failing`: each is a 429 the client could have avoided. When a fix lands (in
 * both places), its case passes, `it.failing` reports it, and it becomes an `it` (the comment
 * above it still tells the failure it guards against).
 *
 * In virtual time against the simulator (adversarialRun.ts): each case is a handful of requests.
 */
import { describe, expect, it } from '@jest/globals';
import { providers } from '../../lib/index.js';
import { refusedCount, runAdversarial, type AdvResult, type NetFault } from './adversarialRun.js';

/** 429s to requests sent after the client got the first answer the server gave after `since`. */
function avoidableSince(out: AdvResult, since: number): number {
  const knowAt = Math.min(...out.arrivals.filter((a) => a.at >= since).map((a) => a.answeredAt ?? Infinity));
  return out.arrivals.filter((a) => a.status === 429 && a.sentAt > knowAt).length;
}

describe('Planning Center: periods opened by their first request (20 s in 1 s)', () => {
  const run = (o: { at: number[]; streams: number; up: number[]; down: number[]; faults?: NetFault[] }): AdvResult =>
    runAdversarial({
      simulated: 'planningCenter',
      provider: () => providers.planningCenter({ hints: { default: { limit: 5, windowMs: 1000 } } }),
      engine: { timeScale: 20, planningCenter: { limit: 5 } },
      phaseMs: 0,
      requests: o.at.map((at, i) => ({ at, method: 'GET', path: `/people/v2/people?offset=${i}` })),
      streams: o.streams,
      up: o.up,
      down: o.down,
      ...(o.faults ? { faults: o.faults } : {}),
    });

  // After the first period, the bucket projects its told end (the count-1 answer plus a period)
  // whole periods on; the server opens the next period at its next request instead. The burst's
  // count-1 answer, back 5 ms after counts 2 and 4, tells an end more than the tolerance after
  // the projected one, so it is read as a new period rather than an older figure of this one:
  // what is left is taken from it (4) and a sixth request goes into the period.
  // Passes since the first send in a projected window bounds its end (a window after that send,
  // then after its first answer: Bucket.take, and ACQUIRE in Redis).
  it('a burst after the period ended, its count-1 answer back after the others: no sixth request', () => {
    const out = run({ at: [0, ...Array<number>(6).fill(1500)], streams: 3, up: [0], down: [0, 5] });
    expect(refusedCount(out, 'planningCenter')).toBe(0);
  });

  // The answer of the request that opened a period is lost (the connection drops after the
  // server counted it): the only figure telling the period's start never comes, and the
  // bucket's end stays the projection of the last one told, a period after it, which falls
  // 1 ms before the server's.
  // Passes since the first send in a projected window bounds its end (a window after that send,
  // then after its first answer: Bucket.take, and ACQUIRE in Redis).
  it('the answer that opened a period lost: no request before the period ends', () => {
    const out = run({
      at: Array<number>(15).fill(0),
      streams: 3,
      up: [2, 2, 1, 0, 0, 0, 1, 0, 0],
      down: [3, 2],
      faults: ['none', 'none', 'none', 'lost-after'],
    });
    expect(refusedCount(out, 'planningCenter')).toBe(0);
  });
});

describe("Fieldwire: an endpoint's minute, aligned to the server's clock at a phase unknown to us (a minute in 1 s)", () => {
  const limits = { 'GET /projects/:id/tasks': { minute: 3, hour: 1000 } };
  const run = (o: { at: number[]; streams: number; up: number[]; down: number[] }): AdvResult =>
    runAdversarial({
      simulated: 'fieldwire',
      provider: () =>
        providers.fieldwire({
          endpoints: limits,
          hints: {
            'catch-all': { windowMs: 5000 },
            'GET /projects/:id/tasks:minute': { windowMs: 1000 },
            'GET /projects/:id/tasks:hour': { windowMs: 60_000 },
          },
        }),
      engine: { timeScale: 60, fieldwire: { endpoints: limits } },
      phaseMs: 0,
      requests: o.at.map((at, i) => ({ at, method: 'GET', path: `/projects/${i}/tasks` })),
      streams: o.streams,
      up: o.up,
      down: o.down,
    });

  // A round trip of a third of the window, the same for every request. The bucket's window
  // runs from its first send; requests sent late in it reach the server in its next minute,
  // which the bucket refills as fresh. The answer showing 2 left again (a count of 1, as the
  // minute before) cannot be a later figure of the same minute, yet is taken as one.
  // Passes since the first send in a projected window bounds its end (a window after that send,
  // then after its first answer: Bucket.take, and ACQUIRE in Redis).
  it('a constant round trip of a third of the window: no fourth request in a server minute', () => {
    const out = run({ at: Array<number>(9).fill(0), streams: 3, up: [265], down: [98] });
    expect(refusedCount(out, 'fieldwire')).toBe(0);
  });

  // Ten minutes idle: the bucket projects the last minute end it knew (read 1 ms late) whole
  // minutes on, and the burst lands in that millisecond between the server's boundary and
  // ours: it spends a minute's budget in what it takes for the old minute's last instant, then
  // refills at its boundary, while the server counts both in one minute.
  // Passes since the first send in a projected window bounds its end (a window after that send,
  // then after its first answer: Bucket.take, and ACQUIRE in Redis).
  it('a burst ten minutes after the last, at the edge of a projected minute: no 429', () => {
    const out = run({
      at: [...Array<number>(6).fill(0), ...Array<number>(4).fill(600_000)],
      streams: 2,
      up: [60, 0],
      down: [0],
    });
    expect(refusedCount(out, 'fieldwire')).toBe(0);
  });
});

describe('TEOS: a rolling minute whose limit the headers never tell (a minute in 1 s)', () => {
  const run = (o: { at: number[]; cuts: Array<{ at: number; perMinute: number }>; down: number[] }): AdvResult =>
    runAdversarial({
      simulated: 'teos',
      provider: () =>
        providers.teos({ hints: { minute: { limit: 40, windowMs: 1000 }, day: { windowMs: 1_440_000 } } }),
      engine: { timeScale: 60, teos: { perMinute: 40, headersAfter: 1 } },
      during: o.cuts.map((c) => ({ at: c.at, act: (e) => e.changeLimits('teos', { perMinute: c.perMinute }) })),
      phaseMs: 0,
      requests: o.at.map((t, i) => ({ at: t, method: 'GET', path: `/api/v1/items/${i}` })),
      streams: 5,
      up: [5],
      down: o.down,
    });
  /** `n` requests `step` ms apart from 0, then `burst` at 5.4 s. */
  const paced = (n: number, step: number, burst: number): number[] => [
    ...Array.from({ length: n }, (_, i) => i * step),
    ...Array<number>(burst).fill(5400),
  ];

  // The server cuts its minute from 40 to 10 (the profile's hint stays 40). What the figures
  // then show less than the hint is read as another client's calls, which leave a window after
  // the figure that counted them; one answer in four comes back 300 ms late, the later figures
  // count no more, the others' spend lapses with no figure to renew it, and the bucket sends
  // to the hint again: 429s long after an answer had shown the cut.
  // What it was (traced): the others' spend did not lapse, each figure renewed it; but a
  // figure took every call of our log as counted save those a window past their answer, while
  // the server lets a call go a window after it arrived, up to a late answer (300 ms) sooner.
  // A call answered late, still in our log and gone from the server's count, made the others'
  // spend one too few; when it then left our log, our count fell and the server's did not:
  // one request too many, after each late answer (sent at 4575 and 6390 virtual ms).
  // Passes since a figure takes as gone from the server every call of our log sent a window
  // before it (RollingBucket.leftServerBy, rollGone in Redis), counted once while it stays in
  // the log (RollingBucket.doubled, rollDoubled).
  it('a limit cut below the hint, one answer in four late: no 429 once an answer has shown the cut', () => {
    const out = run({ at: paced(60, 40, 30), cuts: [{ at: 1000, perMinute: 10 }], down: [5, 5, 5, 300] });
    expect(avoidableSince(out, 1000)).toBe(0);
  });

  // The same cut, one answer in three 200 ms late: the calls answered late leave our log a
  // window after their answer, 200 ms after the server let them go (as above).
  it('a limit cut below the hint, one answer in three 200 ms late: no 429 once an answer has shown the cut', () => {
    const out = run({ at: paced(60, 40, 30), cuts: [{ at: 1000, perMinute: 10 }], down: [5, 200, 5] });
    expect(avoidableSince(out, 1000)).toBe(0);
  });

  // Cut to 10, then back to 40 before a burst: the figures after the restore show room again,
  // and none of the calls answered late while the limit was 10 may read as gone from our log
  // only (as above).
  it('a limit cut below the hint, then restored: no 429 once an answer has shown the cut', () => {
    const out = run({
      at: paced(60, 40, 60),
      cuts: [
        { at: 1000, perMinute: 10 },
        { at: 5000, perMinute: 40 },
      ],
      down: [5, 5, 5, 300],
    });
    expect(avoidableSince(out, 1000)).toBe(0);
  });
});
