import { describe, expect, it } from '@jest/globals';
import { createLimiter, providers } from '../../lib/index.js';
import { rateLimitOctokit, type OctokitLike } from '../../lib/adapters/octokit.js';

type Request = (options: unknown) => Promise<unknown>;

/** An Octokit stand-in: `send(request)` runs one call through the wrapper `rateLimitOctokit` put on it. */
function fakeOctokit() {
  let wrapper: ((request: Request, options: unknown) => Promise<unknown>) | undefined;
  const octokit: OctokitLike = {
    hook: { wrap: (_name, w) => void (wrapper = w as typeof wrapper) },
    request: { endpoint: { parse: () => ({ method: 'GET', url: 'https://api.github.com/user', headers: {} }) } },
  };
  const send = (request: Request) => {
    if (wrapper === undefined) throw new Error('not wrapped');
    return wrapper(request, {});
  };
  return { octokit, send };
}

describe('rateLimitOctokit: what the wrapped request resolves', () => {
  // Octokit's own request resolves `{ status, url, headers, data }`; a plugin or a test double
  // wrapped inside may resolve anything. Nothing to read then: it goes back as it came.
  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a string', 'ok'],
    ['an object without status', { data: 1 }],
    ['a status without headers', { status: 200 }],
  ])('%s is returned as Octokit gave it, and the permit is let go', async (_name, value) => {
    const limiter = createLimiter({ provider: providers.github(), key: 'octokit-odd', maxConcurrent: 1 });
    const { octokit, send } = fakeOctokit();
    rateLimitOctokit(octokit, limiter);
    await expect(send(() => Promise.resolve(value))).resolves.toBe(value);
    expect(limiter.snapshot.inFlight).toBe(0);
    // With one permit only, a second call gets it only if the first let it go.
    await expect(send(() => Promise.resolve(value))).resolves.toBe(value);
    expect(limiter.snapshot.totals).toMatchObject({ sent: 2, responses: 0 });
    await limiter.close();
  });

  it('a response is read as before', async () => {
    const limiter = createLimiter({ provider: providers.github(), key: 'octokit-ok' });
    const { octokit, send } = fakeOctokit();
    rateLimitOctokit(octokit, limiter);
    const res = {
      status: 200,
      url: '',
      headers: { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '59' },
      data: {},
    };
    await expect(send(() => Promise.resolve(res))).resolves.toBe(res);
    expect(limiter.snapshot.inFlight).toBe(0);
    expect(limiter.snapshot.totals.responses).toBe(1);
    await limiter.close();
  });
});
