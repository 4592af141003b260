/**
 * `rx-ratelimit/redis`: a store that keeps a limiter's buckets in Redis, so that any number of
 * processes using one credential admit requests against one budget.
 *
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { redisStore } from 'rx-ratelimit/redis';
 *
 * const token = process.env['API_TOKEN'] ?? '';
 * const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
 * const store = redisStore({ client: redis, secret: process.env.RATE_LIMIT_SECRET! });
 * const limiter = createLimiter({ provider: providers.procore(), key: token, store });
 * ```
 *
 * What is atomic: admission across all of a request's buckets (one Lua script), the merge of
 * each response's figures, pauses. Time is Redis `TIME`. See docs/distributed.md.
 *
 * @packageDocumentation
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Redis, Cluster } from 'ioredis';
import * as z from 'zod/mini';

import { RollingBucket } from '../../core/bucket.js';
import { parseOptions, secretSchema } from '../../core/options.js';
import type {
  LimiterStore,
  StoreAcquireOptions,
  StoreBlock,
  StoreBucketSpec,
  StoreBucketState,
  StoreContext,
  StoreGrant,
  StoreReading,
  StoreSession,
} from '../../core/store.js';
import { projectReset, resetTolerance } from '../../core/window.js';
import { ACQUIRE, BLOCK, EXHAUST, OBSERVE, PAUSE, RELEASE, RESUME, UNBLOCK } from './scripts.js';

/** Options of {@link redisStore}. */
export interface RedisStoreOptions {
  /** An ioredis client (`new Redis(…)` or `new Cluster(…)`); the store never closes it. */
  readonly client: Redis | Cluster;
  /**
   * The secret (16+ characters) that keys the hash naming a credential's Redis keys. Required,
   * and the same in every process that shares a budget (they find each other's keys by it):
   * e.g. `process.env.RATE_LIMIT_SECRET`. Whoever can list the Redis keys but lacks it cannot
   * test guesses of a key against their names (an unkeyed hash of a 6-digit PIN is reversed in
   * under a second). Changing it starts every budget afresh under new names. Never shown.
   */
  readonly secret: string;
  /** Prefix of every key. @default 'rxrl:' */
  readonly prefix?: string;
  /**
   * Keys expire this long after their last write (an unused limiter leaves nothing behind),
   * except the pause hash of a block until `unblock()` (`blockCooldownMs: Infinity`), which
   * lasts until `unblock()` or `resume()`, as the block does in every limiter. @default 86_400_000 (a day)
   */
  readonly keyTtlMs?: number;
  /**
   * A request admitted by a process that then died stops counting as in flight after this
   * long. Longer than your slowest request. @default 60_000
   */
  readonly leaseMs?: number;
  /** A Redis call slower than this counts as Redis being unavailable. @default 1000 */
  readonly timeoutMs?: number;
  /** While Redis is unavailable, try it again this often. @default 1000 */
  readonly retryMs?: number;
  /**
   * Listen for other processes' changes, so a waiting request goes as soon as another
   * process's response frees budget, and a block (Pipedrive's 403) met by another process stops
   * this one at once. One pub/sub connection per store (a duplicate of `client`), shared by all
   * its limiters, a channel per credential; it is open while any limiter of the store is.
   * Without it the limiter asks again every 250 ms while it waits on responses. On a `Cluster`,
   * sharded pub/sub (SSUBSCRIBE, Redis 7). @default true
   */
  readonly subscribe?: boolean;
}

const schema = z.strictObject({
  client: z.custom<Redis | Cluster>(
    (c) =>
      typeof c === 'object' &&
      c !== null &&
      typeof (c as Redis).defineCommand === 'function' &&
      typeof (c as Redis).duplicate === 'function',
    'an ioredis client (new Redis(…) or new Cluster(…))',
  ),
  secret: secretSchema,
  prefix: z._default(z.string(), 'rxrl:'),
  keyTtlMs: z._default(z.int().check(z.minimum(1000)), 86_400_000),
  leaseMs: z._default(z.int().check(z.minimum(100)), 60_000),
  timeoutMs: z._default(z.int().check(z.minimum(1)), 1000),
  retryMs: z._default(z.int().check(z.minimum(1)), 1000),
  subscribe: z._default(z.boolean(), true),
});

/** Options as a session keeps them: without the secret, which only the store's closure holds. */
type Parsed = Omit<z.output<typeof schema>, 'secret'>;

