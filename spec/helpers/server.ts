import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the test server saw it. */
export interface RecordedRequest {
  /** 1-based arrival order. */
  readonly n: number;
  /** `Date.now()` when the request's body had arrived and the handler was called. */
  readonly at: number;
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  readonly authorization: string | undefined;
  readonly idempotencyKey: string | undefined;
  readonly body: string;
  /** Status answered; `undefined` until the response is sent (or if it never is). */
  status: number | undefined;
  /** The client went away before the response was sent (an aborted request). */
  aborted: boolean;
}

/** Answers one request. `record` is already in the server's log. */
export type TestHandler = (req: IncomingMessage, res: ServerResponse, record: RecordedRequest) => void | Promise<void>;

export interface TestServer {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string;
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Stops listening and closes every connection (keep-alive ones too). */
  close(): Promise<void>;
}

/** Starts an HTTP server on 127.0.0.1 on a free port. Close it in `afterEach`/`afterAll`. */
export async function startTestServer(handler: TestHandler): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const record: RecordedRequest = {
        n: requests.length + 1,
        at: Date.now(),
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        authorization: req.headers.authorization,
        idempotencyKey: one(req.headers['idempotency-key']),
        body: Buffer.concat(chunks).toString('utf8'),
        status: undefined,
        aborted: false,
      };
      requests.push(record);
      res.on('finish', () => {
        record.status = res.statusCode;
      });
      res.on('close', () => {
        if (!res.writableFinished) record.aborted = true;
      });
      Promise.resolve(handler(req, res, record)).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/** What to answer instead of the fixed-window logic (see {@link FixedWindowApiOptions.override}). */
export interface Answer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
}

export interface FixedWindowApiOptions {
  /** Requests allowed per window (every request counts, 429s too). */
  readonly limit: number;
  /** Window length, ms; windows start at multiples of it on the server's clock. */
  readonly windowMs: number;
  /** Time the server takes before answering, ms (or per request). @default 0 */
  readonly latencyMs?: number | ((record: RecordedRequest) => number);
  /**
   * Answer a request yourself (after it was counted); return `undefined` for the normal answer.
   * The rate-limit headers of the window are added unless yours set them.
   */
  readonly override?: (record: RecordedRequest) => Answer | undefined;
}

/** A {@link TestHandler} plus the timers it still holds (cleared by `dispose`). */
export interface FixedWindowApi extends TestHandler {
  /** Requests counted per window index (`Math.floor(at / windowMs)`). */
  perWindow(): Map<number, number>;
  /** Clears pending answers (a test that ends with requests in flight). */
  dispose(): void;
}

/**
 * A fixed-window API: counts requests per window and answers 200 JSON with
 * `X-RateLimit-Limit/-Remaining/-Reset` (reset in unix seconds) and `Date`, or 429 with
 * `Retry-After` (seconds until the window ends, at least 1) once the window's count passes
 * `limit`.
 */
export function fixedWindowApi(opts: FixedWindowApiOptions): FixedWindowApi {
  const counts = new Map<number, number>();
  const timers = new Set<NodeJS.Timeout>();

  const answer = (res: ServerResponse, record: RecordedRequest, window: number, count: number) => {
    const windowEnd = (window + 1) * opts.windowMs;
    const limitHeaders: Record<string, string> = {
      'X-RateLimit-Limit': String(opts.limit),
      'X-RateLimit-Remaining': String(Math.max(0, opts.limit - count)),
      'X-RateLimit-Reset': String(Math.ceil(windowEnd / 1000)),
      Date: new Date(Date.now()).toUTCString(),
    };
    const custom = opts.override?.(record);
    const a: Answer =
      custom ??
      (count > opts.limit
        ? {
            status: 429,
            headers: { 'Retry-After': String(Math.max(1, Math.ceil((windowEnd - Date.now()) / 1000))) },
            body: { error: 'rate limited', n: record.n },
          }
        : { status: 200, body: { ok: true, n: record.n, method: record.method, path: record.url.split('?')[0] } });
    const headers: Record<string, string> = { ...limitHeaders, ...a.headers };
    const body = typeof a.body === 'string' ? a.body : a.body === undefined ? '' : JSON.stringify(a.body);
    if (
      a.body !== undefined &&
      typeof a.body !== 'string' &&
      !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')
    ) {
      headers['Content-Type'] = 'application/json';
    }
    if (res.destroyed) return;
    res.writeHead(a.status, headers);
    res.end(body);
  };

  const handler: TestHandler = (_req, res, record) => {
    const window = Math.floor(record.at / opts.windowMs);
    const count = (counts.get(window) ?? 0) + 1;
    counts.set(window, count);
    const latency = typeof opts.latencyMs === 'function' ? opts.latencyMs(record) : (opts.latencyMs ?? 0);
    if (latency <= 0) {
      answer(res, record, window, count);
      return;
    }
    const t = setTimeout(() => {
      timers.delete(t);
      answer(res, record, window, count);
    }, latency);
    timers.add(t);
  };

  return Object.assign(handler, {
    perWindow: () => new Map(counts),
    dispose: () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  });
}

/** Arrivals per window of `windowMs`, from a server's request log. */
export function arrivalsPerWindow(requests: readonly RecordedRequest[], windowMs: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of requests) {
    const w = Math.floor(r.at / windowMs);
    out.set(w, (out.get(w) ?? 0) + 1);
  }
  return out;
}

/**
 * Checks a run against a fixed window: `over` lists the windows that got more than `limit`
 * arrivals (empty when paced), and `log` shows every arrival (ms within its window, status)
 * so that a failure explains itself.
 */
export function pacingReport(requests: readonly RecordedRequest[], limit: number, windowMs: number) {
  const perWindow = arrivalsPerWindow(requests, windowMs);
  const over = [...perWindow].filter(([, n]) => n > limit).map(([w, n]) => `window ${w}: ${n}`);
  const log = requests.map(
    (r) => `${Math.floor(r.at / windowMs)}+${r.at % windowMs}ms ${r.method} ${r.url.split('?')[0]} ${r.status}`,
  );
  return { windows: perWindow.size, over, log };
}

/** Resolves after `ms` of real time. */
export const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
