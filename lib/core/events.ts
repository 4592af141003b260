import type { Observable, Subscription } from 'rxjs';
import type { RetrySource } from './provider.js';

/** A request as events describe it: no headers, no query string (it may hold a token). */
export interface RequestSummary {
  /** Sequence number within the limiter. */
  readonly id: number;
  readonly method: string;
  /** Path only: query string, fragment and user-info removed. */
  readonly path: string | null;
  readonly priority: number;
}

/** What every {@link LimiterEvent} carries. */
export interface LimiterEventBase {
  /** Epoch ms on the limiter's clock. */
  readonly at: number;
  readonly provider: string;
  /** Key label (a hash), never the key. */
  readonly key: string;
}

/** What happened in a limiter, and why. Plain data; carries no credential. */
export type LimiterEvent =
  | (LimiterEventBase & { readonly type: 'queued'; readonly request: RequestSummary; readonly queued: number })
  | (LimiterEventBase & {
      readonly type: 'admitted';
      readonly request: RequestSummary;
      readonly waitedMs: number;
      readonly buckets: readonly string[];
    })
  | (LimiterEventBase & { readonly type: 'cancelled'; readonly request: RequestSummary })
  | (LimiterEventBase & {
      /** A permit outlived `permitTimeoutMs` without being released: its slot was taken back. */
      readonly type: 'permit-expired';
      readonly request: RequestSummary;
      readonly heldMs: number;
    })
  | (LimiterEventBase & {
      readonly type: 'shared';
      readonly request: RequestSummary;
      readonly from: 'in-flight' | 'cache';
    })
  | (LimiterEventBase & { readonly type: 'response'; readonly request: RequestSummary | null; readonly status: number })
  | (LimiterEventBase & {
      readonly type: 'rate-limited';
      readonly request: RequestSummary | null;
      readonly status: number;
      readonly retryAt: number;
      readonly source: RetrySource;
      readonly bucket: string | null;
    })
  | (LimiterEventBase & {
      readonly type: 'paused';
      readonly until: number;
      readonly reason: RetrySource | 'manual' | 'bucket-empty';
      readonly bucket: string | null;
    })
  | (LimiterEventBase & { readonly type: 'resumed' })
  | (LimiterEventBase & {
      readonly type: 'retry-scheduled';
      readonly request: RequestSummary | null;
      readonly attempt: number;
      readonly delayMs: number;
    })
  | (LimiterEventBase & {
      readonly type: 'quota-exhausted';
      readonly request: RequestSummary;
      readonly bucket: string;
      readonly resumeAt: number;
    })
  | (LimiterEventBase & { readonly type: 'queue-full'; readonly request: RequestSummary; readonly maxQueue: number })
  | (LimiterEventBase & { readonly type: 'blocked'; readonly status: number; readonly until: number | null })
  | (LimiterEventBase & { readonly type: 'unblocked' })
  | (LimiterEventBase & {
      /** A shared store (Redis) failed or timed out: the limiter now spends only its last known share, locally. */
      readonly type: 'store-unavailable';
      readonly store: string;
      readonly error: string;
    })
  | (LimiterEventBase & {
      /** The shared store answers again: admission is shared again. */
      readonly type: 'store-recovered';
      readonly store: string;
      readonly downMs: number;
    })
  | (LimiterEventBase & {
      readonly type: 'limit-changed';
      readonly bucket: string;
      readonly from: number | null;
      readonly to: number;
    });

/** The `type` of a {@link LimiterEvent}. */
export type LimiterEventType = LimiterEvent['type'];

/** Anything with console-like methods: console, winston, a pino child wrapped in a function. */
export interface EventLogger {
  /** Per-request events (`queued`, `admitted`, `response`, …). */
  debug?(message: string, event: LimiterEvent): void;
  /** Recoveries and changes (`resumed`, `limit-changed`, …); the fallback of a missing level. */
  info?(message: string, event: LimiterEvent): void;
  /** 429s, pauses and refusals. */
  warn?(message: string, event: LimiterEvent): void;
  /** Blocks and a shared store going down. */
  error?(message: string, event: LimiterEvent): void;
}

/** Settings of {@link logEvents}. */
export interface LogEventsConfig {
  /** Event types to log. @default every type except `queued`, `admitted` and `response` (per-request noise) */
  readonly types?: readonly LimiterEventType[];
}

