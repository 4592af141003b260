import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, from, map, mergeMap, tap } from 'rxjs';
import { createLimiter, providers, rateLimit, responseLike } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Jira limits writes to one issue (20 per 2 s, 100 per 30 s in the simulator, as the docs say)
// apart from the burst limit of the endpoint (50 PUTs a second): "jira-per-issue-on-write:
// one issue: space out writes to that issue"
// (https://developer.atlassian.com/cloud/jira/platform/build-an-app-that-respects-rate-limits/).

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const HOT = 'ABC-1';

interface Sent {
  readonly issue: string;
  readonly sentAt: number;
  readonly status: number;
  readonly answeredAt: number;
  readonly retryAfterMs: number | undefined;
  readonly reason: string | undefined;
}

/** PUTs to `issues` (in that order), through one limiter on providers.atlassian(), all queued at once. */
function run(issues: readonly string[]) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({
      latencyMs: 20,
      atlassian: { quota: false },
      now: () => START + asyncScheduler.now(),
    });
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({ provider: providers.atlassian({ auth: 'api-token' }), key: 'jira-token' });
    const sent: Sent[] = [];
    const done = new Map<string, number>();
    from(issues)
      .pipe(
        mergeMap((issue) => {
          const path = `/rest/api/3/issue/${issue}`;
          return defer(() => {
            const sentAt = now();
            return api.request('atlassian', { method: 'PUT', path, token: 'jira-token' }).pipe(
              tap((r) => {
                const retryAfter = r.headers['Retry-After'];
                sent.push({
                  issue,
                  sentAt,
                  status: r.status,
                  answeredAt: now(),
                  retryAfterMs: retryAfter === undefined ? undefined : Number(retryAfter) * 1000,
                  reason: r.headers['RateLimit-Reason'],
                });
              }),
            );
          }).pipe(
            rateLimit(limiter, { method: 'PUT', url: path }),
            map((r) => {
              if (r.status === 200) done.set(issue, Math.max(done.get(issue) ?? 0, now()));
              return r.status;
            }),
          );
        }),
      )
      .subscribe();
    return { sent, done, names: () => limiter.snapshot.buckets.map((b) => b.name) };
  });
}

describe('providers.atlassian: the per-issue write limit (virtual time, against the simulator)', () => {
  // 60 writes to one issue among 100 writes to 100 others, on one endpoint (PUT /rest/api/3/issue/:id).
  const others = Array.from({ length: 100 }, (_, i) => `ABC-${100 + i}`);
  const mixed = others.flatMap((issue, i) => (i < 60 ? [HOT, issue] : [issue]));

  it('writes to other issues go on at the burst pace while the hot issue waits; its writes wait as told by Retry-After', () => {
    const alone = run(others);
    const out = run(mixed);

    // The others: no 429, and done about as soon as with no hot issue at all (the hot issue's
    // writes that went took their share of the endpoint's 50 a second).
    expect(out.sent.filter((s) => s.issue !== HOT && s.status === 429)).toEqual([]);
    const lastOther = Math.max(...others.map((i) => out.done.get(i) ?? Infinity));
    const lastAlone = Math.max(...others.map((i) => alone.done.get(i) ?? Infinity));
    const hotSent = out.sent.filter((s) => s.issue === HOT && s.status === 200).length;
    expect(lastOther).toBeLessThanOrEqual(lastAlone + hotSent * 20 + 100);

    // The hot issue: every write done; after each 429 of its write limit, none sent before its Retry-After.
    const hot = out.sent.filter((s) => s.issue === HOT);
    expect(hot.filter((s) => s.status === 200)).toHaveLength(60);
    const refusals = hot.filter((s) => s.status === 429);
    expect(refusals.length).toBeGreaterThan(0);
    for (const r of refusals) {
      expect(r.reason).toBe('jira-per-issue-on-write');
      const until = r.answeredAt + (r.retryAfterMs ?? 0);
      expect(hot.filter((s) => s.sentAt > r.answeredAt && s.sentAt < until)).toEqual([]);
    }
    // Its writes count against a bucket of its own; the other issues have none.
    expect(out.names()).toContain(`issue:${HOT}`);
    expect(out.names().filter((n) => n.startsWith('issue:'))).toEqual([`issue:${HOT}`]);
  });
});

