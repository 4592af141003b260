/**
 * HubSpot, from its "API usage guidelines and limits" page: per account, a burst limit of
 * requests per rolling 10 seconds (`X-HubSpot-RateLimit-Max`, `-Remaining`,
 * `-Interval-Milliseconds`), and for private apps a daily limit (`X-HubSpot-RateLimit-Daily`,
 * `-Daily-Remaining`) that resets at midnight in the account's time zone. Past either: 429 with
 * a JSON body whose `policyName` says which (`TEN_SECONDLY_ROLLING` or `DAILY`). The CRM search
 * endpoints (`POST /crm/…/search`) allow 5 requests a second and send none of the headers.
 * Rejected requests are not counted (the docs do not say); no `Retry-After` is sent (the docs
 * do not promise one).
 */
import { jsonBody } from '../format.js';
import { JSON_TYPE, type SimContext, type SimOutcome } from './shared.js';

export const HUBSPOT_INTERVAL_MS = 10_000;
export const HUBSPOT_DAY_MS = 86_400_000;

export interface HubspotConfig {
  readonly perInterval: number;
  /** `false`: a public OAuth app, no daily limit and no daily headers. */
  readonly perDay: number | false;
  readonly searchPerSecond: number;
  readonly timeZone: string;
}

export const HUBSPOT_DEFAULTS: HubspotConfig = {
  perInterval: 100,
  perDay: 250_000,
  searchPerSecond: 5,
  timeZone: 'UTC',
};

export interface HubspotState {
  /** Send times of counted requests in the last interval, oldest first. */
  readonly interval: number[];
  /** Send times of counted searches in the last second. */
  readonly search: number[];
  /** The day (a key of the zone's calendar date, or a scaled-day index) and its count. */
  day: string;
  dayCount: number;
  /** The limited state lasts until here (server clock). */
  limitedUntil: number;
  /** The calendar of the configured zone, made on first use. */
  calendar?: { readonly timeZone: string; readonly format: Intl.DateTimeFormat };
}

export function hubspotState(): HubspotState {
  return { interval: [], search: [], day: '', dayCount: 0, limitedUntil: 0 };
}

/**
 * The calendar date in `timeZone` at `t` (`2026-1-1`). With a `timeScale` the day is a scaled
 * window on the server clock instead: a compressed day has no calendar.
 */
function dayOf(state: HubspotState, t: number, timeZone: string, scale: number): string {
  if (scale !== 1) return `w${Math.floor(t / (HUBSPOT_DAY_MS / scale))}`;
  if (state.calendar?.timeZone !== timeZone) {
    const format = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric' });
    state.calendar = { timeZone, format };
  }
  return state.calendar.format.format(t);
}

function prune(log: number[], since: number): void {
  while (log.length > 0 && (log[0] ?? 0) <= since) log.shift();
}

const isSearch = (ctx: SimContext) =>
  ctx.method === 'POST' && ctx.path.startsWith('/crm/') && ctx.path.endsWith('/search');

export function hubspotHandle(state: HubspotState, ctx: SimContext, cfg: HubspotConfig): SimOutcome {
  const now = ctx.serverNow;
  const intervalMs = HUBSPOT_INTERVAL_MS / ctx.scale;
  const secondMs = 1000 / ctx.scale;
  prune(state.interval, now - intervalMs);
  prune(state.search, now - secondMs);
  const day = dayOf(state, now, cfg.timeZone, ctx.scale);
  if (day !== state.day) {
    state.day = day;
    state.dayCount = 0;
  }
  const sentWhileLimited = now < state.limitedUntil;
  const search = isSearch(ctx);
  const headers = (): Record<string, string> => {
    if (search) return { 'Content-Type': JSON_TYPE };
    return {
      'Content-Type': JSON_TYPE,
      ...(cfg.perDay === false
        ? {}
        : {
            'X-HubSpot-RateLimit-Daily': String(cfg.perDay),
            'X-HubSpot-RateLimit-Daily-Remaining': String(Math.max(0, cfg.perDay - state.dayCount)),
          }),
      'X-HubSpot-RateLimit-Interval-Milliseconds': String(Math.max(1, Math.round(intervalMs))),
      'X-HubSpot-RateLimit-Max': String(cfg.perInterval),
      'X-HubSpot-RateLimit-Remaining': String(Math.max(0, cfg.perInterval - state.interval.length)),
    };
  };
  const limited = (policyName: string | undefined, message: string, until: number): SimOutcome => {
    state.limitedUntil = Math.max(state.limitedUntil, until);
    const body = jsonBody(
      {
        status: 'error',
        message,
        errorType: 'RATE_LIMIT',
        correlationId: 'c033cdaa-2c40-4a64-ae48-b4cec88dad24',
        ...(policyName === undefined ? {} : { policyName }),
      },
      ctx.layout,
    );
    return { status: 429, headers: headers(), body, sentWhileLimited };
  };
  if (cfg.perDay !== false && state.dayCount >= cfg.perDay) {
    // A compressed day ends at its scaled boundary; a calendar day's end is not computed here.
    const dayMs = HUBSPOT_DAY_MS / ctx.scale;
    const end = ctx.scale === 1 ? now + 1 : (Math.floor(now / dayMs) + 1) * dayMs;
    return limited('DAILY', 'You have reached your daily limit.', end);
  }
  if (search) {
    if (state.search.length >= cfg.searchPerSecond) {
      return limited(undefined, 'You have reached your secondly limit.', (state.search[0] ?? now) + secondMs);
    }
    state.search.push(now);
  } else {
    if (state.interval.length >= cfg.perInterval) {
      return limited(
        'TEN_SECONDLY_ROLLING',
        'You have reached your ten_secondly_rolling limit.',
        (state.interval[0] ?? now) + intervalMs,
      );
    }
    state.interval.push(now);
  }
  state.dayCount += 1;
  return { status: ctx.method === 'POST' && !search ? 201 : 200, headers: headers(), body: '{}', sentWhileLimited };
}