/** Script commands as `defineCommand` adds them (numKeys first). */
interface ScriptClient {
  rxrlAcquire(numKeys: number, ...args: Array<string | number>): Promise<Array<string | number>>;
  rxrlObserve(numKeys: number, ...args: Array<string | number>): Promise<number>;
  rxrlRelease(numKeys: number, ...args: Array<string | number>): Promise<number>;
  rxrlPause(numKeys: number, ...args: Array<string | number>): Promise<number>;
  rxrlExhaust(numKeys: number, ...args: Array<string | number>): Promise<number>;
  rxrlBlock(numKeys: number, ...args: Array<string | number>): Promise<number>;
  rxrlUnblock(numKeys: number, ...args: Array<string | number>): Promise<number>;
  rxrlResume(numKeys: number, ...args: Array<string | number>): Promise<number>;
}

/**
 * The key names of one limiter. The credential is hashed with HMAC-SHA-256 keyed by the store's
 * `secret` (with the provider's name) and only the first 16 hex digits are used; the braces
 * make a Redis Cluster hash tag, so all of one limiter's keys live on one slot and its scripts
 * may touch them together.
 *
 * ```ts
 * import { redisKeys } from 'rx-ratelimit/redis';
 * redisKeys('rxrl:', 'procore', 'token', process.env.RATE_LIMIT_SECRET!).bucket('hourly'); // 'rxrl:{3f2a…}:bucket:hourly'
 * ```
 */
export function redisKeys(prefix: string, provider: string, key: string, secret: string) {
  const hash = createHmac('sha256', secret)
    .update(`rx-ratelimit redis\n${provider}\n${key}`)
    .digest('hex')
    .slice(0, 16);
  const base = `${prefix}{${hash}}:`;
  return {
    hash,
    pause: `${base}pause`,
    peers: `${base}peers`,
    channel: `${base}changed`,
    /** The hash of a bucket's state. */
    bucket: (name: string) => `${base}bucket:${name}`,
    /** The sorted set of a bucket's leases in flight. */
    inflight: (name: string) => `${base}inflight:${name}`,
    /** A rolling bucket's log of admission times. */
    log: (name: string) => `${base}log:${name}`,
  };
}

/**
 * A store that keeps every bucket of a limiter in Redis, shared by all processes that use the
 * same provider and key. Pass it to `createLimiter({ store })`. If Redis is down or slow, the
 * limiter reports `store-unavailable`, spends at most its last known share of the budget
 * locally, and goes back to shared state when Redis answers (`store-recovered`).
 *
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { redisStore } from 'rx-ratelimit/redis';
 *
 * const store = redisStore({ client: new Redis(), secret: process.env.RATE_LIMIT_SECRET!, prefix: 'myapp:rl:' });
 * const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'api-token', store });
 * ```
 */
export function redisStore(options: RedisStoreOptions): LimiterStore {
  const { secret, ...opts } = parseOptions('redisStore', schema, options);
  defineScripts(opts.client);
  // One subscriber connection for every limiter of the store (a pool of thousands of tenants
  // included), opened with the first and closed with the last.
  const subscriber = opts.subscribe ? new SharedSubscriber(opts.client) : undefined;
  return {
    kind: 'redis',
    open: (ctx) => new RedisSession(opts, ctx, redisKeys(opts.prefix, ctx.provider, ctx.key, secret), subscriber),
  };
}

/**
 * The store's one pub/sub connection, shared by all its sessions: a channel per credential,
 * subscribed while any session of that credential is open. The connection is opened with the
 * first channel and closed with the last, so a store with no open limiter holds no socket (an
 * application's shutdown does not hang on it). Each limiter used to open its own: 20 limiters
 * were 20 more Redis clients.
 */
