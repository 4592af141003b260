import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Octokit } from '@octokit/core';
import { createLimiter, providers } from '../../lib/index.js';
import { rateLimitOctokit } from '../../lib/adapters/octokit.js';
import { startSimulator, type Simulator } from '../../lib/testing/index.js';

// The real @octokit/core against the GitHub simulator over loopback: an hour lasts 2 s.
describe('rateLimitOctokit: an Octokit instance behind a limiter', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ timeScale: 1800, latencyMs: 2, github: { core: 20 } });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('many concurrent requests through one instance: all answered 200, zero rate-limit answers', async () => {
    const limiter = createLimiter({
      provider: providers.github({ hints: { core: { limit: 20, windowMs: 2000 } } }),
      key: 'octokit-user',
    });
    const octokit = rateLimitOctokit(new Octokit({ auth: 'octokit-token', baseUrl: sim.urlFor('github') }), limiter);
    const started = Date.now();
    const statuses = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const res = await octokit.request('GET /repos/{owner}/{repo}/issues/{issue_number}', {
          owner: 'octo',
          repo: 'hello',
          issue_number: i + 1,
        });
        return res.status;
      }),
    );
    const elapsed = Date.now() - started;
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const counts = sim.stats().github;
    expect(Object.values(counts)).toEqual([expect.objectContaining({ ok: 50, limited: 0, sentWhileLimited: 0 })]);
    // Three windows of 20: at least two window lengths.
    expect(elapsed).toBeGreaterThanOrEqual(4000);
    console.log(`octokit: 50 requests in ${elapsed} ms, ${(elapsed / 4000).toFixed(3)} x the shortest time`);
    expect(limiter.snapshot.buckets.find((b) => b.name === 'core')).toMatchObject({ limit: 20 });
  });

  it('a 403 that is not rate limiting is thrown by Octokit as it was, once, and pauses nothing', async () => {
    const limiter = createLimiter({ provider: providers.github(), key: 'octokit-forbidden' });
    const octokit = rateLimitOctokit(
      new Octokit({ auth: 'octokit-forbidden', baseUrl: sim.urlFor('github') }),
      limiter,
    );
    await expect(octokit.request('GET /forbidden/hooks')).rejects.toMatchObject({ status: 403 });
    expect(limiter.snapshot.pausedUntil ?? 0).toBeLessThanOrEqual(Date.now());
    const counts = Object.values(sim.stats().github).find((c) => c.total === 1);
    expect(counts).toMatchObject({ limited: 0, blocked: 0 });
  });

  it('a secondary-limit 403 (retry-after) to a write with an idempotency key is sent again after the wait', async () => {
    const own = await startSimulator({ timeScale: 60, latencyMs: 2, github: { contentPerMinute: 2 } });
    try {
      // The profile leaves the content-creation limit out, so only the 403 tells of it.
      const limiter = createLimiter({ provider: providers.github({ contentCreation: false }), key: 'octokit-writer' });
      const octokit = rateLimitOctokit(new Octokit({ auth: 'octokit-writer', baseUrl: own.urlFor('github') }), limiter);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await octokit.request('POST /repos/{owner}/{repo}/issues', {
          owner: 'octo',
          repo: 'hello',
          title: `issue ${i}`,
          headers: { 'idempotency-key': `create-${i}` },
        });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([201, 201, 201]);
      expect(Object.values(own.stats().github)).toEqual([expect.objectContaining({ ok: 3, limited: 1 })]);
    } finally {
      await own.close();
    }
  });

  it('refuses what is not an Octokit or a limiter, naming it', () => {
    const limiter = createLimiter({ provider: providers.github(), key: 'x' });
    expect(() => rateLimitOctokit({} as never, limiter)).toThrow(/octokit/);
    expect(() => rateLimitOctokit(new Octokit(), {} as never)).toThrow(/limiter/);
    expect(() => rateLimitOctokit(new Octokit(), limiter, { maxRetries: -1 })).toThrow(/maxRetries/);
    expect(() =>
      rateLimitOctokit(new Octokit(), limiter, { retryNonIdempotent: 'false' as unknown as boolean }),
    ).toThrow(/`retryNonIdempotent` must be a boolean/);
  });
});
