import { hex, hmacSha256, randomBytes, utf8 } from './hmac.js';

/** Shortest secret accepted by `labelSecret` (and the Redis store's `secret`): 16 characters. */
export const MIN_SECRET_LENGTH = 16;

/**
 * A label for a credential that is safe to show: `key_` and 64 bits of HMAC-SHA-256 of the key,
 * in hex. It tells which budget a snapshot, event or error belongs to without revealing the
 * token, and it is synchronous and dependency-free, so it works in browsers too.
 *
 * The HMAC is keyed by `secret`, or, without one, by 32 random bytes drawn once per process
 * (per page in a browser). An unkeyed hash of a guessable key (a PIN, a short id) can be
 * reversed by hashing every candidate; a keyed one cannot be tested without the secret. The
 * trade-off: without a shared `labelSecret`, two processes label one key differently, so logs
 * of a fleet cannot be joined on it; give every process the same `labelSecret` (or a `label`)
 * when they must agree.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const token = process.env['API_TOKEN'] ?? '';
 * const limiter = createLimiter({ provider: providers.procore(), key: token, labelSecret: process.env['RL_LABEL_SECRET']! });
 * limiter.key; // 'key_3f2a…' (the same in every process given that secret)
 * ```
 */
export function keyLabel(key: string, secret?: string): string {
  const mac = hmacSha256(secret === undefined ? processSecret() : utf8(secret), utf8(`rx-ratelimit label\n${key}`));
  return `key_${hex(mac.subarray(0, 8))}`;
}

let drawn: Uint8Array | undefined;

/**
 * The per-process secret: drawn on first use and never shown. An immutable value, not shared
 * state: every limiter of the process reads the same bytes.
 */
function processSecret(): Uint8Array {
  // Only runtimes without Web Crypto (none that the package supports: Node 20+, browsers) get
  // `Math.random` bytes (`randomBytes`).
  return (drawn ??= randomBytes(32));
}
