import { describe, expect, it } from '@jest/globals';
import { firstValueFrom, Observable } from 'rxjs';
import { createLimiter, providers, rateLimit, type Limiter } from '../../lib/index.js';

// A fetch Response's body is a stream: its size is known only once read, and a Content-Length,
// when there is one, is the size on the wire (compressed), not what the body decodes to. The
// cache's clone keeps every byte its copy has been sent, so the cache must read what it keeps.

const KiB = 1024;

/** A body of `bytes` bytes in 64 KiB chunks, as a chunked (or compressed) answer streams it. */
function streamOf(bytes: number, onCancel?: () => void): ReadableStream<Uint8Array> {
  let left = bytes;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left <= 0) {
        controller.close();
        return;
      }
      const n = Math.min(64 * KiB, left);
      left -= n;
      controller.enqueue(new Uint8Array(n).fill(120));
    },
    cancel: () => onCancel?.(),
  });
}

/** A GET of `/a` that answers with `make()` each time it is sent; counts what it sends. */
function endpoint(make: () => Response) {
  let sent = 0;
  const get$ = new Observable<Response>((s) => {
    sent++;
    s.next(make());
    s.complete();
  });
  return { get$, sent: () => sent };
}

async function getText(limiter: Limiter, get$: Observable<Response>): Promise<number> {
  const res = await firstValueFrom(get$.pipe(rateLimit(limiter, { url: '/a', headers: {} })));
  return (await res.arrayBuffer()).byteLength;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

const cached = (cache: { maxBytes?: number; ttlMs?: number }) =>
  createLimiter({ provider: providers.generic(), key: `k-${Math.random()}`, cache: { ttlMs: 60_000, ...cache } });

describe('the cache reads the streamed body of a fetch Response it keeps', () => {
  it('a chunked body larger than maxBytes is not kept', async () => {
    const limiter = cached({ maxBytes: 1024 * KiB });
    const api = endpoint(() => new Response(streamOf(3 * 1024 * KiB)));
    expect(await getText(limiter, api.get$)).toBe(3 * 1024 * KiB);
    await settle();
    expect(limiter.sharing.bytes).toBeLessThanOrEqual(1024 * KiB);
    expect(await getText(limiter, api.get$)).toBe(3 * 1024 * KiB);
    expect(api.sent()).toBe(2);
  });

  it('a compressed body whose Content-Length is small but decodes past maxBytes is not kept', async () => {
    const limiter = cached({ maxBytes: 1024 * KiB });
    const api = endpoint(() => new Response(streamOf(2 * 1024 * KiB), { headers: { 'content-length': '900' } }));
    await getText(limiter, api.get$);
    await settle();
    await getText(limiter, api.get$);
    expect(api.sent()).toBe(2);
  });

  it('a body within maxBytes is kept and counts its own size, not a guess', async () => {
    const limiter = cached({ maxBytes: 1024 * KiB });
    const api = endpoint(() => new Response(streamOf(200 * KiB)));
    await getText(limiter, api.get$);
    await settle();
    expect(limiter.sharing.bytes).toBe(200 * KiB);
    expect(await getText(limiter, api.get$)).toBe(200 * KiB);
    expect(api.sent()).toBe(1);
  });

  it('a body that is not read by its caller is still measured, and dropped when too big', async () => {
    const limiter = cached({ maxBytes: 512 * KiB });
    const api = endpoint(() => new Response(streamOf(64 * 1024 * KiB)));
    // The caller looks at the status only and never reads the body.
    await firstValueFrom(api.get$.pipe(rateLimit(limiter, { url: '/a', headers: {} })));
    await settle();
    expect(limiter.sharing.size).toBe(0);
    expect(limiter.sharing.bytes).toBe(0);
  });

  it('a body that stalls is not kept past the time limit (ttlMs), and its copy is let go', async () => {
    const limiter = cached({ ttlMs: 50 });
    let cancelled = 0;
    const stalled = () =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array(10));
        },
        cancel: () => {
          cancelled++;
        },
      });
    const api = endpoint(() => new Response(stalled()));
    const res = await firstValueFrom(api.get$.pipe(rateLimit(limiter, { url: '/a', headers: {} })));
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(limiter.sharing.size).toBe(0);
    // The caller's own copy is untouched: cancelling it ends the stream.
    await res.body?.cancel();
    expect(cancelled).toBe(1);
  });
});

describe('while the cache reads a kept body', () => {
  /** A body of `bytes` bytes whose 64 KiB chunks arrive 2 ms apart; `pulled()`: bytes sent so far. */
  function slowBody(bytes: number) {
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent >= bytes) {
          controller.close();
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
        const n = Math.min(64 * KiB, bytes - sent);
        sent += n;
        controller.enqueue(new Uint8Array(n));
      },
    });
    return { stream, pulled: () => sent };
  }

  it('it counts the bytes the kept copy holds so far, not the guess', async () => {
    const limiter = cached({ maxBytes: 4 * 1024 * KiB });
    const body = slowBody(2 * 1024 * KiB);
    const api = endpoint(() => new Response(body.stream));
    // The caller does not read its body: only the cache's reading pulls it.
    await firstValueFrom(api.get$.pipe(rateLimit(limiter, { url: '/a', headers: {} })));
    while (body.pulled() < 1024 * KiB) await new Promise((resolve) => setTimeout(resolve, 5));
    // What the kept copy has been sent (a chunk may be on its way to it).
    expect(limiter.sharing.bytes).toBeGreaterThanOrEqual(body.pulled() - 64 * KiB);
  });

  it('bodies read at once never hold more than maxBytes together: the oldest goes, and is read no further', async () => {
    const limiter = cached({ maxBytes: 1024 * KiB });
    const bodies = [0, 1, 2, 3].map(() => slowBody(768 * KiB));
    let i = 0;
    const api = endpoint(() => new Response(bodies[i++]?.stream ?? null));
    for (const url of ['/a', '/b', '/c', '/d'])
      await firstValueFrom(api.get$.pipe(rateLimit(limiter, { url, headers: {} })));
    const total = () => bodies.reduce((sum, b) => sum + b.pulled(), 0);
    for (let last = -1; last !== total();) {
      last = total();
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(limiter.sharing.bytes).toBeLessThanOrEqual(1024 * KiB);
    }
    // Read in full, the four would have been 3 MiB; one 768 KiB body is all that fits.
    expect(total()).toBeLessThan(4 * 768 * KiB);
    expect(limiter.sharing.size).toBe(1);
    expect(limiter.sharing.bytes).toBe(768 * KiB);
  });
});
