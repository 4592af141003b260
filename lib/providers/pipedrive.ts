import * as z from 'zod/mini';
import { oneOf } from '../core/schema.js';
import { parseOptions } from '../core/options.js';
import type { RequestInfo } from '../core/request.js';
import type { ResponseLike } from '../core/response.js';
import { parseCount } from '../headers/count.js';
import { parseHttpDate } from '../headers/httpDate.js';
import type { ResetValue } from '../headers/reset.js';
import { defineProvider } from './define.js';
import { checkBucketNames, commonShape, hinted, retryFields, type CommonProviderOptions } from './endpoint.js';
import { compact, readCounters, type CounterHeaders } from './read.js';
import type { BucketReading, Provider, ResponseReading } from './types.js';

/**
 * Pipedrive's four plans, from the smallest budget to the largest.
 *
 * ```ts
 * import { providers, type PipedrivePlan } from 'rx-ratelimit';
 * const plan: PipedrivePlan = 'professional';
 * const pipedrive = providers.pipedrive({ plan });
 * ```
 */
export type PipedrivePlan = 'essential' | 'advanced' | 'professional' | 'enterprise';

/**
 * Options of `providers.pipedrive()`. The plan and the authentication method set the starting
 * budget per 2-second window; the headers then rule.
 *
 * ```ts
 * import { providers, type PipedriveOptions } from 'rx-ratelimit';
 * const options: PipedriveOptions = { plan: 'advanced', auth: 'oauth' };
 * const pipedrive = providers.pipedrive(options);
 * ```
 */
export interface PipedriveOptions extends CommonProviderOptions {
  readonly plan: PipedrivePlan;
  /** `api_token` (20/40/80/120 per 2 s) or `oauth` access tokens (80/160/320/480). @default 'api_token' */
  readonly auth?: 'api_token' | 'oauth';
}

const PLANS = ['essential', 'advanced', 'professional', 'enterprise'] as const;
/** Requests per 2-second window, in the doc's order of plans. */
const PER_WINDOW: Record<'api_token' | 'oauth', Record<PipedrivePlan, number>> = {
  api_token: { essential: 20, advanced: 40, professional: 80, enterprise: 120 },
  oauth: { essential: 80, advanced: 160, professional: 320, enterprise: 480 },
};
const WINDOW = 'window';
const DAILY = 'daily';
const DAY_MS = 86_400_000;
const HEADERS: CounterHeaders = {
  limit: 'x-ratelimit-limit',
  remaining: 'x-ratelimit-remaining',
  reset: 'x-ratelimit-reset',
};
const schema = z
  .strictObject({
    ...commonShape,
    plan: oneOf(PLANS),
    auth: z.optional(oneOf(['api_token', 'oauth'])),
  })
  .check(z.superRefine(checkBucketNames((n) => n === WINDOW || n === DAILY, `"${WINDOW}", "${DAILY}"`)));

/** POST and PUT count against the daily fair-usage budget. */
const isWrite = (request: RequestInfo) => ['POST', 'PUT'].includes((request.method ?? 'GET').toUpperCase());

/**
 * Is this response Pipedrive's block: a 403 whose body is an HTML page with Cloudflare's message
 * ("This error is produced by Cloudflare…"), sent to a client that kept sending past 429s?
 * Other 403s (JSON authorisation errors, a proxy's or a login page) are not rate limiting.
 *
 * An HTML 403 whose body was not read (or was handed over as something other than text) is
 * taken for the block: it cannot be told apart, and the costs are lopsided. Traffic kept up
 * despite the refusals is what the docs say gets a token blocked, while a 403 wrongly taken
 * for the block only stops the credential for `blockCooldownMs`.
 *
 * ```ts
 * import { isPipedriveBlock, responseLike } from 'rx-ratelimit';
 * isPipedriveBlock(responseLike(403, { 'content-type': 'text/html' }, '<p>This error is produced by Cloudflare.</p>')); // true
 * isPipedriveBlock(responseLike(403, { 'content-type': 'text/html' }, '<h1>Forbidden</h1>')); // false
 * ```
 */
