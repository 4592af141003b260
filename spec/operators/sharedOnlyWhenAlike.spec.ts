import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, Observable } from 'rxjs';
import {
  createLimiter,
  defineProvider,
  isCostExceedsLimitError,
  providers,
  rateLimit,
  responseLike,
  type LimiterEvent,
  type ResponseExtractor,
  type ResponseLike,
} from '../../lib/index.js';
import { sharesAs } from '../../lib/core/sharing.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** A request sent without headers, said so: what lets `rateLimit` share it. */
const NONE = {};

/** What each caller ended with, as text. */
function outcomes() {
  const ended: string[] = [];
  const observer = (who: string) => ({
    next: (r: { status?: number; raw?: ResponseLike }) => ended.push(`${who} ${r.raw?.status ?? r.status}`),
    error: (e: { name?: string; message?: string }) => ended.push(`${who} ${e.name ?? 'error'}: ${e.message ?? ''}`),
  });
  return { ended, observer };
}

/** A GET answered in 10 ms with what `answer` makes of the send's time and number. */
function endpoint<T>(answer: (at: number, n: number) => T) {
  const sent: number[] = [];
  const get = () =>
    new Observable<T>((s) => {
      sent.push(asyncScheduler.now());
      const n = sent.length;
      const at = asyncScheduler.now();
      const t = asyncScheduler.schedule(() => {
        s.next(answer(at, n));
        s.complete();
      }, 10);
      return () => t.unsubscribe();
    });
  return { get, sent };
}

/** An SDK's answer: the body, with the transport's response beside it (where the limiter cannot find it by shape). */
interface SdkAnswer {
  readonly data: unknown;
  readonly raw: ResponseLike;
}

const readRaw: ResponseExtractor = (x) =>
  typeof x === 'object' && x !== null && 'raw' in x ? (x as SdkAnswer).raw : undefined;

