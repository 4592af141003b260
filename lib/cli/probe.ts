/**
 * `rx-ratelimit probe`: one request to an API, and what its rate-limit headers say.
 * @packageDocumentation
 */
import { escapeControls, safePath } from '../core/events.js';
import { responseLike } from '../core/response.js';
import { parseHttpDate } from '../headers/httpDate.js';
import { providers } from '../providers/index.js';
import type { Provider } from '../providers/types.js';

/** One bucket as a profile read it from the response. */
export interface ProbeBucket {
  readonly name: string;
  readonly limit: number | null;
  readonly remaining: number | null;
  /** Epoch ms (this machine's clock, corrected by the server's `Date`) of the reset, or `null`. */
  readonly resetAt: number | null;
  readonly windowMs: number | null;
}

/** What one profile makes of the response. */
export interface ProbeProfile {
  readonly provider: string;
  readonly outcome: 'ok' | 'limited' | 'blocked';
  readonly buckets: readonly ProbeBucket[];
}

/** The result of {@link probe}. Holds no header value and no query string: safe to print. */
export interface ProbeReport {
  /** The URL without its query, fragment or user-info. */
  readonly url: string;
  readonly status: number;
  /** The profile that read the most numbers, or `null` when none read any. */
  readonly best: string | null;
  /** Every profile that read at least one number, best first. */
  readonly profiles: readonly ProbeProfile[];
  /** Server clock minus this machine's, from the `Date` header (ms), or `null` without one. */
  readonly clockOffsetMs: number | null;
  /** Names of the response headers that look like rate-limit headers. */
  readonly rateLimitHeaders: readonly string[];
  /** What a limiter would miss (no limit headers, no `Date`, no reset). */
  readonly missing: readonly string[];
}

/** Settings of {@link probe}. */
export interface ProbeOptions {
  /** Request headers (credentials go here; never echoed). */
  readonly headers?: Readonly<Record<string, string>>;
  /** @default 'GET' */
  readonly method?: string;
  /** @default globalThis.fetch */
  readonly fetch?: typeof globalThis.fetch;
  /** Gives up after this long. @default 10_000 */
  readonly timeoutMs?: number;
}

const PROFILES: readonly Provider[] = [
  providers.procore(),
  providers.planningCenter(),
  providers.fieldwire(),
  providers.pipedrive({ plan: 'essential' }),
  providers.teos(),
  providers.ietf(),
  providers.generic(),
];

/** Farthest reset a profile's reading may be taken at: a daily window plus two hours. */
const MAX_RESET_MS = 26 * 3_600_000;

/** A response header name that looks like a rate-limit header. */
const LIMIT_HEADER = /rate-?limit|retry-after|quota/i;

/**
 * Sends one request and reports which profile reads its rate-limit headers, every bucket it
 * reads, the server's clock offset and what is missing. Run as `npx rx-ratelimit probe <url>`.
 */
export async function probe(url: string, options: ProbeOptions = {}): Promise<ProbeReport> {
  const doFetch = options.fetch ?? globalThis.fetch;
  const method = (options.method ?? 'GET').toUpperCase();
  const sentAt = Date.now();
  const res = await doFetch(url, {
    method,
    headers: { ...options.headers },
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    redirect: 'manual',
  });
  const receivedAt = Date.now();
  await res.body?.cancel();
  const local = (sentAt + receivedAt) / 2;
  const serverDate = parseHttpDate(res.headers.get('date'), local);
  // A Date header has whole seconds: an offset under a second is noise.
  const clockOffsetMs =
    serverDate === undefined ? null : Math.abs(serverDate - local) < 1000 ? 0 : Math.round(serverDate - local);
  const response = responseLike(res.status, res.headers);
  const request = { method, url };
  /** A reset read in the past or more than a day and a bit ahead: the profile misreads the header. */
  const implausible = new Map<ProbeProfile, number>();
  const profiles = PROFILES.map((provider): ProbeProfile => {
    const reading = provider.read(response, request);
    let wrong = 0;
    const buckets = reading.buckets
      .filter((b) => b.limit !== undefined || b.remaining !== undefined)
      .map((b): ProbeBucket => {
        const at =
          b.reset === undefined
            ? null
            : 'at' in b.reset
              ? b.reset.at - (clockOffsetMs ?? 0)
              : receivedAt + b.reset.inMs;
        const plausible = at !== null && at > receivedAt - 1000 && at <= receivedAt + MAX_RESET_MS;
        if (at !== null && !plausible) wrong++;
        return {
          name: b.name,
          limit: b.limit ?? null,
          remaining: b.remaining ?? null,
          resetAt: plausible ? at : null,
          windowMs: b.windowMs ?? null,
        };
      });
    const profile = { provider: provider.name, outcome: reading.outcome, buckets };
    implausible.set(profile, wrong);
    return profile;
  })
    .filter((p) => p.buckets.length > 0)
    .sort((a, b) => numbers(b) - (implausible.get(b) ?? 0) - (numbers(a) - (implausible.get(a) ?? 0)));
  const rateLimitHeaders = [...res.headers.keys()].filter((name) => LIMIT_HEADER.test(name)).sort();
  const missing: string[] = [];
  if (profiles.length === 0)
    missing.push(
      rateLimitHeaders.length === 0
        ? 'rate-limit headers: the response has none (in a browser, CORS hides those not listed in Access-Control-Expose-Headers)'
        : `a profile for ${rateLimitHeaders.join(', ')}: none reads them; use providers.generic({ headers }) or defineProvider`,
    );
  else if (profiles[0]?.buckets.every((b) => b.resetAt === null)) missing.push('a reset time: waits will be guessed');
  if (clockOffsetMs === null) missing.push('Date header: reset times cannot be corrected for clock skew');
  return {
    url: safePath(url) ?? '',
    status: res.status,
    best: profiles[0]?.provider ?? null,
    profiles,
    clockOffsetMs,
    rateLimitHeaders,
    missing,
  };
}

/** How many numbers a profile read: the more, the better it fits. */
function numbers(p: ProbeProfile): number {
  return p.buckets.reduce(
    (n, b) => n + (b.limit === null ? 0 : 1) + (b.remaining === null ? 0 : 1) + (b.resetAt === null ? 0 : 1),
    0,
  );
}

/** A {@link ProbeReport} as lines for a terminal; reset times in this machine's local time. */
export function formatProbe(report: ProbeReport): string {
  const lines = [`${report.url} answered ${report.status}`];
  lines.push(report.best ? `profile: providers.${report.best}()` : 'profile: none fits');
  for (const p of report.profiles.slice(0, 1)) {
    for (const b of p.buckets) {
      const reset = b.resetAt === null ? 'reset unknown' : `resets ${new Date(b.resetAt).toLocaleString()}`;
      lines.push(`  bucket ${b.name}: ${b.remaining ?? '?'} of ${b.limit ?? '?'} left, ${reset}`);
    }
  }
  if (report.profiles.length > 1)
    lines.push(
      `also read by: ${report.profiles
        .slice(1)
        .map((p) => p.provider)
        .join(', ')}`,
    );
  lines.push(
    report.clockOffsetMs === null
      ? 'server clock: unknown (no Date header)'
      : `server clock: ${report.clockOffsetMs === 0 ? 'in step' : `${report.clockOffsetMs > 0 ? '+' : ''}${report.clockOffsetMs} ms`}`,
  );
  for (const m of report.missing) lines.push(`missing: ${m}`);
  // Bucket names and header names come from the server: no control character reaches the terminal.
  return lines.map(escapeControls).join('\n');
}
