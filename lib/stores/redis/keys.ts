/** The names of a credential's keys in Redis. */
import { createHmac } from 'node:crypto';

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
  // A provider's name ends at the first newline, so a key may hold any: a name that holds one
  // is told by its length instead (a key of its own form), or provider "a\nb" with key "c"
  // shared the budget of provider "a" with key "b\nc". Names without one keep their keys.
  const named = provider.includes('\n')
    ? `rx-ratelimit redis/${provider.length}\n${provider}\n${key}`
    : `rx-ratelimit redis\n${provider}\n${key}`;
  const hash = createHmac('sha256', secret).update(named).digest('hex').slice(0, 16);
  const base = `${prefix}{${hash}}:`;
  const part = bucketPart(secret);
  return {
    hash,
    pause: `${base}pause`,
    peers: `${base}peers`,
    channel: `${base}changed`,
    /** The hash of a bucket's state. */
    bucket: (name: string) => `${base}bucket:${part(name)}`,
    /** The sorted set of a bucket's leases in flight. */
    inflight: (name: string) => `${base}inflight:${part(name)}`,
    /** A rolling bucket's log of the times its calls ended. */
    log: (name: string) => `${base}log:${part(name)}`,
  };
}

/** A bucket name a profile gives (`hourly`, `core`, `catch-all`): kept as it is in key names. */
const PLAIN_NAME = /^[\w.-]{1,64}$/;

/** Most names one credential's keys keep hashed at a time (per-endpoint buckets come and go). */
const MAX_HASHED = 256;

/**
 * A bucket's name as its keys carry it. A per-endpoint bucket is named after the request's path
 * (`GET /users/alice@example.com/share/Zm9v…/tasks:minute`), which may hold what a key must not
 * (an e-mail, a share token): such a name is written as `#` and 16 hex digits of its
 * HMAC-SHA-256 with the store's secret (`#` never begins a plain name, so the two never meet).
 */
function bucketPart(secret: string): (name: string) => string {
  const hashed = new Map<string, string>();
  return (name) => {
    if (PLAIN_NAME.test(name)) return name;
    let part = hashed.get(name);
    if (part === undefined) {
      part = `#${createHmac('sha256', secret).update(`rx-ratelimit bucket\n${name}`).digest('hex').slice(0, 16)}`;
      if (hashed.size >= MAX_HASHED) hashed.clear();
      hashed.set(name, part);
    }
    return part;
  };
}
