/**
 * Webhook receiver: accepts each event as it arrives and enqueues it in BullMQ at once. The
 * provider's budget does not matter here: events wait in Redis until a worker (worker.ts) can
 * spend budget on them. The event's id is the job id, so a provider that delivers the same
 * event twice does not make it run twice.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=3000 npx tsx examples/bullmq-webhooks/receiver.ts
 *   curl -X POST localhost:3000/webhooks -d '{"id":"evt_1","projectId":42}'
 *
 * (In your app, import from 'rx-ratelimit' instead of the relative paths of this repository.)
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';

/** What a webhook delivers, as far as this example cares. */
export interface WebhookEvent {
  readonly id: string;
  readonly projectId: number;
}

export interface WebhookReceiver {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts an HTTP server: `POST /webhooks` with a JSON event enqueues it and answers 202. */
export async function startWebhookReceiver(queue: Queue, port = 0): Promise<WebhookReceiver> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/webhooks') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let event: WebhookEvent;
      try {
        event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookEvent;
        if (typeof event.id !== 'string') throw new TypeError('id');
      } catch {
        res.writeHead(400).end();
        return;
      }
      queue.add('webhook', event, { jobId: event.id }).then(
        () => res.writeHead(202).end(),
        () => res.writeHead(503).end(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/webhooks`,
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const url = new URL(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
  const queue = new Queue('webhooks', { connection: { host: url.hostname, port: Number(url.port || 6379) } });
  const receiver = await startWebhookReceiver(queue, Number(process.env['PORT'] ?? 3000));
  console.log(`webhook receiver on ${receiver.url}`);
}
