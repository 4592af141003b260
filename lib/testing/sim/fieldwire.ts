/**
 * Fieldwire, from its docs, two tiers at once plus the legacy system:
 * - catch-all: 3,000 requests per 5 minutes over every endpoint; past it, 429 with
 *   `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (unix) and no body;
 * - per endpoint: a minute and an hour limit; responses of those endpoints carry
 *   `ratelimit-limit-minute`, `ratelimit-remaining-minute`, `ratelimit-limit-hour`,
 *   `ratelimit-remaining-hour`, `ratelimit-reset` (0, or the unix time the next request becomes
 *   available) and, on 429, `retry-after` and a JSON error body;
 * - legacy endpoints: a fixed window; past it, 429 with only `X-RateLimit-Reset` and a small
 *   JSON body whose `request_retry_after` reads `YYYY-MM-DD HH:MM:SS UTC`.
 * All windows are fixed and aligned to the (scaled) clock, but the per-endpoint minute and hour
 * slide when `endpointWindows` is `'sliding'` (Fieldwire's docs do not say which they are): each
 * counted request then counts for a minute (an hour) after it arrived, and `ratelimit-reset` is
 * when the oldest request that keeps the window full leaves it.
 */
import { fieldwireLegacyTime, fieldwireTime, jsonBody, secondsUntil, unixSecondsCeil } from '../format.js';
import type { FieldwireEndpointLimit } from '../providerLimits.js';
import {
  alignedWindow,
  endpointKey,
  JSON_TYPE,
  rollAligned,
  type AlignedWindow,
  type SimContext,
  type SimOutcome,
} from './shared.js';

export const FIELDWIRE_CATCH_ALL_MS = 300_000;
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

export interface FieldwireConfig {
  readonly catchAll: number;
  /** Normalised keys. */
  readonly endpoints: Readonly<Record<string, FieldwireEndpointLimit>>;
  /** Normalised keys. */
  readonly legacy: readonly string[];
  readonly legacyLimit: number;
  readonly legacyWindowMs: number;
  /** How the per-endpoint minute and hour count: clock-aligned fixed windows, or sliding logs. @default 'fixed' */
  readonly endpointWindows?: 'fixed' | 'sliding';
}

export const FIELDWIRE_DEFAULTS: FieldwireConfig = {
  catchAll: 3000,
  endpoints: {},
  legacy: [],
  legacyLimit: 60,
  legacyWindowMs: 60_000,
};

interface EndpointState {
  readonly minute: AlignedWindow;
  readonly hour: AlignedWindow;
  /** Limited until here after a 429 of this endpoint. */
  limitedUntil: number;
  /** Sliding windows: arrival times of the counted requests within the last hour, oldest first. */
  readonly log: number[];
}

export interface FieldwireState {
  readonly catchAll: AlignedWindow;
  readonly endpoints: Map<string, EndpointState>;
  readonly legacy: Map<string, AlignedWindow>;
}

export function fieldwireState(): FieldwireState {
  return { catchAll: alignedWindow(), endpoints: new Map(), legacy: new Map() };
}

function endpointState(state: FieldwireState, key: string): EndpointState {
  let s = state.endpoints.get(key);
  if (s === undefined) {
    s = { minute: alignedWindow(), hour: alignedWindow(), limitedUntil: 0, log: [] };
    state.endpoints.set(key, s);
  }
  return s;
}

function legacyState(state: FieldwireState, key: string): AlignedWindow {
  let s = state.legacy.get(key);
  if (s === undefined) {
    s = alignedWindow();
    state.legacy.set(key, s);
  }
  return s;
}

/** What a per-endpoint window has counted, and when a request is next available in it once it is full. */
interface Usage {
  readonly count: number;
  readonly nextAt: number;
}

/**
 * A sliding window over `log` (arrival times, oldest first): the requests of the last `windowMs`;
 * with `n` of them and `n >= limit`, a request is available again once request `n - limit` (the
 * oldest that keeps the window full) has left it.
 */
function slidingUsage(log: readonly number[], now: number, windowMs: number, limit: number): Usage {
  let start = 0;
  while (start < log.length && (log[start] ?? now) <= now - windowMs) start++;
  const count = log.length - start;
  return { count, nextAt: (log[start + Math.max(0, count - limit)] ?? now) + windowMs };
}

