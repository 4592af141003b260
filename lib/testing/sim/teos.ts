/**
 * TEOS, from its docs: per tenant, 100 calls within a minute and 10,000 within a rolling 24 hours
 * (both rolling: a sliding log of call times). Calls made while throttled are recorded too, so
 * hammering pushes the time of the next successful call further away. Once enough calls have
 * been made to an endpoint, responses carry `X-Rate-Limit-Limit` (a period: `1m`, `1d`),
 * `X-Rate-Limit-Remaining` and `X-Rate-Limit-Reset` (UTC, ISO 8601 in .NET's round-trip "o" form),
 * describing the most constraining limit.
 */
import { dotnetRoundTrip, shortPeriod } from '../format.js';
import { endpointKey, TEXT_TYPE, JSON_TYPE, type SimContext, type SimOutcome } from './shared.js';

export const TEOS_MINUTE_MS = 60_000;
export const TEOS_DAY_MS = 86_400_000;

export interface TeosConfig {
  readonly perMinute: number;
  readonly perDay: number;
  readonly headersAfter: number;
}

export const TEOS_DEFAULTS: TeosConfig = { perMinute: 100, perDay: 10_000, headersAfter: 3 };

export interface TeosState {
  /** Call times (server clock), oldest first, from index `head` on. */
  log: number[];
  head: number;
  /** Calls per endpoint key, for `headersAfter`. */
  readonly endpointCalls: Map<string, number>;
  /** Throttled until here, as last told by a 429. */
  limitedUntil: number;
}

export function teosState(): TeosState {
  return { log: [], head: 0, endpointCalls: new Map(), limitedUntil: 0 };
}

/** First index in [from, log.length) whose time is > t. */
function firstAfter(log: readonly number[], from: number, t: number): number {
  let lo = from;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((log[mid] ?? Infinity) > t) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function record(state: TeosState, t: number): void {
  const { log } = state;
  const last = log[log.length - 1];
  if (log.length === state.head || last === undefined || last <= t) {
    log.push(t);
    return;
  }
  // A clock that went backwards: keep the log sorted.
  log.splice(firstAfter(log, state.head, t), 0, t);
}

interface Usage {
  readonly period: string;
  readonly remaining: number;
  /** When the count next drops (below the limit, if it is reached). */
  readonly reset: number;
  readonly exhausted: boolean;
  readonly limit: number;
}

/** Usage of one rolling limit after the current call has been recorded. */
function usage(state: TeosState, now: number, windowMs: number, limit: number): Usage {
  const start = firstAfter(state.log, state.head, now - windowMs);
  const n = state.log.length - start;
  // With n calls in the window, a call is possible again once the oldest n - limit + 1 have left it,
  // i.e. when call [n - limit] (0-based) has; below the limit, when the oldest leaves.
  const index = start + Math.max(0, n - limit);
  const reset = (state.log[index] ?? now) + windowMs;
  return { period: shortPeriod(windowMs), remaining: Math.max(0, limit - n), reset, exhausted: n >= limit, limit };
}

export function teosHandle(state: TeosState, ctx: SimContext, cfg: TeosConfig): SimOutcome {
  const now = ctx.serverNow;
  const minuteMs = TEOS_MINUTE_MS / ctx.scale;
  const dayMs = TEOS_DAY_MS / ctx.scale;

  // Forget calls older than the longest window.
  state.head = firstAfter(state.log, state.head, now - Math.max(minuteMs, dayMs));
  if (state.head > 1024 && state.head * 2 > state.log.length) {
    state.log = state.log.slice(state.head);
    state.head = 0;
  }

  const inMinute = state.log.length - firstAfter(state.log, state.head, now - minuteMs);
  const inDay = state.log.length - firstAfter(state.log, state.head, now - dayMs);
  const throttled = inMinute >= cfg.perMinute || inDay >= cfg.perDay;
  const sentWhileLimited = now < state.limitedUntil;

  // Every call counts, throttled or not.
  record(state, now);
  const key = endpointKey(ctx.method, ctx.path);
  const calls = (state.endpointCalls.get(key) ?? 0) + 1;
  state.endpointCalls.set(key, calls);

  const minute = usage(state, now, minuteMs, cfg.perMinute);
  const day = usage(state, now, dayMs, cfg.perDay);
  // The most constraining: fewer calls left; on a tie, the later reset.
  const shown =
    minute.remaining < day.remaining
      ? minute
      : day.remaining < minute.remaining
        ? day
        : minute.reset > day.reset
          ? minute
          : day;

  const headers: Record<string, string> = { 'Content-Type': throttled ? TEXT_TYPE : JSON_TYPE };
  if (calls >= cfg.headersAfter) {
    headers['X-Rate-Limit-Limit'] = shown.period;
    headers['X-Rate-Limit-Remaining'] = String(shown.remaining);
    headers['X-Rate-Limit-Reset'] = dotnetRoundTrip(shown.reset);
  }
  if (throttled) {
    const hit = [minute, day].filter((u) => u.exhausted);
    state.limitedUntil = Math.max(now, ...hit.map((u) => u.reset));
    const worst = hit.reduce((a, b) => (b.reset > a.reset ? b : a), hit[0] ?? shown);
    return {
      status: 429,
      headers,
      body: `API calls quota exceeded! maximum admitted ${worst.limit} per ${worst.period}.`,
      sentWhileLimited,
    };
  }
  return { status: 200, headers, body: '[]', sentWhileLimited };
}