class SharedSubscriber {
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

function defineScripts(client: Redis | Cluster): void {
  const c = client as unknown as Partial<ScriptClient>;
  if (typeof c.rxrlAcquire === 'function' && typeof c.rxrlResume === 'function') return;
  const lua = isCluster(client) ? sharded : (script: string) => script;
  client.defineCommand('rxrlAcquire', { lua: lua(ACQUIRE) });
  client.defineCommand('rxrlObserve', { lua: lua(OBSERVE) });
  client.defineCommand('rxrlRelease', { lua: lua(RELEASE) });
  client.defineCommand('rxrlPause', { lua: lua(PAUSE) });
  client.defineCommand('rxrlExhaust', { lua: lua(EXHAUST) });
  client.defineCommand('rxrlBlock', { lua: lua(BLOCK) });
  client.defineCommand('rxrlUnblock', { lua: lua(UNBLOCK) });
  client.defineCommand('rxrlResume', { lua: lua(RESUME) });
}

/** What this process may spend on one bucket while Redis is away. */
interface Share {
  /** Units per window: the limit divided among the processes last seen. */
  perWindow: number;
  /** Units left in the current window. */
  left: number;
  /** Local epoch ms. */
  resetAt: number | undefined;
  windowMs: number | undefined;
  /** Units spent locally in the current window (debited from Redis when it answers again). */
  spent: number;
  /** Was the share derived from figures Redis gave (or is this process without any)? */
  readonly known: boolean;
  /**
   * A sliding window: this process's share as a memory {@link RollingBucket} (its limit is
   * `perWindow`, on the store's monotonic clock), and the times of the calls it sent locally
   * (logged in Redis when it answers again).
   */
  readonly rolling?: { readonly bucket: RollingBucket; readonly sends: number[] };
}

/** Last figures Redis gave for a bucket, on the local clock. */
interface Known {
  readonly limit: number | undefined;
  readonly remaining: number | undefined;
  readonly resetAt: number | undefined;
  readonly windowMs: number | undefined;
  /** When Redis gave them (local monotonic ms). */
  readonly at: number;
}

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

const PEER_TTL_MS = 10_000;

/**
 * Most lease ends kept to write once Redis answers again (leases granted by Redis whose end
 * could not be written, and those of calls that timed out and may still have run). Past it the
 * oldest are dropped: each then counts as in flight in Redis until its `leaseMs` lapses, no
 * longer. Without a bound, an outage of hours kept one entry per retry and replayed them all.
 */
const MAX_PENDING_ENDS = 1024;
/**
 * Most leases whose send time is kept for OBSERVE (a request's lease lives from its grant to its
 * answer or release; past it, the oldest are forgotten and their answers go without one).
 */
const MAX_SEND_TIMES = 10_000;
/** Leases ended by one RELEASE call when the pending ends are written. */
const RELEASE_BATCH = 256;
/**
 * Largest number sent to a script. Lua prints numbers with 14 significant digits, so larger
 * ones would be stored as `1e+20` and read back wrong; no count or duration we use comes near.
 */
const MAX_SCRIPT_NUMBER = 1e12;

/**
 * The store's clock, for durations only (outage times, local shares): monotonic, so a step
 * of the wall clock (NTP, a VM resumed) neither stalls nor hurries them. Never compared with
 * the limiter's clock or Redis's: every time exchanged is a duration.
 */
const monotonic = (): number => performance.now();

/** A change notice about a block ('block:<ms left or inf>:<status>', 'unblock'); `undefined` for others. */
function parseBlockNotice(message: string): StoreBlock | null | undefined {
  if (message === 'unblock') return null;
  const m = /^block:(inf|\d+):(\d+)$/.exec(message);
  if (!m) return undefined;
  return { ms: m[1] === 'inf' ? null : Number(m[1]), status: Number(m[2]) };
}

/**
 * A number for a script argument; '' for none (garbage from a provider is "says nothing").
 * Clamped to ±{@link MAX_SCRIPT_NUMBER}, so Lua stores it digit for digit.
 */
function finite(n: number | undefined): number | '' {
  return n !== undefined && Number.isFinite(n) ? Math.max(-MAX_SCRIPT_NUMBER, Math.min(MAX_SCRIPT_NUMBER, n)) : '';
}

/** A duration for a script argument: whole ms in [0, {@link MAX_SCRIPT_NUMBER}]. */
function duration(ms: number): number {
  return Number.isFinite(ms) ? Math.max(0, Math.min(MAX_SCRIPT_NUMBER, Math.ceil(ms))) : MAX_SCRIPT_NUMBER;
}

class RedisSession implements StoreSession {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly redis: ScriptClient;
  private readonly peer = randomBytes(8).toString('hex');
  private seq = 0;
  private peers = 1;
  private readonly known = new Map<string, Known>();
  private down: { since: number; retryAt: number } | undefined;
  private readonly shares = new Map<string, Share>();
  /** Spent locally in a window still running when Redis came back: debited on the next call. */
  private readonly debits = new Map<string, { units: number; resetAt: number }>();
  /**
   * Leases whose end could not be written (their response came while Redis was unavailable,
   * the write timed out, or they come from an acquire that timed out and may still have run),
   * and when: ended once Redis answers again, so that they do not count as in flight, and
   * shrink every refill, until `leaseMs` lapses. Oldest first; at most {@link MAX_PENDING_ENDS};
   * those older than `leaseMs` are dropped, as Redis has let them lapse.
   */
  private readonly pendingEnds = new Map<
    string,
    { readonly buckets: readonly StoreBucketSpec[]; readonly at: number }
  >();
  private readonly listeners = new Set<() => void>();
  private readonly blockListeners = new Set<(block: StoreBlock | null) => void>();
  private readonly resumeListeners = new Set<(options: { readonly buckets: boolean }) => void>();
  /** The last call issued before a block was lifted: a block in its answer is out of date. */
  private unblockedSeq = 0;
  /** The last call issued before a resume: a pause in its answer is out of date. */
  private resumedSeq = 0;
  /** Ends this session's subscription to its channel on the store's shared connection. */
  private unsubscribe: (() => void) | undefined;
  private closed = false;
  /**
   * When each lease of ours in flight was asked for (monotonic ms, no later than the request's
   * send): OBSERVE tells a late answer to a request sent before the window's reset from one
   * that opens a new window. Oldest first; at most {@link MAX_SEND_TIMES}.
   */
  private readonly sentAt = new Map<string, number>();
  /** The limiter's reset guard (from its last acquire): how long after its window a rolling call still counts. */
  private guardMs = 0;

