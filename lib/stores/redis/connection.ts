/**
 * The store's connections to Redis: the scripts defined on the user's client, calls with a
 * timeout, and the one pub/sub connection shared by every session of a store.
 */
import type { Redis, Cluster } from 'ioredis';

import { ACQUIRE, BLOCK, EXHAUST, OBSERVE, PAUSE, RELEASE, REPAIR, RESUME, UNBLOCK } from './scripts.js';

/** Script commands as `defineCommand` adds them (numKeys first). */
export interface ScriptClient {
  rxrlAcquire(numKeys: number, ...args: Array<string | number>): Promise<Array<string | number>>;
  /** Whether waiting processes were woken, then per bucket the cost learnt from its drop (0: none). */
  rxrlObserve(numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  rxrlRelease(numKeys: number, ...args: Array<string | number>): Promise<number>;
  rxrlPause(numKeys: number, ...args: Array<string | number>): Promise<number>;
  rxrlExhaust(numKeys: number, ...args: Array<string | number>): Promise<number>;
  rxrlBlock(numKeys: number, ...args: Array<string | number>): Promise<number>;
  rxrlUnblock(numKeys: number, ...args: Array<string | number>): Promise<number>;
  rxrlResume(numKeys: number, ...args: Array<string | number>): Promise<number>;
  /** Keys deleted for holding another type than the store's (scriptControl.ts). */
  rxrlRepair(numKeys: number, ...args: Array<string | number>): Promise<number>;
}

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/**
 * Resolves with the call's answer, or rejects after `timeoutMs`. A process whose event loop
 * was held up (a long GC, a burst of CPU work) runs the expired timer before it reads the
 * answer already waiting on the socket: the timeout waits until the I/O of that turn has been
 * read (`setImmediate`), so that only a Redis that really did not answer counts as away. (A
 * process that declares Redis away while the others keep using it spends its local share on
 * top of theirs.)
 */
export async function within<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => setImmediate(() => reject(new TimeoutError(timeoutMs))), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The store's one pub/sub connection, shared by all its sessions: a channel per credential,
 * subscribed while any session of that credential is open. The connection is opened with the
 * first channel and closed with the last, so a store with no open limiter holds no socket (an
 * application's shutdown does not hang on it). Each limiter used to open its own: 20 limiters
 * were 20 more Redis clients.
 */
export class SharedSubscriber {
  private connection: Redis | Cluster | undefined;
  private readonly channels = new Map<string, Set<(message: string) => void>>();
  private readonly cluster: boolean;

  constructor(private readonly client: Redis | Cluster) {
    this.cluster = isCluster(client);
  }

  /** Calls `listener` with each message on `channel` until the returned function is called. */
  add(channel: string, listener: (message: string) => void): () => void {
    let set = this.channels.get(channel);
    if (!set) {
      set = new Set();
      this.channels.set(channel, set);
      const sub = this.open();
      // Errors surface through the store's own calls (store-unavailable); this connection only
      // speeds up waking, and ioredis resubscribes by itself after a reconnect.
      (this.cluster ? sub.ssubscribe(channel) : sub.subscribe(channel)).catch(() => undefined);
    }
    const listeners = set;
    listeners.add(listener);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      listeners.delete(listener);
      if (listeners.size > 0 || this.channels.get(channel) !== listeners) return;
      this.channels.delete(channel);
      const sub = this.connection;
      if (!sub) return;
      if (this.channels.size === 0) {
        this.connection = undefined;
        sub.disconnect();
      } else {
        (this.cluster ? sub.sunsubscribe(channel) : sub.unsubscribe(channel)).catch(() => undefined);
      }
    };
  }

  private open(): Redis | Cluster {
    if (this.connection) return this.connection;
    // On a Cluster, sharded pub/sub (SSUBSCRIBE, Redis 7): notices stay on the limiter's shard.
    const sub: Redis | Cluster = this.cluster
      ? (this.client as Cluster).duplicate([], { shardedSubscribers: true })
      : (this.client as Redis).duplicate();
    sub.on('error', () => undefined);
    sub.on(this.cluster ? 'smessage' : 'message', (channel: string, message: string) => {
      const listeners = this.channels.get(channel);
      if (listeners) for (const l of [...listeners]) l(message);
    });
    this.connection = sub;
    return sub;
  }
}

/** Is `client` an ioredis `Cluster` (its change notices then use sharded pub/sub)? */
function isCluster(client: Redis | Cluster): boolean {
  return (client as { isCluster?: unknown }).isCluster === true;
}

/**
 * A script for Redis Cluster: its change notice goes out with `SPUBLISH` (sharded pub/sub,
 * Redis 7), which stays on the shard of the limiter's slot, instead of `PUBLISH`, which the
 * cluster broadcasts to every node. `pcall`: on an older cluster the notice is lost (the
 * others learn the change at their next call) but the script still does its work.
 */
function sharded(lua: string): string {
  return lua.replaceAll("redis.call('PUBLISH', ", "redis.pcall('SPUBLISH', ");
}

export function defineScripts(client: Redis | Cluster): void {
  const c = client as unknown as Partial<ScriptClient>;
  if (typeof c.rxrlAcquire === 'function' && typeof c.rxrlRepair === 'function') return;
  const lua = isCluster(client) ? sharded : (script: string) => script;
  client.defineCommand('rxrlAcquire', { lua: lua(ACQUIRE) });
  client.defineCommand('rxrlObserve', { lua: lua(OBSERVE) });
  client.defineCommand('rxrlRelease', { lua: lua(RELEASE) });
  client.defineCommand('rxrlPause', { lua: lua(PAUSE) });
  client.defineCommand('rxrlExhaust', { lua: lua(EXHAUST) });
  client.defineCommand('rxrlBlock', { lua: lua(BLOCK) });
  client.defineCommand('rxrlUnblock', { lua: lua(UNBLOCK) });
  client.defineCommand('rxrlResume', { lua: lua(RESUME) });
  client.defineCommand('rxrlRepair', { lua: REPAIR });
}
