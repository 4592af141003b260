/**
 * Shopify's Admin APIs, from its docs ("REST Admin API rate limits", "GraphQL Admin API rate
 * limits"): per app and store, a leaky bucket that empties continuously at the plan's rate.
 * REST (any path but `…/graphql.json`): each request puts 1 in a bucket of 40 that leaks 2 a
 * second; every answer carries `X-Shopify-Shop-Api-Call-Limit: used/limit` (used rounded up: the
 * docs do not say how); a full bucket answers 429 with `Retry-After` (seconds until one leaks,
 * to a tenth) and `{"errors":"Exceeded 2 calls per second for api client. …"}`. GraphQL
 * (`…/graphql.json`): a query needs its requested cost available (1,000 points leaking 50 a
 * second), and takes its actual cost; every answer's body carries `extensions.cost`
 * (`requestedQueryCost`, `actualQueryCost`, `throttleStatus`); one that does not fit answers 200
 * with a `THROTTLED` error and takes nothing. The request does not carry a query the simulator
 * could cost: `x-simulated-query-cost` gives the requested cost (default 10, at most 1,000: more
 * is the documented `MAX_COST_EXCEEDED` error) and `x-simulated-actual-cost` the actual one
 * (default: the requested). With `timeScale`, the buckets leak that many times faster, and the
 * `restoreRate` reported is the scaled one.
 */
import { jsonBody } from '../format.js';
import { JSON_TYPE, type SimContext, type SimOutcome } from './shared.js';

export interface ShopifyConfig {
  readonly restBucket: number;
  readonly restPerSecond: number;
  readonly graphqlBucket: number;
  readonly graphqlPerSecond: number;
}

export const SHOPIFY_DEFAULTS: ShopifyConfig = {
  restBucket: 40,
  restPerSecond: 2,
  graphqlBucket: 1000,
  graphqlPerSecond: 50,
};

/** What is in a bucket (spent, not yet leaked) at `at`. */
interface Level {
  used: number;
  at: number;
}

export interface ShopifyState {
  readonly rest: Level;
  readonly graphql: Level;
  /** A 429 (REST) or THROTTLED (GraphQL) wait lasts until then, per API. */
  restLimitedUntil: number;
  graphqlLimitedUntil: number;
}

export function shopifyState(): ShopifyState {
  return { rest: { used: 0, at: 0 }, graphql: { used: 0, at: 0 }, restLimitedUntil: 0, graphqlLimitedUntil: 0 };
}

/** Floating-point dust: a unit short by less than this is there. */
const EPSILON = 1e-9;
const MAX_QUERY_COST = 1000;
const DEFAULT_QUERY_COST = 10;
const DOCS = 'https://shopify.dev/docs/api/usage/limits#rate-limits';

function leak(level: Level, now: number, perMs: number): number {
  level.used = Math.max(0, level.used - Math.max(0, now - level.at) * perMs);
  level.at = Math.max(level.at, now);
  return level.used;
}

/** A whole cost from a header (`1`…`MAX`), else `undefined`. */
function costHeader(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d{1,7}\s*$/.test(value)) return undefined;
  return Number(value);
}

export function shopifyHandle(state: ShopifyState, ctx: SimContext, cfg: ShopifyConfig): SimOutcome {
  return ctx.path.endsWith('/graphql.json') ? graphql(state, ctx, cfg) : rest(state, ctx, cfg);
}

function rest(state: ShopifyState, ctx: SimContext, cfg: ShopifyConfig): SimOutcome {
  const now = ctx.serverNow;
  const perMs = (cfg.restPerSecond * ctx.scale) / 1000;
  const used = leak(state.rest, now, perMs);
  const sentWhileLimited = now < state.restLimitedUntil;
  const header = (u: number) => ({
    'Content-Type': JSON_TYPE,
    'X-Shopify-Shop-Api-Call-Limit': `${Math.ceil(u - EPSILON)}/${cfg.restBucket}`,
  });
  if (used + 1 > cfg.restBucket + EPSILON) {
    const waitMs = perMs > 0 ? (used + 1 - cfg.restBucket) / perMs : 1000;
    state.restLimitedUntil = Math.max(state.restLimitedUntil, now + waitMs);
    const body = jsonBody(
      {
        errors: `Exceeded ${cfg.restPerSecond} calls per second for api client. Reduce request rates to resume uninterrupted service.`,
      },
      ctx.layout,
    );
    return {
      status: 429,
      headers: { ...header(used), 'Retry-After': (Math.ceil(waitMs / 100) / 10).toFixed(1) },
      body,
      sentWhileLimited,
    };
  }
  state.rest.used = used + 1;
  return { status: ctx.method === 'POST' ? 201 : 200, headers: header(state.rest.used), body: '{}', sentWhileLimited };
}

function graphql(state: ShopifyState, ctx: SimContext, cfg: ShopifyConfig): SimOutcome {
  const now = ctx.serverNow;
  const rate = cfg.graphqlPerSecond * ctx.scale;
  const used = leak(state.graphql, now, rate / 1000);
  const sentWhileLimited = now < state.graphqlLimitedUntil;
  const requested = costHeader(ctx.headers?.get('x-simulated-query-cost')) ?? DEFAULT_QUERY_COST;
  const actual = Math.min(requested, costHeader(ctx.headers?.get('x-simulated-actual-cost')) ?? requested);
  const headers = { 'Content-Type': JSON_TYPE };
  const status = (u: number) => ({
    maximumAvailable: cfg.graphqlBucket,
    currentlyAvailable: Math.max(0, Math.floor(cfg.graphqlBucket - u + EPSILON)),
    restoreRate: rate,
  });
  if (requested > MAX_QUERY_COST) {
    const body = {
      errors: [
        {
          message: `Query cost is ${requested}, which exceeds the single query max cost limit (${MAX_QUERY_COST}).`,
          extensions: { code: 'MAX_COST_EXCEEDED', cost: requested, maxCost: MAX_QUERY_COST, documentation: DOCS },
        },
      ],
      extensions: { cost: { requestedQueryCost: requested, actualQueryCost: null, throttleStatus: status(used) } },
    };
    return { status: 200, headers, body: jsonBody(body, ctx.layout), sentWhileLimited, limited: false };
  }
  if (used + requested > cfg.graphqlBucket + EPSILON) {
    const waitMs = rate > 0 ? ((used + requested - cfg.graphqlBucket) / rate) * 1000 : 1000;
    state.graphqlLimitedUntil = Math.max(state.graphqlLimitedUntil, now + waitMs);
    const body = {
      errors: [{ message: 'Throttled', extensions: { code: 'THROTTLED', documentation: DOCS } }],
      extensions: { cost: { requestedQueryCost: requested, actualQueryCost: null, throttleStatus: status(used) } },
    };
    return { status: 200, headers, body: jsonBody(body, ctx.layout), sentWhileLimited, limited: true };
  }
  // The requested cost is taken before the query runs and the difference given back after it.
  state.graphql.used = used + actual;
  const body = {
    data: {},
    extensions: {
      cost: { requestedQueryCost: requested, actualQueryCost: actual, throttleStatus: status(state.graphql.used) },
    },
  };
  return { status: 200, headers, body: jsonBody(body, ctx.layout), sentWhileLimited };
}