describe('providers.atlassian: which writes count against a per-issue bucket', () => {
  const names = (jira: ReturnType<typeof providers.atlassian>, method: string, url: string) =>
    jira.buckets({ method, url }).map((b) => b.name);
  const writeLimited = (jira: ReturnType<typeof providers.atlassian>, url: string, method = 'PUT') =>
    jira.read(responseLike(429, { 'RateLimit-Reason': 'jira-per-issue-on-write', 'Retry-After': '2' }), {
      method,
      url,
    });

  it('only writes to an issue a 429 of the per-issue write limit named, under any prefix; reads and other issues keep their buckets', () => {
    const jira = providers.atlassian();
    expect(names(jira, 'PUT', '/rest/api/3/issue/ABC-123')).toEqual(['quota', 'burst:PUT /rest/api/3/issue/:id']);
    const site = 'https://api.atlassian.com/ex/jira/1a2b/rest/api/3/issue/ABC-123/comment';
    expect(writeLimited(jira, site, 'POST')).toMatchObject({
      outcome: 'limited',
      buckets: [{ name: 'issue:ABC-123' }],
      limitedBy: 'issue:ABC-123',
      retryAfter: { delayMs: 2000 },
    });
    expect(names(jira, 'PUT', '/rest/api/3/issue/ABC-123?notifyUsers=false')).toEqual([
      'quota',
      'burst:PUT /rest/api/3/issue/:id',
      'issue:ABC-123',
    ]);
    expect(names(jira, 'DELETE', '/rest/api/2/issue/ABC-123')).toContain('issue:ABC-123');
    expect(names(jira, 'GET', '/rest/api/3/issue/ABC-123')).not.toContain('issue:ABC-123');
    expect(names(jira, 'PUT', '/rest/api/3/issue/ABC-124')).not.toContain('issue:ABC-124');
    // Without Retry-After, the reset of the scope the 429 names (X-RateLimit-Reset).
    const reset = jira.read(
      responseLike(429, { 'RateLimit-Reason': 'jira-per-issue-on-write', 'X-RateLimit-Reset': '2026-01-01T00:00:02Z' }),
      { method: 'PUT', url: '/rest/api/3/issue/10042' },
    );
    expect(reset).toMatchObject({ limitedBy: 'issue:10042', retryAfter: { at: Date.UTC(2026, 0, 1, 0, 0, 2) } });
  });

  it('a path naming no single issue, or one no issue key can be, holds the endpoint as before', () => {
    const jira = providers.atlassian();
    for (const url of [
      '/rest/api/3/issue',
      '/rest/api/3/issue/bulk',
      `/rest/api/3/issue/${'A'.repeat(41)}-1`,
      `/rest/api/3/issue/ABC-${'9'.repeat(19)}`,
      '/rest/api/3/issue/abc-1',
      '/rest/api/3/issue/ABC-1%0D%0Ax',
    ]) {
      const r = writeLimited(jira, url, 'POST');
      expect(r.limitedBy).toMatch(/^burst:POST /);
      expect(r.buckets.filter((b) => b.name.startsWith('issue:'))).toEqual([]);
    }
  });

  it('remembers the last 256 issues named: a caller writing to any number of issues grows no bucket list without bound', () => {
    const jira = providers.atlassian();
    for (let i = 1; i <= 1000; i++) writeLimited(jira, `/rest/api/3/issue/ABC-${i}`);
    const held = (i: number) => names(jira, 'PUT', `/rest/api/3/issue/ABC-${i}`).includes(`issue:ABC-${i}`);
    expect(Array.from({ length: 1000 }, (_, i) => i + 1).filter(held)).toEqual(
      Array.from({ length: 256 }, (_, i) => 745 + i),
    );
  });

  it('refuses an extra bucket named like a per-issue one', () => {
    expect(() => providers.atlassian({ extraBuckets: [{ name: 'issue:ABC-1', limit: 5, windowMs: 1000 }] })).toThrow(
      /extraBuckets\.0\.name/,
    );
  });
});
