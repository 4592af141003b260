import { Readable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { Octokit } from '@octokit/core';
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

describe('rateLimitOctokit: a body that can be read once is not sent twice', () => {
  /**
   * A real Octokit whose fetch reads each request's body to the end, as a socket would, and
   * answers the first with a 429 that asks for no wait, the others with a 201.
   */
  function uploader(key: string) {
    const bodies: string[] = [];
    const fetch = async (_url: string, init: RequestInit & { body?: unknown }): Promise<Response> => {
      const chunks: Uint8Array[] = [];
      const body = init.body;
      if (body instanceof ReadableStream || isAsyncIterable(body)) {
        for await (const chunk of body as AsyncIterable<Uint8Array>) chunks.push(chunk);
      } else if (typeof body === 'string') chunks.push(new TextEncoder().encode(body));
      bodies.push(Buffer.concat(chunks).toString());
      return bodies.length === 1
        ? new Response('{"message":"slow down"}', {
            status: 429,
            headers: { 'retry-after': '0', 'content-type': 'application/json' },
          })
        : new Response('{"ok":true}', { status: 201, headers: { 'content-type': 'application/json' } });
    };
    const limiter = createLimiter({ provider: providers.github(), key, backoffBaseMs: 1, random: () => 0 });
    const octokit = rateLimitOctokit(new Octokit({ baseUrl: 'https://api.github.test', request: { fetch } }), limiter);
    const put = (data: unknown) =>
      octokit.request('PUT /files/{path}', {
        path: 'f.bin',
        data,
        headers: { 'content-type': 'application/octet-stream' },
      });
    return { put, bodies, limiter };
  }

  const isAsyncIterable = (x: unknown): x is AsyncIterable<unknown> =>
    typeof (x as { [Symbol.asyncIterator]?: unknown } | null)?.[Symbol.asyncIterator] === 'function';

  const payload = () => new TextEncoder().encode('IMPORTANT-PAYLOAD');
  it.each([
    ['a Node Readable', () => Readable.from([Buffer.from(payload())])],
    ['a web ReadableStream', () => new Blob([payload()]).stream()],
    [
      'an async generator',
      () =>
        (async function* () {
          yield payload();
        })(),
    ],
  ])('%s: the 429 is thrown as Octokit threw it, and the payload was sent once, whole', async (kind, body) => {
    const { put, bodies, limiter } = uploader(`octokit-upload-${kind}`);
    await expect(put(body())).rejects.toMatchObject({ name: 'HttpError', status: 429 });
    expect(bodies).toEqual(['IMPORTANT-PAYLOAD']);
    expect(limiter.snapshot.inFlight).toBe(0);
    await limiter.close();
  });

  it('a stand-in whose parse gives no body: its options.data is read', async () => {
    const limiter = createLimiter({ provider: providers.github(), key: 'octokit-upload-stand-in', backoffBaseMs: 1 });
    let wrapper: ((request: Request, options: unknown) => Promise<unknown>) | undefined;
    const octokit: OctokitLike = {
      hook: { wrap: (_name, w) => void (wrapper = w as typeof wrapper) },
      request: {
        endpoint: { parse: () => ({ method: 'PUT', url: 'https://uploads.github.test/assets', headers: {} }) },
      },
    };
    rateLimitOctokit(octokit, limiter);
    const limited = Object.assign(new Error('slow down'), {
      status: 429,
      response: { status: 429, headers: { 'retry-after': '0' }, data: {} },
    });
    let sent = 0;
    const request = () => {
      sent++;
      return Promise.reject(limited);
    };
    await expect(wrapper?.(request, { data: Readable.from(['IMPORTANT-PAYLOAD']) })).rejects.toBe(limited);
    expect(sent).toBe(1);
    await limiter.close();
  });

  it('a body that can be sent again (a string) is still retried after the 429', async () => {
    const { put, bodies, limiter } = uploader('octokit-upload-string');
    await expect(put('IMPORTANT-PAYLOAD')).resolves.toMatchObject({ status: 201 });
    expect(bodies).toEqual(['IMPORTANT-PAYLOAD', 'IMPORTANT-PAYLOAD']);
    await limiter.close();
  });
});