describe('a GET joins an identical one in flight only when it would end the same way', () => {
  it('a subscriber with its own extractResponse gets its own extraction, not the first subscriber’s', () => {
    const out = inVirtualTime(() => {
      // 429 (retry in 1 s) to what is sent in the first second, 200 after.
      const api = endpoint<SdkAnswer>((at) => {
        const status = at < 1000 ? 429 : 200;
        return { data: { status }, raw: responseLike(status, status === 429 ? { 'retry-after': '1' } : {}) };
      });
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', coldStartConcurrency: 10 });
      const { ended, observer } = outcomes();
      // The limiter's extractor finds no response in an SDK's answer: this caller gets it as it is.
      api
        .get()
        .pipe(rateLimit(limiter, { url: '/a', headers: NONE }))
        .subscribe(observer('plain'));
      // This caller's extractor finds the 429: its request waits and goes again.
      api
        .get()
        .pipe(rateLimit(limiter, { url: '/a', headers: NONE }, { extractResponse: readRaw }))
        .subscribe(observer('reads raw'));
      return { ended, sent: api.sent };
    });
    expect(out.ended).toEqual(['plain 429', 'reads raw 200']);
    // Both sent at 0 (not one shared), and the retry of the one that read its 429.
    expect(out.sent.filter((t) => t === 0)).toHaveLength(2);
    expect(out.sent).toHaveLength(3);
  });

  it('a GET that retries 429s is not joined to one that retries no status (statuses: [])', () => {
    // A provider that reads nothing: only the listed statuses are retried.
    const silent = defineProvider({
      name: 'silent',
      buckets: [{ name: 'units', limit: 100, windowMs: 1000 }],
      read: () => ({ outcome: 'ok', buckets: [] }),
    });
    const out = inVirtualTime(() => {
      // The first request sent is answered 429, every later one 200.
      const api = endpoint<ResponseLike>((_at, n) => responseLike(n === 1 ? 429 : 200, {}));
      const limiter = createLimiter({ provider: silent, key: 'k', coldStartConcurrency: 10 });
      const { ended, observer } = outcomes();
      api
        .get()
        .pipe(rateLimit(limiter, { url: '/a', headers: NONE }, { statuses: [] }))
        .subscribe(observer('retries none'));
      api
        .get()
        .pipe(rateLimit(limiter, { url: '/a', headers: NONE }))
        .subscribe(observer('retries 429'));
      return { ended, sent: api.sent };
    });
    // Joined, the default GET got the 429 it would have retried past.
    expect(out.ended).toEqual(['retries none 429', 'retries 429 200']);
    expect(out.sent).toEqual([0, 0]);
  });

  it('a cheap GET does not fail with the CostExceedsLimitError of an identical one that costs more', () => {
    // Starts at 10 units a second; the first answer says the limit is 4 (none left for 900 ms).
    const learnt = defineProvider({
      name: 'learnt',
      buckets: [{ name: 'units', limit: 10, windowMs: 1000 }],
      read: () => ({ outcome: 'ok', buckets: [{ name: 'units', limit: 4, remaining: 0, reset: { inMs: 900 } }] }),
    });
    const out = inVirtualTime(() => {
      const api = endpoint<ResponseLike>(() => responseLike(200, {}));
      const limiter = createLimiter({ provider: learnt, key: 'k', coldStartConcurrency: 10 });
      const { ended, observer } = outcomes();
      // Takes every unit: the two below wait, until its answer teaches the limit.
      api
        .get()
        .pipe(rateLimit(limiter, { url: '/all', headers: NONE, cost: 10 }))
        .subscribe(observer('all'));
      const errors: unknown[] = [];
      api
        .get()
        .pipe(rateLimit(limiter, { url: '/a', headers: NONE, cost: 6 }))
        .subscribe({ ...observer('costly'), error: (e: unknown) => errors.push(e) });
      api
        .get()
        .pipe(rateLimit(limiter, { url: '/a', headers: NONE, cost: 1 }))
        .subscribe(observer('cheap'));
      return { ended, errors, sent: api.sent };
    });
    expect(out.errors).toHaveLength(1);
    expect(isCostExceedsLimitError(out.errors[0])).toBe(true);
    // The cheap one fits the limit learnt: it goes once the window has room.
    expect(out.ended).toEqual(['all 200', 'cheap 200']);
    expect(out.sent).toHaveLength(2);
  });

  it('an identical GET made from a failed one’s error handler is sent by its own observable, and counts as sent, not saved', () => {
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', coldStartConcurrency: 10 });
      const events: LimiterEvent[] = [];
      limiter.events$.subscribe((e) => events.push(e));
      const sentBy: string[] = [];
      // Each caller's observable is its own (its callbacks, its abort signal): here, what it answers.
      const get = (who: string, answer: () => ResponseLike | Error) =>
        new Observable<ResponseLike>((s) => {
          sentBy.push(who);
          const t = asyncScheduler.schedule(() => {
            const a = answer();
            if (a instanceof Error) s.error(a);
            else {
              s.next(a);
              s.complete();
            }
          }, 10);
          return () => t.unsubscribe();
        }).pipe(rateLimit(limiter, { url: '/a', headers: NONE }));
      const { ended, observer } = outcomes();
      get('first', () => new Error('connection reset')).subscribe({
        error: (e: Error) => {
          ended.push(`first ${e.message}`);
          // The app tries again at once.
          get('again', () => responseLike(200, {})).subscribe(observer('again'));
        },
      });
      return { ended, sentBy, events, saved: () => limiter.snapshot.totals.saved };
    });
    expect(out.sentBy).toEqual(['first', 'again']);
    expect(out.ended).toEqual(['first connection reset', 'again 200']);
    expect(out.saved()).toBe(0);
    expect(out.events.filter((e) => e.type === 'shared')).toEqual([]);
  });

  it('GETs alike in every option still share one request, however their options are written', () => {
    const out = inVirtualTime(() => {
      const api = endpoint<ResponseLike>(() => responseLike(200, {}));
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', coldStartConcurrency: 10 });
      const { ended, observer } = outcomes();
      api
        .get()
        .pipe(
          rateLimit(
            limiter,
            { url: '/a', headers: NONE, cost: { a: 2, b: 1 } },
            { statuses: [503, 429], extractResponse: limiter.extractResponse },
          ),
        )
        .subscribe(observer('first'));
      api
        .get()
        .pipe(
          rateLimit(
            limiter,
            { url: '/a', headers: NONE, cost: { b: 1, a: 2 } },
            { statuses: [429, 503], reservePriority: 1 },
          ),
        )
        .subscribe(observer('second'));
      api
        .get()
        .pipe(rateLimit(limiter, { url: '/b', headers: NONE }, { extractResponse: readRaw }))
        .subscribe(observer('third'));
      api
        .get()
        .pipe(rateLimit(limiter, { url: '/b', headers: NONE }, { extractResponse: readRaw }))
        .subscribe(observer('fourth'));
      return { ended, sent: api.sent, saved: () => limiter.snapshot.totals.saved };
    });
    expect(out.ended).toEqual(['first 200', 'second 200', 'third 200', 'fourth 200']);
    expect(out.sent).toHaveLength(2);
    expect(out.saved()).toBe(2);
  });
});