const LEVEL: Record<LimiterEventType, 'debug' | 'info' | 'warn' | 'error'> = {
  queued: 'debug',
  admitted: 'debug',
  cancelled: 'debug',
  'permit-expired': 'warn',
  shared: 'debug',
  response: 'debug',
  'retry-scheduled': 'info',
  resumed: 'info',
  'limit-changed': 'info',
  unblocked: 'info',
  'rate-limited': 'warn',
  paused: 'warn',
  'queue-full': 'warn',
  'quota-exhausted': 'warn',
  blocked: 'error',
  'store-unavailable': 'error',
  'store-recovered': 'info',
};

const QUIET: ReadonlySet<LimiterEventType> = new Set(['queued', 'admitted', 'response', 'cancelled', 'shared']);

/**
 * Sends a limiter's events to any logger, one line each, at a level that fits the event.
 * Returns the subscription; unsubscribe to stop.
 *
 * ```ts
 * import { createLimiter, logEvents, providers } from 'rx-ratelimit';
 * const token = process.env['API_TOKEN'] ?? '';
 * const limiter = createLimiter({ provider: providers.generic(), key: token });
 * logEvents(limiter.events$, console);
 * ```
 */
export function logEvents(
  events$: Observable<LimiterEvent>,
  logger: EventLogger,
  config: LogEventsConfig = {},
): Subscription {
  const wanted = config.types ? new Set(config.types) : undefined;
  return events$.subscribe((event) => {
    if (wanted ? !wanted.has(event.type) : QUIET.has(event.type)) return;
    const level = LEVEL[event.type];
    const log = logger[level] ?? logger.info;
    log?.call(logger, describeEvent(event), event);
  });
}

/**
 * One human line for an event, e.g. `procore key_ab12…: 429 received; paused until …`.
 * Control characters (newlines included) and bidirectional overrides from the request path, a
 * server-named bucket or a store's error message are escaped (`\n` as `\x0a`), so a hostile URL
 * or header cannot forge a second log line or disguise this one.
 */
export function describeEvent(e: LimiterEvent): string {
  const line = lineOf(e);
  // A bucket a server named or a store's error message may be long: the line is cut before the
  // escaping (a call per control character) so its cost stays bounded.
  return escapeControls(line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);
}

/** Longest log line {@link describeEvent} makes, before escaping. */
const MAX_LINE = 4096;

/** Line terminators, C0/C1 controls and bidirectional overrides: what lets text forge or hide a log line. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** @internal `text` with {@link CONTROLS} written as `\xNN` / `\uNNNN` escapes. One linear pass. */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

function lineOf(e: LimiterEvent): string {
  const who = `[rx-ratelimit ${e.provider} ${e.key}]`;
  const req = 'request' in e && e.request ? ` ${e.request.method} ${e.request.path ?? ''}`.trimEnd() : '';
  switch (e.type) {
    case 'queued':
      return `${who}${req} queued (${e.queued} waiting)`;
    case 'admitted':
      return `${who}${req} sent after ${e.waitedMs} ms`;
    case 'cancelled':
      return `${who}${req} cancelled before it was sent`;
    case 'permit-expired':
      return `${who}${req} still unsettled after ${e.heldMs} ms; its slot was taken back`;
    case 'shared':
      return `${who}${req} not sent: served from ${e.from === 'cache' ? 'the cache' : 'an identical request in flight'}`;
    case 'response':
      return `${who}${req} answered ${e.status}`;
    case 'rate-limited':
      return `${who}${req} got ${e.status}; retry at ${isoOrNever(e.retryAt)} (from ${e.source}${e.bucket ? `, bucket ${e.bucket}` : ''})`;
    case 'paused':
      return `${who} paused until ${isoOrNever(e.until)} (${e.reason}${e.bucket ? `, bucket ${e.bucket}` : ''})`;
    case 'resumed':
      return `${who} resumed`;
    case 'retry-scheduled':
      return `${who}${req} retry #${e.attempt} in ${e.delayMs} ms`;
    case 'quota-exhausted':
      return `${who}${req} refused: bucket ${e.bucket} empty until ${isoOrNever(e.resumeAt)}`;
    case 'queue-full':
      return `${who}${req} refused: queue full (${e.maxQueue})`;
    case 'blocked':
      return `${who} BLOCKED by the provider (HTTP ${e.status}); nothing is sent until ${e.until === null ? 'unblock()' : isoOrNever(e.until)}`;
    case 'unblocked':
      return `${who} unblocked`;
    case 'limit-changed':
      return `${who} bucket ${e.bucket} limit ${e.from ?? 'unknown'} -> ${e.to}`;
    case 'store-unavailable':
      return `${who} ${e.store} store unavailable (${e.error}); spending only this process's last known share`;
    case 'store-recovered':
      return `${who} ${e.store} store back after ${e.downMs} ms; shared admission resumed`;
  }
}

