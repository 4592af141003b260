import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, delay, Observable, of, throwError } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import {
  createLimiter,
  defineProvider,
  isQuotaExhaustedError,
  isRetryLimitError,
  providers,
  rateLimit,
  responseLike,
  retryOn429,
  throttleByHeaders,
  rawCauseOf,
  type Limiter,
  type LimiterEvent,
  type RateLimitError,
  type RateLimitConfig,
  type RequestInfo,
  type ResponseLike,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { virtualApi } from '../helpers/virtualApi.js';

/**
 * A key of its own for each limiter made here: limiters of one provider and key in a process
 * share one limit state, and these stand for independent credentials.
 */
let keys = 0;
const freshKey = () => `k${++keys}`;

const http429 = (headers: Record<string, string> = {}) =>
  Object.assign(new Error('HTTP 429'), { status: 429, headers });

function marbles() {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

describe('retryOn429', () => {
  it('resubscribes after the Retry-After time, through the limiter gate, and gives up with RetryLimitError', () => {
    marbles().run(({ cold, expectObservable, expectSubscriptions }) => {
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey(), random: () => 0 });
      const source = cold('-#', undefined, http429({ 'Retry-After': '3' }));
      const result = source.pipe(rateLimit(limiter, {}, { maxRetries: 2 }));
      expectObservable(result).toBe(
        '6003ms #',
        undefined,
        expect.objectContaining({ name: 'RetryLimitError', attempts: 3, status: 429 }),
      );
      expectSubscriptions(source.subscriptions).toBe(['^!', '3001ms ^!', '6002ms ^!']);
    });
  });

  it('passes the response through once a retry succeeds', () => {
    marbles().run(({ cold, expectObservable }) => {
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
      let n = 0;
      const source = defer(() =>
        ++n === 1
          ? cold('-#', undefined, http429({ 'Retry-After': '2' }))
          : cold('-(r|)', { r: responseLike(200, {}) }),
      );
      expectObservable(source.pipe(rateLimit(limiter))).toBe('2002ms (r|)', {
        r: expect.objectContaining({ status: 200 }),
      });
    });
  });

  it('waits for the reset header when there is no Retry-After, and backs off when there is neither', () => {
    marbles().run(({ cold, expectObservable }) => {
      const reset = createLimiter({
        provider: providers.generic({ resetUnit: 'seconds-left' }),
        key: freshKey(),
        resetGuardMs: 100,
      });
      const withReset = cold('-#', undefined, http429({ 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '5' }));
      // The reset (5 s after the 429 at 1 ms) plus the 100 ms guard, then the one retry.
      expectObservable(withReset.pipe(rateLimit(reset, {}, { maxRetries: 1 }))).toBe(
        '5102ms #',
        undefined,
        expect.objectContaining({ name: 'RetryLimitError' }),
      );

      const bare = createLimiter({ provider: providers.generic(), key: 'k2', random: () => 1, backoffBaseMs: 1000 });
      const noInfo = cold('-#', undefined, http429());
      // Backoff 1 s then 2 s (jitter factor 1 with random() = 1).
      expectObservable(noInfo.pipe(rateLimit(bare, {}, { maxRetries: 2 }))).toBe(
        '3003ms #',
        undefined,
        expect.objectContaining({ name: 'RetryLimitError', attempts: 3 }),
      );
    });
  });

  it('never waits less than the server asked, even when the backoff would be shorter', () => {
    marbles().run(({ cold, expectObservable, expectSubscriptions }) => {
      const limiter = createLimiter({
        provider: providers.generic(),
        key: freshKey(),
        random: () => 0,
        backoffBaseMs: 10,
      });
      const source = cold('-#', undefined, http429({ 'Retry-After': '7' }));
      expectObservable(source.pipe(rateLimit(limiter, {}, { maxRetries: 1 }))).toBe(
        '7002ms #',
        undefined,
        expect.anything(),
      );
      expectSubscriptions(source.subscriptions).toBe(['^!', '7001ms ^!']);
    });
  });

  it('does not retry a POST: it ends with its original error, and the pause still holds other streams', () => {
    const out = inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, {
        limit: 100,
        windowMs: 60_000,
        errorsAsThrows: true,
        override: (n) => (n === 1 ? { status: 429, headers: { 'Retry-After': '2' } } : undefined),
      });
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
      const errors: unknown[] = [];
      api
        .request('POST')
        .pipe(rateLimit(limiter, { method: 'POST' }))
        .subscribe({ error: (e) => errors.push(e) });
      asyncScheduler.schedule(() => api.request('GET').pipe(rateLimit(limiter)).subscribe(), 100);
      return { errors, api };
    });
    expect(out.errors).toHaveLength(1);
    expect(out.errors[0]).toMatchObject({ message: 'HTTP 429', status: 429 });
    expect(out.api.hits.map((h) => [h.method, h.status, h.at])).toEqual([
      ['POST', 429, 0],
      ['GET', 200, 2010],
    ]);
  });

  it('retries a POST that carries an idempotency key, or when retryNonIdempotent is set', () => {
    for (const [info, config] of [
      [{ method: 'POST', idempotencyKey: 'order-42' }, {}],
      [{ method: 'POST' }, { retryNonIdempotent: true }],
    ] as const) {
      const api = inVirtualTime(() => {
        const api = virtualApi(asyncScheduler, {
          limit: 100,
          windowMs: 60_000,
          override: (n) => (n === 1 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
        });
        const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
        api
          .request('POST')
          .pipe(rateLimit(limiter, info, config))
          .subscribe();
        return api;
      });
      expect(api.hits.map((h) => h.status)).toEqual([429, 200]);
    }
  });

  it('a 429 that arrives as a value (fetch) is retried too; a POST one is delivered as received', () => {
    const limiter = () => createLimiter({ provider: providers.generic(), key: freshKey() });
    marbles().run(({ cold, expectObservable }) => {
      const limited = responseLike(429, { 'retry-after': '1' });
      const ok = responseLike(200, {});
      let n = 0;
      const get$ = defer(() => (++n === 1 ? cold('-(a|)', { a: limited }) : cold('-(b|)', { b: ok })));
      expectObservable(get$.pipe(rateLimit(limiter()))).toBe('1002ms (b|)', { b: ok });
      const post$ = cold('-(a|)', { a: limited });
      expectObservable(post$.pipe(rateLimit(limiter(), { method: 'POST' }))).toBe('-(a|)', { a: limited });
    });
  });

  it('fails at once with QuotaExhaustedError when the server asks for a wait longer than maxWaitMs', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey(), maxWaitMs: 60_000 });
      const errors: Array<[number, unknown]> = [];
      throwError(() => http429({ 'Retry-After': '3600' }))
        .pipe(rateLimit(limiter))
        .subscribe({ error: (e) => errors.push([now(), e]) });
      return errors;
    });
    expect(out).toHaveLength(1);
    const [at, e] = out[0]!;
    expect(at).toBe(0);
    expect(isQuotaExhaustedError(e)).toBe(true);
    if (isQuotaExhaustedError(e)) {
      expect(e.resumeAt).toBe(3_600_000);
      expect(e.bucket).toBe('pause');
      expect((e.cause as { status: number }).status).toBe(429);
    }
  });

  it('used alone (without throttleByHeaders) still tells the limiter, which pauses other streams', () => {
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
      const events: LimiterEvent[] = [];
      limiter.events$.subscribe((e) => events.push(e));
      let n = 0;
      const errors: unknown[] = [];
      defer(() => (++n === 1 ? throwError(() => http429({ 'Retry-After': '4' })) : of(responseLike(200, {}))))
        .pipe(retryOn429(limiter))
        .subscribe({ error: (e) => errors.push(e) });
      return { events, errors, snapshot: limiter.snapshot };
    });
    expect(out.errors).toEqual([]);
    expect(out.events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['rate-limited', 'paused', 'retry-scheduled']),
    );
    const paused = out.events.find((e) => e.type === 'paused');
    expect(paused).toMatchObject({ until: 4000, reason: 'retry-after' });
  });

  it('RetryLimitError keeps the last 429 as its cause and serializes without it', () => {
    const errors = inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: 'secret-token' });
      const errors: unknown[] = [];
      throwError(() => http429({ 'Retry-After': '1' }))
        .pipe(rateLimit(limiter, {}, { maxRetries: 0 }))
        .subscribe({ error: (e) => errors.push(e) });
      return errors;
    });
    const e = errors[0];
    expect(isRetryLimitError(e)).toBe(true);
    if (isRetryLimitError(e)) {
      expect((e.cause as Error).message).toBe('HTTP 429');
      expect(JSON.parse(JSON.stringify(e))).toEqual({
        name: 'RetryLimitError',
        message: expect.stringContaining('after 1 attempts'),
        provider: 'generic',
        key: expect.stringMatching(/^key_/),
        attempts: 1,
        status: 429,
      });
      expect(JSON.stringify(e)).not.toContain('secret-token');
    }
  });

  it('an extra status the provider does not treat as a rate limit (503) backs off instead of retrying at once', () => {
    marbles().run(({ cold, expectObservable, expectSubscriptions }) => {
      const limiter = createLimiter({
        provider: providers.generic(),
        key: freshKey(),
        random: () => 1,
        backoffBaseMs: 1000,
      });
      const source = cold('-#', undefined, Object.assign(new Error('HTTP 503'), { status: 503, headers: {} }));
      expectObservable(source.pipe(rateLimit(limiter, {}, { statuses: [429, 503], maxRetries: 2 }))).toBe(
        '3003ms #',
        undefined,
        expect.objectContaining({ name: 'RetryLimitError', status: 503 }),
      );
      expectSubscriptions(source.subscriptions).toBe(['^!', '1001ms ^!', '3002ms ^!']);
    });
  });

  it('rejects a bad maxRetries with a TypeError that names it', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
    expect(() => retryOn429(limiter, {}, { maxRetries: -1 })).toThrow(
      /`maxRetries` must be a whole number >= 0, got -1/,
    );
  });

  it('rejects a retryNonIdempotent that is not a boolean (a "false" from the environment resent POSTs)', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
    const notBoolean = { retryNonIdempotent: 'false' as unknown as boolean };
    expect(() => retryOn429(limiter, { method: 'POST' }, notBoolean)).toThrow(
      /`retryNonIdempotent` must be a boolean, got "false"/,
    );
    expect(() => rateLimit(limiter, { method: 'POST' }, notBoolean)).toThrow(/`retryNonIdempotent`/);
  });
});

