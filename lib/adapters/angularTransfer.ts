/**
 * The record and replay of a server render's responses: the server's limiter remembers the last
 * responses it read, reduced to the headers its provider reads, and the browser's limiter reads
 * them as if it had received them (carried by `TransferState`, see `angularDi.ts`).
 */
import type { HttpHeaders } from '@angular/common/http';
import type { Limiter } from '../core/limiter.js';
import { responseLike, type ResponseLike } from '../core/response.js';
import { toResponseLike } from './angularResponse.js';

/** One response a limiter read, reduced to what its provider reads: for the browser's limiter (TransferState). */
export interface RecordedResponse {
  readonly status: number;
  /** Method and URL without query (which may carry a token), for the provider's choice of buckets. */
  readonly method: string;
  readonly url: string;
  /** The headers the provider read (lower-case names), and nothing else. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** Per limiter, its last responses (status and headers, unread until needed). */
const lastResponses = new WeakMap<
  Limiter,
  Array<{ status: number; headers: HttpHeaders; method: string; url: string }>
>();
/** Responses kept per limiter: enough for reads and writes that count against other buckets. */
const KEPT = 4;

/** Notes a response `limiter` read, keeping the last few. */
export function remember(
  limiter: Limiter,
  status: number,
  headers: HttpHeaders,
  where: { method: string; url: string },
) {
  let list = lastResponses.get(limiter);
  if (!list) lastResponses.set(limiter, (list = []));
  list.push({ status, headers, ...where });
  if (list.length > KEPT) list.shift();
}

/**
 * @internal The last responses `limiter` read through an interceptor, oldest first, each
 * reduced to the headers its provider reads (never cookies, never the request's query).
 */
export function recordedResponses(limiter: Limiter): RecordedResponse[] {
  return (lastResponses.get(limiter) ?? []).map(({ status, headers, method, url }) => {
    const seen = new Map<string, string>();
    const res = toResponseLike(status, headers, null);
    const recording: ResponseLike = {
      status,
      header: (name) => {
        const value = res.header(name);
        if (value !== undefined) seen.set(name.toLowerCase(), value.slice(0, 1024));
        return value;
      },
    };
    for (const m of [method, 'POST']) {
      try {
        limiter.provider.read(recording, { method: m, url });
      } catch {
        // A provider that throws reads nothing.
      }
    }
    recording.header('retry-after');
    return { status, method, url, headers: [...seen] };
  });
}

/** @internal Lets `limiter` read `recorded` as if it had received them, in order. */
export function replayResponses(limiter: Limiter, recorded: readonly RecordedResponse[]): void {
  for (const r of recorded) {
    const headers = new Map(r.headers.map(([name, value]) => [name, value]));
    limiter.observe(responseLike(r.status, { get: (name: string) => headers.get(name.toLowerCase()) ?? null }), {
      method: r.method,
      url: r.url,
    });
  }
}
