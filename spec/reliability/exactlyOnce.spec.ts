/**
 * Every subscribed request ends exactly once, with its response, its original error or
 * one of our typed errors; none hangs, none is sent again when it must not be, none is dropped.
 *
 * fast-check draws whole scenarios (provider, streams, methods, priorities, per-send server
 * behaviour, unsubscribe times, queue and wait limits, retry limits, limit changes through the
 * headers) and runs each against a fake server in RxJS virtual time. Seed: RELIABILITY_SEED
 * (default below), runs: RELIABILITY_RUNS; both are logged with the totals.
 */
import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Observable, type SchedulerLike, type Subscription } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import {
  createLimiter,
  dailyQuotaGuard,
  extractResponse,
  isBlockedError,
  isQueueFullError,
  isQuotaExhaustedError,
  isRateLimitError,
  isRetryLimitError,
  rateLimit,
  retryOn429,
  throttleByHeaders,
  type Limiter,
  type Permit,
  type RequestInfo,
} from '../../lib/index.js';
import { isRetrySafe, shareIdentity } from '../../lib/core/request.js';
import { ABSURD_VALUES, headerMap, makeProvider, PROVIDERS, prng, type ProviderName } from './arbitraries.js';

const SEED = Number(process.env['RELIABILITY_SEED'] ?? 20_260_107);
const RUNS = Number(process.env['RELIABILITY_RUNS'] ?? 200);
const START = Date.UTC(2026, 0, 1);
/** Most schedule() calls one limiter may make in a run: more is a livelock. */
const WATCHDOG = 200_000;

// ---- scenario -------------------------------------------------------------------------------

type Mode = 'rateLimit' | 'composed' | 'throttle' | 'acquire';

interface Counters {
  readonly limit: number;
  readonly remaining: number;
  readonly resetIn: number;
  readonly daily: number;
}

type Answer =
  | { kind: 'ok'; latency: number; counters: Counters | undefined; garble: number | undefined }
  | {
      kind: 'status';
      status: number;
      asError: boolean;
      latency: number;
      retryAfter: string | undefined;
      counters: Counters | undefined;
      html: boolean;
    }
  | { kind: 'throw'; sync: boolean; latency: number }
  | { kind: 'garbage'; status: number; asError: boolean; latency: number; headers: Record<string, string | string[]> };

interface RequestPlan {
  readonly at: number;
  readonly method: string;
  readonly idempotencyKey: boolean;
  readonly priority: number;
  readonly path: number;
  readonly mode: Mode;
  /** Unsubscribes this long after subscribing … */
  readonly unsubscribeAfter: number | undefined;
  /** … or this long after the server got send number `send` (in flight, or waiting to retry). */
  readonly unsubscribeOnSend: { readonly send: number; readonly delay: number } | undefined;
  readonly answers: readonly Answer[];
}

interface Scenario {
  readonly provider: ProviderName;
  readonly streams: number;
  readonly maxQueue: number;
  readonly maxWaitMs: number;
  readonly maxConcurrent: number;
  readonly coldStart: number;
  readonly maxRetries: number;
  readonly retryNonIdempotent: boolean;
  readonly reserve: number;
  readonly dedupe: boolean;
  readonly sharedPaths: boolean;
  readonly seed: number;
  readonly hostility: number;
  /** Absurd and garbled headers, exhausted budgets, long pauses. */
  readonly wild: boolean;
  readonly requests: readonly RequestPlan[];
}

/*
 * The mix. Most scenarios are tame: counters, resets and Retry-After values as a real provider
 * sends them, so most requests are sent, 429s are retried (some until they succeed, some into
 * RetryLimitError) and concurrent GETs are shared. A minority are wild: absurd and garbled
 * headers, exhausted daily budgets, long pauses. Small queues, short maxWaitMs, blocks and
 * unsubscriptions stay present, each weighted to be a minor share of the outcomes.
 */

