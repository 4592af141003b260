/**
 * Pipedrive, from its docs: per token, a 2-second window whose limit depends on the plan and the
 * kind of auth; every response carries `x-ratelimit-limit`, `x-ratelimit-remaining` and
 * `x-ratelimit-reset` (seconds LEFT in the window); POST/PUT responses of api_token requests also
 * carry `x-daily-requests-left` (10,000 a UTC day); a 429 has the one-line JSON body of the docs;
 * api_token traffic that keeps hammering after 429s gets Cloudflare's 403 HTML page.
 */
import { secondsUntil } from '../format.js';
import type { PipedrivePlan } from '../providerLimits.js';
import type { PipedriveAuth } from '../types.js';
import { JSON_TYPE, type SimContext, type SimOutcome } from './shared.js';

export const PIPEDRIVE_WINDOW_MS = 2_000;
export const DAY_MS = 86_400_000;

export const PIPEDRIVE_429_BODY = '{"success":false,"error":"request over limit","errorCode":429}';

/** The sentence the docs quote from Cloudflare's page. */
export const CLOUDFLARE_SENTENCE = 'This error is produced by Cloudflare. See troubleshooting guide here.';

/** Cloudflare's "access denied" page, as Pipedrive's blocked callers see it. */
export const PIPEDRIVE_403_BODY = `<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="UTF-8">
<title>Access denied | api.pipedrive.com used Cloudflare to restrict access</title>
</head>
<body>
<div id="cf-wrapper">
<div id="cf-error-details">
<h1>Access denied</h1>
<h2>Error 1020</h2>
<p>You do not have access to api.pipedrive.com. The site owner may have set restrictions that prevent you from accessing the site.</p>
<p>${CLOUDFLARE_SENTENCE}</p>
</div>
</div>
</body>
</html>
`;

/** Requests per 2 seconds, by plan, cheapest first. */
export const PIPEDRIVE_PLAN_LIMITS: Readonly<Record<PipedriveAuth, Readonly<Record<PipedrivePlan, number>>>> = {
  api_token: { essential: 20, advanced: 40, professional: 80, enterprise: 120 },
  oauth: { essential: 80, advanced: 160, professional: 320, enterprise: 480 },
};

export interface PipedriveConfig {
  readonly plan: PipedrivePlan;
  readonly limit: number | undefined;
  readonly dailyLimit: number;
}

export const PIPEDRIVE_DEFAULTS: PipedriveConfig = { plan: 'essential', limit: undefined, dailyLimit: 10_000 };

export interface PipedriveAbuse {
  readonly threshold: number;
  /** Real ms. */
  readonly blockMs: number;
}

/** The answer while blocked (no Pipedrive headers: Cloudflare answers before Pipedrive sees the request). */
function blockedOutcome(): SimOutcome {
  return {
    status: 403,
    headers: { 'Content-Type': 'text/html; charset=UTF-8', Server: 'cloudflare' },
    body: PIPEDRIVE_403_BODY,
    sentWhileLimited: true,
  };
}

export interface PipedriveState {
  /** Start of the 2-second window (it starts at its first request); NaN before any. */
  windowStart: number;
  count: number;
  limitedUntil: number;
  /** Requests sent while limited in this window. */
  hammered: number;
  blockedUntil: number;
  dayId: number;
  dayUsed: number;
  dayLimitedUntil: number;
}

export function pipedriveState(): PipedriveState {
  return {
    windowStart: Number.NaN,
    count: 0,
    limitedUntil: 0,
    hammered: 0,
    blockedUntil: 0,
    dayId: Number.NaN,
    dayUsed: 0,
    dayLimitedUntil: 0,
  };
}

export function pipedriveHandle(
  state: PipedriveState,
  ctx: SimContext,
  cfg: PipedriveConfig,
  auth: PipedriveAuth,
  abuse: PipedriveAbuse | undefined,
): SimOutcome {
  const now = ctx.serverNow;
  if (now < state.blockedUntil) {
    return blockedOutcome();
  }

  const windowMs = PIPEDRIVE_WINDOW_MS / ctx.scale;
  if (!(now >= state.windowStart && now < state.windowStart + windowMs)) {
    state.windowStart = now;
    state.count = 0;
    state.hammered = 0;
  }
  const windowEnd = state.windowStart + windowMs;

  const dayMs = DAY_MS / ctx.scale;
  const dayId = Math.floor(now / dayMs);
  if (state.dayId !== dayId) {
    state.dayId = dayId;
    state.dayUsed = 0;
  }
  const dayEnd = (dayId + 1) * dayMs;

  const write = ctx.method === 'POST' || ctx.method === 'PUT';
  // "Applicable only to api_token requests."
  const daily = write && auth === 'api_token';
  const sentWhileLimited = now < state.limitedUntil || (daily && now < state.dayLimitedUntil);

  // "Only the high volume traffic coming from api_token integrations will be blocked."
  if (sentWhileLimited && abuse !== undefined && auth === 'api_token') {
    state.hammered += 1;
    if (state.hammered > abuse.threshold) {
      state.blockedUntil = now + abuse.blockMs;
      return blockedOutcome();
    }
  }

  state.count += 1;
  const limit = cfg.limit ?? PIPEDRIVE_PLAN_LIMITS[auth][cfg.plan];
  const headers: Record<string, string> = {
    'Content-Type': JSON_TYPE,
    'x-ratelimit-limit': String(limit),
    'x-ratelimit-remaining': String(Math.max(0, limit - state.count)),
    'x-ratelimit-reset': String(secondsUntil(now, windowEnd)),
  };
  const dailyLeft = (): string => String(Math.max(0, cfg.dailyLimit - state.dayUsed));

  if (state.count > limit) {
    state.limitedUntil = windowEnd;
    if (daily) headers['x-daily-requests-left'] = dailyLeft();
    return { status: 429, headers, body: PIPEDRIVE_429_BODY, sentWhileLimited };
  }
  if (daily) {
    if (state.dayUsed >= cfg.dailyLimit) {
      state.dayLimitedUntil = dayEnd;
      headers['x-daily-requests-left'] = '0';
      return { status: 429, headers, body: PIPEDRIVE_429_BODY, sentWhileLimited };
    }
    state.dayUsed += 1;
    headers['x-daily-requests-left'] = dailyLeft();
  }
  return { status: 200, headers, body: '{"success":true,"data":[]}', sentWhileLimited };
}
