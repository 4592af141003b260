import * as z from 'zod/mini';
import { oneOf } from '../core/schema.js';
import { parseOptions } from '../core/options.js';
import type { RequestInfo } from '../core/request.js';
import type { ResponseLike } from '../core/response.js';
import { parseCount } from '../headers/count.js';
import { parseHttpDate } from '../headers/httpDate.js';
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
 * Is this response Pipedrive's block (a 403 HTML page from Cloudflare, after hammering past
 * 429s)? Other 403s are authorisation errors, not rate limiting.
 *
 * ```ts
 * import { isPipedriveBlock, responseLike } from 'rx-ratelimit';
 * isPipedriveBlock(responseLike(403, { 'content-type': 'text/html' })); // true
 * ```
 */
export function isPipedriveBlock(res: ResponseLike): boolean {
  if (res.status !== 403) return false;
  if (/text\/html/i.test(res.header('content-type') ?? '')) return true;
  return mentionsCloudflare(res.body);
}

/** Characters of a body searched for "cloudflare", and values of a parsed body visited. */
const BODY_TEXT_BUDGET = 256 * 1024;
const BODY_NODE_BUDGET = 10_000;
/** Entries read of any one object or array of a parsed body. */
const BODY_FANOUT = 1000;

/**
 * Does the body mention Cloudflare? Reads at most {@link BODY_TEXT_BUDGET} characters of text
 * and, in a parsed body, at most {@link BODY_NODE_BUDGET} keys and values, breadth first and
 * {@link BODY_FANOUT} per object (never stringifying the whole of it).
 */
function mentionsCloudflare(body: unknown): boolean {
  if (typeof body === 'string') return /cloudflare/i.test(body.slice(0, BODY_TEXT_BUDGET));
  if (typeof body !== 'object' || body === null) return false;
  let chars = BODY_TEXT_BUDGET;
  const found = (text: string): boolean => {
    const part = text.slice(0, chars);
    chars -= part.length;
    return /cloudflare/i.test(part);
  };
  // Breadth first, a few entries of each list: a message near the top is found before the
  // budget goes on a long list.
  const queue: unknown[] = [body];
  try {
    for (let next = 0; next < queue.length && chars > 0; next++) {
      const value = queue[next];
      if (typeof value === 'string') {
        if (found(value)) return true;
      } else if (typeof value === 'object' && value !== null) {
        // `for…in` with a stop: `Object.keys` of a million-entry body would list them all first.
        let room = BODY_FANOUT;
        for (const key in value) {
          if (queue.length >= BODY_NODE_BUDGET || room-- <= 0) break;
          if (!Array.isArray(value) && found(key)) return true;
          queue.push((value as Record<string, unknown>)[key]);
        }
      }
    }
  } catch {
    // A throwing getter or proxy: what was read so far did not mention it.
  }
  return false;
}

function daily(res: ResponseLike): BucketReading | undefined {
  const remaining = parseCount(res.header('x-daily-requests-left'));
  if (remaining === undefined) return undefined;
  // The day is counted in UTC: the budget resets at the next midnight of the server's Date.
  const date = parseHttpDate(res.header('date'));
  const reset = date === undefined ? undefined : { at: (Math.floor(date / DAY_MS) + 1) * DAY_MS };
  return compact({ name: DAILY, remaining, reset, windowMs: DAY_MS });
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
    read(res, request): ResponseReading {
      const w = readCounters(res, WINDOW, HEADERS, 'seconds-left');
      // Only a POST/PUT counts against `daily`; a reading for it elsewhere would add it to every request.
      const d = isWrite(request) ? daily(res) : undefined;
      const buckets = [w, d].filter((b): b is BucketReading => b !== undefined);
      if (isPipedriveBlock(res)) return { outcome: 'blocked', buckets };
      if (res.status !== 429) return { outcome: 'ok', buckets };
      return { outcome: 'limited', buckets, ...retryFields(res, undefined, w?.reset) };
    },
  });
}
