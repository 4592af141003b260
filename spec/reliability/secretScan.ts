/**
 * A scanner for credentials in everything rx-ratelimit produces. Each value is added
 * to a named surface; the scanner renders it the ways a user would see it (every reachable
 * string, JSON, `util.inspect`, `String`, `stack`) and looks for every form of every token.
 */
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';

import { describeEvent, isRateLimitError, logEvents, type Limiter, type LimiterEvent } from '../../lib/index.js';
import { reachableStrings } from '../helpers/scan.js';

/** A distinctive token: `tok_<tag>_<24 hex>`. */
export function makeToken(tag: string): string {
  return `tok_${tag}_${randomBytes(12).toString('hex')}`;
}

/**
 * The strings that would give a token away: the token itself (so `Bearer <token>`,
 * `api_token=<token>` and any other text holding it), its URL-encoded form, and the part of its
 * base64 (and base64url) encoding that is the same whatever precedes it (so a `Basic` header
 * with `user:<token>`, or a base64'd `Bearer <token>`, is found too).
 */
export function needlesOf(token: string): Array<[form: string, needle: string]> {
  const out: Array<[string, string]> = [
    ['raw', token],
    ['url-encoded', encodeURIComponent(token)],
    ['form-encoded', new URLSearchParams({ t: token }).toString().slice(2)],
    ['bearer', `Bearer ${token}`],
    ['api_token param', `api_token=${encodeURIComponent(token)}`],
    // A truncated copy (e.g. a token cut to fit a column) still gives most of it away.
    ['tail', token.slice(-16)],
  ];
  for (let pad = 0; pad < 3; pad++) {
    const b64 = Buffer.from('x'.repeat(pad) + token).toString('base64');
    // The first group holds the padding bytes, the last may hold `=` or the next byte.
    const middle = b64.slice(4, -4);
    out.push([`base64/${pad}`, middle], [`base64url/${pad}`, middle.replace(/\+/g, '-').replace(/\//g, '_')]);
  }
  return out;
}

interface Tally {
  values: number;
  strings: number;
}

/** Where a foreign object (made by axios, fetch, Angular) keeps the request, and so the credential. */
const CLIENT_OWNED = new Set(['config', 'request', 'url', 'headers', 'urlWithParams']);

export class SecretScan {
  readonly tallies = new Map<string, Tally>();
  readonly leaks: string[] = [];
  private readonly needles: Array<[string, string, string]> = [];

  /** Adds a token whose forms must appear nowhere. */
  token(token: string): string {
    for (const [form, needle] of needlesOf(token)) this.needles.push([token, form, needle]);
    return token;
  }

  /** Checks strings directly (log lines, Redis keys, pub/sub messages). */
  strings(surface: string, strings: readonly string[], values = 1): void {
    const t = this.tally(surface);
    t.values += values;
    t.strings += strings.length;
    for (const s of strings) this.check(surface, s);
  }

  /** Any plain value (a snapshot, an event): every reachable string, its JSON and its inspect. */
  value(surface: string, value: unknown): void {
    this.strings(surface, [...reachableStrings(value), json(value), inspect(value, { depth: Infinity })]);
  }

  /**
   * An error delivered to a subscriber. Ours (and ours in its `cause` chain) are rendered every
   * way a user could log them, and the `cause` of ours is scanned whole, however deep: it is
   * ours to redact. A foreign error delivered as its client made it (axios's 404, fetch's
   * TypeError) is scanned without the places where the client itself put the request (`config`,
   * `request`, `url`, request `headers`): the promise is that we copy the credential nowhere
   * else, not that we scrub what axios holds.
   */
  error(surface: string, error: unknown): void {
    const seen = new Set<unknown>();
    const walk = (e: unknown, path: string, causeOfOurs: boolean): void => {
      if (e === undefined || e === null || seen.has(e)) return;
      seen.add(e);
      const ours = isRateLimitError(e);
      if (ours) {
        const own = Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'cause'));
        this.strings(`${surface} (ours${path})`, [
          String(e),
          e.message,
          e.stack ?? '',
          json(e),
          inspect(e),
          inspect(e, { depth: Infinity }),
          inspect(e, { depth: Infinity, showHidden: true }),
          ...reachableStrings(own),
        ]);
      } else if (causeOfOurs) {
        this.strings(`${surface} (our errors' causes)`, [
          ...reachableStrings(e),
          json(e),
          inspect(e, { depth: Infinity, showHidden: true }),
        ]);
      } else {
        this.strings(`${surface} (passed through${path})`, clientResidue(e));
      }
      if (typeof e === 'object') {
        walk((e as { cause?: unknown }).cause, `${path}.cause`, ours || causeOfOurs);
        const errors = (e as { errors?: unknown }).errors;
        if (e instanceof AggregateError && Array.isArray(errors))
          errors.forEach((x, i) => walk(x, `${path}.errors[${i}]`, causeOfOurs));
      }
    };
    walk(error, '', false);
  }

  /** One row per surface: values added and strings checked. */
  table(): Array<{ surface: string; values: number; strings: number }> {
    return [...this.tallies].map(([surface, t]) => ({ surface, ...t }));
  }

  private tally(surface: string): Tally {
    let t = this.tallies.get(surface);
    if (!t) this.tallies.set(surface, (t = { values: 0, strings: 0 }));
    return t;
  }

  private check(surface: string, s: string): void {
    for (const [token, form, needle] of this.needles)
      if (needle.length >= 8 && s.includes(needle)) {
        this.leaks.push(`${surface}: ${form} of ${token.slice(0, 12)}… in ${JSON.stringify(excerpt(s, needle))}`);
      }
  }
}

/** Strings of a foreign object once what its client owns (the request it sent) is set aside. */
function clientResidue(e: unknown): string[] {
  if (typeof e !== 'object' || e === null) return [String(e)];
  const strip = (o: unknown, depth: number): unknown => {
    if (typeof o !== 'object' || o === null || depth > 3) return o;
    const copy: Record<string, unknown> = {};
    for (const k of Object.keys(o)) {
      // A response's own headers are the server's; the request's headers are the client's.
      if (CLIENT_OWNED.has(k) && !(k === 'headers' && depth > 0 && 'status' in o)) continue;
      copy[k] = strip((o as Record<string, unknown>)[k], depth + 1);
    }
    return copy;
  };
  // Angular's HttpErrorResponse (not an Error) repeats its `url` in its message: the client's too.
  const { url, message } = e as { url?: unknown; message?: unknown };
  const copy = strip(e, 0) as Record<string, unknown>;
  if (typeof message === 'string')
    copy['message'] = typeof url === 'string' ? message.split(url).join('<url>') : message;
  return reachableStrings(copy);
}

function json(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch (error) {
    return `<not JSON: ${(error as Error).message}>`;
  }
}

function excerpt(s: string, needle: string): string {
  const at = s.indexOf(needle);
  return s.slice(Math.max(0, at - 60), at + needle.length + 20);
}

/** Every limiter's output, collected as it comes: state$, events$, log lines (all levels, all types). */
export function watch(
  scan: SecretScan,
  limiter: Limiter,
  surface = '',
  onEvent: (e: LimiterEvent) => void = () => undefined,
): { events: LimiterEvent[]; stop: () => void } {
  const events: LimiterEvent[] = [];
  const subs = [
    limiter.state$.subscribe((s) => scan.value(`state$${surface}`, s)),
    limiter.events$.subscribe((e) => {
      events.push(e);
      onEvent(e);
      scan.value(`events$${surface}`, e);
      scan.strings(`describeEvent${surface}`, [describeEvent(e)]);
    }),
    logEvents(limiter.events$, logger(scan, `logEvents (every type)${surface}`), {
      types: [
        'queued',
        'admitted',
        'cancelled',
        'shared',
        'response',
        'rate-limited',
        'paused',
        'resumed',
        'retry-scheduled',
        'quota-exhausted',
        'queue-full',
        'blocked',
        'unblocked',
        'store-unavailable',
        'store-recovered',
        'limit-changed',
      ],
    }),
    logEvents(limiter.events$, logger(scan, `logEvents (default)${surface}`)),
  ];
  return { events, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

/** A console-like logger whose lines (message and the event passed along) go to the scan. */
function logger(scan: SecretScan, surface: string) {
  const line = (message: string, event: LimiterEvent) =>
    scan.strings(surface, [message, JSON.stringify(event), inspect(event, { depth: Infinity })]);
  return { debug: line, info: line, warn: line, error: line };
}

/** The limiter itself as a user might print it: snapshot, JSON, inspect, String. */
export function scanLimiter(scan: SecretScan, limiter: Limiter, surface = ''): void {
  scan.value(`snapshot${surface}`, limiter.snapshot);
  scan.strings(`limiter itself${surface}`, [String(limiter), inspect(limiter, { depth: 6 })]);
}

/** Each request `i` of the HTTP scans: Procore's projects or Pipedrive's deals. */
export function pathOf(target: 'procore' | 'pipedrive', i: number): string {
  return target === 'procore' ? `/rest/v1.0/projects/${i}` : `/v1/deals/${i}`;
}

/**
 * Someone else spends the budget with the same token, around the limiter (`n` requests at once;
 * Pipedrive then blocks the token).
 */
export function hammer(base: string, target: 'procore' | 'pipedrive', token: string, n: number): Promise<unknown> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      fetch(
        target === 'pipedrive' ? `${base}${pathOf(target, i)}?api_token=${token}` : `${base}${pathOf(target, i)}`,
        target === 'procore' ? { headers: { Authorization: `Bearer ${token}` } } : {},
      ).then((r) => r.arrayBuffer()),
    ),
  );
}
