/**
 * Planning Center, from its docs: 100 requests per 20 seconds per user (75 for requests whose
 * `offset` is above 30,000); every response carries `X-PCO-API-Request-Rate-Limit`,
 * `-Period` and `-Count`; the count includes rejected requests, so it can exceed the limit; a 429
 * carries `Retry-After` and a JSON:API error body.
 */
import { decimalSeconds, jsonBody, secondsUntil } from '../format.js';
import type { SimContext, SimOutcome } from './shared.js';

export const PCO_PERIOD_MS = 20_000;
/** Offsets above this use the stricter limit. */
export const PCO_HIGH_OFFSET = 30_000;

export interface PlanningCenterConfig {
  readonly limit: number;
  readonly highOffsetLimit: number;
}

export const PLANNING_CENTER_DEFAULTS: PlanningCenterConfig = { limit: 100, highOffsetLimit: 75 };

/** A period that starts at its first request. */
interface Period {
  start: number;
  count: number;
  limitedUntil: number;
}

export interface PlanningCenterState {
  readonly normal: Period;
  readonly highOffset: Period;
}

export function planningCenterState(): PlanningCenterState {
  return {
    normal: { start: Number.NaN, count: 0, limitedUntil: 0 },
    highOffset: { start: Number.NaN, count: 0, limitedUntil: 0 },
  };
}

/** The `X-PCO-API-Request-Rate-Period` value: `20 seconds` (scaled: `2 seconds`, `0.02 seconds`). */
export function pcoPeriodText(scale: number): string {
  return `${decimalSeconds(PCO_PERIOD_MS / scale)} seconds`;
}

function isHighOffset(query: URLSearchParams): boolean {
  const raw = query.get('offset');
  if (raw === null || raw.trim() === '') return false;
  const offset = Number(raw);
  return Number.isFinite(offset) && offset > PCO_HIGH_OFFSET;
}

export function planningCenterHandle(
  state: PlanningCenterState,
  ctx: SimContext,
  cfg: PlanningCenterConfig,
): SimOutcome {
  const now = ctx.serverNow;
  const periodMs = PCO_PERIOD_MS / ctx.scale;
  const high = isHighOffset(ctx.query);
  const period = high ? state.highOffset : state.normal;
  const limit = high ? cfg.highOffsetLimit : cfg.limit;
  if (!(now >= period.start && now < period.start + periodMs)) {
    period.start = now;
    period.count = 0;
  }
  const sentWhileLimited = now < period.limitedUntil;
  period.count += 1; // rejected requests count too
  const periodText = pcoPeriodText(ctx.scale);
  const headers: Record<string, string> = {
    'Content-Type': 'application/json', // as in the docs' sample
    'X-PCO-API-Request-Rate-Limit': String(limit),
    'X-PCO-API-Request-Rate-Period': periodText,
    'X-PCO-API-Request-Rate-Count': String(period.count),
  };
  if (period.count > limit) {
    const end = period.start + periodMs;
    period.limitedUntil = end;
    headers['Retry-After'] = String(secondsUntil(now, end));
    const body = jsonBody(
      {
        errors: [
          { code: '429', detail: `Rate limit exceeded: ${period.count} of ${limit} requests per ${periodText}` },
        ],
      },
      ctx.layout,
    );
    return { status: 429, headers, body, sentWhileLimited };
  }
  return { status: 200, headers, body: '{"data":[]}', sentWhileLimited };
}