  /** Only `emit`: the context's `key` is the credential, hashed into `keys` and never kept. */
  private readonly emit: StoreContext['emit'];

  constructor(
    private readonly opts: Parsed,
    ctx: StoreContext,
    keys: ReturnType<typeof redisKeys>,
    subscriber: SharedSubscriber | undefined,
  ) {
    this.keys = keys;
    this.emit = ctx.emit;
    this.redis = opts.client as unknown as ScriptClient;
    if (subscriber) this.unsubscribe = subscriber.add(keys.channel, (message) => this.onMessage(message));
  }

  async acquire(buckets: readonly StoreBucketSpec[], count: number, o: StoreAcquireOptions): Promise<StoreGrant> {
    const now = monotonic();
    this.guardMs = o.resetGuardMs;
    if (this.down && now < this.down.retryAt) return this.localGrant(buckets, count, o, now);
    const keys = [this.keys.pause, this.keys.peers];
    const seq = ++this.seq;
    const args: Array<string | number> = [
      count,
      `${this.peer}:${seq}`,
      this.opts.leaseMs,
      this.opts.keyTtlMs,
      o.resetGuardMs,
      o.coldStartConcurrency,
      this.peer,
      PEER_TTL_MS,
      this.down ? this.peers : '',
      this.reserveMs(),
    ];
    buckets.forEach((b, i) => {
      keys.push(this.keys.bucket(b.name), this.keys.inflight(b.name), this.keys.log(b.name));
      args.push(
        finite(b.limit),
        finite(b.windowMs),
        b.pacing === 'smooth' ? 1 : 0,
        ...this.debitArgs(b.name, now),
        this.down ? (this.shares.get(b.name)?.perWindow ?? 1) : '',
        b.rolling ? 1 : 0,
        o.costs?.[i] ?? 1,
      );
    });
    let reply: Array<string | number>;
    const sentAt = monotonic();
    try {
      reply = await this.call(this.redis.rxrlAcquire(keys.length, ...keys, ...args));
    } catch (error) {
      // The call may still run when Redis comes back: its leases are ended then.
      const failedAt = monotonic();
      for (let k = 1; k <= count; k++) this.pend(`${this.peer}:${seq}:${k}`, buckets, failedAt);
      return this.failed(error, buckets, count, o);
    }
    const at = monotonic();
    this.recovered(at);
    this.endPending(at);
    for (const b of buckets) this.debits.delete(b.name);
    const field = (i: number): number | undefined => {
      const v = reply[i];
      return v === '' || v === undefined ? undefined : Number(v);
    };
    const granted = Number(reply[0] ?? 0);
    const wait = Number(reply[1] ?? 0);
    const blocking = String(reply[2] ?? '');
    // A pause or block read before this process resumed the credential is out of date.
    const pauseMs = seq <= this.resumedSeq ? 0 : Number(reply[3] ?? 0);
    this.peers = Math.max(1, Number(reply[5] ?? 1));
    const blockMs = field(6);
    const blocked: StoreBlock | undefined =
      blockMs === undefined || seq <= this.unblockedSeq || seq <= this.resumedSeq
        ? undefined
        : { ms: blockMs < 0 ? null : blockMs, status: Number(reply[7] ?? 403) };
    const states: StoreBucketState[] = buckets.map((b, i) => {
      const j = 8 + i * 5;
      const state = {
        name: b.name,
        limit: field(j),
        remaining: field(j + 1),
        resetInMs: field(j + 2),
        windowMs: field(j + 3),
        admitted: field(j + 4) ?? 0,
      };
      this.known.set(b.name, {
        limit: state.limit,
        remaining: state.remaining,
        resetAt: state.resetInMs === undefined ? undefined : at + state.resetInMs,
        windowMs: state.windowMs,
        at,
      });
      return state;
    });
    const prefix = `${this.peer}:${seq}`;
    const leases = Array.from({ length: granted }, (_, k) => `${prefix}:${k + 1}`);
    for (const lease of leases) this.sentAt.set(lease, sentAt);
    for (const oldest of this.sentAt.keys()) {
      if (this.sentAt.size <= MAX_SEND_TIMES) break;
      this.sentAt.delete(oldest);
    }
    return {
      leases,
      // Redis measured the wait when it ran the script, some time between the send and now:
      // counted from the send, the next call reaches Redis about when the wait ends (Redis
      // decides then; asking early only costs another call).
      waitMs: granted > 0 || pauseMs > 0 ? undefined : wait === -1 ? undefined : Math.max(0, wait - (at - sentAt)),
      blockedBy: buckets.find((b) => this.keys.bucket(b.name) === blocking)?.name,
      pause: pauseMs > 0 ? { ms: pauseMs, reason: String(reply[4] ?? '') } : undefined,
      buckets: states,
      blocked,
    };
  }

