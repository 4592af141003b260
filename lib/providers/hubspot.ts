import * as z from 'zod/mini';
import { oneOf } from '../core/schema.js';
import { parseOptions } from '../core/options.js';
import { rollingWindows } from '../core/rollingBucket.js';
import { methodOf, type RequestInfo } from '../core/request.js';
import type { ResponseLike } from '../core/response.js';
import { parseCount } from '../headers/count.js';
import { parseHttpDate } from '../headers/httpDate.js';
import type { ResetValue } from '../headers/reset.js';
import { defineProvider } from './define.js';
import {
  bodyValue,
  checkBucketNames,
  commonShape,
  endpointPath,
  field,
  hinted,
  type CommonProviderOptions,
} from './endpoint.js';
import { compact, readRetryAfter } from './read.js';
import type { BucketReading, BucketSpec, Provider, ResponseReading } from './types.js';

/**
 * The HubSpot subscription whose limits a private app gets (public OAuth apps get one limit
 * whatever the tier).
 *
 * ```ts
 * import { providers, type HubspotTier } from 'rx-ratelimit';
 * const tier: HubspotTier = 'professional';
 * const hubspot = providers.hubspot({ tier, timeZone: 'Europe/Paris' });
 * ```
 */
export type HubspotTier = 'free' | 'starter' | 'professional' | 'enterprise';

/**
 * Options of `providers.hubspot()`.
 *
 * ```ts
 * import { providers, type HubspotOptions } from 'rx-ratelimit';
 * const options: HubspotOptions = { timeZone: 'America/New_York', tier: 'enterprise' };
 * const hubspot = providers.hubspot(options);
 * ```
 */
export interface HubspotOptions extends CommonProviderOptions {
  /**
   * The HubSpot account's time zone (Settings › Account defaults), an IANA name such as
   * `'America/New_York'`: the daily limit resets at midnight there. @default 'UTC'
   */
  readonly timeZone?: string;
  /**
   * `'private'`: an app installed in one account (private app or static token), with a burst
   * limit and a daily limit by tier; `'public'`: a public OAuth app, 110 requests per 10 s per
   * installed account and no daily limit. @default 'private'
   */
  readonly app?: 'private' | 'public';
  /** The account's subscription, for the starting numbers of a private app. @default 'free' */
  readonly tier?: HubspotTier;
}

const INTERVAL = 'interval';
const DAILY = 'daily';
const SEARCH = 'search';
const INTERVAL_MS = 10_000;
const DAY_MS = 86_400_000;
const TIERS = ['free', 'starter', 'professional', 'enterprise'] as const;
/** Private apps: requests per 10 s and per day, by tier (HubSpot's usage guidelines and changelog). */
const PRIVATE: Record<HubspotTier, { readonly interval: number; readonly daily: number }> = {
  free: { interval: 100, daily: 250_000 },
  starter: { interval: 100, daily: 250_000 },
  professional: { interval: 190, daily: 650_000 },
  enterprise: { interval: 190, daily: 1_000_000 },
};
const PUBLIC_INTERVAL = 110;
/** The CRM search endpoints: 5 requests a second per account, and no rate-limit headers. */
const SEARCH_PER_SECOND = 5;
/** A policy name as HubSpot writes them (`TEN_SECONDLY_ROLLING`); anything else is ignored. */
const POLICY_NAME = /^[A-Z_]{1,40}$/;
/** The longest window an interval header may claim: longer is junk, not a burst limit. */
const MAX_INTERVAL_MS = DAY_MS;
const TIME_ZONE_CHARS = 64;