/**
 * An instant as ISO 8601, `never` when infinite. A reset or wait a server put past what a Date
 * can hold (±8.64e15 ms) is written as a number: `toISOString` would throw, and a `RangeError`
 * thrown in `logEvents`' subscriber ended the process.
 */
export function isoOrNever(ms: number): string {
  if (!Number.isFinite(ms)) return 'never';
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${Math.round(ms)} ms (past the Date range)`;
}

/** Longest path a request summary keeps (longer ones are cut at a segment boundary and end in `…`). */
export const MAX_SUMMARY_PATH = 2048;

/**
 * Strips query, fragment and user-info from a URL so events never carry a token. The URL is
 * the caller's and may be huge or hostile: its own user-info is found in two linear passes over
 * it, then only its first {@link MAX_SUMMARY_PATH} characters are kept, and every scan over
 * them is a single linear pass.
 */
export function safePath(url: string | undefined): string | null {
  if (!url) return null;
  // The URL's own user-info goes before the cut: a cut inside it, at a space, left its start.
  const capped = capText(withoutLeadingUserInfo(url), MAX_SUMMARY_PATH);
  const end = firstIndexOf(capped, '?', '#');
  return withoutUserInfo(end < 0 ? capped : capped.slice(0, end));
}

/**
 * The user-info of a URL as WHATWG URL parsing reads it: after leading controls or spaces, a
 * scheme and any run of slashes or backslashes (`http:user:pass@host` has credentials too) or,
 * without a scheme, two or more; up to the last `@` before the authority ends, spaces included
 * (the parser percent-encodes them, so `https://user:pa ss@host` carries a password). A path
 * (`/@user/posts`) has none. Anchored: one start, so linear.
 */
const LEADING_USER_INFO = /^([\0- ]*(?:[\w+.-]+:[/\\]*|[/\\]{2,}))[^/\\?#]*@/;

/**
 * @internal `url` as WHATWG URL parsing reads it (without tab, LF and CR) and without its own
 * user-info. Linear.
 */
export function withoutLeadingUserInfo(url: string): string {
  // URL parsing drops tab, LF and CR anywhere before reading a URL.
  return url.replace(/[\t\n\r]/g, '').replace(LEADING_USER_INFO, '$1');
}

function firstIndexOf(text: string, a: string, b: string): number {
  const i = text.indexOf(a);
  const j = text.indexOf(b);
  return i < 0 ? j : j < 0 ? i : Math.min(i, j);
}

/** Where a URL's authority (and so its user-info) or its path segment ends. */
const SEGMENT_END = /[\s/\\?#]/;

/**
 * @internal `text` cut to `max` characters. A cut inside a URL's user-info would leave
 * `//user:pass` without the `@` that marks it for removal, so the cut goes back to the last
 * segment boundary (slash, backslash, `?`, `#` or space) and the unfinished segment is
 * dropped; `…` marks the cut.
 */
export function capText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  while (end > 0 && !SEGMENT_END.test(text.charAt(end - 1))) end--;
  return `${text.slice(0, end)}…`;
}

/**
 * User-info of the URLs in a text: after `//` or `\\` (WHATWG URL parsing reads `\` as `/` in
 * http(s) URLs), with or without a scheme before them (the scheme is kept either way, so it is
 * not matched), up to the last `@` before the host (a password may hold `@`).
 *
 * Linear: a match starts only at two slashes and its run stops at the next slash, so no
 * character is scanned from more than one start. (Matching an optional `scheme:` in front made
 * every letter a start whose run went to the end of the text: quadratic on `a.a.a…`.)
 */
const USER_INFO = /([/\\]{2})[^\s/\\?#]*@/g;

/** @internal A text with the user-info of its URLs removed. */
export function withoutUserInfo(text: string): string {
  return text.replace(USER_INFO, '$1');
}