  observe(lease: string | undefined, readings: readonly StoreReading[], buckets: readonly StoreBucketSpec[]): void {
    const sent = lease === undefined ? undefined : this.sentAt.get(lease);
    if (lease !== undefined) this.sentAt.delete(lease);
    if (this.down || (lease !== undefined && lease.startsWith('local:'))) {
      this.observeLocally(readings);
      if (this.down) {
        if (lease !== undefined && !lease.startsWith('local:')) this.pend(lease, buckets, monotonic());
        return;
      }
    }
    const keys: string[] = [];
    const args: Array<string | number> = [lease === undefined || lease.startsWith('local:') ? '' : lease];
    const sentAgo = sent === undefined ? '' : duration(monotonic() - sent);
    args.push(this.opts.keyTtlMs, this.keys.channel, sentAgo, this.guardMs, this.opts.leaseMs);
    for (const b of buckets) {
      const r = readings.find((x) => x.name === b.name);
      keys.push(this.keys.bucket(b.name), this.keys.inflight(b.name), this.keys.log(b.name));
      const has = r && (r.limit !== undefined || r.remaining !== undefined || r.resetInMs !== undefined);
      args.push(
        has ? 1 : 0,
        finite(r?.limit),
        finite(r?.remaining),
        finite(r?.resetInMs === undefined ? undefined : Math.ceil(r.resetInMs)),
        finite(r?.windowMs),
        r?.index ?? '',
        finite(b.limit),
        finite(b.windowMs),
        b.rolling ? 1 : 0,
      );
    }
    keys.push(this.keys.pause);
    const shared = lease === undefined || lease.startsWith('local:') ? undefined : [lease];
    this.fire(this.redis.rxrlObserve(keys.length, ...keys, ...args), shared, buckets);
  }

  release(lease: string, buckets: readonly StoreBucketSpec[]): void {
    this.sentAt.delete(lease);
    if (lease.startsWith('local:')) return;
    if (this.down) {
      this.pend(lease, buckets, monotonic());
      return;
    }
    this.releaseAll([lease], buckets);
  }

  pause(ms: number, reason: string): void {
    // A pause already over (a Retry-After date in the past) is none: nothing to write.
    if (!(ms > 0)) return;
    this.fire(this.redis.rxrlPause(1, this.keys.pause, duration(ms), reason, this.opts.keyTtlMs, this.keys.channel));
  }

  resume(options: { readonly buckets: boolean }): void {
    this.resumedSeq = this.seq;
    if (options.buckets) this.unblockedSeq = this.seq;
    this.fire(
      this.redis.rxrlResume(1, this.keys.pause, this.keys.channel, this.opts.keyTtlMs, options.buckets ? 1 : 0),
    );
  }

  onResume(listener: (options: { readonly buckets: boolean }) => void): () => void {
    this.resumeListeners.add(listener);
    return () => this.resumeListeners.delete(listener);
  }

  exhaust(bucket: StoreBucketSpec, ms: number): void {
    const share = this.shares.get(bucket.name);
    if (share) share.left = 0;
    share?.rolling?.bucket.exhaust(monotonic() + ms);
    this.fire(
      this.redis.rxrlExhaust(
        2,
        this.keys.bucket(bucket.name),
        this.keys.pause,
        duration(ms),
        this.opts.keyTtlMs,
        this.keys.channel,
        finite(bucket.limit),
        finite(bucket.windowMs),
        bucket.rolling ? 1 : 0,
      ),
    );
  }

  block(ms: number | null, status: number): void {
    const left = ms === null || !Number.isFinite(ms) ? '' : Math.max(1, duration(ms));
    this.fire(this.redis.rxrlBlock(1, this.keys.pause, left, status, this.opts.keyTtlMs, this.keys.channel));
  }

