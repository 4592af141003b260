/**
 * The live view of the demo (`npm run demo -- --web`): a small HTTP server on loopback (node:http, no framework)
 * that subscribes to each limiter's `state$` and `events$` and streams them to a self-contained page
 * (demo/web/page.html: HTML, CSS and JS inline, nothing loaded from elsewhere) as server-sent events.
 *
 * Only `LimiterSnapshot`s (plain data: a key label, never the key), progress counters and event lines (paths
 * without query strings) leave the process. Reusable: the browser test starts the demo, and any script can call
 * {@link startLiveView} with its own limiters.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { merge, map, type Observable, type Subscription } from 'rxjs';
import { describeEvent, type LimiterEvent, type LimiterEventType, type LimiterSnapshot } from '../lib/index.js';

/** What the view needs of a limiter (a `Limiter` fits). */
export interface LiveLimiter {
  readonly state$: Observable<LimiterSnapshot>;
  readonly events$: Observable<LimiterEvent>;
  /** The current state, computed now (refills buckets whose reset has passed). */
  readonly snapshot: LimiterSnapshot;
  pause(ms: number): void;
}

/** Requests of a source's workload: ended well, ended otherwise, planned in all. */
export interface LiveProgress {
  readonly done: number;
  readonly failed: number;
  readonly total: number;
  /** The round running now (1-based), when the workload repeats. */
  readonly round?: number;
}

export interface LiveSource {
  /** Short stable id, e.g. `pipedrive`. */
  readonly id: string;
  /** Human label, e.g. `Pipedrive advanced (40/2 s)`. */
  readonly label: string;
  readonly limiter: LiveLimiter;
  /** Read at each push; omit when the view should show the limiter only. */
  readonly progress?: () => LiveProgress;
}

/** One line of the summary shown when the run has finished. */
export interface LiveSummaryRow {
  readonly id: string;
  readonly ok: number;
  readonly refused: number;
  readonly rateLimited: number;
  readonly blocked: number;
  readonly saved: number;
  readonly elapsedMs: number;
}

/** The state of the whole run. */
export interface LiveRun {
  readonly phase: 'starting' | 'running' | 'finished';
  readonly rounds: number;
  /** Epoch ms. */
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly summary: readonly LiveSummaryRow[];
}

export interface LiveViewOptions {
  readonly sources: readonly LiveSource[];
  /** @default 0 (a free port) */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** Page title. @default 'rx-ratelimit live view' */
  readonly title?: string;
  /** Shortest time between two pushes of one source's state. @default 100 */
  readonly intervalMs?: number;
  /** Allow the page's "pause" buttons (`limiter.pause(ms)`). @default true */
  readonly allowPause?: boolean;
}

export interface LiveView {
  /** e.g. `http://127.0.0.1:54321/` */
  readonly url: string;
  readonly server: Server;
  /** Updates the run's state (phase, rounds, summary) and tells every page. */
  setRun(patch: Partial<LiveRun>): void;
  /** Pushes every source's current state now (e.g. once the workload has ended). */
  refresh(): void;
  /** Ends every stream and stops listening. */
  close(): Promise<void>;
}

/** Event types worth a line on the page (the per-request ones are noise at this rate). */
const NOTABLE: ReadonlySet<LimiterEventType> = new Set<LimiterEventType>([
  'rate-limited',
  'paused',
  'resumed',
  'quota-exhausted',
  'queue-full',
  'blocked',
  'unblocked',
  'limit-changed',
  'store-unavailable',
  'store-recovered',
]);
const MAX_EVENTS_PER_PUSH = 8;
const MAX_PAUSE_MS = 60_000;

interface Slot {
  readonly source: LiveSource;
  snapshot: LimiterSnapshot | null;
  dirty: boolean;
  progressKey: string;
  events: Array<{ type: LimiterEventType; at: number; text: string }>;
  dropped: number;
}

const PAGE = new URL('./web/page.html', import.meta.url);

