/**
 * A webhook worker process for bullmq.spec.ts: runs examples/bullmq-webhooks/worker.ts against
 * the simulator, reports each processed job over IPC, and closes gracefully on SIGTERM. With
 * `waitForGo` it loads, says `booted`, and starts its worker only when the parent says `go`
 * (as worker.ts does): a restart then costs no process start, which took 9 s at load 15.
 */
import { Redis } from 'ioredis';

import { providers } from '../../../lib/index.js';
import { startWebhookWorker, workerLimiter } from '../../../examples/bullmq-webhooks/worker.js';

interface Job {
  readonly redisPort: number;
  readonly queueName: string;
  readonly apiUrl: string;
  readonly token: string;
  readonly limit: number;
  readonly windowMs: number;
  readonly waitForGo?: boolean;
}
const job = JSON.parse(process.env['RXRL_JOB'] ?? '{}') as Job;

function start(): void {
  const connection = { host: '127.0.0.1', port: job.redisPort, maxRetriesPerRequest: null };
  const redis = new Redis(connection);
  const limiter = workerLimiter(
    redis,
    job.token,
    'rx-ratelimit-test-secret',
    providers.procore({ hints: { hourly: { limit: job.limit, windowMs: job.windowMs } } }),
  );
  const worker = startWebhookWorker({
    connection,
    queueName: job.queueName,
    apiUrl: job.apiUrl,
    token: job.token,
    limiter,
    onProcessed: (event) => process.send?.({ type: 'processed', id: event.id, at: Date.now() }),
  });
  let deferred = 0;
  limiter.events$.subscribe((e) => {
    if (e.type === 'quota-exhausted') deferred++;
    // Shown beside the spec's phases when it fails: whether this process went to its local share.
    if (e.type === 'store-unavailable' || e.type === 'store-recovered')
      process.send?.({ type: e.type, at: Date.now() });
  });
  worker
    .waitUntilReady()
    .then(() => process.send?.({ type: 'ready' }))
    .catch((error: unknown) => process.send?.({ type: 'error', error: String(error) }));

  process.once('SIGTERM', () => {
    worker
      .close()
      .then(async () => {
        await limiter.close();
        redis.disconnect();
        process.send?.({ type: 'closed', deferred }, () => process.disconnect());
      })
      .catch(() => process.exit(1));
  });
}

if (job.waitForGo) {
  process.on('message', (msg: unknown) => {
    if (msg === 'go') start();
  });
  process.send?.({ type: 'booted' });
} else {
  start();
}