  unblock(): void {
    this.unblockedSeq = this.seq;
    this.fire(this.redis.rxrlUnblock(1, this.keys.pause, this.keys.channel, this.opts.keyTtlMs));
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onBlock(listener: (block: StoreBlock | null) => void): () => void {
    this.blockListeners.add(listener);
    return () => this.blockListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.blockListeners.clear();
    this.resumeListeners.clear();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /**
   * How long the shares of processes that may still be on local budgets stay reserved after
   * this one comes back: long enough for them to try Redis again a few times.
   */
  /** Units this process spent locally in a window still running, and when it ends (ms from now). */
  private debitArgs(name: string, now: number): [number, number | ''] {
    const share = this.down ? this.shares.get(name) : undefined;
    const debit = this.down ? undefined : (this.debits.get(name) ?? undefined);
    const spent = share ? this.spentOf(share, now) : undefined;
    const units = spent?.units ?? debit?.units ?? 0;
    const resetAt = spent ? spent.resetAt : debit?.resetAt;
    if (units <= 0 || resetAt === undefined || resetAt <= now) return [0, ''];
    return [units, Math.ceil(resetAt - now)];
  }

  private reserveMs(): number {
    return Math.max(10_000, 5 * (this.opts.retryMs + this.opts.timeoutMs));
  }

  /** A change notice on this credential's channel (another process, or this one). */
  private onMessage(message: string): void {
    if (this.closed) return;
    if (message === 'resume' || message === 'resume:pause') {
      const buckets = message === 'resume';
      this.resumedSeq = this.seq;
      if (buckets) this.unblockedSeq = this.seq;
      for (const l of this.resumeListeners) l({ buckets });
    }
    const block = parseBlockNotice(message);
    if (block === null) this.unblockedSeq = this.seq;
    if (block !== undefined) for (const l of this.blockListeners) l(block);
    for (const l of this.listeners) l();
  }

  /**
   * Resolves with the call's answer, or rejects after `timeoutMs`. A process whose event loop
   * was held up (a long GC, a burst of CPU work) runs the expired timer before it reads the
   * answer already waiting on the socket: the timeout waits until the I/O of that turn has been
   * read (`setImmediate`), so that only a Redis that really did not answer counts as away. (A
   * process that declares Redis away while the others keep using it spends its local share on
   * top of theirs.)
   */
  private async call<T>(promise: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => setImmediate(() => reject(new TimeoutError(this.opts.timeoutMs))), this.opts.timeoutMs);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A write whose answer nobody waits for: a failure marks Redis unavailable. A write that ends
   * leases is repeated once Redis answers (it may never have run; ending a lease twice is harmless).
   */
  private fire(promise: Promise<unknown>, leases?: readonly string[], buckets?: readonly StoreBucketSpec[]): void {
    this.call(promise).catch((error: unknown) => {
      if (this.closed) return;
      const now = monotonic();
      if (leases !== undefined && buckets !== undefined) for (const lease of leases) this.pend(lease, buckets, now);
      this.markDown(error, now);
    });
  }

  /** Ends leases in Redis (one call). */
  private releaseAll(leases: readonly string[], buckets: readonly StoreBucketSpec[]): void {
    const keys = buckets.flatMap((b) => [this.keys.inflight(b.name), this.keys.bucket(b.name)]);
    this.fire(this.redis.rxrlRelease(keys.length, ...keys, this.keys.channel, ...leases), leases, buckets);
  }

  /** Keeps a lease to end once Redis answers: the newest {@link MAX_PENDING_ENDS}, oldest dropped first. */
  private pend(lease: string, buckets: readonly StoreBucketSpec[], now: number): void {
    this.pendingEnds.delete(lease);
    this.pendingEnds.set(lease, { buckets, at: now });
    for (const oldest of this.pendingEnds.keys()) {
      if (this.pendingEnds.size <= MAX_PENDING_ENDS) break;
      this.pendingEnds.delete(oldest);
    }
  }

  /**
   * Ends the pending leases, Redis having answered: those older than `leaseMs` are dropped
   * (Redis has let them lapse), the others go in one RELEASE call per set of buckets and
   * {@link RELEASE_BATCH} leases.
   */
  private endPending(now: number): void {
    if (this.pendingEnds.size === 0) return;
    const groups = new Map<string, { buckets: readonly StoreBucketSpec[]; leases: string[] }>();
    for (const [lease, p] of this.pendingEnds) {
      if (now - p.at > this.opts.leaseMs) continue;
      const key = p.buckets.map((b) => b.name).join('\n');
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { buckets: p.buckets, leases: [] }));
      g.leases.push(lease);
    }
    this.pendingEnds.clear();
    for (const g of groups.values())
      for (let i = 0; i < g.leases.length; i += RELEASE_BATCH)
        this.releaseAll(g.leases.slice(i, i + RELEASE_BATCH), g.buckets);
  }

