/**
 * What every simulated provider shares: the request context and the outcome it returns.
 * Internal to `rx-ratelimit/testing`.
 */
import type { JsonLayout } from '../types.js';

/** One request, already parsed and timed on the server clock. */
export interface SimContext {
  /** The server clock (client clock + `clockOffsetMs`), epoch ms. */
  readonly serverNow: number;
  /** `timeScale`: documented durations are divided by it. */
  readonly scale: number;
  /** Upper-case method. */
  readonly method: string;
  /** Path under the provider's prefix, without the query, starting with `/`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly layout: JsonLayout;
  /** Request headers, lower-case names (Shopify's simulated query costs). */
  readonly headers?: ReadonlyMap<string, string>;
}

/** A provider's answer (the engine adds `Date`). */
export interface SimOutcome {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The request arrived while the credential was already limited or blocked. */
  readonly sentWhileLimited: boolean;
  /**
   * Is this a rate-limit answer? By default a 429 is and a 403 is a block; GitHub answers both
   * with 403 and also sends 403s that are neither (`limited: false`: not counted as a block);
   * Shopify's GraphQL answers a throttled query with a 200 (`limited: true`).
   */
  readonly limited?: boolean;
}

/** A fixed window aligned to multiples of `windowMs` since the epoch (of the server clock). */
export interface AlignedWindow {
  /** Index of the window (`floor(now / windowMs)`), or NaN before the first request. */
  id: number;
  count: number;
  /** The limited state lasts until here (epoch ms, server clock); 0 when never limited. */
  limitedUntil: number;
}

export function alignedWindow(): AlignedWindow {
  return { id: Number.NaN, count: 0, limitedUntil: 0 };
}

/** Rolls `w` over to the window containing `now`; returns the window's end (epoch ms). */
export function rollAligned(w: AlignedWindow, now: number, windowMs: number): number {
  const id = Math.floor(now / windowMs);
  if (w.id !== id) {
    w.id = id;
    w.count = 0;
  }
  return (id + 1) * windowMs;
}

/** Numeric and UUID path segments become `:id`; trailing slashes go. */
export function normalizePath(path: string): string {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const segments = path
    .replace(/\?.*$/s, '')
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => (/^\d+$/.test(s) || uuid.test(s) ? ':id' : s));
  return `/${segments.join('/')}`;
}

/** `METHOD /path` with the path normalised (`GET /projects/:id`). Accepts a key or a method and path. */
export function endpointKey(methodOrKey: string, path?: string): string {
  if (path === undefined) {
    const space = methodOrKey.trim().indexOf(' ');
    if (space < 0) return `GET ${normalizePath(methodOrKey.trim())}`;
    return endpointKey(
      methodOrKey.trim().slice(0, space),
      methodOrKey
        .trim()
        .slice(space + 1)
        .trim(),
    );
  }
  return `${methodOrKey.toUpperCase()} ${normalizePath(path)}`;
}

export const JSON_TYPE = 'application/json; charset=utf-8';
export const TEXT_TYPE = 'text/plain; charset=utf-8';