const counters = (wild: boolean): fc.Arbitrary<Counters> =>
  wild
    ? fc.record({
        limit: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: 1, max: 200 }) },
          { weight: 1, arbitrary: fc.constantFrom(0, 1, 2, 5, 9_007_199_254_740_991) },
        ),
        remaining: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: 1, max: 200 }) },
          { weight: 1, arbitrary: fc.constantFrom(0, -1, -2) },
        ),
        resetIn: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: 1, max: 60 }) },
          { weight: 1, arbitrary: fc.constantFrom(-5, 0, 3600, 86_400) },
        ),
        daily: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: 1, max: 10_000 }) },
          { weight: 1, arbitrary: fc.constantFrom(0, -1) },
        ),
      })
    : fc.record({
        limit: fc.integer({ min: 10, max: 200 }),
        remaining: fc.oneof(
          { weight: 12, arbitrary: fc.integer({ min: 1, max: 200 }) },
          { weight: 1, arbitrary: fc.constant(0) },
        ),
        resetIn: fc.integer({ min: 1, max: 20 }),
        daily: fc.integer({ min: 100, max: 10_000 }),
      });

const latency = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 0, max: 300 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 5_000) },
);

const retryAfter = (wild: boolean): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 5 }).map(String) },
    { weight: 1, arbitrary: fc.integer({ min: 6, max: wild ? 120 : 30 }).map(String) },
    ...(wild ? [{ weight: 1, arbitrary: fc.constantFrom(...ABSURD_VALUES) }] : []),
  );

const ok = (wild: boolean): fc.Arbitrary<Answer> =>
  fc.record({
    kind: fc.constant('ok' as const),
    latency,
    counters: fc.option(counters(wild), { nil: undefined }),
    garble: wild ? fc.option(fc.nat(), { nil: undefined }) : fc.constant(undefined),
  });

const status = (wild: boolean, statuses: fc.Arbitrary<number>): fc.Arbitrary<Answer> =>
  fc.record({
    kind: fc.constant('status' as const),
    status: statuses,
    asError: fc.boolean(),
    latency,
    retryAfter: retryAfter(wild),
    counters: fc.option(counters(wild), { nil: undefined }),
    // An HTML 403 is Pipedrive's block: every request fails until it lifts.
    html: wild ? fc.boolean() : fc.oneof({ weight: 8, arbitrary: fc.constant(false) }, fc.constant(true)),
  });

const limited = (wild: boolean): fc.Arbitrary<Answer> => status(wild, fc.constant(429));

/** `hostility`: how often the server answers anything but 200 (1 calm … 8 hostile). */
const answer = (hostility: number, wild: boolean): fc.Arbitrary<Answer> =>
  fc.oneof(
    { weight: 12, arbitrary: ok(wild) },
    { weight: hostility, arbitrary: status(wild, fc.constantFrom(429, 429, 429, 403, 500, 503, 404)) },
    {
      weight: Math.ceil(hostility / 2),
      arbitrary: fc.record({ kind: fc.constant('throw' as const), sync: fc.boolean(), latency }),
    },
    ...(wild
      ? [
          {
            weight: Math.ceil(hostility / 2),
            arbitrary: fc.record({
              kind: fc.constant('garbage' as const),
              status: fc.constantFrom(200, 429),
              asError: fc.boolean(),
              latency,
              headers: headerMap,
            }),
          },
        ]
      : []),
  );

/** Per send, what the server answers (the last answer repeats): a mix, 429s then a response, or only 429s. */
const answers = (hostility: number, wild: boolean): fc.Arbitrary<Answer[]> =>
  fc.oneof(
    { weight: 8, arbitrary: fc.array(answer(hostility, wild), { minLength: 1, maxLength: 4 }) },
    {
      weight: 2 + hostility,
      arbitrary: fc.tuple(fc.array(limited(wild), { minLength: 1, maxLength: 4 }), ok(wild)).map(([l, o]) => [...l, o]),
    },
    { weight: 1, arbitrary: fc.array(limited(wild), { minLength: 1, maxLength: 2 }) },
  );

/**
 * Unsubscription: mostly never; else at a time after subscribing (often still queued), or
 * shortly after a send (in flight, or answered 429 and waiting to be sent again).
 */
const unsubscription = fc.oneof(
  { weight: 14, arbitrary: fc.constant({ unsubscribeAfter: undefined, unsubscribeOnSend: undefined }) },
  {
    weight: 2,
    arbitrary: fc.record({
      unsubscribeAfter: fc.oneof(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 12_000 })),
      unsubscribeOnSend: fc.constant(undefined),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      unsubscribeAfter: fc.constant(undefined),
      unsubscribeOnSend: fc.record({ send: fc.nat({ max: 1 }), delay: fc.integer({ min: 0, max: 600 }) }),
    }),
  },
);