describe('a 200 the provider reads as a rate limit (a throttle told in the body, as Shopify GraphQL does)', () => {
  interface Body {
    readonly throttled?: boolean;
    readonly waitMs?: number;
    /** The server says the request never ran. */
    readonly notRun?: boolean;
  }
  /** A profile that reads `{ throttled: true, waitMs }` in a body as a rate limit, the wait from the body. */
  const bodyThrottle = defineProvider({
    name: 'body-throttle',
    buckets: [{ name: 'default' }],
    read: (res) => {
      const body = res.body as Body | undefined;
      if (!body?.throttled) return { outcome: 'ok', buckets: [] };
      return {
        outcome: 'limited',
        buckets: [],
        retryAfter: { delayMs: body.waitMs ?? 1000 },
        retrySource: 'body',
        ...(body.notRun ? { notProcessed: true } : {}),
      };
    },
  });
  const limiterOf = () => createLimiter({ provider: bodyThrottle, key: freshKey() });
  const throttled = (body: Body = {}) => responseLike(200, {}, { throttled: true, waitMs: 2000, ...body });
  const ok = responseLike(200, {}, { data: 1 });

  /** The three ways in, each as a user composes it. */
  const ways = {
    rateLimit: (l: Limiter, info: RequestInfo, config: RateLimitConfig) => rateLimit<ResponseLike>(l, info, config),
    'throttleByHeaders + retryOn429':
      (l: Limiter, info: RequestInfo, config: RateLimitConfig) => (s: Observable<ResponseLike>) =>
        s.pipe(throttleByHeaders(l, info), retryOn429(l, info, config)),
    'retryOn429 alone': (l: Limiter, info: RequestInfo, config: RateLimitConfig) =>
      retryOn429<ResponseLike>(l, info, config),
  } as const;

  it.each(Object.keys(ways) as Array<keyof typeof ways>)(
    '%s: waits the time the body states, sends it again, and passes the answer with data through',
    (way) => {
      marbles().run(({ cold, expectObservable }) => {
        let n = 0;
        const source = defer(() => (++n === 1 ? cold('-(t|)', { t: throttled() }) : cold('-(r|)', { r: ok })));
        // Throttled at 1 ms, held 2 s (the body's wait), sent again at 2001 ms.
        expectObservable(source.pipe(ways[way](limiterOf(), {}, {}))).toBe('2002ms (r|)', { r: ok });
      });
    },
  );

  it.each(Object.keys(ways) as Array<keyof typeof ways>)(
    '%s: the throttle holds every stream of the limiter, not only the throttled one',
    (way) => {
      const out = inVirtualTime(({ now }) => {
        const limiter = limiterOf();
        const sent: number[] = [];
        let n = 0;
        const request = (answer: () => ResponseLike) =>
          defer(() => {
            sent.push(now());
            return of(answer()).pipe(delay(1));
          });
        request(() => (++n === 1 ? throttled() : ok))
          .pipe(ways[way](limiter, {}, {}))
          .subscribe();
        // Another stream through the same limiter, 100 ms later: it waits out the throttle too
        // (with retryOn429 alone its throttleByHeaders is what gates it).
        asyncScheduler.schedule(
          () =>
            request(() => ok)
              .pipe(throttleByHeaders(limiter))
              .subscribe(),
          100,
        );
        return sent;
      });
      expect(out).toEqual([0, 2001, 2001]);
    },
  );

  it.each(Object.keys(ways) as Array<keyof typeof ways>)(
    '%s: past maxRetries it fails with RetryLimitError, its status 200 and its cause the last answer',
    (way) => {
      const out = inVirtualTime(({ now }) => {
        const answers: ResponseLike[] = [];
        const errors: Array<[number, unknown]> = [];
        defer(() => {
          answers.push(throttled());
          return of(answers[answers.length - 1]!).pipe(delay(1));
        })
          .pipe(ways[way](limiterOf(), {}, { maxRetries: 1 }))
          .subscribe({ error: (e) => errors.push([now(), e]) });
        return { answers, errors };
      });
      expect(out.answers).toHaveLength(2);
      expect(out.errors).toHaveLength(1);
      const [at, error] = out.errors[0]!;
      // Throttled at 1 ms, sent again at 2001 ms, throttled again at 2002 ms: no third attempt.
      expect(at).toBe(2002);
      expect(error).toMatchObject({ name: 'RetryLimitError', attempts: 2, status: 200 });
      expect(rawCauseOf(error as RateLimitError)).toBe(out.answers[1]);
    },
  );

  it.each(Object.keys(ways) as Array<keyof typeof ways>)(
    '%s: a POST goes again only when the provider says the server did not run it, and never with retry: false',
    (way) => {
      marbles().run(({ cold, expectObservable }) => {
        const twice = (first: ResponseLike) => {
          let n = 0;
          return defer(() => (++n === 1 ? cold('-(t|)', { t: first }) : cold('-(r|)', { r: ok })));
        };
        const ran = throttled();
        // It may have run: delivered as received, as a 429 on a POST is.
        expectObservable(twice(ran).pipe(ways[way](limiterOf(), { method: 'POST' }, {}))).toBe('-(t|)', { t: ran });
        // It did not run: sending it again cannot apply it twice.
        expectObservable(twice(throttled({ notRun: true })).pipe(ways[way](limiterOf(), { method: 'POST' }, {}))).toBe(
          '2002ms (r|)',
          { r: ok },
        );
        const forbidden = throttled({ notRun: true });
        expectObservable(twice(forbidden).pipe(ways[way](limiterOf(), { method: 'POST', retry: false }, {}))).toBe(
          '-(t|)',
          { t: forbidden },
        );
      });
    },
  );

  it('sent again, the request takes the cost the rate limit told (retryCost), not its estimate', () => {
    // A window of 10 units. The first attempt is taken at 1 unit; its answer says it costs 10.
    // Sent again after 1 s it needs the whole window, which has 9 left until it ends at 10 s.
    const told = defineProvider({
      name: 'told-cost',
      buckets: [{ name: 'units', limit: 10, windowMs: 10_000 }],
      read: (res) =>
        (res.body as Body | undefined)?.throttled
          ? {
              outcome: 'limited',
              buckets: [],
              retryAfter: { delayMs: 1000 },
              retrySource: 'body',
              notProcessed: true,
              retryCost: { units: 10 },
            }
          : { outcome: 'ok', buckets: [] },
    });
    const out = inVirtualTime(({ now }) => {
      const sent: Array<[number, number]> = [];
      const run = (info: RequestInfo) => {
        const limiter = createLimiter({ provider: told, key: freshKey() });
        let n = 0;
        defer(() => {
          sent.push([++n, now()]);
          return of(n === 1 ? throttled() : ok).pipe(delay(1));
        })
          .pipe(rateLimit(limiter, info))
          .subscribe();
      };
      run({ method: 'POST' });
      // A cost given as one number for every bucket: the told bucket takes the told cost.
      asyncScheduler.schedule(() => run({ method: 'POST', cost: 2 }), 20_000);
      return sent;
    });
    // (A window no reset dates ends a window after the first answer from it, 1 ms after the
    // send, plus a guard of a thousandth of the window: 10 ms.) Taken at its estimate, it would
    // have gone at 1 s.
    expect(out).toEqual([
      [1, 0],
      [2, 10_011],
      [1, 20_000],
      [2, 30_011],
    ]);
  });

  it('an error status the provider reads as limited is retried; one it reads as ok only when listed', () => {
    // GitHub answers some limits with 403, and a permission error with 403 too: the provider tells them apart.
    const limited403 = defineProvider({
      name: 'limited-403',
      buckets: [{ name: 'default' }],
      read: (res) =>
        res.status === 403 && res.body === 'rate limit'
          ? { outcome: 'limited', buckets: [], retryAfter: { delayMs: 1000 }, retrySource: 'body' }
          : { outcome: 'ok', buckets: [] },
    });
    marbles().run(({ cold, expectObservable }) => {
      const limited = responseLike(403, {}, 'rate limit');
      const forbidden = responseLike(403, {}, 'no access');
      const twice = (first: ResponseLike) => {
        let n = 0;
        return defer(() => (++n === 1 ? cold('-(f|)', { f: first }) : cold('-(r|)', { r: ok })));
      };
      const limiter = () => createLimiter({ provider: limited403, key: freshKey(), random: () => 0.5 });
      expectObservable(twice(limited).pipe(rateLimit(limiter()))).toBe('1002ms (r|)', { r: ok });
      expectObservable(twice(forbidden).pipe(rateLimit(limiter()))).toBe('-(f|)', { f: forbidden });
      expectObservable(twice(forbidden).pipe(rateLimit(limiter(), {}, { statuses: [429, 403] }))).toBe(
        // No wait told: the limiter's backoff (1 s base, jittered: 750 ms with random() = 0.5).
        '752ms (r|)',
        { r: ok },
      );
    });
  });

  it('a 200 that is not a rate limit is read once and passed on, whatever else is configured', () => {
    marbles().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-(r|)', { r: ok });
      expectObservable(source.pipe(rateLimit(limiterOf(), { method: 'POST' }, { statuses: [429, 503] }))).toBe(
        '-(r|)',
        { r: ok },
      );
      expectSubscriptions(source.subscriptions).toBe('^!');
    });
  });
});

