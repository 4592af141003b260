/**
 * A quota bucket (HubSpot's daily limit, here against the simulator in virtual time) that reads
 * empty only because our requests in flight were taken off the server's last figure: the server
 * counted some of them already, so their answers give that room back. The next request waits
 * for those answers, not fails at once; a budget really spent fails once they are in.
 */
import { describe, expect, it } from '@jest/globals';
import { asyncScheduler } from 'rxjs';
import { createLimiter, providers, responseLike, type RateLimitError } from '../../lib/index.js';
import { createSimulatorEngine } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { assertEndedOnce } from './harness.js';
import { runProvider, ROUND_START } from './providerRun.js';

const profile = () => providers.hubspot({ hints: { daily: { limit: 5 } } });

/**
 * Four GETs at 0 (the cold start's one, then three once its answer is in), answered 0 and 50 ms
 * later in turn: at 1 ms the daily figure read last is "2 left" with two of ours in flight, one
 * of which it counted. A fifth GET is asked for then.
 */
function fifthAt1ms(perDay: number) {
  const requests = [0, 0, 0, 0, 1].map((at, i) => ({ at, method: 'GET', path: `/crm/v3/objects/contacts/${i}` }));
  return runProvider({
    simulated: 'hubspot',
    provider: profile,
    engine: { hubspot: { perDay } },
    phaseMs: 0,
    requests,
    streams: 5,
    up: [0],
    down: [0, 50],
  });
}

describe('a quota bucket emptied only by our requests in flight (virtual time)', () => {
  it('through rateLimit: the request waits for their answers and goes with the last unit of the day', () => {
    const out = fifthAt1ms(5);
    expect(assertEndedOnce(out.ledgers)).toEqual({ 'status 200': 5 });
    // Sent when the answers showed the unit left, 50 ms on.
    expect(out.arrivals.map((a) => a.at)).toEqual([0, 0, 0, 0, 50]);
  });

  it('through rateLimit: a day really spent fails with QuotaExhaustedError once those answers are in', () => {
    const out = fifthAt1ms(4);
    expect(assertEndedOnce(out.ledgers)).toEqual({ 'status 200': 4, QuotaExhaustedError: 1 });
    expect(out.arrivals).toHaveLength(4);
    const failed = out.ledgers.find((l) => l.errors.length > 0)!;
    expect(failed.endedAt).toBe(50);
  });

  it('through acquire (the adapters): a request queued on the bucket is not failed while answers may give room back', () => {
    const out = inVirtualTime(({ now }) => {
      const engine = createSimulatorEngine({ hubspot: { perDay: 4 }, now: () => ROUND_START + now() });
      const limiter = createLimiter({ provider: profile(), key: 'hubspot-acquire', coldStartConcurrency: 3 });
      const sent: number[] = [];
      const errors: RateLimitError[] = [];
      const answerAfter = [50, 50, 0];
      const ask = (i: number) =>
        limiter.acquire(
          { method: 'GET', url: `/crm/v3/objects/contacts/${i}` },
          {
            granted: (permit) => {
              sent.push(now());
              const res = engine.handle({
                provider: 'hubspot',
                path: `/crm/v3/objects/contacts/${i}`,
                headers: { Authorization: 'Bearer hs' },
              });
              asyncScheduler.schedule(() => {
                permit.observe(responseLike(res.status, res.headers, res.body));
                permit.release();
              }, answerAfter[i] ?? 0);
            },
            rejected: (e) => errors.push(e),
          },
        );
      // Three at once, the last answered first: at 0 it reads "1 left" with two in flight,
      // which it counted already; the daily bucket reads empty until their answers come.
      for (let i = 0; i < 3; i++) ask(i);
      asyncScheduler.schedule(() => ask(3), 1);
      return () => ({ sent, errors });
    })();
    expect(out.errors.map((e) => e.name)).toEqual([]);
    expect(out.sent).toEqual([0, 0, 0, 50]);
  });
});
