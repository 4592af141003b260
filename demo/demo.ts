/**
 * `npm run demo`: starts a local rate-limited API, sends 120 requests from 30 concurrent
 * streams through one limiter, shows the limiter's state live, then a summary. No network.
 */
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { fromFetch } from 'rxjs/fetch';
import { createLimiter, logEvents, providers, rateLimit, type LimiterSnapshot } from '../lib/index.js';
import { startDemoServer } from './server.js';

const LIMIT = 20;
const WINDOW_MS = 1000;
const REQUESTS = 120;
const STREAMS = 30;
const TOKEN = 'demo-token-not-a-secret';

function line(s: LimiterSnapshot, done: number): string {
  const b = s.buckets[0];
  const budget = b ? `${b.remaining ?? '?'}/${b.limit ?? '?'}` : '?';
  const reset = b?.resetAt ? `${Math.max(0, (b.resetAt - Date.now()) / 1000).toFixed(1)} s` : '-';
  const bar = '#'.repeat(Math.round((done / REQUESTS) * 30)).padEnd(30, '.');
  return `[${bar}] ${String(done).padStart(3)}/${REQUESTS}  budget ${budget.padEnd(6)} resets in ${reset.padEnd(6)} queued ${String(s.queued).padStart(3)}  in flight ${String(s.inFlight).padStart(2)}${s.pausedUntil ? '  PAUSED' : ''}`;
}

async function main(): Promise<void> {
  const server = await startDemoServer(LIMIT, WINDOW_MS);
  const limiter = createLimiter({ provider: providers.generic({ resetUnit: 'unix-seconds' }), key: TOKEN });
  const tty = process.stdout.isTTY;
  logEvents(limiter.events$, { warn: (m) => console.log(`\n${m}`), error: (m) => console.log(`\n${m}`) });

  console.log(
    `Local API: ${LIMIT} requests per ${WINDOW_MS} ms per token. Sending ${REQUESTS} requests from ${STREAMS} streams.\n`,
  );
  let done = 0;
  const started = Date.now();
  const ticker = setInterval(
    () => {
      const text = line(limiter.snapshot, done);
      if (tty) process.stdout.write(`\r${text}`);
      else console.log(text);
    },
    tty ? 100 : 500,
  );

  const statuses = await lastValueFrom(
    from(Array.from({ length: REQUESTS }, (_, i) => i)).pipe(
      mergeMap(
        (i) =>
          fromFetch(`${server.url}/items/${i}`, { headers: { authorization: `Bearer ${TOKEN}` } }).pipe(
            rateLimit(limiter, { method: 'GET', url: `/items/${i}` }),
            mergeMap(async (res) => {
              done++;
              await res.arrayBuffer();
              return res.status;
            }),
          ),
        STREAMS,
      ),
      toArray(),
    ),
  );
  clearInterval(ticker);
  const elapsed = (Date.now() - started) / 1000;
  if (tty) process.stdout.write(`\r${line(limiter.snapshot, done)}\n`);

  const stats = [...server.stats.values()][0] ?? { ok: 0, limited: 0 };
  // The server's windows are aligned to the clock: the last of ceil(N/L) windows starts
  // (windows - 1) boundaries after the one we started in. Nothing can finish before that.
  const windows = Math.ceil(REQUESTS / LIMIT);
  const firstBoundary = Math.ceil(started / WINDOW_MS) * WINDOW_MS;
  const minimum = (firstBoundary + (windows - 2) * WINDOW_MS - started) / 1000;
  console.log('\nSummary');
  console.log(`  requests done      ${statuses.filter((s) => s === 200).length}/${REQUESTS}`);
  console.log(`  429s at the server ${stats.limited}`);
  console.log(
    `  elapsed            ${elapsed.toFixed(2)} s (the limit allows no less than ${minimum.toFixed(2)} s: ${REQUESTS} at ${LIMIT} per window; ratio ${(elapsed / minimum).toFixed(3)})`,
  );
  console.log(`  limiter totals     ${JSON.stringify(limiter.snapshot.totals)}`);
  await server.close();
  if (statuses.some((s) => s !== 200) || stats.limited > 0) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
