/**
 * The credential itself: the limiter shows it only as a label (64 bits of an HMAC keyed by
 * `labelSecret` or a per-process random secret), and option errors never echo it. Without the
 * secret a label cannot be tested against guesses, so even a PIN's label does not give the PIN
 * away. A `label` replaces everything derived from the key in what the limiter shows.
 */
import { describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import type { HttpService } from '@nestjs/axios';
import { from, lastValueFrom, mergeMap, of } from 'rxjs';

import { tenantHttp, type TenantHttpOptions } from '../../lib/adapters/nestjsHttp.js';
import { installRateLimitedFetch } from '../../lib/adapters/fetch.js';

import {
  BlockedError,
  createLimiter,
  createLimiterPool,
  describeEvent,
  endpointKey,
  rawCauseOf,
  defineProvider,
  providers,
  QuotaExhaustedError,
  rateLimit,
  RetryLimitError,
  type LimiterEvent,
} from '../../lib/index.js';
import { safePath } from '../../lib/core/events.js';
import { keyLabel } from '../../lib/core/keyLabel.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { reachableStrings } from '../helpers/scan.js';
import { makeToken, scanLimiter, SecretScan } from './secretScan.js';

/** The label as it was: two unkeyed 32-bit FNV-1a lanes (what an attacker can compute). */
function unkeyedFnvLabel(key: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x01000193 + 0x100) >>> 0;
  }
  return `key_${a.toString(16).padStart(8, '0')}${b.toString(16).padStart(8, '0')}`;
}

/** Every 4-digit PIN whose label, as `label` computes it, equals `target`. */
function pinsMatching(target: string, label: (pin: string) => string): string[] {
  const found: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    const pin = String(i).padStart(4, '0');
    if (label(pin) === target) found.push(pin);
  }
  return found;
}

describe('the key label', () => {
  const secretA = 'label-secret-A-0123456789';
  const secretB = 'label-secret-B-0123456789';

  it('is key_ and 16 hex digits (64 bits), the same for the same key and secret, different for a one-character change', () => {
    const token = makeToken('label');
    expect(keyLabel(token)).toMatch(/^key_[0-9a-f]{16}$/);
    expect(keyLabel(token)).toBe(keyLabel(`${token}`));
    expect(keyLabel(token, secretA)).toBe(keyLabel(`${token}`, secretA));
    expect(keyLabel(token)).not.toBe(keyLabel(`${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`));
    const scan = new SecretScan();
    scan.token(token);
    scan.strings('label', [keyLabel(token), keyLabel(token, secretA)]);
    expect(scan.leaks).toEqual([]);
  });

  it('depends on the secret: one key gets unrelated labels under two secrets, and none equals an unkeyed hash', () => {
    const token = makeToken('secret');
    const labels = [keyLabel(token), keyLabel(token, secretA), keyLabel(token, secretB)];
    expect(new Set(labels).size).toBe(3);
    expect(labels).not.toContain(unkeyedFnvLabel(token));
  });

  it('a 4-digit PIN cannot be found from its label without the secret (trying all 10,000 finds it only with the secret)', () => {
    const pin = String(Math.floor(Math.random() * 10_000)).padStart(4, '0');
    const target = keyLabel(pin, secretA);
    // With the secret, the search is sound: it finds the PIN and nothing else.
    expect(pinsMatching(target, (p) => keyLabel(p, secretA))).toEqual([pin]);
    // Without it: the unkeyed hash the label used to be, or a wrong secret, matches no PIN.
    expect(pinsMatching(target, unkeyedFnvLabel)).toEqual([]);
    expect(pinsMatching(target, (p) => keyLabel(p, secretB))).toEqual([]);
    // Nor does the label of a limiter given no secret (keyed by a random per-process one) match
    // the unkeyed hash: the old brute force fails.
    const limiter = createLimiter({ provider: providers.generic(), key: pin });
    expect(limiter.key).toMatch(/^key_[0-9a-f]{16}$/);
    expect(pinsMatching(limiter.key, unkeyedFnvLabel)).toEqual([]);
  });

  it('limiters given one labelSecret agree on the label (as processes of a fleet would); the secret is never shown', () => {
    const pin = '042917';
    const labelSecret = makeToken('labelsecret');
    const a = createLimiter({ provider: providers.generic(), key: pin, labelSecret });
    const b = createLimiter({ provider: providers.generic(), key: pin, labelSecret });
    expect(a.key).toBe(b.key);
    expect(a.key).toBe(keyLabel(pin, labelSecret));
    expect(a.key).not.toBe(createLimiter({ provider: providers.generic(), key: pin }).key);
    const scan = new SecretScan();
    scan.token(labelSecret);
    scanLimiter(scan, a);
    scan.strings('every string reachable from the limiter', reachableStrings(a));
    expect(scan.leaks).toEqual([]);
  });

  it('a labelSecret shorter than 16 characters is refused with a TypeError naming it, without echoing it', () => {
    expect(() => createLimiter({ provider: providers.generic(), key: 'k', labelSecret: 'short-secret' })).toThrow(
      new TypeError('createLimiter: option `labelSecret` must be a string of at least 16 characters, got (hidden)'),
    );
  });

  it('with `label`, nothing derived from the key is shown: not the key, not its hash', () => {
    const pin = '042917';
    const target = keyLabel(pin);
    const events: LimiterEvent[] = [];
    const errors: unknown[] = [];
    const limiter = inVirtualTime(() => {
      const l = createLimiter({
        provider: defineProvider({
          name: 'pin',
          buckets: () => [{ name: 'b', limit: 1, windowMs: 1000 }],
          read: () => ({ outcome: 'limited', retryAfterMs: 60_000, buckets: [] }),
        }),
        key: pin,
        label: 'tenant-42',
        maxWaitMs: 10,
        maxQueue: 2,
      });
      l.events$.subscribe((e) => events.push(e));
      from([1, 2, 3, 4])
        .pipe(
          mergeMap((i) => of({ status: 429, headers: {} }).pipe(rateLimit(l, { url: `/x/${i}` }, { maxRetries: 0 }))),
        )
        .subscribe({ error: (e: unknown) => errors.push(e) });
      return l;
    });
    expect(errors.length).toBeGreaterThan(0);
    const shown = [
      JSON.stringify(events),
      JSON.stringify(limiter.snapshot),
      inspect(limiter, { depth: Infinity }),
      ...errors.flatMap((e) => [JSON.stringify(e), inspect(e, { depth: Infinity }), String(e)]),
    ].join('\n');
    expect(shown).toContain('tenant-42');
    expect(shown).not.toContain(target);
    expect(shown).not.toContain(unkeyedFnvLabel(pin));
    expect(shown).not.toContain(pin);
  });
});

