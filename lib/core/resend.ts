/**
 * Sending a request again after a rate limit: which answers call for it, and at what cost. One
 * rule for every way in (the operators' `policies.ts`, the axios and fetch adapters).
 */
import type { ResponseReading } from './provider.js';
import { isCost, type RequestInfo } from './request.js';

/**
 * Is this answer one to send the request again after, by the rule every way in shares? It must
 * be a rate limit to retry: a status the caller lists (`listed`: 429 by default), or any answer
 * the provider read as `limited`: GitHub's rate-limit 403 (a permission 403 reads `ok`), Shopify's
 * GraphQL 200 whose body says `THROTTLED`. And the request must be safe to repeat (`safe`, see
 * `isRetrySafe`), or the provider says the server did not act on it
 * (`ResponseReading.notProcessed`) and the request does not say `retry: false`.
 */
export function isResendable(
  info: RequestInfo,
  safe: boolean,
  listed: boolean,
  reading: ResponseReading | undefined,
): boolean {
  if (!listed && reading?.outcome !== 'limited') return false;
  return safe || (info.retry === undefined && reading?.outcome === 'limited' && reading.notProcessed === true);
}

/** Most bucket names a provider's `retryCost` may name (a hostile body cannot grow a request's info). */
const MAX_RETRY_COSTS = 16;

/**
 * The request `info` as it is sent again after `reading` (a rate limit): with the cost the
 * provider told for it (`ResponseReading.retryCost`), per bucket, over the request's own. The
 * buckets of the request (`buckets`) are needed only when its own cost is one number for all
 * of them. `info` itself when the reading tells no cost.
 */
export function withRetryCost(
  info: RequestInfo,
  reading: ResponseReading | undefined,
  buckets: () => readonly { readonly name: string }[],
): RequestInfo {
  const told = reading?.outcome === 'limited' ? reading.retryCost : undefined;
  if (typeof told !== 'object' || told === null) return info;
  const costs: Record<string, number> = {};
  let n = 0;
  for (const [name, value] of Object.entries(told)) {
    if (n >= MAX_RETRY_COSTS) break;
    if (isCost(value)) {
      costs[name] = value;
      n++;
    }
  }
  if (n === 0) return info;
  const own = info.cost;
  if (typeof own === 'number') {
    let names: readonly { readonly name: string }[] = [];
    try {
      names = buckets();
    } catch {
      // A profile that throws here fails the request when it is queued, as any request.
    }
    for (const b of names) if (!Object.prototype.hasOwnProperty.call(costs, b.name)) costs[b.name] = own;
    return { ...info, cost: costs };
  }
  return { ...info, cost: typeof own === 'object' && own !== null ? { ...own, ...costs } : costs };
}

/**
 * Ends the streamed body of an answer given up for a retry (the caller never sees it): a Node
 * stream (axios's `responseType: 'stream'`) is destroyed, a web stream (a fetch `Response`'s,
 * axios's fetch adapter's) cancelled, so that its connection is freed; unread, it held the
 * socket, and with one socket to the API the retry waited for it forever. Anything else is left.
 */
export function discardBody(raw: unknown): void {
  try {
    const answer = raw instanceof Error ? (raw as { response?: unknown }).response : raw;
    if (typeof answer !== 'object' || answer === null) return;
    const { data, body } = answer as { data?: unknown; body?: unknown };
    for (const stream of [data, body]) {
      if (typeof stream !== 'object' || stream === null) continue;
      const s = stream as { destroy?: unknown; cancel?: unknown; locked?: unknown };
      if (typeof s.destroy === 'function') (s.destroy as () => void).call(s);
      else if (typeof s.cancel === 'function' && s.locked === false) {
        (s.cancel as () => Promise<void>).call(s).catch(() => undefined);
      }
    }
  } catch {
    // A getter or a body that throws: it ends with its connection.
  }
}