const request = (hostility: number, wild: boolean): fc.Arbitrary<RequestPlan> =>
  fc
    .record({
      at: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 10_000 })),
      method: fc.constantFrom('GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
      idempotencyKey: fc.boolean(),
      priority: fc.integer({ min: -1, max: 2 }),
      path: fc.nat({ max: 3 }),
      mode: fc.constantFrom<Mode>('rateLimit', 'rateLimit', 'composed', 'throttle', 'acquire'),
      unsubscribe: unsubscription,
      answers: answers(hostility, wild),
    })
    .map(({ unsubscribe, ...plan }) => ({ ...plan, ...unsubscribe }));

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    provider: fc.constantFrom(...PROVIDERS),
    streams: fc.integer({ min: 1, max: 20 }),
    maxQueue: fc.oneof(
      { weight: 16, arbitrary: fc.constant(Infinity) },
      { weight: 2, arbitrary: fc.constant(50) },
      { weight: 1, arbitrary: fc.constantFrom(0, 5) },
    ),
    maxWaitMs: fc.oneof(
      { weight: 12, arbitrary: fc.constantFrom(600_000, 600_000, Infinity) },
      { weight: 1, arbitrary: fc.constantFrom(0, 200, 60_000) },
    ),
    maxConcurrent: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(Infinity, Infinity, 3, 8) },
      { weight: 1, arbitrary: fc.constant(1) },
    ),
    coldStart: fc.integer({ min: 1, max: 4 }),
    maxRetries: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 5 }) }, fc.constant(0)),
    retryNonIdempotent: fc.boolean(),
    reserve: fc.constantFrom(0, 0, 5),
    dedupe: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, fc.constant(false)),
    sharedPaths: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, fc.constant(false)),
    seed: fc.nat(),
    hostility: fc.constantFrom(1, 3, 3, 8),
    wild: fc.oneof({ weight: 7, arbitrary: fc.constant(false) }, fc.constant(true)),
  })
  .chain((s) =>
    fc
      .array(request(s.hostility, s.wild), { minLength: 1, maxLength: 200, size: 'max' })
      .map((requests): Scenario => ({ ...s, requests })),
  );

// ---- the fake server --------------------------------------------------------------------------

class FakeHttpError extends Error {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string | string[]>,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

interface FakeResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: unknown;
}