describe('option errors never echo the credential', () => {
  const token = makeToken('opts');
  const cases: Array<[string, () => unknown]> = [
    ['createLimiter(token)', () => createLimiter(token as never)],
    ['providers.pipedrive(token)', () => providers.pipedrive(token as never)],
    ['providers.generic(token)', () => providers.generic(token as never)],
    [
      'a token under a wrong option name',
      () => createLimiter({ provider: providers.generic(), apiKey: token } as never),
    ],
    [
      'a token as the label of a wrong type',
      () => createLimiter({ provider: providers.generic(), key: [token] } as never),
    ],
    ['a token in a string option', () => providers.pipedrive({ plan: token } as never)],
    ['a token as the provider', () => createLimiter({ provider: token, key: token } as never)],
    ['a bad option next to the key', () => createLimiter({ provider: providers.generic(), key: token, maxQueue: -1 })],
    [
      'installRateLimitedFetch: a key that is a URL with a query token',
      () =>
        installRateLimitedFetch({
          [`https://api.example.com/?api_token=${token}`]: createLimiter({ provider: providers.generic(), key: 'k' }),
        }),
    ],
    [
      'installRateLimitedFetch: a key that is a URL with user-info, of no limiter',
      () => installRateLimitedFetch({ [`https://svc:${token}@api.example.com`]: 'x' } as never),
    ],
  ];
  it.each(cases)('%s', (_name, make) => {
    let error: unknown;
    try {
      make();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    const scan = new SecretScan();
    scan.token(token);
    scan.error('option errors', error);
    scan.strings('option errors', [String(error), (error as Error).message, inspect(error)]);
    expect(scan.leaks).toEqual([]);
  });
});

describe("tenantHttp's error for a call that carries no tenant key", () => {
  const token = makeToken('tenant');
  const http = { get: () => of({ status: 200, headers: {}, data: {} }) } as unknown as HttpService;
  const cases: Array<[string, string, TenantHttpOptions]> = [
    ['a token in another query parameter', `https://api.example.com/v1/deals?access_token=${token}`, {}],
    ['a token in the user-info', `https://me:${token}@api.example.com/v1/deals`, {}],
    ['a key function that returns none', `/v1/deals?api_token=${token}`, { key: () => undefined }],
  ];
  it.each(cases)('names the method and path, not %s', async (_name, url, options) => {
    const pool = createLimiterPool({ provider: providers.generic() });
    const api = tenantHttp(http, pool, options);
    const error = await lastValueFrom(api.get(url)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain('GET');
    expect((error as Error).message).toContain('/v1/deals');
    const scan = new SecretScan();
    scan.token(token);
    scan.error('tenantHttp errors', error);
    scan.strings('tenantHttp errors', [String(error), (error as Error).message, inspect(error)]);
    expect(scan.leaks).toEqual([]);
    await pool.close();
  });
});

describe('request summaries (events, log lines) keep the path only', () => {
  const t = makeToken('url');
  it.each([
    [`https://api.example.com/v1/deals?api_token=${t}&limit=5`, 'https://api.example.com/v1/deals'],
    [`/v1/deals/1?api_token=${t}`, '/v1/deals/1'],
    [`/v1/deals/1?x=1#access_token=${t}`, '/v1/deals/1'],
    [`/oauth/callback#access_token=${t}`, '/oauth/callback'],
    [`https://user:${t}@api.example.com/v1/deals`, 'https://api.example.com/v1/deals'],
    [`https://${t}@api.example.com`, 'https://api.example.com'],
    [`HTTPS://x:${t}@api.example.com/p`, 'HTTPS://api.example.com/p'],
    [`//x:${t}@api.example.com/p`, '//api.example.com/p'],
    [`https://x:p@ss${t}@api.example.com/p?a=${t}`, 'https://api.example.com/p'],
    // WHATWG URL parsing (fetch, axios in browsers) reads backslashes as slashes in http(s) URLs.
    [`https:\\\\x:${t}@api.example.com/p`, 'https:\\\\api.example.com/p'],
    // The parser percent-encodes spaces in user-info, drops tabs and line breaks anywhere, and
    // needs no slashes after `http:`: each of these still sends the password.
    [`https://x:pass word ${t}@api.example.com/p`, 'https://api.example.com/p'],
    [`https://x:\t${t}@api.example.com/p`, 'https://api.example.com/p'],
    [`https://x:\r\n${t}@api.example.com/p`, 'https://api.example.com/p'],
    [`ht\ttps://x:${t}@api.example.com/p`, 'https://api.example.com/p'],
    [`https:x:${t}@api.example.com/p`, 'https:api.example.com/p'],
    [` https:///x:${t}@api.example.com/p`, ' https:///api.example.com/p'],
    // A path has no user-info: an `@` in its first segment stays.
    ['/@alice/statuses', '/@alice/statuses'],
  ])('%s', (url, path) => {
    expect(safePath(url)).toBe(path);
  });

  it('a URL too long to keep loses its user-info before it is cut at a segment boundary', () => {
    const long = `https://user:${t}${'x'.repeat(5000)}@api.example.com/p`;
    expect(safePath(long)).toBe('https://api.example.com/p');
    // A space in the user-info was a segment boundary to the cut, which kept `user:<token>`.
    const spaced = `https://user:${t} ${'x'.repeat(5000)}@api.example.com/p`;
    expect(safePath(spaced)).toBe('https://api.example.com/p');
    const deep = `https://api.example.com/${'segment/'.repeat(1000)}end?api_token=${t}`;
    const path = safePath(deep) ?? '';
    expect(path.length).toBeLessThanOrEqual(2049);
    expect(path.endsWith('/…')).toBe(true);
    expect(path).not.toContain(t);
  });
});

describe('per-endpoint bucket names never hold a URL\u2019s user-info', () => {
  const t = makeToken('route');
  // Each is a URL that fetch or axios reads as carrying the password (WHATWG URL parsing).
  it.each([
    `https://x:${t}@api.fieldwire.com/api/v3/projects/42`,
    `https:///x:${t}@api.fieldwire.com/api/v3/projects/42`,
    `https:\\\\x:${t}@api.fieldwire.com/api/v3/projects/42`,
    `https:x:${t}@api.fieldwire.com/api/v3/projects/42`,
    `ht\ttps://x:${t}@api.fieldwire.com/api/v3/projects/42`,
    ` https://x:${t}@api.fieldwire.com/api/v3/projects/42`,
    `\\\\x:${t}@api.fieldwire.com/api/v3/projects/42`,
  ])('%s', (url) => {
    const key = endpointKey({ method: 'GET', url });
    expect(key).not.toContain(t);
    expect(key).toMatch(/^GET \/(.*\/)?api\/v3\/projects\/:id$/);
  });

  it('nor does the state of a limiter with per-endpoint buckets', () => {
    const scan = new SecretScan();
    scan.token(t);
    inVirtualTime(() => {
      const l = createLimiter({ provider: providers.fieldwire(), key: 'k' });
      of({ status: 200, headers: {} })
        .pipe(rateLimit(l, { url: `https:x:${t}@api.fieldwire.com/api/v3/projects/42` }))
        .subscribe();
      scan.value('fieldwire state', l.snapshot);
    });
    expect(scan.leaks).toEqual([]);
  });
});

describe('log lines cannot be forged or disguised by what a request or a server names', () => {
  const forged = '\n[rx-ratelimit procore key_0000000000000000] unblocked';
  const base = { at: 0, provider: 'procore', key: 'key_1' } as const;
  const request = { id: 1, method: 'GET', path: `/v1/deals${forged}\r\u2028\u202e`, priority: 0 };
  const events: LimiterEvent[] = [
    { ...base, type: 'admitted', request, waitedMs: 0, buckets: [] },
    { ...base, type: 'rate-limited', request, status: 429, retryAt: 0, source: 'retry-after', bucket: `b${forged}` },
    { ...base, type: 'paused', until: 0, reason: 'retry-after', bucket: `b${forged}` },
    { ...base, type: 'limit-changed', bucket: `b${forged}`, from: null, to: 1 },
    { ...base, type: 'store-unavailable', store: 'redis', error: `ECONNRESET${forged}` },
  ];
  it.each(events.map((e) => [e.type, e] as const))('%s: one line, control characters escaped', (_type, e) => {
    const line = describeEvent(e);
    // eslint-disable-next-line no-control-regex -- the control characters are what must not be there
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
    expect(line).toContain('\\x0a[rx-ratelimit procore key_0000000000000000] unblocked');
  });

  it('the escaping covers carriage returns, line separators and bidirectional overrides', () => {
    expect(describeEvent(events[0]!)).toContain('\\x0d\\u2028\\u202e');
  });

  it('a line is at most 4 KB before escaping, whatever a server names a bucket', () => {
    const line = describeEvent({ ...base, type: 'limit-changed', bucket: 'b'.repeat(100_000), from: null, to: 1 });
    expect(line.length).toBeLessThanOrEqual(4097);
  });
});

describe('the cause of our errors is redacted: what it, inspect and JSON show', () => {
  const t = makeToken('cause');
  const url = `https://api.example.com/v1/deals?api_token=${t}`;
  const ctx = { provider: 'p', key: keyLabel(t), status: 403, until: null };
  // Shaped like what the HTTP clients make: the request is inside.
  const axiosLike = Object.assign(new Error('Request failed with status code 403'), {
    name: 'AxiosError',
    code: 'ERR_BAD_REQUEST',
    config: { url, headers: { Authorization: `Bearer ${t}` }, params: { api_token: t } },
    request: { _header: `GET /v1/deals?api_token=${t} HTTP/1.1\r\nAuthorization: Bearer ${t}\r\n` },
    response: { status: 403, headers: {}, config: { headers: { Authorization: `Bearer ${t}` } } },
  });
  const angularLike = Object.assign(new Error(`Http failure response for ${url}: 403 Forbidden`), {
    name: 'HttpErrorResponse',
    status: 403,
    url,
  });
  const responseLike = { status: 403, url, headers: new Map([['x', 'y']]) };
  const cycle: Record<string, unknown> = { status: 429, config: { headers: { Authorization: `Bearer ${t}` } } };
  cycle['self'] = cycle;
  it.each([
    ['an AxiosError', axiosLike],
    ['an Angular HttpErrorResponse (the URL in its message)', angularLike],
    ['a fetch Response', responseLike],
    ['an object with a cycle', cycle],
    ['one of our errors whose cause is an AxiosError', new BlockedError(ctx, { cause: axiosLike })],
    ['an AggregateError of AxiosErrors', new AggregateError([axiosLike, angularLike], `failed: ${url}`)],
    ['a string', `Bearer ${t}`],
    ['a string with a URL', `failed: ${url}`],
    [
      'a message whose URL has a password holding @',
      new TypeError(`GET https://user:p@ss${t}@api.example.com/x failed`),
    ],
    ['a message whose URL has backslashes', new TypeError(`GET https:\\\\user:${t}@api.example.com/x failed`)],
    ['a message with a protocol-relative URL', new TypeError(`GET //user:${t}@api.example.com/x failed`)],
  ])('%s', (_name, cause) => {
    const scan = new SecretScan();
    scan.token(t);
    const errors = [
      new BlockedError(ctx, { cause }),
      new RetryLimitError({ ...ctx, attempts: 2, status: 429 }, { cause }),
      new QuotaExhaustedError({ ...ctx, bucket: 'b', resumeAt: 1, waitMs: 1, maxWaitMs: 0 }, { cause }),
    ];
    for (const e of errors) {
      // As received only on request; `cause` itself is scanned whole, however deep.
      expect(rawCauseOf(e)).toBe(cause);
      scan.strings('inspect(error)', [inspect(e), inspect(e, { depth: Infinity }), JSON.stringify(e), String(e)]);
      scan.value('error.cause', e.cause);
      scan.error('the error, its cause chain whole', e);
    }
    // A string cause is shown as the caller gave it, less its URLs' queries and user-info: a bare
    // `Bearer <token>` the caller chose to put there is not ours to hide.
    if (cause === `Bearer ${t}`) expect(scan.leaks.length).toBeGreaterThan(0);
    else expect(scan.leaks).toEqual([]);
    expect(inspect(errors[0])).toContain('[cause]');
  });

  it('keeps what code branches on: name, message without queries, status (of the response too), code', () => {
    expect(new BlockedError(ctx, { cause: axiosLike }).cause).toEqual({
      name: 'AxiosError',
      message: 'Request failed with status code 403',
      status: 403,
      code: 'ERR_BAD_REQUEST',
    });
    expect(new BlockedError(ctx, { cause: angularLike }).cause).toEqual({
      name: 'HttpErrorResponse',
      message: 'Http failure response for https://api.example.com/v1/deals 403 Forbidden', // the query, to the next space, goes
      status: 403,
    });
    expect(new BlockedError(ctx, { cause: new Response(null, { status: 429 }) }).cause).toEqual({
      name: 'Response',
      status: 429,
    });
    // One of ours stays itself (its own cause redacted in turn).
    const inner = new RetryLimitError({ ...ctx, attempts: 1, status: 429 }, { cause: axiosLike });
    expect(new BlockedError(ctx, { cause: inner }).cause).toBe(inner);
    expect(rawCauseOf(inner)).toBe(axiosLike);
  });

  it('a URL as the app wrote it, with a space or a quote in its query or a space in its user-info, leaves no token', () => {
    const t = makeToken('cause');
    const messages = [
      `Http failure response for https://api.example.com/search?q=red shoes&api_token=${t}: 429 Too Many Requests`,
      `Http failure response for https://api.example.com/search?q=O'Brien&access_token=${t}: 429 Too Many Requests`,
      `Http failure response for https://bob:pa ss${t}@api.example.com/x: 429 Too Many Requests`,
    ];
    for (const message of messages) {
      const cause = Object.assign(new Error(message), { name: 'HttpErrorResponse', status: 429 });
      const summary = new RetryLimitError({ ...ctx, attempts: 1, status: 429 }, { cause }).cause as { message: string };
      expect(summary.message).not.toContain(t);
      expect(summary.message).toContain('429 Too Many Requests');
      expect(summary.message).toContain('api.example.com');
    }
  });

  it('a cause whose getters throw does not make printing our error throw', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('boom');
        },
      },
    );
    const e = new BlockedError(ctx, { cause: hostile });
    expect(() => inspect(e)).not.toThrow();
    expect(inspect(e)).toContain('unreadable cause');
  });
});