/** Starts the live view server. Resolves once it listens; print `view.url`. */
export async function startLiveView(options: LiveViewOptions): Promise<LiveView> {
  const title = options.title ?? 'rx-ratelimit live view';
  const page = readFileSync(PAGE, 'utf8').replaceAll('{{title}}', escapeHtml(title));
  const allowPause = options.allowPause ?? true;
  const slots = new Map<string, Slot>(
    options.sources.map((source) => [
      source.id,
      { source, snapshot: null, dirty: false, progressKey: '', events: [], dropped: 0 },
    ]),
  );
  let run: LiveRun = { phase: 'starting', rounds: 1, startedAt: null, finishedAt: null, summary: [] };
  const clients = new Set<ServerResponse>();

  const subscriptions: Subscription[] = [];
  subscriptions.push(
    merge(
      ...[...slots.values()].map((slot) => slot.source.limiter.state$.pipe(map((s) => [slot, s] as const))),
    ).subscribe(([slot, snapshot]) => {
      slot.snapshot = snapshot;
      slot.dirty = true;
    }),
  );
  for (const slot of slots.values())
    subscriptions.push(
      slot.source.limiter.events$.subscribe((event) => {
        if (!NOTABLE.has(event.type)) return;
        if (slot.events.length >= MAX_EVENTS_PER_PUSH) {
          slot.dropped++;
          return;
        }
        slot.events.push({ type: event.type, at: event.at, text: eventLine(event) });
      }),
    );

  const send = (res: ServerResponse, event: string, data: unknown): void => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const broadcast = (event: string, data: unknown): void => {
    for (const res of clients) send(res, event, data);
  };
  const stateOf = (slot: Slot) => ({
    id: slot.source.id,
    snapshot: slot.snapshot,
    progress: slot.source.progress?.() ?? null,
    serverNow: Date.now(),
  });
  const init = () => ({
    title,
    allowPause,
    serverNow: Date.now(),
    run,
    sources: [...slots.values()].map((slot) => ({ id: slot.source.id, label: slot.source.label })),
    states: [...slots.values()].map(stateOf),
  });

  /** Pushes what changed since the last push: states, progress, notable events. */
  const flush = (): void => {
    for (const slot of slots.values()) {
      const progress = slot.source.progress?.();
      const progressKey = progress
        ? `${progress.done}/${progress.failed}/${progress.total}/${progress.round ?? ''}`
        : '';
      if (slot.dirty || progressKey !== slot.progressKey) {
        slot.dirty = false;
        slot.progressKey = progressKey;
        broadcast('state', stateOf(slot));
      }
      if (slot.events.length) {
        broadcast('events', { id: slot.source.id, events: slot.events, dropped: slot.dropped });
        slot.events = [];
        slot.dropped = 0;
      }
    }
  };
  const refresh = (): void => {
    // `snapshot` recomputes the state now (a reset that has passed refills), which also pushes it to state$.
    for (const slot of slots.values()) void slot.source.limiter.snapshot;
    flush();
  };
  const flushTimer = setInterval(flush, options.intervalMs ?? 100);
  // Idle limiters push nothing; a reset that passes meanwhile should still show.
  const refreshTimer = setInterval(refresh, 1000);
  const keepAlive = setInterval(() => {
    for (const res of clients) res.write(': keep-alive\n\n');
  }, 15_000);

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e: unknown) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e));
    }
  });

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        // Everything is inline; nothing may be fetched from elsewhere.
        'content-security-policy':
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
      });
      res.end(page);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write('retry: 1000\n\n');
      send(res, 'init', init());
      clients.add(res);
      res.on('close', () => clients.delete(res));
      return;
    }
    if (req.method === 'GET' && url.pathname === '/state.json') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(init()));
      return;
    }
    if (req.method === 'POST' && url.pathname === '/pause') {
      // A custom header makes a cross-origin request need a preflight, which is never granted here.
      const slot = slots.get(url.searchParams.get('id') ?? '');
      const ms = Number(url.searchParams.get('ms') ?? '3000');
      if (!allowPause || req.headers['x-live-view'] !== '1') {
        res.writeHead(403).end();
      } else if (!slot || !Number.isFinite(ms) || ms <= 0 || ms > MAX_PAUSE_MS) {
        res.writeHead(400).end();
      } else {
        slot.source.limiter.pause(ms);
        refresh();
        res.writeHead(204).end();
      }
      req.resume();
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;

  return {
    url: `http://${host}:${port}/`,
    server,
    setRun(patch) {
      run = { ...run, ...patch };
      flush();
      broadcast('run', run);
    },
    refresh,
    close() {
      clearInterval(flushTimer);
      clearInterval(refreshTimer);
      clearInterval(keepAlive);
      for (const s of subscriptions) s.unsubscribe();
      for (const res of clients) res.end();
      clients.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** A short line for the page; times relative to the event (the page shows when it happened). */
export function eventLine(e: LimiterEvent): string {
  const req = 'request' in e && e.request ? `${e.request.method} ${e.request.path ?? ''}`.trim() : '';
  const until = (at: number) => duration(at - e.at);
  switch (e.type) {
    case 'rate-limited':
      return `${req} got ${e.status}; retry in ${until(e.retryAt)} (${e.source}${e.bucket ? `, ${e.bucket}` : ''})`;
    case 'paused':
      return e.reason === 'bucket-empty'
        ? `${e.bucket ?? 'a bucket'} empty: waits ${until(e.until)}`
        : `paused ${until(e.until)} (${e.reason}${e.bucket ? `, ${e.bucket}` : ''})`;
    case 'quota-exhausted':
      return `${req} refused: ${e.bucket} empty for ${until(e.resumeAt)}`;
    case 'blocked':
      return `BLOCKED (HTTP ${e.status}) ${e.until === null ? 'until unblock()' : `for ${until(e.until)}`}`;
    case 'limit-changed':
      return `${e.bucket}: limit ${e.from ?? '?'} -> ${e.to}`;
    // The store's error text is left out: it may name a host or more.
    case 'store-unavailable':
      return `${e.store} store unavailable: spending the local share`;
    default:
      return describeEvent(e).replace(/^\[[^\]]*\]\s*/, '');
  }
}

function duration(ms: number): string {
  if (ms < 60_000) return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