export function isPipedriveBlock(res: ResponseLike): boolean {
  if (res.status !== 403) return false;
  const type = res.header('content-type');
  // Only a prefix of a text body is read, never a parsed body or bytes: the work is bounded by
  // the budget whatever the body holds (merely listing the keys of a parsed body grows with it).
  const prefix = typeof res.body === 'string' ? res.body.slice(0, BODY_TEXT_BUDGET) : undefined;
  const text = prefix !== undefined && /\S/.test(prefix) ? prefix : undefined;
  // Without a content type, a body that is markup is the page; a parsed body never is.
  const html = type === undefined ? text !== undefined && /^\s*</.test(text) : /\btext\/html\b/i.test(type);
  if (!html) return false;
  return text === undefined || CLOUDFLARE.test(text);
}

/** Characters of a text body searched for Cloudflare's message: its page is a few KiB. */
const BODY_TEXT_BUDGET = 256 * 1024;
/** Cloudflare named as a word (not inside an identifier such as `cloudflare_zone_id`). */
const CLOUDFLARE = /\bcloudflare\b/i;

function daily(res: ResponseLike, now: number | undefined): BucketReading | undefined {
  const remaining = parseCount(res.header('x-daily-requests-left'));
  if (remaining === undefined) return undefined;
  return compact({ name: DAILY, remaining, reset: nextUtcMidnight(res, now), windowMs: DAY_MS });
}

/** When the day's budget resets: "at midnight in UTC", the first one after this response. */
function nextUtcMidnight(res: ResponseLike, calendarNow: number | undefined): ResetValue {
  const date = parseHttpDate(res.header('date'));
  // Any `Date` is the server's clock, however far from ours (1970 under a virtual clock): the
  // limiter reads the instant through the offset it measures from the same headers.
  if (date !== undefined) return { at: (Math.floor(date / DAY_MS) + 1) * DAY_MS };
  // No usable Date (browsers hide it from cross-origin scripts): the calendar the limiter reads
  // (its scheduler's: virtual in tests), else the wall clock. Told as a delay, which the limiter
  // counts from this response. A day from the response, as the window alone says, held a spent
  // budget shut for up to a day past its reset.
  const now = calendarNow ?? Date.now();
  return { inMs: (Math.floor(now / DAY_MS) + 1) * DAY_MS - now };
}

/**
 * Pipedrive: a 2-second `window` per token (budget by plan and auth, a hint until
 * `x-ratelimit-limit/-remaining/-reset` tell; reset in seconds left), and for POST and PUT a
 * `daily` fair-usage quota of 10,000 (`x-daily-requests-left`, resets at midnight UTC) that
 * fails requests at once when spent instead of waiting. A 429 pauses every stream until the
 * window resets; a 403 HTML page from Cloudflare blocks the credential: stop sending.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'pipedrive-api-token' });
 * ```
 */
export function pipedrive(options: PipedriveOptions): Provider {
  const o = parseOptions('providers.pipedrive', schema, options) as PipedriveOptions;
  const window = hinted({ name: WINDOW, limit: PER_WINDOW[o.auth ?? 'api_token'][o.plan], windowMs: 2000 }, o.hints);
  const day = hinted({ name: DAILY, limit: 10_000, windowMs: DAY_MS, quota: true }, o.hints);
  const extra = o.extraBuckets ?? [];
  const reads = [window, ...extra];
  const writes = [window, day, ...extra];
  return defineProvider({
    name: 'pipedrive',
    buckets: (request) => (isWrite(request) ? writes : reads),
    read(res, request, now): ResponseReading {
      const w = readCounters(res, WINDOW, HEADERS, 'seconds-left');
      // Only a POST/PUT counts against `daily`; a reading for it elsewhere would add it to every request.
      const d = isWrite(request) ? daily(res, now) : undefined;
      const buckets = [w, d].filter((b): b is BucketReading => b !== undefined);
      if (isPipedriveBlock(res)) return { outcome: 'blocked', buckets };
      if (res.status !== 429) return { outcome: 'ok', buckets };
      return { outcome: 'limited', buckets, ...retryFields(res, undefined, w?.reset) };
    },
  });
}
