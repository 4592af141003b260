/**
 * Issue 7, the credential itself: the limiter shows it only as a label (a 64-bit hash), and
 * option errors never echo it. The label of a low-entropy key (a PIN) can be reversed by trying
 * every candidate, as with any unsalted hash: such keys should be given a `label`, which then
 * replaces everything derived from the key in what the limiter shows.
 */
import { describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import { from, mergeMap, of } from 'rxjs';

import {
  BlockedError,
  createLimiter,
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
import { makeToken, SecretScan } from './secretScan.js';

describe('the key label', () => {
  it('is key_ and 16 hex digits (64 bits), the same for the same key, different for a one-character change', () => {
    const token = makeToken('label');
    expect(keyLabel(token)).toMatch(/^key_[0-9a-f]{16}$/);
    expect(keyLabel(token)).toBe(keyLabel(`${token}`));
    expect(keyLabel(token)).not.toBe(keyLabel(`${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`));
    const scan = new SecretScan();
    scan.token(token);
    scan.strings('label', [keyLabel(token)]);
    expect(scan.leaks).toEqual([]);
  });

  it('known limit: the label of a 6-digit PIN is found by trying all of them in well under a second; `label` avoids it', () => {
    const pin = '042917';
    const target = keyLabel(pin);
    const started = performance.now();
    let found: string | undefined;
    for (let i = 0; i < 1_000_000 && found === undefined; i++) {
      const candidate = String(i).padStart(6, '0');
      if (keyLabel(candidate) === target) found = candidate;
    }
    expect(found).toBe(pin);
    expect(performance.now() - started).toBeLessThan(5000);

    // With `label`, nothing derived from the key is shown: not the key, not its hash.
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
  ])('%s', (url, path) => {
    expect(safePath(url)).toBe(path);
  });
});

describe('what inspect shows of the cause of our errors', () => {
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
      expect(e.cause).toBe(cause); // kept as received, for code that reads it
      scan.strings('inspect(error)', [inspect(e), inspect(e, { depth: Infinity }), JSON.stringify(e), String(e)]);
    }
    // A string cause is shown as the caller gave it, less its URLs' queries and user-info: a bare
    // `Bearer <token>` the caller chose to put there is not ours to hide.
    if (cause === `Bearer ${t}`) expect(scan.leaks.length).toBeGreaterThan(0);
    else expect(scan.leaks).toEqual([]);
    expect(inspect(errors[0])).toContain('[cause]');
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
