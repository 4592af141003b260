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
  return {
    hash,
    pause: `${base}pause`,
    peers: `${base}peers`,
    channel: `${base}changed`,
    /** The hash of a bucket's state. */
    bucket: (name: string) => `${base}bucket:${name}`,
    /** The sorted set of a bucket's leases in flight. */
    inflight: (name: string) => `${base}inflight:${name}`,
    /** A rolling bucket's log of the times its calls ended. */
    log: (name: string) => `${base}log:${name}`,
  };
}