export function fieldwireHandle(state: FieldwireState, ctx: SimContext, cfg: FieldwireConfig): SimOutcome {
  const now = ctx.serverNow;
  const key = endpointKey(ctx.method, ctx.path);
  const isLegacy = cfg.legacy.includes(key);
  const endpoint = isLegacy ? undefined : cfg.endpoints[key];

  const catchAllEnd = rollAligned(state.catchAll, now, FIELDWIRE_CATCH_ALL_MS / ctx.scale);
  const legacy = isLegacy ? legacyState(state, key) : undefined;
  const legacyEnd = legacy ? rollAligned(legacy, now, cfg.legacyWindowMs / ctx.scale) : 0;
  const ep = endpoint ? endpointState(state, key) : undefined;
  const minuteEnd = ep ? rollAligned(ep.minute, now, MINUTE_MS / ctx.scale) : 0;
  const hourEnd = ep ? rollAligned(ep.hour, now, HOUR_MS / ctx.scale) : 0;

  const sentWhileLimited =
    now < state.catchAll.limitedUntil ||
    (legacy !== undefined && now < legacy.limitedUntil) ||
    (ep !== undefined && now < ep.limitedUntil);

  // Tier 1: the catch-all, for every request.
  if (state.catchAll.count >= cfg.catchAll) {
    state.catchAll.limitedUntil = catchAllEnd;
    return {
      status: 429,
      headers: {
        'X-RateLimit-Limit': String(cfg.catchAll),
        'X-RateLimit-Remaining': '0',
        'X-RateLimit-Reset': String(unixSecondsCeil(catchAllEnd)),
      },
      body: '',
      sentWhileLimited,
    };
  }
  state.catchAll.count += 1;

  // Legacy fixed window.
  if (legacy !== undefined) {
    if (legacy.count >= cfg.legacyLimit) {
      legacy.limitedUntil = legacyEnd;
      const resetSec = unixSecondsCeil(legacyEnd);
      return {
        status: 429,
        headers: { 'Content-Type': JSON_TYPE, 'X-RateLimit-Reset': String(resetSec) },
        body: jsonBody({ error: true, request_retry_after: fieldwireLegacyTime(resetSec) }, ctx.layout),
        sentWhileLimited,
      };
    }
    legacy.count += 1;
    return { status: 200, headers: { 'Content-Type': JSON_TYPE }, body: '[]', sentWhileLimited };
  }

  // Tier 2: the endpoint's minute and hour.
  if (endpoint !== undefined && ep !== undefined) {
    const sliding = cfg.endpointWindows === 'sliding';
    const minuteMs = MINUTE_MS / ctx.scale;
    const hourMs = HOUR_MS / ctx.scale;
    if (sliding) while (ep.log.length > 0 && (ep.log[0] ?? now) <= now - hourMs) ep.log.shift();
    // Each window's count, and when a request is next available once it is full.
    const minute = (): Usage =>
      sliding ? slidingUsage(ep.log, now, minuteMs, endpoint.minute) : { count: ep.minute.count, nextAt: minuteEnd };
    const hour = (): Usage =>
      sliding ? slidingUsage(ep.log, now, hourMs, endpoint.hour) : { count: ep.hour.count, nextAt: hourEnd };
    /** When the next request becomes available: 0 while it is; else the latest of the full windows'. */
    const availableAt = (m: Usage, h: Usage): number =>
      Math.max(m.count >= endpoint.minute ? m.nextAt : 0, h.count >= endpoint.hour ? h.nextAt : 0);
    const limitHeaders = (m: Usage, h: Usage): Record<string, string> => ({
      'ratelimit-limit-minute': String(endpoint.minute),
      'ratelimit-remaining-minute': String(Math.max(0, endpoint.minute - m.count)),
      'ratelimit-limit-hour': String(endpoint.hour),
      'ratelimit-remaining-hour': String(Math.max(0, endpoint.hour - h.count)),
    });
    const m = minute();
    const h = hour();
    const hourFull = h.count >= endpoint.hour;
    if (m.count >= endpoint.minute || hourFull) {
      // A fixed hour ends no earlier than the minute, so an exhausted hour decides.
      const at = availableAt(m, h);
      const resetSec = unixSecondsCeil(at);
      ep.limitedUntil = at;
      const retryAt = fieldwireTime(resetSec);
      const body = jsonBody(
        {
          errors: [
            {
              type: 'rate_limit_error',
              code: 'rate_limit_exceeded',
              message: `Too many requests. Retry after ${retryAt}`,
              details: {
                endpoint_hour_limit: endpoint.hour,
                endpoint_minute_limit: endpoint.minute,
                request_retry_after: retryAt,
                throttled_by: hourFull ? 'hour' : 'minute',
              },
            },
          ],
        },
        ctx.layout,
      );
      return {
        status: 429,
        headers: {
          'Content-Type': JSON_TYPE,
          ...limitHeaders(m, h),
          'ratelimit-reset': String(resetSec),
          'retry-after': String(secondsUntil(now, at)),
        },
        body,
        sentWhileLimited,
      };
    }
    ep.minute.count += 1;
    ep.hour.count += 1;
    if (sliding) ep.log.push(now);
    // 0 while the next request is available; once a window is used up, when it becomes available.
    const mAfter = minute();
    const hAfter = hour();
    const at = availableAt(mAfter, hAfter);
    return {
      status: 200,
      headers: {
        'Content-Type': JSON_TYPE,
        ...limitHeaders(mAfter, hAfter),
        'ratelimit-reset': String(at === 0 ? 0 : unixSecondsCeil(at)),
      },
      body: '[]',
      sentWhileLimited,
    };
  }

  return { status: 200, headers: { 'Content-Type': JSON_TYPE }, body: '[]', sentWhileLimited };
}
