import '@angular/compiler';
import { describe, expect, it } from '@jest/globals';
import { HttpErrorResponse, HttpHeaders } from '@angular/common/http';
import axios, { AxiosError, AxiosHeaders, type InternalAxiosRequestConfig } from 'axios';
import { asyncScheduler, Observable } from 'rxjs';
import {
  createLimiter,
  isRetryLimitError,
  providers,
  rateLimit,
  rawCauseOf,
  responseLike,
  type ResponseLike,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Identical GETs in flight share one request; when it fails, each caller gets the failure as
// its own object: what one caller does to its error (axios-retry writes
// `config['axios-retry']`, an app attaches a field, rewrites the body) must not reach another.

/**
 * Three identical GETs at once through one limiter, failing after 10 ms with `fail()` (made
 * once: the request is sent once). Each caller records the error it got, then scribbles on it
 * with `scribble`. Returns the errors in subscription order, the one thrown, and what was sent.
 */
function sharedFailure<E>(fail: () => E, scribble: (e: E, caller: number) => void = () => undefined) {
  return inVirtualTime(() => {
    const limiter = createLimiter({ provider: providers.generic(), key: 'k', coldStartConcurrency: 10 });
    let sent = 0;
    let thrown: E | undefined;
    const get$ = new Observable<never>((s) => {
      sent++;
      const t = asyncScheduler.schedule(() => s.error((thrown = fail())), 10);
      return () => t.unsubscribe();
    });
    const got: E[] = [];
    for (let i = 0; i < 3; i++)
      get$.pipe(rateLimit(limiter, { url: '/deals', headers: {} })).subscribe({
        error: (e: E) => {
          got.push(e);
          scribble(e, i);
        },
      });
    return { got, thrown: () => thrown, sent: () => sent };
  });
}

const axiosError = (): AxiosError => {
  const config = { url: '/deals', method: 'get', headers: new AxiosHeaders() } as InternalAxiosRequestConfig;
  return new AxiosError('Request failed with status code 500', 'ERR_BAD_RESPONSE', config, undefined, {
    status: 500,
    statusText: 'Internal Server Error',
    headers: new AxiosHeaders({ 'content-type': 'application/json' }),
    config,
    data: { errors: [{ message: 'boom' }] },
  });
};

describe('a shared request that fails: each caller gets an error of its own', () => {
  it('an AxiosError: the first caller gets the original, the others copies that are still AxiosErrors', () => {
    const out = sharedFailure(axiosError);
    expect(out.sent()).toBe(1);
    const [first, second, third] = out.got as [AxiosError, AxiosError, AxiosError];
    expect(first).toBe(out.thrown());
    expect(new Set(out.got).size).toBe(3);
    for (const e of [second, third]) {
      expect(e).toBeInstanceOf(AxiosError);
      expect(e).toBeInstanceOf(Error);
      expect(axios.isAxiosError(e)).toBe(true);
      expect([e.name, e.message, e.code, e.status]).toEqual([first.name, first.message, first.code, first.status]);
      expect(e.response?.status).toBe(500);
      expect(e.response?.data).toEqual({ errors: [{ message: 'boom' }] });
      expect(e.response?.data).not.toBe(first.response?.data);
      expect(e.response?.headers['content-type']).toBe('application/json');
      expect(e.stack).toBe(first.stack);
    }
  });

  it('what a caller writes on its AxiosError (axios-retry’s config state, a field, the body) reaches no other caller', () => {
    const seen: string[] = [];
    const out = sharedFailure(axiosError, (e, caller) => {
      const config = e.config as unknown as Record<string, unknown>;
      const data = e.response?.data as { errors: Array<{ message: string }> };
      seen.push(JSON.stringify([config['axios-retry'] ?? null, (e as { handledBy?: number }).handledBy ?? null, data]));
      config['axios-retry'] = { retryCount: caller + 1 };
      (e as { handledBy?: number }).handledBy = caller;
      data.errors[0]!.message = `seen by ${caller}`;
    });
    const pristine = JSON.stringify([null, null, { errors: [{ message: 'boom' }] }]);
    expect(seen).toEqual([pristine, pristine, pristine]);
    // The thrown error is the first caller's own.
    expect((out.thrown()?.config as unknown as Record<string, unknown>)['axios-retry']).toEqual({ retryCount: 1 });
  });

  it('an Angular HttpErrorResponse: copies are HttpErrorResponses with the same status and body', () => {
    const fail = () =>
      new HttpErrorResponse({
        status: 404,
        statusText: 'Not Found',
        url: 'https://api.example.com/deals',
        headers: new HttpHeaders({ 'content-type': 'application/json' }),
        error: { detail: 'no such deal' },
      });
    const seen: string[] = [];
    const out = sharedFailure(fail, (e, caller) => {
      seen.push(JSON.stringify(e.error));
      (e.error as { detail: string }).detail = `rewritten by ${caller}`;
    });
    expect(new Set(out.got).size).toBe(3);
    expect(out.got[0]).toBe(out.thrown());
    for (const e of out.got) {
      expect(e).toBeInstanceOf(HttpErrorResponse);
      expect([e.status, e.statusText, e.message, e.name, e.ok]).toEqual([
        404,
        'Not Found',
        out.got[0]!.message,
        'HttpErrorResponse',
        false,
      ]);
      expect(e.headers.get('content-type')).toBe('application/json');
    }
    expect(seen).toEqual(Array(3).fill(JSON.stringify({ detail: 'no such deal' })));
  });

  it('an Error with fields an app attaches: each its own, same class, message and stack', () => {
    class ApiError extends Error {
      override readonly name = 'ApiError';
      constructor(
        message: string,
        readonly status: number,
      ) {
        super(message);
      }
    }
    const out = sharedFailure(
      () => new ApiError('upstream down', 503),
      (e, caller) => Object.assign(e, { reported: caller }),
    );
    expect(out.got.map((e) => (e as { reported?: number }).reported)).toEqual([0, 1, 2]);
    expect((out.thrown() as { reported?: number }).reported).toBe(0);
    for (const e of out.got) {
      expect(e).toBeInstanceOf(ApiError);
      expect([e.name, e.message, e.status, e.stack]).toEqual(['ApiError', 'upstream down', 503, out.got[0]!.stack]);
      expect(String(e)).toBe('ApiError: upstream down');
    }
  });

  it('our own RetryLimitError: copies keep the guard, the fields and the raw cause', () => {
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', coldStartConcurrency: 10 });
      const get$ = new Observable<ResponseLike>((s) => {
        const t = asyncScheduler.schedule(() => {
          s.next(responseLike(429, { 'retry-after': '1' }));
          s.complete();
        }, 10);
        return () => t.unsubscribe();
      });
      const got: unknown[] = [];
      for (let i = 0; i < 2; i++)
        get$
          .pipe(rateLimit(limiter, { url: '/deals', headers: {} }, { maxRetries: 0 }))
          .subscribe({ error: (e: unknown) => got.push(e) });
      return got;
    });
    expect(out).toHaveLength(2);
    const [first, second] = out;
    expect(second).not.toBe(first);
    for (const e of out) {
      expect(isRetryLimitError(e)).toBe(true);
      if (!isRetryLimitError(e) || !isRetryLimitError(first)) continue;
      expect(e.toJSON()).toEqual(first.toJSON());
      expect(rawCauseOf(e)).toBe(rawCauseOf(first));
      expect(rawCauseOf(e)).toBeDefined();
    }
  });

  it('an error that cannot be copied (a DOMException) is handed on as it is', () => {
    const out = sharedFailure(() => new DOMException('The operation was aborted.', 'AbortError'));
    expect(out.got).toHaveLength(3);
    for (const e of out.got) {
      expect(e).toBe(out.thrown());
      expect(e.name).toBe('AbortError');
    }
  });
});

describe('what an error copy keeps shared', () => {
  it('a body that is a class instance (the event of an Angular network error) stays as it is, and works', () => {
    const out = sharedFailure(() => new HttpErrorResponse({ status: 0, error: new Event('error') }));
    expect(new Set(out.got).size).toBe(3);
    for (const e of out.got) {
      expect(e.error).toBe(out.thrown()?.error);
      expect((e.error as Event).type).toBe('error');
    }
  });
});
