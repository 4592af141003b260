/**
 * Jira Cloud, from "Rate limiting" (developer.atlassian.com/cloud/jira/platform/rate-limiting):
 * per credential, an hourly points quota resetting at the top of each UTC hour (65,000 points;
 * a GET costs 1 + 1 per object, taken here as 2, a write 1; `RateLimit-Policy:
 * "global-app-quota";q=…;w=3600` and `RateLimit: "global-app-quota";t=…`, with `r=…` and
 * `X-RateLimit-NearLimit: true` once less than 20 % remains); a token bucket per endpoint and
 * method refilled at its steady rate (GET and POST 100 a second, PUT, PATCH and DELETE 50;
 * `X-RateLimit-Limit`/`-Remaining` and, as in the doc's example, `Beta-RateLimit-Policy:
 * "jira-burst-based";q=…;w=1`); and per issue, 20 writes per 2 s and 100 per 30 s. Past any: 429
 * with `Retry-After`, `X-RateLimit-Reset` (ISO 8601) and `RateLimit-Reason`. Rejected requests
 * are not counted (the doc does not say).
 */
import { jsonBody, secondsUntil } from '../format.js';
import { JSON_TYPE, normalizePath, type SimContext, type SimOutcome } from './shared.js';

export const ATLASSIAN_HOUR_MS = 3_600_000;

export interface AtlassianConfig {
  /** Points per hour, or `false` (API-token traffic: burst limits only). */
  readonly quota: number | false;
  readonly readPoints: number;
  readonly writePoints: number;
  readonly burstPerSecond: Readonly<Record<'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', number>>;
  readonly issueWritesPer2s: number;
  readonly issueWritesPer30s: number;
}

export const ATLASSIAN_DEFAULTS: AtlassianConfig = {
  quota: 65_000,
  readPoints: 2,
  writePoints: 1,
  burstPerSecond: { GET: 100, POST: 100, PUT: 50, PATCH: 50, DELETE: 50 },
  issueWritesPer2s: 20,
  issueWritesPer30s: 100,
};

interface TokenBucket {
  tokens: number;
  at: number;
}

export interface AtlassianState {
  hour: number;
  points: number;
  readonly burst: Map<string, TokenBucket>;
  /** Send times of counted writes per issue within the last 30 s, oldest first. */
  readonly issues: Map<string, number[]>;
  limitedUntil: number;
}

export function atlassianState(): AtlassianState {
  return { hour: Number.NaN, points: 0, burst: new Map(), issues: new Map(), limitedUntil: 0 };
}

const ISSUE_KEY = /^[A-Z][A-Z0-9_]*-\d+$/;
const ISSUE_PATH = /^\/rest\/api\/[23]\/issue\/([^/]+)/;
const WRITES = ['POST', 'PUT', 'PATCH', 'DELETE'];

/** Seconds as a structured-field decimal: an integer, or at most 3 decimals. */
function sfSeconds(ms: number): string {
  return String(Math.max(0.001, Math.ceil(ms) / 1000));
}

export function atlassianHandle(state: AtlassianState, ctx: SimContext, cfg: AtlassianConfig): SimOutcome {
  const now = ctx.serverNow;
  const hourMs = ATLASSIAN_HOUR_MS / ctx.scale;
  const secondMs = 1000 / ctx.scale;
  const hour = Math.floor(now / hourMs);
  if (hour !== state.hour) {
    state.hour = hour;
    state.points = 0;
  }
  const hourEnd = (hour + 1) * hourMs;
  const sentWhileLimited = now < state.limitedUntil;
  const method = ctx.method in cfg.burstPerSecond ? (ctx.method as keyof AtlassianConfig['burstPerSecond']) : 'GET';
  const rate = cfg.burstPerSecond[method];
  const path = normalizePath(ctx.path)
    .split('/')
    .map((s) => (ISSUE_KEY.test(s) ? ':id' : s))
    .join('/');
  const endpoint = `${ctx.method} ${path}`;
  let bucket = state.burst.get(endpoint);
  if (bucket === undefined) {
    bucket = { tokens: rate, at: now };
    state.burst.set(endpoint, bucket);
  }
  bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) / secondMs) * rate);
  bucket.at = now;
  const isWrite = WRITES.includes(ctx.method);
  const cost = isWrite ? cfg.writePoints : cfg.readPoints;

  const headers = (): Record<string, string> => {
    const h: Record<string, string> = {
      'Content-Type': JSON_TYPE,
      'X-RateLimit-Limit': String(rate),
      'X-RateLimit-Remaining': String(Math.max(0, Math.floor(bucket.tokens))),
      'Beta-RateLimit-Policy': `"jira-burst-based";q=${rate};w=${sfSeconds(secondMs)}`,
      'Beta-RateLimit': `"jira-burst-based";r=${Math.max(0, Math.floor(bucket.tokens))};t=${sfSeconds(secondMs)}`,
    };
    if (cfg.quota !== false) {
      const left = Math.max(0, cfg.quota - state.points);
      const near = left < cfg.quota * 0.2;
      h['RateLimit-Policy'] = `"global-app-quota";q=${cfg.quota};w=${sfSeconds(hourMs)}`;
      h['RateLimit'] = `"global-app-quota";${near ? `r=${left};` : ''}t=${sfSeconds(hourEnd - now)}`;
      if (near) h['X-RateLimit-NearLimit'] = 'true';
    }
    return h;
  };
  const limited = (reason: string, until: number, limit: number): SimOutcome => {
    state.limitedUntil = Math.max(state.limitedUntil, until);
    const h = headers();
    h['Retry-After'] = String(secondsUntil(now, until));
    h['X-RateLimit-Reset'] = new Date(Math.ceil(until / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    h['X-RateLimit-Limit'] = String(limit);
    h['X-RateLimit-Remaining'] = '0';
    h['RateLimit-Reason'] = reason;
    const body = jsonBody({ errorMessages: ['Rate limit exceeded.'] }, ctx.layout);
    return { status: 429, headers: h, body, sentWhileLimited };
  };

  if (cfg.quota !== false && state.points + cost > cfg.quota)
    return limited('jira-quota-global-based', hourEnd, cfg.quota);
  if (bucket.tokens < 1) return limited('jira-burst-based', now + ((1 - bucket.tokens) / rate) * secondMs, rate);
  const issue = isWrite ? ISSUE_PATH.exec(ctx.path)?.[1] : undefined;
  let writes: number[] | undefined;
  if (issue !== undefined) {
    writes = state.issues.get(issue) ?? [];
    const long = 30 * secondMs;
    while (writes.length > 0 && (writes[0] ?? 0) <= now - long) writes.shift();
    const short = writes.filter((t) => t > now - 2 * secondMs);
    if (short.length >= cfg.issueWritesPer2s)
      return limited('jira-per-issue-on-write', (short[0] ?? now) + 2 * secondMs, cfg.issueWritesPer2s);
    if (writes.length >= cfg.issueWritesPer30s)
      return limited('jira-per-issue-on-write', (writes[0] ?? now) + long, cfg.issueWritesPer30s);
    writes.push(now);
    state.issues.set(issue, writes);
  }
  bucket.tokens -= 1;
  state.points += cost;
  return { status: ctx.method === 'POST' ? 201 : 200, headers: headers(), body: '{}', sentWhileLimited };
}
