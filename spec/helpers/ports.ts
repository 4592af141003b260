/**
 * Free loopback ports for the servers tests start (Redis, a Cluster). No Jest import: the
 * worker processes the Redis tests fork (spec/integration/redis/fork.ts) load it too.
 */
import { createServer } from 'node:net';

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A loopback TCP port that was free a moment ago. `clusterBus`: the port 10,000 above it (where a
 * Redis Cluster node listens to its peers) was free too. Both lie below Linux's ephemeral range
 * (32,768 on): a port there may be taken by any outgoing connection of the suite between this
 * check and the server's start.
 */
export async function freePort(clusterBus = false): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 10_000 + Math.floor(Math.random() * 12_000);
    if ((await canListen(port)) && (!clusterBus || (await canListen(port + 10_000)))) return port;
  }
  throw new Error('no free loopback port found in 200 tries');
}