function render(provider: ProviderName, c: Counters | undefined, t: number, status: number): Record<string, string> {
  const h: Record<string, string> = { Date: new Date(t).toUTCString() };
  if (!c) return h;
  const unix = String(Math.floor(t / 1000) + c.resetIn);
  switch (provider) {
    case 'procore':
      return {
        ...h,
        'X-Rate-Limit-Limit': `${c.limit}`,
        'X-Rate-Limit-Remaining': `${c.remaining}`,
        'X-Rate-Limit-Reset': unix,
      };
    case 'planningCenter':
      return {
        ...h,
        'X-PCO-API-Request-Rate-Limit': `${c.limit}`,
        'X-PCO-API-Request-Rate-Count': `${c.limit - c.remaining}`,
        'X-PCO-API-Request-Rate-Period': '20 seconds',
      };
    case 'fieldwire':
      return {
        ...h,
        'X-RateLimit-Limit': `${c.limit}`,
        'X-RateLimit-Remaining': `${c.remaining}`,
        'X-RateLimit-Reset': unix,
        'ratelimit-limit-minute': `${Math.min(c.limit, 20)}`,
        'ratelimit-remaining-minute': `${Math.min(c.remaining, 20)}`,
        'ratelimit-reset': status === 429 ? unix : '0',
      };
    case 'pipedrive':
      return {
        ...h,
        'x-ratelimit-limit': `${c.limit}`,
        'x-ratelimit-remaining': `${c.remaining}`,
        'x-ratelimit-reset': `${c.resetIn}`,
        'x-daily-requests-left': `${c.daily}`,
      };
    case 'teos':
      return {
        ...h,
        'X-Rate-Limit-Limit': '1m, 1d',
        'X-Rate-Limit-Remaining': `${c.remaining}, ${c.daily}`,
        'X-Rate-Limit-Reset': `${new Date(t + c.resetIn * 1000).toISOString()}, ${new Date(t + 86_400_000).toISOString()}`,
      };
    case 'generic':
      return {
        ...h,
        'x-ratelimit-limit': `${c.limit}`,
        'x-ratelimit-remaining': `${c.remaining}`,
        'x-ratelimit-reset': `${c.resetIn}`,
      };
    case 'github':
      return {
        ...h,
        'x-ratelimit-limit': `${c.limit}`,
        'x-ratelimit-remaining': `${c.remaining}`,
        'x-ratelimit-reset': unix,
        'x-ratelimit-used': `${c.limit - c.remaining}`,
        'x-ratelimit-resource': 'core',
      };
    case 'hubspot':
      return {
        ...h,
        'X-HubSpot-RateLimit-Max': `${c.limit}`,
        'X-HubSpot-RateLimit-Remaining': `${c.remaining}`,
        'X-HubSpot-RateLimit-Interval-Milliseconds': '10000',
        'X-HubSpot-RateLimit-Daily': '250000',
        'X-HubSpot-RateLimit-Daily-Remaining': `${c.daily}`,
      };
    case 'atlassian':
      return {
        ...h,
        'X-RateLimit-Limit': `${c.limit}`,
        'X-RateLimit-Remaining': `${c.remaining}`,
        'Beta-RateLimit-Policy': `"jira-burst-based";q=${c.limit};w=1`,
        'RateLimit-Policy': '"global-app-quota";q=65000;w=3600',
        ...(status === 429 ? { 'RateLimit-Reason': 'jira-burst-based' } : {}),
      };
    case 'shopify':
      return { ...h, 'X-Shopify-Shop-Api-Call-Limit': `${c.limit - c.remaining}/${c.limit}` };
    case 'shopifyGraphql':
      return h;
  }
}

/** A 200's body: Shopify GraphQL reports its bucket there. */
function okBody(provider: ProviderName, c: Counters | undefined): unknown {
  if (provider !== 'shopifyGraphql' || !c) return undefined;
  return {
    data: {},
    extensions: {
      cost: {
        requestedQueryCost: 1,
        actualQueryCost: 1,
        throttleStatus: { maximumAvailable: c.limit, currentlyAvailable: c.remaining, restoreRate: c.limit / 10 },
      },
    },
  };
}

function body429(provider: ProviderName, c: Counters | undefined): unknown {
  if (provider === 'planningCenter') {
    const limit = c?.limit ?? 100;
    return { errors: [{ detail: `${limit + 1} of ${limit} requests per 20 seconds` }] };
  }
  if (provider === 'fieldwire')
    return { errors: [{ code: 'rate_limit_exceeded', details: { throttled_by: 'minute' } }] };
  if (provider === 'hubspot') return { status: 'error', errorType: 'RATE_LIMIT', policyName: 'TEN_SECONDLY_ROLLING' };
  return undefined;
}

// ---- one run ----------------------------------------------------------------------------------

interface Record_ {
  readonly plan: RequestPlan;
  readonly info: RequestInfo;
  readonly retrySafe: boolean;
  readonly key: string | undefined;
  sends: number;
  answered: Answer[];
  /** Per send answered: did the limiter's profile read that answer as a rate limit? */
  readonly readLimited: boolean[];
  readonly responses: object[];
  readonly errors: unknown[];
  values: unknown[];
  completes: number;
  errorsOut: unknown[];
  afterTerminal: number;
  unsubscribed: boolean;
  subscribed: boolean;
  sentAfterUnsubscribe: number;
  /** Sends of this request the fake server has not answered (or dropped) yet. */
  open: number;
  /** Where the request was when it was unsubscribed. */
  unsubscribedWhile: 'queued' | 'inFlight' | 'retryWait' | undefined;
  /** Unsubscribes now, unless the request has ended (set once subscribed). */
  cancel: (() => void) | undefined;
  terminalAt: number | undefined;
  granted: number;
  rejected: number;
}

