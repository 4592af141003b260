import { describe, expect, it } from '@jest/globals';
import { extractResponse, responseLike } from '../../lib/index.js';

describe('responseLike and extractResponse', () => {
  it('reads headers case-insensitively from every common container, joining repeats', () => {
    const h = new Headers([['X-RateLimit-Remaining', '5']]);
    h.append('x-ratelimit-remaining', '4');
    expect(responseLike(200, h).header('x-ratelimit-remaining')).toBe('5, 4');
    expect(responseLike(200, new Map([['Retry-After', '3']])).header('retry-after')).toBe('3');
    expect(responseLike(200, { 'Set-Cookie': ['a', 'b'], 'X-N': 7 }).header('set-cookie')).toBe('a, b');
    expect(responseLike(200, { 'X-N': 7 }).header('x-n')).toBe('7');
    expect(responseLike(200, null).header('x')).toBeUndefined();
  });

  it('finds the response in axios-, Angular-, fetch- and ajax-shaped values and errors', () => {
    const axiosError = {
      isAxiosError: true,
      message: 'Request failed',
      response: { status: 429, headers: { 'retry-after': '2' }, data: { error: 'x' }, config: {} },
    };
    expect(extractResponse(axiosError)).toMatchObject({ status: 429, body: { error: 'x' } });
    expect(extractResponse(axiosError)!.header('Retry-After')).toBe('2');
    const angular = {
      status: 429,
      headers: { get: (n: string) => (n.toLowerCase() === 'retry-after' ? '1' : null) },
      error: { errors: [] },
    };
    expect(extractResponse(angular)).toMatchObject({ status: 429, body: { errors: [] } });
    const fetchResponse = new Response('x', { status: 200, headers: { 'X-RateLimit-Remaining': '9' } });
    expect(extractResponse(fetchResponse)!.header('x-ratelimit-remaining')).toBe('9');
    expect(extractResponse(fetchResponse)!.body).toBeUndefined();
    const ajax = { status: 200, responseHeaders: { 'x-ratelimit-remaining': '1' }, response: {} };
    expect(extractResponse(ajax)!.header('X-RateLimit-Remaining')).toBe('1');
  });

  it('finds nothing in plain values and network errors', () => {
    for (const x of [
      undefined,
      null,
      42,
      'text',
      new Error('ECONNREFUSED'),
      { isAxiosError: true, message: 'Network Error' },
      { status: 0 },
    ]) {
      expect(extractResponse(x)).toBeUndefined();
    }
  });
});
