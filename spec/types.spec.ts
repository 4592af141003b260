/**
 * Type-level checks: `npm run typecheck` compiles this file, so a `@ts-expect-error` line that
 * stops being an error, or an `Equal` that stops holding, fails CI before any test runs.
 */
import { describe, expect, it } from '@jest/globals';
import { of, type Observable } from 'rxjs';
import {
  createLimiter,
  createLimiterPool,
  isCostExceedsLimitError,
  isLimiterClosedError,
  isQuotaExhaustedError,
  LimiterClosedError,
  type CostExceedsLimitError,
  type Limiter,
  type Permit,
  type RequestInfo,
  type LimiterPoolSnapshot,
  providers,
  rateLimit,
  type LimiterEvent,
  type LimiterSnapshot,
  type QuotaExhaustedError,
} from '../lib/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assertType = <T extends true>(): T => true as T;

const limiter = createLimiter({ provider: providers.generic(), key: 'k' });
const _typed$ = of({ id: 1 }).pipe(rateLimit(limiter, { method: 'GET', url: '/x' }));

assertType<Equal<typeof _typed$, Observable<{ id: number }>>>();
assertType<Equal<typeof limiter.state$, Observable<LimiterSnapshot>>>();
assertType<Equal<Extract<LimiterEvent, { type: 'quota-exhausted' }>['bucket'], string>>();

assertType<Equal<RequestInfo['cost'], number | Readonly<Record<string, number>> | undefined>>();
assertType<Equal<Parameters<Permit['reconcile']>[0], number | Readonly<Record<string, number>>>>();

const pool = createLimiterPool({ provider: providers.generic(), idleMs: 60_000 });
assertType<Equal<ReturnType<typeof pool.get>, Limiter>>();
assertType<Equal<typeof pool.state$, Observable<LimiterPoolSnapshot>>>();

// Compiled, never run: each line must stay a type error.
export function mistakes(): void {
  // @ts-expect-error key is required
  createLimiter({ provider: providers.generic() });
  // @ts-expect-error a plan Pipedrive does not have
  providers.pipedrive({ plan: 'gold' });
  // @ts-expect-error pacing is a literal union
  providers.generic({ pacing: 'fast' });
  // @ts-expect-error snapshots are read-only
  limiter.snapshot.queued = 3;
  // @ts-expect-error a pool's limiters take their key from pool.get, not the options
  createLimiterPool({ provider: providers.generic(), key: 'k' });
  // @ts-expect-error the pool's size is read-only
  pool.size = 3;
  // @ts-expect-error a cost is a number, or numbers per bucket name
  rateLimit(limiter, { cost: '5' });
  // @ts-expect-error not a per-bucket number
  rateLimit(limiter, { cost: { points: '5' } });
}

function overLimit(e: unknown): string | undefined {
  if (isCostExceedsLimitError(e)) {
    assertType<Equal<typeof e, CostExceedsLimitError>>();
    return `${e.bucket} ${e.cost} ${e.limit}`;
  }
  return undefined;
}

function closed(e: unknown): string | undefined {
  if (isLimiterClosedError(e)) {
    assertType<Equal<typeof e, LimiterClosedError>>();
    return e.provider;
  }
  return undefined;
}

function narrow(e: unknown): number | undefined {
  if (isQuotaExhaustedError(e)) {
    assertType<Equal<typeof e, QuotaExhaustedError>>();
    return e.resumeAt;
  }
  return undefined;
}

describe('types', () => {
  it('guards narrow at run time as they do at compile time', async () => {
    expect(narrow(new Error('x'))).toBeUndefined();
    expect(overLimit(new Error('x'))).toBeUndefined();
    expect(closed(new Error('x'))).toBeUndefined();
    expect(closed(new LimiterClosedError({ provider: 'generic', key: 'key_0' }))).toBe('generic');
    await pool.close();
  });
});