interface Totals {
  runs: number;
  requests: number;
  /** Requests that reached the server at least once. */
  sent: number;
  sends: number;
  /** Sends beyond the first, summed over requests. */
  resends: number;
  /** Requests sent more than once. */
  retried: number;
  /** Of those, the ones that ended with a response. */
  retriedThenAnswered: number;
  /** GETs through `rateLimit` with dedupe on (shared by key), and those served without a send of their own. */
  sharedGets: number;
  sharedServed: number;
  unsubscribed: number;
  unsubscribedWhile: Record<string, number>;
  values: number;
  originalErrors: number;
  typed: Record<string, number>;
  /** QuotaExhaustedError by bucket (`pause`, `concurrency`: a wait past maxWaitMs). */
  quotaByBucket: Record<string, number>;
  virtualMs: number;
  byProvider: Record<string, number>;
  byMode: Record<string, number>;
}

const totals: Totals = {
  runs: 0,
  requests: 0,
  sent: 0,
  sends: 0,
  resends: 0,
  retried: 0,
  retriedThenAnswered: 0,
  sharedGets: 0,
  sharedServed: 0,
  unsubscribed: 0,
  unsubscribedWhile: {},
  values: 0,
  originalErrors: 0,
  typed: {},
  quotaByBucket: {},
  virtualMs: 0,
  byProvider: {},
  byMode: {},
};

function inc(o: Record<string, number>, k: string, n = 1): void {
  o[k] = (o[k] ?? 0) + n;
}

function acquired<T>(limiter: Limiter, info: RequestInfo, source: Observable<T>, rec: Record_): Observable<T> {
  return new Observable<T>((subscriber) => {
    let permit: Permit | undefined;
    let inner: Subscription | undefined;
    const read = (x: unknown) => {
      const res = extractResponse(x);
      if (res && permit) permit.observe(res, x);
    };
    const ticket = limiter.acquire(info, {
      granted(p) {
        rec.granted++;
        permit = p;
        inner = source.subscribe({
          next: (v) => {
            read(v);
            subscriber.next(v);
          },
          error: (e: unknown) => {
            read(e);
            p.release();
            subscriber.error(e);
          },
          complete: () => {
            p.release();
            subscriber.complete();
          },
        });
      },
      rejected(e) {
        rec.rejected++;
        subscriber.error(e);
      },
    });
    return () => {
      ticket.cancel();
      inner?.unsubscribe();
      permit?.release();
    };
  });
}

