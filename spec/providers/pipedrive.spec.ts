import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { asyncScheduler, defer, map, timer } from 'rxjs';
import {
  createLimiter,
  isBlockedError,
  responseLike,
  throttleByHeaders,
  type RequestInfo,
  type LimiterSnapshot,
  type ResponseLike,
} from '../../lib/index.js';
import { isPipedriveBlock, pipedrive, type PipedriveOptions } from '../../lib/providers/pipedrive.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Verbatim from seeds/pipedrive-rate-limits.txt (the header example without its `//` comment).
const SAMPLE = {
  'x-ratelimit-limit': '40',
  'x-ratelimit-remaining': '39',
  'x-ratelimit-reset': '2',
  'x-daily-requests-left': '9999',
};
const BODY_429 = '{"success":false,"error":"request over limit","errorCode":429}';
const CLOUDFLARE = 'This error is produced by Cloudflare. See troubleshooting guide here.';
const HTML_403 = `<!DOCTYPE html><html><head><title>Access denied</title></head><body><p>${CLOUDFLARE}</p></body></html>`;

const POST = { method: 'POST', url: '/v1/deals' };
const GET = { method: 'GET', url: '/v1/deals?start=0' };
const advanced = () => pipedrive({ plan: 'advanced' });
const read = (status: number, headers: Record<string, string>, body?: unknown, info: RequestInfo = POST) =>
  advanced().read(responseLike(status, headers, body), info);