describe('an extractResponse of the user that throws on what it does not know', () => {
  const original = new Error('ECONNRESET');
  const extractResponse = (x: unknown) => {
    if (typeof x === 'object' && x !== null && (x as { kind?: string }).kind === 'response')
      return responseLike((x as { status: number }).status, {});
    throw new Error('extractor does not know this value');
  };
  const run = (source: Observable<unknown>, method: string) =>
    inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: 'k' });
      const out: unknown[] = [];
      source.pipe(rateLimit(limiter, { method, url: '/a' }, { extractResponse })).subscribe({
        next: (v) => out.push(['value', v]),
        error: (e: unknown) => out.push(['error', e]),
      });
      return out;
    });

  it.each(['GET', 'POST'])('a %s that fails ends with its own error, not the extractor’s', (method) => {
    expect(
      run(
        throwError(() => original),
        method,
      ),
    ).toEqual([['error', original]]);
  });

  it('a GET whose value it cannot read ends with that value', () => {
    expect(run(of('a plain body'), 'GET')).toEqual([['value', 'a plain body']]);
  });
});

describe('a request whose teardown throws', () => {
  it('still gives its slot back when it is unsubscribed: the next request goes at once', () => {
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', maxConcurrent: 1 });
      const sentAt: number[] = [];
      const request = (throwsOnTeardown: boolean) =>
        new Observable<ResponseLike>(() => {
          sentAt.push(asyncScheduler.now());
          return () => {
            if (throwsOnTeardown) throw new Error('teardown failed');
          };
        }).pipe(rateLimit(limiter, { method: 'GET', url: '/slow' }));
      const first = request(true).subscribe();
      let unsubscribeError: unknown;
      asyncScheduler.schedule(() => {
        try {
          first.unsubscribe();
        } catch (e) {
          unsubscribeError = e;
        }
      }, 10);
      asyncScheduler.schedule(() => request(false).subscribe(), 20);
      return { sentAt, unsubscribeError: () => unsubscribeError };
    });
    expect(out.sentAt).toEqual([0, 20]);
    // The teardown's own error still reaches the caller of unsubscribe, as RxJS has it.
    expect(String(out.unsubscribeError())).toMatch(/teardown failed/);
  });
});