function runScenario(s: Scenario): void {
  const testScheduler = new TestScheduler(() => undefined);
  const records: Record_[] = [];
  let active = 0;
  let limiter!: Limiter;
  let scheduled = 0;

  testScheduler.run(() => {
    const scheduler: SchedulerLike = {
      now: () => testScheduler.now(),
      schedule(work, delay, state) {
        if (++scheduled > WATCHDOG) throw new Error(`livelock: ${scheduled} timers scheduled`);
        return testScheduler.schedule(work as never, delay, state);
      },
    };
    limiter = createLimiter({
      provider: makeProvider(s.provider, { limit: 10, windowMs: 1000 }),
      key: 'token',
      scheduler,
      maxQueue: s.maxQueue,
      maxWaitMs: s.maxWaitMs,
      maxConcurrent: s.maxConcurrent,
      coldStartConcurrency: s.coldStart,
      dedupe: s.dedupe,
      random: prng(s.seed),
    });
    const serverNow = () => START + testScheduler.now();

    s.requests.forEach((plan, i) => {
      const path = s.provider === 'planningCenter' && plan.path === 3 ? '/people/v2/people?offset=40000' : '/projects';
      const url = s.sharedPaths
        ? `${path}${path.includes('?') ? '&' : '?'}p=${plan.path}`
        : `${path}${path.includes('?') ? '&' : '?'}i=${i}`;
      const info: RequestInfo = {
        method: plan.method,
        url,
        priority: plan.priority,
        // The headers it is sent with: what lets `rateLimit` share identical GETs.
        headers: {},
        ...(plan.idempotencyKey ? { idempotencyKey: `k${i}` } : {}),
      };
      const rec: Record_ = {
        plan,
        info,
        retrySafe: isRetrySafe(info, s.retryNonIdempotent),
        key: plan.mode === 'rateLimit' && s.dedupe ? shareIdentity(info) : undefined,
        sends: 0,
        answered: [],
        readLimited: [],
        responses: [],
        errors: [],
        values: [],
        completes: 0,
        errorsOut: [],
        afterTerminal: 0,
        unsubscribed: false,
        subscribed: false,
        sentAfterUnsubscribe: 0,
        open: 0,
        unsubscribedWhile: undefined,
        cancel: undefined,
        terminalAt: undefined,
        granted: 0,
        rejected: 0,
      };
      records.push(rec);

      const server = new Observable<FakeResponse>((sub) => {
        const k = rec.sends++;
        // A shared request is sent for every subscriber of its key: only when none is left is
        // a send after unsubscription a fault.
        const wanted = (o: Record_) => o.subscribed && !o.unsubscribed && o.completes + o.errorsOut.length === 0;
        if (rec.unsubscribed && (rec.key === undefined || !records.some((o) => o.key === rec.key && wanted(o))))
          rec.sentAfterUnsubscribe++;
        const a = plan.answers[Math.min(k, plan.answers.length - 1)]!;
        rec.answered.push(a);
        const send = rec.answered.length - 1;
        if (plan.unsubscribeOnSend?.send === k)
          testScheduler.schedule(() => rec.cancel?.(), plan.unsubscribeOnSend.delay);
        active++;
        rec.open++;
        let open = true;
        let unanswered = true;
        const answered = () => {
          if (unanswered) rec.open--;
          unanswered = false;
        };
        const close = () => {
          answered();
          if (open) active--;
          open = false;
        };
        if (a.kind === 'throw' && a.sync) {
          const e = new Error('network down (sync)');
          rec.errors.push(e);
          sub.error(e);
          return close;
        }
        const handle = testScheduler.schedule(() => {
          answered();
          const t = serverNow();
          if (a.kind === 'throw') {
            const e = new Error('network down');
            rec.errors.push(e);
            sub.error(e);
            return;
          }
          let status: number;
          let headers: Record<string, string | string[]>;
          let body: unknown;
          let asError = false;
          if (a.kind === 'ok') {
            status = 200;
            headers = render(s.provider, a.counters, t, 200);
            body = okBody(s.provider, a.counters);
            if (a.garble !== undefined) {
              const names = Object.keys(headers);
              const name = names[a.garble % names.length]!;
              headers[name] = ABSURD_VALUES[a.garble % ABSURD_VALUES.length]!;
            }
          } else if (a.kind === 'status') {
            status = a.status;
            asError = a.asError;
            headers = render(s.provider, a.counters, t, a.status);
            if (a.retryAfter !== undefined) headers['Retry-After'] = a.retryAfter;
            if (a.status === 403 && a.html) headers['Content-Type'] = 'text/html';
            body = a.status === 429 ? body429(s.provider, a.counters) : undefined;
          } else {
            status = a.status;
            asError = a.asError;
            headers = a.headers;
          }
          const seen = limiter.extractResponse(
            asError ? new FakeHttpError(status, headers, body) : { status, headers, body },
          );
          rec.readLimited[send] = seen !== undefined && limiter.provider.read(seen, info).outcome === 'limited';
          if (asError) {
            const e = new FakeHttpError(status, headers, body);
            rec.errors.push(e);
            sub.error(e);
          } else {
            const res: FakeResponse = { status, headers, body };
            rec.responses.push(res);
            sub.next(res);
            sub.complete();
          }
        }, a.latency);
        return () => {
          close();
          handle.unsubscribe();
        };
      });

      const cfg = { maxRetries: s.maxRetries, retryNonIdempotent: s.retryNonIdempotent, reserve: s.reserve };
      const gated: Observable<FakeResponse> =
        plan.mode === 'rateLimit'
          ? server.pipe(rateLimit(limiter, info, cfg))
          : plan.mode === 'composed'
            ? server.pipe(
                throttleByHeaders(limiter, info),
                retryOn429(limiter, info, cfg),
                dailyQuotaGuard(limiter, info, { reserve: s.reserve }),
              )
            : plan.mode === 'throttle'
              ? server.pipe(throttleByHeaders(limiter, info))
              : acquired(limiter, info, server, rec);

      const stream = i % s.streams;
      testScheduler.schedule(() => {
        const terminal = () => rec.completes + rec.errorsOut.length > 0;
        rec.subscribed = true;
        const sub = gated.subscribe({
          next: (v) => {
            if (terminal() || rec.unsubscribed) rec.afterTerminal++;
            rec.values.push(v);
          },
          error: (e: unknown) => {
            if (terminal() || rec.unsubscribed) rec.afterTerminal++;
            rec.errorsOut.push(e);
            rec.terminalAt ??= testScheduler.now();
          },
          complete: () => {
            if (terminal() || rec.unsubscribed) rec.afterTerminal++;
            rec.completes++;
            rec.terminalAt ??= testScheduler.now();
          },
        });
        rec.cancel = () => {
          if (terminal() || rec.unsubscribed) return;
          const leaderOpen = rec.key !== undefined && records.some((o) => o.key === rec.key && o.open > 0);
          rec.unsubscribedWhile =
            rec.open > 0 || (rec.sends === 0 && leaderOpen) ? 'inFlight' : rec.sends === 0 ? 'queued' : 'retryWait';
          rec.unsubscribed = true;
          sub.unsubscribe();
        };
        if (plan.unsubscribeAfter !== undefined) testScheduler.schedule(() => rec.cancel?.(), plan.unsubscribeAfter);
      }, plan.at + stream); // streams start a frame apart
    });
  });

  // ---- per subscriber ------------------------------------------------------------------------
  const groupResponses = new Map<string, Set<object>>();
  for (const r of records) {
    if (r.key === undefined) continue;
    const set = groupResponses.get(r.key) ?? new Set<object>();
    for (const x of r.responses) set.add(x);
    groupResponses.set(r.key, set);
  }
  /** The answer objects handed to callers of shared requests so far. */
  const handedOut = new Set<object>();
  const context = (r: Record_, i: number) =>
    JSON.stringify({ i, plan: r.plan, sends: r.sends, completes: r.completes, errors: r.errorsOut.map(String) });

  records.forEach((r, i) => {
    const why = context(r, i);
    const ended = r.completes + r.errorsOut.length;
    totals.requests++;
    totals.sends += r.sends;
    inc(totals.byMode, r.plan.mode);
    if (r.sends > 0) totals.sent++;
    totals.resends += Math.max(0, r.sends - 1);
    if (r.sends > 1) totals.retried++;
    if (r.sends > 1 && r.completes === 1) totals.retriedThenAnswered++;
    if (r.key !== undefined) totals.sharedGets++;
    if (r.key !== undefined && r.sends === 0 && ended === 1) totals.sharedServed++;
    // Never two terminal notifications, nothing after one.
    expect({ why, afterTerminal: r.afterTerminal }).toEqual({ why, afterTerminal: 0 });
    expect({ why, ended: ended <= 1 }).toEqual({ why, ended: true });
    // Unsubscribed: never sent after it.
    expect({ why, sentAfterUnsubscribe: r.sentAfterUnsubscribe }).toEqual({ why, sentAfterUnsubscribe: 0 });
    if (r.unsubscribed) {
      totals.unsubscribed++;
      inc(totals.unsubscribedWhile, r.unsubscribedWhile ?? 'unknown');
      return;
    }
    // Otherwise exactly one terminal notification by the end of virtual time: none hangs.
    expect({ why, ended }).toEqual({ why, ended: 1 });
    const shared = r.key !== undefined;
    if (r.completes === 1) {
      totals.values++;
      expect({ why, values: r.values.length }).toEqual({ why, values: 1 });
      const v = r.values[0] as object;
      // A shared answer reaches each caller as its own copy of a response the server gave (what
      // one caller does to it no other sees); an answer of its own, as the server gave it.
      const ok = shared
        ? [...(groupResponses.get(r.key!) ?? [])].some((x) => x === v || isDeepStrictEqual(x, v))
        : r.responses.at(-1) === v;
      expect({ why, valueIsServerResponse: ok }).toEqual({ why, valueIsServerResponse: true });
      if (shared) {
        expect({ why, objectGivenToAnotherCaller: handedOut.has(v) }).toEqual({
          why,
          objectGivenToAnotherCaller: false,
        });
        handedOut.add(v);
      }
    } else {
      const e = r.errorsOut[0];
      expect({ why, values: r.values.length }).toEqual({ why, values: 0 });
      if (isRateLimitError(e)) {
        inc(totals.typed, e.name);
        if (isQuotaExhaustedError(e)) inc(totals.quotaByBucket, e.bucket);
        if (isRetryLimitError(e)) {
          // Retried only what may be retried, exactly maxRetries times.
          expect({
            why,
            retrySafe: r.retrySafe,
            mode: r.plan.mode !== 'throttle' && r.plan.mode !== 'acquire',
          }).toEqual({
            why,
            retrySafe: true,
            mode: true,
          });
          expect({ why, attempts: e.attempts }).toEqual({ why, attempts: s.maxRetries + 1 });
          if (!shared) expect({ why, sends: r.sends }).toEqual({ why, sends: s.maxRetries + 1 });
        }
        if (isBlockedError(e)) expect({ why, provider: s.provider }).toEqual({ why, provider: 'pipedrive' });
        if (isQueueFullError(e)) expect({ why, finite: Number.isFinite(s.maxQueue) }).toEqual({ why, finite: true });
      } else {
        totals.originalErrors++;
        // The original error object, from this request's last send, or, shared, its leader's or
        // a copy of it (each joiner gets its own: same class, message and stack).
        const own = r.errors.at(-1) === e;
        const copyOf = (x: unknown) =>
          x === e ||
          (x instanceof Error &&
            e instanceof Error &&
            Object.getPrototypeOf(e) === Object.getPrototypeOf(x) &&
            e.message === x.message &&
            e.stack === x.stack);
        const fromGroup = shared && records.some((o) => o.key === r.key && o.errors.some(copyOf));
        expect({ why, original: own || fromGroup }).toEqual({ why, original: true });
      }
    }
    if (r.sends === 0 && !shared) {
      // Nothing sent: the outcome can only be one of ours.
      expect({ why, typed: isRateLimitError(r.errorsOut[0]) }).toEqual({ why, typed: true });
    }
  });

  // ---- sends per request: again only after a rate limit, only if safe, at most maxRetries times ----
  for (const [i, r] of records.entries()) {
    const why = context(r, i);
    const retries = r.plan.mode === 'rateLimit' || r.plan.mode === 'composed';
    const maxSends = retries && r.retrySafe ? s.maxRetries + 1 : 1;
    expect({ why, sendsWithinLimit: r.sends <= maxSends }).toEqual({ why, sendsWithinLimit: true });
    // A 429, or an answer the profile reads as one (GitHub's rate-limit 403).
    r.answered.slice(0, -1).forEach((a, k) => {
      const limited = ((a.kind === 'status' || a.kind === 'garbage') && a.status === 429) || r.readLimited[k] === true;
      expect({ why, resentOnlyAfterRateLimit: limited }).toEqual({ why, resentOnlyAfterRateLimit: true });
    });
    if (r.plan.mode === 'acquire') {
      expect({ why, outcomes: r.granted + r.rejected <= 1 }).toEqual({ why, outcomes: true });
    }
  }

  // ---- the limiter at the end ---------------------------------------------------------------------
  const snap = limiter.snapshot;
  expect({ queued: snap.queued, inFlight: snap.inFlight, timer: limiter.hasTimer, active }).toEqual({
    queued: 0,
    inFlight: 0,
    timer: false,
    active: 0,
  });
  for (const b of snap.buckets)
    expect({ bucket: b.name, inFlight: b.inFlight }).toEqual({ bucket: b.name, inFlight: 0 });
  totals.runs++;
  inc(totals.byProvider, s.provider);
  totals.virtualMs += testScheduler.now();
}

describe('every subscribed request ends exactly once', () => {
  afterAll(() => {
    console.log(
      `exactlyOnce: seed ${SEED}, ${JSON.stringify(totals, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v), 1)}`,
    );
  });

  it(`randomized scenarios: ${RUNS} runs of up to 200 requests`, () => {
    fc.assert(fc.property(scenario, runScenario), { seed: SEED, numRuns: RUNS, endOnFailure: false });
  });
});