describe('providers.pipedrive: reading responses', () => {
  it('reads the documented Advanced example on a POST: the window, and the daily budget until midnight UTC', () => {
    const date = 'Thu, 01 Jan 2026 13:45:10 GMT';
    expect(read(200, { ...SAMPLE, Date: date })).toEqual({
      outcome: 'ok',
      buckets: [
        { name: 'window', limit: 40, remaining: 39, reset: { inMs: 2000 } },
        { name: 'daily', remaining: 9999, reset: { at: Date.UTC(2026, 0, 2) }, windowMs: 86_400_000 },
      ],
    });
    // Just before midnight the reset is seconds away; at midnight it is a whole day away.
    expect(read(200, { ...SAMPLE, Date: 'Wed, 31 Dec 2025 23:59:59 GMT' }).buckets[1]).toMatchObject({
      reset: { at: Date.UTC(2026, 0, 1) },
    });
    expect(read(200, { ...SAMPLE, Date: 'Thu, 01 Jan 2026 00:00:00 GMT' }).buckets[1]).toMatchObject({
      reset: { at: Date.UTC(2026, 0, 2) },
    });
  });

  describe('without a usable Date header', () => {
    afterEach(() => {
      jest.restoreAllMocks();
    });
    const localNow = Date.UTC(2026, 0, 1, 20, 30);
    const untilMidnight = Date.UTC(2026, 0, 2) - localNow;

    it.each([
      ['no Date (hidden from cross-origin scripts)', {}],
      ['a Date that is no date', { Date: 'yesterday' }],
    ])('with %s, the daily budget resets at the next UTC midnight of the local clock', (_, date) => {
      jest.spyOn(Date, 'now').mockReturnValue(localNow);
      expect(read(200, { ...SAMPLE, ...date }).buckets).toEqual([
        { name: 'window', limit: 40, remaining: 39, reset: { inMs: 2000 } },
        { name: 'daily', remaining: 9999, reset: { inMs: untilMidnight }, windowMs: 86_400_000 },
      ]);
    });

    it('a Date, even hours from the local clock, still decides the midnight', () => {
      jest.spyOn(Date, 'now').mockReturnValue(localNow);
      expect(read(200, { ...SAMPLE, Date: 'Fri, 02 Jan 2026 03:00:00 GMT' }).buckets[1]).toMatchObject({
        reset: { at: Date.UTC(2026, 0, 3) },
      });
    });

    it('given the calendar time by the limiter, the midnight is that time’s', () => {
      jest.spyOn(Date, 'now').mockReturnValue(localNow);
      const calendar = Date.UTC(2026, 5, 30, 23, 0);
      const reading = advanced().read(responseLike(200, SAMPLE), POST, calendar);
      expect(reading.buckets[1]).toMatchObject({ reset: { inMs: 3_600_000 } });
    });

    it('in real time, after the machine slept (the wall clock moved on, the monotonic one did not), it reopens at the calendar’s midnight', async () => {
      const realNow = Date.now();
      const limiter = createLimiter({ provider: advanced(), key: 'pipedrive-slept' });
      limiter.now(); // the limiter's clock is set here: wall clock plus monotonic time from now on
      // 8 hours asleep: the wall clock steps on; `performance.now()` (the limiter's clock) does not.
      const wall = realNow + 8 * 3_600_000;
      jest.spyOn(Date, 'now').mockReturnValue(wall);
      limiter.observe(responseLike(201, { ...SAMPLE, 'x-daily-requests-left': '0' }), POST);
      const resumeIn = limiter.resumeAt(POST) - limiter.now();
      const untilCalendarMidnight = (Math.floor(wall / 86_400_000) + 1) * 86_400_000 - wall;
      expect(resumeIn).toBeGreaterThanOrEqual(untilCalendarMidnight - 60_000);
      expect(resumeIn).toBeLessThan(untilCalendarMidnight + 60_000);
      await limiter.close();
    });

    it('a spent budget of a POST answered without Date reopens at the limiter clock’s midnight UTC', () => {
      // The wall clock says 20:30 on 1 January 2026; the limiter runs in virtual time, from
      // 1970-01-01 00:00 UTC, and sends the POST at 20:00 of that virtual day.
      jest.spyOn(Date, 'now').mockReturnValue(localNow);
      const SENT = 20 * 3_600_000;
      const resumeIn = inVirtualTime(({ now }) => {
        const limiter = createLimiter({ provider: advanced(), key: 'pipedrive-token', maxWaitMs: 0 });
        const out = { ms: Number.NaN };
        asyncScheduler.schedule(() => {
          defer(() => timer(10).pipe(map(() => responseLike(201, { ...SAMPLE, 'x-daily-requests-left': '0' }))))
            .pipe(throttleByHeaders(limiter, POST))
            .subscribe();
          asyncScheduler.schedule(() => (out.ms = limiter.resumeAt(POST) - now()), 20);
        }, SENT);
        return out;
      }).ms;
      // Read at 20:00:00.010 of the virtual day: its midnight is 4 hours less 20 ms from the
      // question, not 3.5 hours (the wall clock's midnight), nor a day (the window alone).
      const untilVirtualMidnight = 4 * 3_600_000 - 20;
      expect(resumeIn).toBeGreaterThanOrEqual(untilVirtualMidnight);
      expect(resumeIn).toBeLessThan(untilVirtualMidnight + 2000);
    });
  });

  it('reads x-daily-requests-left only on POST and PUT (the only requests counting against daily)', () => {
    expect(read(200, SAMPLE, undefined, { method: 'put', url: '/v1/deals/1' }).buckets.map((b) => b.name)).toEqual([
      'window',
      'daily',
    ]);
    for (const info of [
      GET,
      { method: 'PATCH', url: '/api/v2/deals/1' },
      { method: 'DELETE', url: '/v1/deals/1' },
      {},
    ]) {
      expect(read(200, SAMPLE, undefined, info).buckets.map((b) => b.name)).toEqual(['window']);
    }
  });

  it('reads the documented 429 body (string or parsed) as limited until the window reset, for every stream', () => {
    const headers = { 'x-ratelimit-limit': '40', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2' };
    for (const body of [BODY_429, JSON.parse(BODY_429) as unknown]) {
      const r = read(429, headers, body, GET);
      expect(r).toEqual({
        outcome: 'limited',
        buckets: [{ name: 'window', limit: 40, remaining: 0, reset: { inMs: 2000 } }],
        retryAfter: { delayMs: 2000 },
        retrySource: 'reset',
      });
      expect(r).not.toHaveProperty('limitedBy');
    }
    expect(read(429, { ...headers, 'Retry-After': '5' }, BODY_429)).toMatchObject({
      retryAfter: { delayMs: 5000 },
      retrySource: 'retry-after',
    });
    expect(read(429, {}, BODY_429)).toEqual({ outcome: 'limited', buckets: [] });
  });

  it.each([
    ['the documented HTML page', 'blocked', { 'content-type': 'text/html; charset=UTF-8' }, HTML_403],
    ['the page without content-type', 'blocked', {}, HTML_403],
    ['an HTML 403 whose body was not read', 'blocked', { 'Content-Type': 'text/html' }, undefined],
    ['an HTML 403 whose body came as bytes', 'blocked', { 'Content-Type': 'text/html' }, new Uint8Array(8)],
    [
      'a JSON auth error',
      'ok',
      { 'content-type': 'application/json' },
      '{"success":false,"error":"Scope and URL mismatch","errorCode":403}',
    ],
    ['a parsed auth error', 'ok', {}, { success: false, error: 'Forbidden', errorCode: 403 }],
    ['no body', 'ok', {}, undefined],
  ])('a 403 with %s is %s', (_, outcome, headers, body) => {
    expect(read(403, headers, body, GET).outcome).toBe(outcome);
    expect(isPipedriveBlock(responseLike(403, headers, body))).toBe(outcome === 'blocked');
  });

  it.each([
    [
      "an HTML page without Cloudflare (a proxy's or a login page)",
      { 'content-type': 'text/html; charset=utf-8' },
      '<html><h1>Forbidden</h1></html>',
    ],
    [
      'a JSON error naming cloudflare in a field',
      { 'content-type': 'application/json' },
      '{"success":false,"error":"Forbidden","data":{"note":"cloudflare_zone_id missing"}}',
    ],
    ['a JSON error quoting the message', { 'content-type': 'application/json' }, JSON.stringify({ error: CLOUDFLARE })],
    ['a parsed body quoting the message', {}, { message: CLOUDFLARE }],
    ['plain text naming Cloudflare, without content-type', {}, CLOUDFLARE],
    [
      'an HTML page naming cloudflare only inside an identifier',
      { 'content-type': 'text/html' },
      '<p>cloudflare_zone_id</p>',
    ],
  ])('a 403 with %s is not the block', (_, headers, body) => {
    expect(read(403, headers, body, GET).outcome).toBe('ok');
    expect(isPipedriveBlock(responseLike(403, headers, body))).toBe(false);
  });

  it('never walks a parsed or binary 403 body, however large: its size costs no work', () => {
    let touched = 0;
    const count: ProxyHandler<object> = {
      ownKeys: (t) => (touched++, Reflect.ownKeys(t)),
      get: (t, k) => (touched++, Reflect.get(t, k)),
      has: (t, k) => (touched++, Reflect.has(t, k)),
      getOwnPropertyDescriptor: (t, k) => (touched++, Reflect.getOwnPropertyDescriptor(t, k)),
      getPrototypeOf: (t) => (touched++, Reflect.getPrototypeOf(t)),
    };
    const bodies = [new Proxy(new Array(1000).fill('x'), count), new Proxy(new Uint8Array(1000), count)];
    for (const body of bodies)
      for (const headers of [{}, { 'content-type': 'application/json' }, { 'content-type': 'text/html' }])
        isPipedriveBlock(responseLike(403, headers, body));
    expect(touched).toBe(0);
  });

  it('reads a text body only as far as its first 256 KiB', () => {
    const html = { 'content-type': 'text/html' };
    const late = `<html>${' '.repeat(256 * 1024)}${CLOUDFLARE}</html>`;
    expect(isPipedriveBlock(responseLike(403, html, late))).toBe(false);
    expect(isPipedriveBlock(responseLike(403, html, `<html>${CLOUDFLARE}${' '.repeat(1_000_000)}</html>`))).toBe(true);
  });

  it('only a 403 blocks', () => {
    expect(read(200, { 'content-type': 'text/html' }, HTML_403, GET).outcome).toBe('ok');
    expect(read(429, { 'content-type': 'text/html' }, HTML_403, GET).outcome).toBe('limited');
  });

  it('says nothing for garbage and never throws on any body', () => {
    const hostile = new Proxy(
      {},
      {
        get: () => {
          throw new Error('boom');
        },
      },
    );
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    expect(
      read(200, {
        'x-ratelimit-limit': 'forty',
        'x-ratelimit-remaining': '',
        'x-ratelimit-reset': '-2',
        'x-daily-requests-left': 'many',
        Date: 'yesterday',
      }),
    ).toEqual({ outcome: 'ok', buckets: [] });
    for (const body of [hostile, circular, '{oops', 'x'.repeat(1_000_000), 403, null]) {
      expect(read(403, {}, body).outcome).toBe('ok');
      expect(read(429, {}, body)).toEqual({ outcome: 'limited', buckets: [] });
    }
  });
});

describe('providers.pipedrive: buckets and options', () => {
  it.each([
    ['essential', 'api_token', 20],
    ['advanced', 'api_token', 40],
    ['professional', 'api_token', 80],
    ['enterprise', 'api_token', 120],
    ['essential', 'oauth', 80],
    ['advanced', 'oauth', 160],
    ['professional', 'oauth', 320],
    ['enterprise', 'oauth', 480],
  ] as const)('%s with %s starts from %i per 2 s', (plan, auth, limit) => {
    expect(pipedrive({ plan, auth }).buckets(GET)).toEqual([{ name: 'window', limit, windowMs: 2000 }]);
  });

  it('defaults to api_token, and POST/PUT also count against the daily quota', () => {
    const p = advanced();
    expect(p.name).toBe('pipedrive');
    const daily = { name: 'daily', limit: 10_000, windowMs: 86_400_000, quota: true };
    expect(p.buckets(POST)).toEqual([{ name: 'window', limit: 40, windowMs: 2000 }, daily]);
    expect(p.buckets({ method: 'put' })).toHaveLength(2);
    for (const info of [{}, GET, { method: 'PATCH' }, { method: 'DELETE' }, { method: 'HEAD' }])
      expect(p.buckets(info)).toHaveLength(1);
  });

  it('takes hints by bucket name and extra buckets', () => {
    const p = pipedrive({
      plan: 'essential',
      hints: { daily: { limit: 5000 }, window: { limit: 10 } },
      extraBuckets: [{ name: 'mine', limit: 1 }],
    });
    expect(p.buckets(POST)).toEqual([
      { name: 'window', limit: 10, windowMs: 2000 },
      { name: 'daily', limit: 5000, windowMs: 86_400_000, quota: true },
      { name: 'mine', limit: 1 },
    ]);
  });

  it.each([
    [undefined, /providers\.pipedrive: expected an options object/],
    [{}, /option `plan` must be one of "essential", "advanced", "professional", "enterprise", got undefined/],
    [{ plan: 'gold' }, /option `plan` must be one of .*, got "gold"/],
    [{ plan: 'advanced', auth: 'basic' }, /option `auth` must be one of "api_token", "oauth", got "basic"/],
    [{ plan: 'advanced', token: 'x' }, /unknown option `token`/],
    [
      { plan: 'advanced', hints: { hourly: {} } },
      /option `hints\.hourly` must be keyed by a bucket name \("window", "daily"\)/,
    ],
    [{ plan: 'advanced', extraBuckets: [{ name: 'daily', quota: true }] }, /option `extraBuckets\.0\.name`/],
  ])('rejects bad options with a TypeError naming them (%j)', (options, message) => {
    expect(() => pipedrive(options as unknown as PipedriveOptions)).toThrow(TypeError);
    expect(() => pipedrive(options as unknown as PipedriveOptions)).toThrow(message);
  });
});

describe('providers.pipedrive with a limiter (virtual time)', () => {
  const call = (limiter: ReturnType<typeof createLimiter>, res: ResponseLike, sent: number[]) =>
    defer(() => {
      sent.push(asyncScheduler.now());
      return timer(10).pipe(map(() => res));
    }).pipe(throttleByHeaders(limiter, GET));

  it('a 403 HTML page from Cloudflare blocks the credential: the request fails and nothing more is sent', () => {
    const { blocked, errors, sent } = inVirtualTime(() => {
      const limiter = createLimiter({ provider: advanced(), key: 'pipedrive-token' });
      const sent: number[] = [];
      const errors: unknown[] = [];
      let blocked = false;
      call(limiter, responseLike(403, { 'content-type': 'text/html' }, HTML_403), sent).subscribe({
        error: (e) => errors.push(e),
      });
      asyncScheduler.schedule(() => {
        blocked = limiter.isBlocked;
        call(limiter, responseLike(200, SAMPLE), sent).subscribe({ error: (e) => errors.push(e) });
      }, 20);
      return {
        get blocked() {
          return blocked;
        },
        errors,
        sent,
      };
    });
    expect(blocked).toBe(true);
    expect(sent).toEqual([0]);
    expect(errors).toHaveLength(2);
    expect(errors.every(isBlockedError)).toBe(true);
  });

  it('a 429 pauses every stream until the window resets', () => {
    const { pausedUntil, sent } = inVirtualTime(() => {
      const limiter = createLimiter({ provider: advanced(), key: 'pipedrive-token' });
      const sent: number[] = [];
      let pausedUntil: number | null = null;
      call(
        limiter,
        responseLike(
          429,
          { 'x-ratelimit-limit': '40', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2' },
          BODY_429,
        ),
        sent,
      ).subscribe();
      asyncScheduler.schedule(() => {
        pausedUntil = limiter.snapshot.pausedUntil;
        call(limiter, responseLike(200, SAMPLE), sent).subscribe();
      }, 20);
      return {
        get pausedUntil() {
          return pausedUntil;
        },
        sent,
      };
    });
    expect(pausedUntil).toBe(10 + 2000);
    expect(sent[0]).toBe(0);
    expect(sent[1]).toBeGreaterThanOrEqual(10 + 2000);
  });
});

describe('providers.pipedrive: where the numbers in the state come from', () => {
  /** The snapshot's buckets once `requests` have been answered (read while time is still virtual). */
  const bucketsAfter = (requests: Array<{ info: RequestInfo; res: ResponseLike }>) =>
    inVirtualTime(() => {
      const limiter = createLimiter({ provider: advanced(), key: 'pipedrive-token' });
      const out: { buckets?: LimiterSnapshot['buckets'] } = {};
      requests.forEach(({ info, res }, i) =>
        asyncScheduler.schedule(
          () =>
            defer(() => timer(10).pipe(map(() => res)))
              .pipe(throttleByHeaders(limiter, info))
              .subscribe(),
          50 * i,
        ),
      );
      asyncScheduler.schedule(() => (out.buckets = limiter.snapshot.buckets), 50 * requests.length + 20);
      return out;
    }).buckets ?? [];

  it('after POSTs the daily budget shows what the server said is left, and its limit as the documented hint', () => {
    const posts = [19, 18].map((left) => ({
      info: POST,
      res: responseLike(200, { ...SAMPLE, 'x-daily-requests-left': String(left) }),
    }));
    const daily = bucketsAfter(posts).find((b) => b.name === 'daily');
    // The server tells what is left of the day, never the day's limit: 10000 is the docs' figure.
    expect(daily).toMatchObject({ limit: 10000, remaining: 18, source: 'headers' });
    expect(daily?.sources.limit).toBe('hint');
  });

  it('the 2-second window read from headers shows its limit as read', () => {
    const window = bucketsAfter([{ info: GET, res: responseLike(200, SAMPLE) }]).find((b) => b.name !== 'daily');
    expect(window).toMatchObject({ limit: 40, remaining: 39 });
    expect(window?.sources).toMatchObject({ limit: 'headers', resetAt: 'headers' });
  });
});
