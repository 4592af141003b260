/**
 * Procore, from its docs: 3,600 requests per 60-minute window per token; every response carries
 * `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining` and `X-Rate-Limit-Reset` (the unix timestamp
 * when the next window begins); past the limit, 429 with a plain-text sentence.
 */
import { unixSecondsCeil } from '../format.js';
import {
  alignedWindow,
  rollAligned,
  TEXT_TYPE,
  JSON_TYPE,
  type AlignedWindow,
  type SimContext,
  type SimOutcome,
} from './shared.js';

export const PROCORE_429_BODY =
  'You have surpassed the max number of requests for an hour. Please wait until your limit resets.';

export const PROCORE_HOUR_MS = 3_600_000;

export interface ProcoreConfig {
  readonly limit: number;
}

export const PROCORE_DEFAULTS: ProcoreConfig = { limit: 3600 };

export type ProcoreState = AlignedWindow;

export function procoreState(): ProcoreState {
  return alignedWindow();
}

export function procoreHandle(state: ProcoreState, ctx: SimContext, cfg: ProcoreConfig): SimOutcome {
  const now = ctx.serverNow;
  const end = rollAligned(state, now, PROCORE_HOUR_MS / ctx.scale);
  const sentWhileLimited = now < state.limitedUntil;
  const admitted = state.count < cfg.limit;
  if (admitted) state.count += 1;
  const headers: Record<string, string> = {
    'Content-Type': admitted ? JSON_TYPE : TEXT_TYPE,
    'X-Rate-Limit-Limit': String(cfg.limit),
    'X-Rate-Limit-Remaining': String(Math.max(0, cfg.limit - state.count)),
    'X-Rate-Limit-Reset': String(unixSecondsCeil(end)),
  };
  if (!admitted) {
    state.limitedUntil = end;
    return { status: 429, headers, body: PROCORE_429_BODY, sentWhileLimited };
  }
  return { status: 200, headers, body: '[]', sentWhileLimited };
}