  private markDown(error: unknown, now: number): void {
    if (this.closed) return;
    if (this.down) {
      this.down.retryAt = now + this.opts.retryMs;
      return;
    }
    this.down = { since: now, retryAt: now + this.opts.retryMs };
    this.shares.clear();
    this.emit({
      type: 'store-unavailable',
      store: 'redis',
      error: error instanceof Error ? error.message : String(error),
    });
  }

  private recovered(now: number): void {
    if (!this.down) return;
    const downMs = now - this.down.since;
    this.down = undefined;
    // What was spent locally in windows still running is debited on the next call per bucket.
    for (const [name, share] of this.shares) {
      const spent = this.spentOf(share, now);
      if (spent.units > 0 && spent.resetAt !== undefined && spent.resetAt > now)
        this.debits.set(name, { units: spent.units, resetAt: spent.resetAt });
    }
    this.shares.clear();
    this.emit({ type: 'store-recovered', store: 'redis', downMs });
  }

  private failed(
    error: unknown,
    buckets: readonly StoreBucketSpec[],
    count: number,
    o: StoreAcquireOptions,
  ): StoreGrant {
    const now = monotonic();
    this.markDown(error, now);
    return this.localGrant(buckets, count, o, now);
  }

  /**
   * Admission while Redis is away: never more than this process's share of what was left
   * when Redis last answered (the remaining divided by the processes then seen), and in each
   * later window its share of the limit. The shares of all processes add up to at most the
   * budget, so together they stay within it.
   */
  private localGrant(
    buckets: readonly StoreBucketSpec[],
    count: number,
    o: StoreAcquireOptions,
    now: number,
  ): StoreGrant {
    let grant = count;
    let wait = 0;
    // Each request takes `cost` units of a bucket's share, as in Redis.
    const costOf = (i: number) => o.costs?.[i] ?? 1;
    const shares = buckets.map((b, i) => {
      const share = this.shareOf(b, now);
      const cost = costOf(i);
      const rolling = share.rolling?.bucket;
      if (rolling) {
        // A sliding window: the memory bucket's rules, with this process's share as its limit.
        rolling.refill(now, o.resetGuardMs);
        const at = rolling.availableAt(now, o.resetGuardMs, Infinity, 0, cost) ?? now + this.opts.retryMs;
        share.left = at <= now ? (rolling.remaining ?? share.perWindow) : 0;
        share.resetAt = rolling.resetAt;
        if (share.left < cost) wait = Math.max(wait, at - now);
        grant = Math.min(grant, Math.max(0, Math.floor(share.left / cost)));
        return share;
      }
      if (share.resetAt !== undefined && now >= share.resetAt + o.resetGuardMs) {
        share.left = share.perWindow;
        share.spent = 0;
        share.resetAt =
          share.windowMs !== undefined && share.windowMs > 0
            ? projectReset(share.resetAt, now, share.windowMs)
            : undefined;
      }
      grant = Math.min(grant, Math.max(0, Math.floor(share.left / cost)));
      if (share.left < cost) {
        const w = share.resetAt === undefined ? this.opts.retryMs : share.resetAt + o.resetGuardMs - now;
        wait = Math.max(wait, w);
      }
      return share;
    });
    shares.forEach((share, i) => {
      const cost = costOf(i);
      share.left -= grant * cost;
      share.spent += grant * cost;
      const rolling = share.rolling;
      if (rolling) {
        for (let k = 0; k < grant; k++) {
          rolling.bucket.take(now, cost);
          rolling.bucket.release(undefined, undefined, cost);
          for (let u = 0; u < cost; u++) rolling.sends.push(now);
        }
        if (grant > 0) share.resetAt = rolling.bucket.resetAt ?? now + (share.windowMs ?? 0);
      } else if (grant > 0 && share.resetAt === undefined && share.windowMs !== undefined)
        share.resetAt = now + share.windowMs;
    });
    const id = ++this.seq;
    return {
      leases: Array.from({ length: grant }, (_, k) => `local:${id}:${k}`),
      // While Redis is away, wake up at least when it is worth trying it again.
      waitMs: grant > 0 ? undefined : Math.max(1, Math.min(wait, this.opts.retryMs)),
      // Never a quota refusal on a local share: the shared figure may well allow it.
      blockedBy: undefined,
      pause: undefined,
      buckets: buckets.map((b, i) => {
        const share = shares[i];
        return {
          name: b.name,
          // The bucket's own limit, not this process's share of it: a request whose cost is
          // above the share but within the limit waits for Redis rather than failing.
          limit: this.known.get(b.name)?.limit ?? b.limit ?? share?.perWindow,
          remaining: share?.left,
          resetInMs: share?.resetAt === undefined ? undefined : share.resetAt - now,
          windowMs: share?.windowMs,
          admitted: 0,
        };
      }),
    };
  }