describe('extractors made anew for each request', () => {
  /** Two identical GETs at once, each with an extractor of its own made by `make`; how many were sent. */
  function twoGets(make: () => ResponseExtractor) {
    return inVirtualTime(() => {
      const api = endpoint<SdkAnswer>(() => ({ data: {}, raw: responseLike(200, {}) }));
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', coldStartConcurrency: 10 });
      const { ended, observer } = outcomes();
      for (const who of ['first', 'second'])
        api
          .get()
          .pipe(rateLimit(limiter, { url: '/a', headers: NONE }, { extractResponse: make() }))
          .subscribe(observer(who));
      return { ended, sent: api.sent };
    });
  }

  it('are each their own: such requests are sent each', () => {
    const out = twoGets(() => (x) => readRaw(x));
    expect(out.ended).toEqual(['first 200', 'second 200']);
    expect(out.sent).toHaveLength(2);
  });

  it('marked alike by the client that makes them (sharesAs), share one request', () => {
    const client = {};
    const out = twoGets(() => sharesAs((x) => readRaw(x), client));
    expect(out.ended).toEqual(['first 200', 'second 200']);
    expect(out.sent).toHaveLength(1);
  });
});

describe('a response is never shared between limiters (credentials)', () => {
  it('two limiters GET the same URL with the same headers: one request each, in flight and from the cache', () => {
    const out = inVirtualTime(() => {
      const sent: string[] = [];
      const got: string[] = [];
      // Each limiter's requests go out with its own token (added by its client, not in `headers`).
      const client = (token: string) => {
        const limiter = createLimiter({ provider: providers.generic(), key: token, cache: { ttlMs: 60_000 } });
        const get = (at: number) =>
          asyncScheduler.schedule(
            () =>
              void new Observable<ResponseLike>((s) => {
                sent.push(token);
                const t = asyncScheduler.schedule(() => {
                  s.next(responseLike(200, {}, { user: token }));
                  s.complete();
                }, 10);
                return () => t.unsubscribe();
              })
                .pipe(rateLimit(limiter, { url: '/me', headers: NONE }))
                .subscribe((r) => got.push(`${token} got ${(r.body as { user: string }).user}`)),
            at,
          );
        return { get };
      };
      const alice = client('alice-token');
      const bob = client('bob-token');
      alice.get(0);
      bob.get(0);
      alice.get(100);
      bob.get(100);
      return { sent, got };
    });
    expect(out.sent).toEqual(['alice-token', 'bob-token']);
    expect(out.got).toEqual([
      'alice-token got alice-token',
      'bob-token got bob-token',
      'alice-token got alice-token',
      'bob-token got bob-token',
    ]);
  });
});
