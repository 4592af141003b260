/**
 * Formatting helpers of the simulator: the time formats the providers' docs use and the two
 * JSON layouts. Internal (not exported from `rx-ratelimit/testing`).
 */
import type { JsonLayout } from './types.js';

/** `Date` header value: an IMF-fixdate (RFC 9110 §5.6.7), e.g. `Thu, 01 Jan 2026 00:00:00 GMT`. */
export function imfFixdate(epochMs: number): string {
  return new Date(Math.floor(epochMs)).toUTCString();
}

/** Whole unix seconds at or after `epochMs` (a reset reported in seconds must never be early). */
export function unixSecondsCeil(epochMs: number): number {
  return Math.ceil(epochMs / 1000);
}

/** Whole seconds from `fromMs` until `untilMs`, rounded up, at least 1 (Retry-After, seconds left). */
export function secondsUntil(fromMs: number, untilMs: number): number {
  return Math.max(1, Math.ceil((untilMs - fromMs) / 1000));
}

/** `YYYY-MM-DD HH:MM:SS` (UTC) of a whole unix second. */
function sqlDateTime(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/** Fieldwire per-endpoint form: `2026-01-01 00:00:00Z`. */
export function fieldwireTime(unixSeconds: number): string {
  return `${sqlDateTime(unixSeconds)}Z`;
}

/** Fieldwire legacy form: `2026-01-01 00:00:00 UTC`. */
export function fieldwireLegacyTime(unixSeconds: number): string {
  return `${sqlDateTime(unixSeconds)} UTC`;
}

/**
 * .NET round-trip ("o") form in UTC, 7 fractional digits (100 ns ticks), rounded up to the next
 * tick: `2026-01-01T00:00:00.0000000Z`.
 */
export function dotnetRoundTrip(epochMs: number): string {
  let whole = Math.floor(epochMs);
  let ticks = Math.ceil((epochMs - whole) * 10_000 - 1e-6);
  if (ticks < 0) ticks = 0;
  if (ticks >= 10_000) {
    whole += 1;
    ticks = 0;
  }
  const iso = new Date(whole).toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ
  return `${iso.slice(0, 23)}${String(ticks).padStart(4, '0')}Z`;
}

/** A duration in seconds with at most 3 decimals, rounded up, without trailing zeros (`20`, `0.02`). */
export function decimalSeconds(ms: number): string {
  const thousandths = Math.ceil(ms - 1e-9);
  return String(thousandths / 1000);
}

/**
 * A period in the short form TEOS uses (`1m`, `12h`, `1d`): the largest unit that divides the
 * duration exactly, else milliseconds (only reachable with a `timeScale`).
 */
export function shortPeriod(ms: number): string {
  const units: readonly (readonly [string, number])[] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ];
  for (const [unit, size] of units) {
    const n = ms / size;
    if (n >= 1 && Number.isInteger(n)) return `${n}${unit}`;
  }
  return `${Math.max(1, Math.ceil(ms - 1e-9))}ms`;
}

/**
 * Serialises a JSON body. `'compact'` is `JSON.stringify`; `'doc'` is the layout of the docs'
 * samples: `JSON.stringify(value, null, 2)` with every line's indentation removed.
 */
export function jsonBody(value: unknown, layout: JsonLayout): string {
  if (layout === 'compact') return JSON.stringify(value);
  return JSON.stringify(value, null, 2)
    .split('\n')
    .map((line) => line.trimStart())
    .join('\n');
}