/** Whether Intl knows `timeZone` (a RangeError otherwise). */
function isTimeZone(timeZone: string): boolean {
  if (timeZone.length === 0 || timeZone.length > TIME_ZONE_CHARS) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

const names = [INTERVAL, DAILY, SEARCH];
const schema = z
  .strictObject({
    ...commonShape,
    timeZone: z.optional(
      z.string().check(
        z.refine(isTimeZone, {
          error: 'an IANA time zone that Intl knows, such as "America/New_York" (the account\'s time zone)',
        }),
      ),
    ),
    app: z.optional(oneOf(['private', 'public'])),
    tier: z.optional(oneOf(TIERS)),
  })
  .check(z.superRefine(checkBucketNames((n) => names.includes(n), names.map((n) => `"${n}"`).join(', '))));

/**
 * Is this request a CRM search (`POST /crm/v3/objects/contacts/search`)? Search has its own
 * limit of 5 requests a second, and its responses carry no rate-limit headers.
 *
 * ```ts
 * import { isHubspotSearch } from 'rx-ratelimit';
 * isHubspotSearch({ method: 'POST', url: 'https://api.hubapi.com/crm/v3/objects/contacts/search' }); // true
 * ```
 */
export function isHubspotSearch(request: Pick<RequestInfo, 'method' | 'url'>): boolean {
  const path = endpointPath(request.url);
  return methodOf(request) === 'POST' && path.startsWith('/crm/') && path.endsWith('/search');
}

/**
 * The next midnight in `timeZone` after `at` (epoch ms), as epoch ms. Reads the wall clock of
 * `at` in the zone, adds a day at 00:00, and takes the zone's offset at that instant (so a
 * DST change in between is followed). A zone whose midnight does not exist that day (a DST
 * jump at 00:00) gets the first instant of the new day.
 *
 * ```ts
 * import { nextMidnight } from 'rx-ratelimit';
 * nextMidnight(Date.UTC(2026, 0, 1, 12), 'America/New_York'); // Date.UTC(2026, 0, 2, 5)
 * ```
 */
export function nextMidnight(at: number, timeZone: string): number | undefined {
  if (!Number.isFinite(at) || !isTimeZone(timeZone)) return undefined;
  return midnightAfter(at, zoneFormat(timeZone));
}

function zoneFormat(timeZone: string): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
}

