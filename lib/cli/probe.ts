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
  /** The profile's name (`Provider.name`). */
  readonly provider: string;
  /** The call that makes it, e.g. `providers.planningCenter()`. */
  readonly use: string;
  readonly outcome: 'ok' | 'limited' | 'blocked';
  readonly buckets: readonly ProbeBucket[];
}

/** The result of {@link probe}. Holds no header value and no query string: safe to print. */
export interface ProbeReport {
  /** The URL without its query, fragment or user-info. */
  readonly url: string;
  readonly status: number;
  /**
   * The name of the profile that fits best, or `null` when none read a number: the one that read
   * the most numbers sensibly; among equals, the one whose API the URL's host or a header only it
   * sends names, then a general one (`generic`, `ietf`) over a provider's that nothing names.
   */
  readonly best: string | null;
  /** Every profile that read at least one number, best first. */
  readonly profiles: readonly ProbeProfile[];
  /**
   * Server clock minus this machine's (ms), as a limiter reads it from the `Date` header: 0 when
   * the header allows it, else the allowed offset nearest 0; `null` without a `Date`.
   */
  readonly clockOffsetMs: number | null;
  /**
   * The offsets the `Date` header allows, ms, `[least, most]`: it has whole seconds and was
   * stamped between the send and the answer. `null` without one.
   */
  readonly clockOffsetRangeMs: readonly [number, number] | null;
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

/**
 * Every profile the probe tries, with what tells a response of its API from another's that
 * reads the same numbers (many APIs send `X-RateLimit-Limit`/`-Remaining`/`-Reset`): the hosts
 * of its API and headers no other provider here sends. The general profiles come last and name
 * no API: they fit whatever sends their headers.
 */
interface Candidate {
  readonly provider: Provider;
  /** The call that makes the profile, as a user writes it. */
  readonly use: string;
  /** The API's hosts: the URL's host is one of them or under one. */
  readonly hosts?: readonly string[];
  /** Response headers (lower case) only this provider sends. */
  readonly signs?: readonly string[];
  /** `generic` and `ietf`: fit any API that sends their headers, so name none over a provider's. */
  readonly general?: true;
}

const CANDIDATES: readonly Candidate[] = [
  { provider: providers.procore(), use: 'providers.procore()', hosts: ['procore.com'], signs: ['x-rate-limit-limit'] },
  {
    provider: providers.planningCenter(),
    use: 'providers.planningCenter()',
    hosts: ['planningcenteronline.com'],
    signs: ['x-pco-api-request-rate-limit', 'x-pco-api-request-rate-count'],
  },
  { provider: providers.fieldwire(), use: 'providers.fieldwire()', hosts: ['fieldwire.com', 'fieldwire.net'] },
  {
    provider: providers.pipedrive({ plan: 'essential' }),
    use: "providers.pipedrive({ plan: 'essential' }) (or your plan)",
    hosts: ['pipedrive.com'],
    signs: ['x-daily-requests-left'],
  },
  { provider: providers.teos(), use: 'providers.teos()', signs: ['x-rate-limit-limit'] },
  {
    provider: providers.github(),
    use: 'providers.github()',
    hosts: ['github.com'],
    signs: ['x-ratelimit-resource', 'x-github-request-id'],
  },
  {
    provider: providers.hubspot(),
    use: 'providers.hubspot()',
    hosts: ['hubapi.com', 'hubspot.com'],
    signs: ['x-hubspot-ratelimit-max', 'x-hubspot-ratelimit-daily'],
  },
  {
    provider: providers.atlassian(),
    use: 'providers.atlassian()',
    hosts: ['atlassian.net', 'atlassian.com'],
    signs: ['beta-ratelimit-policy', 'x-ratelimit-nearlimit', 'ratelimit-reason'],
  },
  {
    provider: providers.shopify({ api: 'rest' }),
    use: "providers.shopify({ api: 'rest' })",
    hosts: ['myshopify.com'],
    signs: ['x-shopify-shop-api-call-limit'],
  },
  { provider: providers.ietf(), use: 'providers.ietf()', general: true },
  { provider: providers.generic(), use: 'providers.generic()', general: true },
];

/** How surely a candidate names the API, from its URL and headers: 2 its host, 1 a header of its own. */
function identifies(c: Candidate, host: string, headers: Headers): number {
  if (c.hosts?.some((h) => host === h || host.endsWith(`.${h}`))) return 2;
  return c.signs?.some((name) => headers.has(name)) ? 1 : 0;
}

/** Farthest reset a profile's reading may be taken at: a daily window plus two hours. */
const MAX_RESET_MS = 26 * 3_600_000;

/** A response header name that looks like a rate-limit header. */
const LIMIT_HEADER = /rate-?limit|call-limit|retry-after|quota/i;

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
  // `Date` has whole seconds, stamped (rounded down) between the send and the answer: the offset
  // is in [date - receivedAt, date + 1000 - sentAt]. As the limiter reads it (SkewEstimator):
  // 0 if that holds 0, else its bound nearest 0 (a reset then looks late, never early).
  const clockOffsetRangeMs: readonly [number, number] | null =
    serverDate === undefined ? null : [serverDate - receivedAt, serverDate + 1000 - sentAt];
  const clockOffsetMs =
    clockOffsetRangeMs === null
      ? null
      : clockOffsetRangeMs[0] > 0
        ? clockOffsetRangeMs[0]
        : clockOffsetRangeMs[1] < 0
          ? clockOffsetRangeMs[1]
          : 0;
  const response = responseLike(res.status, res.headers);
  const request = { method, url };
  const host = hostOf(url);
  const rank = new Map<ProbeProfile, readonly [number, number, number]>();
  const profiles = CANDIDATES.map((candidate): ProbeProfile => {
    const provider = candidate.provider;
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
    const profile = { provider: provider.name, use: candidate.use, outcome: reading.outcome, buckets };
    // Best first: the most numbers read sensibly; among equals, the API the host or a header
    // of its own names, then a general profile over a provider's that nothing here names.
    rank.set(profile, [numbers(profile) - wrong, identifies(candidate, host, res.headers), candidate.general ? 1 : 0]);
    return profile;
  })
    .filter((p) => p.buckets.length > 0)
    .sort((a, b) => compareRanks(rank.get(b), rank.get(a)));
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
    clockOffsetRangeMs,
    rateLimitHeaders,
    missing,
  };
}

/** The URL's host name, lower case (empty when it has none). */
function hostOf(url: string): string {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return '';
  }
}

/** Orders ranks field by field. */
function compareRanks(a: readonly number[] = [], b: readonly number[] = []): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
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
  lines.push(report.profiles[0] ? `profile: ${report.profiles[0].use}` : 'profile: none fits');
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
      : `server clock: ${report.clockOffsetMs === 0 ? 'in step' : `${report.clockOffsetMs > 0 ? 'ahead' : 'behind'} by at least ${Math.abs(report.clockOffsetMs)} ms`}` +
          (report.clockOffsetRangeMs
            ? ` (Date allows ${signed(report.clockOffsetRangeMs[0])} to ${signed(report.clockOffsetRangeMs[1])} ms)`
            : ''),
  );
  for (const m of report.missing) lines.push(`missing: ${m}`);
  // Bucket names and header names come from the server: no control character reaches the terminal.
  return lines.map(escapeControls).join('\n');
}

/** `n` with its sign: `+1087`, `-250`, `0`. */
function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n);
}