  /**
   * What this process spent locally in the window still running: units, and when that window
   * ends (rolling: when the newest of them leaves it, so that Redis counts them all until then).
   */
  private spentOf(share: Share, now: number): { units: number; resetAt: number | undefined } {
    const rolling = share.rolling;
    if (!rolling) return { units: share.spent, resetAt: share.resetAt };
    const window = (share.windowMs ?? 0) + this.guardMs;
    const { sends } = rolling;
    while (sends.length > 0 && (sends[0] ?? Infinity) <= now - window) sends.shift();
    const newest = sends[sends.length - 1];
    return { units: sends.length, resetAt: newest === undefined ? undefined : newest + (share.windowMs ?? 0) };
  }

  /**
   * This process's share of a sliding window while Redis is away: a memory `RollingBucket` whose
   * limit is the share. Calls Redis counted before it went away may fill the window until a
   * window has passed since it last answered: nothing is sent locally until then (as a fixed
   * window's share starts at its next window).
   */
  private rollingShare(b: StoreBucketSpec, now: number, windowMs: number): Share {
    const known = this.known.get(b.name);
    const perWindow = known ? Math.floor((known.limit ?? b.limit ?? 1) / this.peers) : 1;
    const bucket = new RollingBucket({ name: b.name, limit: perWindow, windowMs, rolling: true }, windowMs);
    if (known) bucket.exhaust(known.at + (known.windowMs ?? windowMs) + this.guardMs);
    bucket.refill(now, this.guardMs);
    return {
      perWindow,
      left: 0,
      resetAt: bucket.resetAt,
      windowMs,
      spent: 0,
      known: known !== undefined,
      rolling: { bucket, sends: [] },
    };
  }

  private shareOf(b: StoreBucketSpec, now: number): Share {
    let share = this.shares.get(b.name);
    const windowMs = this.known.get(b.name)?.windowMs ?? b.windowMs;
    if (!share && b.rolling && windowMs !== undefined && windowMs > 0) {
      share = this.rollingShare(b, now, windowMs);
      this.shares.set(b.name, share);
    }
    if (!share) {
      const known = this.known.get(b.name);
      if (known) {
        // The window Redis went away in may have been spent by the others since this process
        // last asked: nothing more in it. From the next window on, this process's share.
        const windowMs = known.windowMs ?? b.windowMs;
        let resetAt = known.resetAt;
        if (resetAt !== undefined && resetAt <= now && windowMs !== undefined && windowMs > 0)
          resetAt = projectReset(resetAt, now, windowMs);
        share = {
          perWindow: Math.floor((known.limit ?? b.limit ?? 1) / this.peers),
          left: 0,
          resetAt,
          windowMs,
          spent: 0,
          known: true,
        };
      } else {
        // Never heard from Redis: nothing says how many others share the token. One request
        // per window, like a cold start, until Redis answers.
        share = { perWindow: 1, left: 1, resetAt: undefined, windowMs: b.windowMs, spent: 0, known: false };
      }
      this.shares.set(b.name, share);
    }
    return share;
  }

  /** While Redis is away, responses still tell when windows reset. */
  private observeLocally(readings: readonly StoreReading[]): void {
    const now = monotonic();
    for (const r of readings) {
      const share = this.shares.get(r.name);
      if (!share) continue;
      if (r.windowMs !== undefined) share.windowMs = r.windowMs;
      if (r.limit !== undefined && share.known) share.perWindow = Math.floor(r.limit / this.peers);
      const rolling = share.rolling?.bucket;
      if (rolling) {
        // The shared window's figures: its limit divides into shares; none left holds this one too.
        if (r.windowMs !== undefined) rolling.windowMs = r.windowMs;
        rolling.limit = share.perWindow;
        if (r.remaining === 0 && r.resetInMs !== undefined) rolling.exhaust(now + r.resetInMs);
        continue;
      }
      if (r.resetInMs === undefined) continue;
      const resetAt = now + r.resetInMs;
      const tol = resetTolerance(share.windowMs);
      if (share.resetAt === undefined || resetAt > share.resetAt + tol) {
        // A window we had not counted: start it with this process's share.
        if (share.resetAt !== undefined) {
          share.left = share.perWindow;
          share.spent = 0;
        }
        share.resetAt = resetAt;
      }
    }
  }
}

export {
  deferJobWhenLimited,
  deferWhenLimited,
  type Delayable,
  type DeferOptions,
  type RateLimitable,
} from './deferral.js';