/** The wall clock of `at` in the formatter's zone, as if it were UTC (epoch ms, whole seconds). */
function wallClock(at: number, format: Intl.DateTimeFormat): number {
  const parts: Record<string, number> = {};
  for (const p of format.formatToParts(at)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return Date.UTC(
    parts['year'] ?? 1970,
    (parts['month'] ?? 1) - 1,
    parts['day'] ?? 1,
    parts['hour'] ?? 0,
    parts['minute'] ?? 0,
    parts['second'] ?? 0,
  );
}

function midnightAfter(at: number, format: Intl.DateTimeFormat): number | undefined {
  const whole = Math.floor(at / 1000) * 1000;
  const wall = wallClock(whole, format);
  if (!Number.isFinite(wall)) return undefined;
  const nextWall = Math.floor(wall / DAY_MS) * DAY_MS + DAY_MS;
  // The first second whose wall clock is in the new day: guessed with the offset at `at`, then
  // moved by how far its wall clock is from the day's start, until the second before it is in
  // the old day. Where the clock springs forward at midnight (Santiago, Beirut, Havana) the day
  // begins at 01:00; correcting by the offset there put it an hour early (inside the old day),
  // and an hour before it read no midnight at all: a DAILY 429 then held the budget a whole day.
  let t = nextWall - (wall - whole);
  for (let step = 0; step < 4 && Number.isFinite(t); step++) {
    const w = wallClock(t, format);
    if (w < nextWall) t += nextWall - w;
    else if (wallClock(t - 1000, format) >= nextWall) t -= Math.max(1000, w - nextWall);
    else return t > at ? t : undefined;
  }
  return undefined;
}

/**
 * HubSpot: a burst limit per 10 seconds (`interval`: `X-HubSpot-RateLimit-Max/-Remaining/
 * -Interval-Milliseconds`, a rolling window) and, for private apps, a daily limit (`daily`:
 * `X-HubSpot-RateLimit-Daily/-Daily-Remaining`) that resets at midnight in the account's time
 * zone (`timeZone`). CRM search requests also count against `search` (5 a second; their
 * responses carry no headers). A 429's body names the policy it enforced (`policyName`):
 * `DAILY` holds back only requests on `daily` until midnight, `TEN_SECONDLY_ROLLING` the burst
 * limit; an unknown or missing policy pauses every stream. `Retry-After` wins when sent.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.hubspot({ timeZone: 'America/New_York' }), key: 'hubspot-account-123' });
 * ```
 */
export function hubspot(options: HubspotOptions = {}): Provider {
  const o = parseOptions('providers.hubspot', schema, options) as HubspotOptions;
  const timeZone = o.timeZone ?? 'UTC';
  const format = zoneFormat(timeZone);
  const isPrivate = (o.app ?? 'private') === 'private';
  const tier = PRIVATE[o.tier ?? 'free'];
  const extra = o.extraBuckets ?? [];
  const interval = hinted(
    { name: INTERVAL, limit: isPrivate ? tier.interval : PUBLIC_INTERVAL, windowMs: INTERVAL_MS, rolling: true },
    o.hints,
  );
  const daily = isPrivate ? [hinted({ name: DAILY, limit: tier.daily, windowMs: DAY_MS, quota: true }, o.hints)] : [];
  // Whether the search second is fixed or slides is not documented: a sliding window is the
  // safe reading (never more than 5 in any second, so within either kind of server window),
  // whereas a fixed one lets 5 at its end and 5 at the next one's start reach a sliding server
  // within one second.
  const search = hinted({ name: SEARCH, limit: SEARCH_PER_SECOND, windowMs: 1000, rolling: true }, o.hints);
  // Whether a search also counts against the burst limit is not documented: counting it is
  // the safe reading (the next answer's headers correct the count).
  const plain: readonly BucketSpec[] = [interval, ...daily, ...extra];
  const searches: readonly BucketSpec[] = [interval, ...daily, search, ...extra];

  function readDaily(res: ResponseLike, now: number | undefined): BucketReading | undefined {
    const limit = parseCount(res.header('x-hubspot-ratelimit-daily'));
    const remaining = parseCount(res.header('x-hubspot-ratelimit-daily-remaining'));
    if (limit === undefined && remaining === undefined) return undefined;
    return compact({ name: DAILY, limit, remaining, reset: dailyReset(res, now), windowMs: DAY_MS });
  }

  /**
   * The next midnight in the account's zone: after the server's `Date`, or without one (browsers
   * hide it from cross-origin scripts) after the calendar time the limiter gives, told as a delay.
   */
  function dailyReset(res: ResponseLike, calendarNow: number | undefined): ResetValue | undefined {
    const date = parseHttpDate(res.header('date'));
    if (date !== undefined) {
      const at = midnightAfter(date, format);
      return at === undefined ? undefined : { at };
    }
    const now = calendarNow ?? Date.now();
    const at = midnightAfter(now, format);
    return at === undefined ? undefined : { inMs: at - now };
  }

  return defineProvider({
    name: 'hubspot',
    bucketKinds: [rollingWindows],
    buckets: (request) => (isHubspotSearch(request) ? searches : plain),
    read(res, request, now): ResponseReading {
      const buckets: BucketReading[] = [];
      const burst = readInterval(res);
      if (burst) buckets.push(burst);
      const day = isPrivate ? readDaily(res, now) : undefined;
      if (day) buckets.push(day);
      if (res.status !== 429) return { outcome: 'ok', buckets };
      const policy = policyOf(res.body);
      const limitedBy =
        policy === 'DAILY'
          ? isPrivate
            ? DAILY
            : undefined
          : policy === 'TEN_SECONDLY_ROLLING' ||
              policy === 'SECONDLY' ||
              (policy === undefined && isHubspotSearch(request))
            ? isHubspotSearch(request)
              ? SEARCH
              : INTERVAL
            : undefined;
      const by = limitedBy === undefined ? {} : { limitedBy };
      const retry = readRetryAfter(res);
      if (retry.retryAfter) return { outcome: 'limited', buckets, ...retry, ...by };
      if (limitedBy === DAILY) {
        const reset = dailyReset(res, now);
        const retryAfter = reset && ('at' in reset ? { at: reset.at } : { delayMs: reset.inMs });
        if (retryAfter) return { outcome: 'limited', buckets, retryAfter, retrySource: 'reset', ...by };
      }
      return { outcome: 'limited', buckets, ...by };
    },
  });
}

/** The burst limit: max, remaining and the window in ms (capped at a day; 0 or junk is ignored). */
function readInterval(res: ResponseLike): BucketReading | undefined {
  const limit = parseCount(res.header('x-hubspot-ratelimit-max'));
  const remaining = parseCount(res.header('x-hubspot-ratelimit-remaining'));
  const ms = parseCount(res.header('x-hubspot-ratelimit-interval-milliseconds'));
  const windowMs = ms !== undefined && ms > 0 && ms <= MAX_INTERVAL_MS ? ms : undefined;
  if (limit === undefined && remaining === undefined && windowMs === undefined) return undefined;
  return compact({ name: INTERVAL, limit, remaining, windowMs });
}

/** The 429 body's `policyName` when it looks like one (`DAILY`, `TEN_SECONDLY_ROLLING`). */
function policyOf(body: unknown): string | undefined {
  const name = field(bodyValue(body), 'policyName');
  return typeof name === 'string' && POLICY_NAME.test(name) ? name : undefined;
}
