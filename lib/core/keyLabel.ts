/**
 * A label for a credential that is safe to show: 64 bits of FNV-1a over the key, in hex. It
 * identifies which budget a snapshot or event belongs to without revealing the token, and it
 * is synchronous and dependency-free so it works in browsers too. (Store keys that must resist
 * collisions across a fleet use SHA-256 in the Redis store.)
 *
 * Like any unsalted hash, it lets whoever sees it test guesses: API tokens (100+ random bits)
 * are safe, but a guessable key (a 6-digit PIN: a million tries, well under a second) can be
 * found from it. Give such keys a `label` (`createLimiter({ label })`), shown instead.
 */
export function keyLabel(key: string): string {
  // Two independent 32-bit FNV-1a lanes (different offset bases) make 64 bits without BigInt.
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x01000193 + 0x100) >>> 0;
  }
  return `key_${a.toString(16).padStart(8, '0')}${b.toString(16).padStart(8, '0')}`;
}
