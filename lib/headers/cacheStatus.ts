import { parseCount } from './count.js';
import { normalize } from './internal.js';
import { isItem, parseList } from './structuredFields.js';

/**
 * Does a `Cache-Status` field (RFC 9211) say that a cache answered from its store? It is a List
 * of the caches the response went through, each with parameters; `hit` (a Boolean, RFC 9211
 * §2.1) says that cache served it without going to the next hop. `true` when any cache says
 * `hit`, `false` when none does, `undefined` when the field is absent, malformed or longer than
 * 1,000 characters (then it says nothing). Never throws.
 *
 * ```ts
 * import { parseCacheStatusHit } from 'rx-ratelimit';
 * parseCacheStatusHit('ExampleCache; hit; ttl=30'); // true
 * parseCacheStatusHit('OriginCache; fwd=uri-miss'); // false
 * ```
 */
export function parseCacheStatusHit(value: string | null | undefined): boolean | undefined {
  const text = normalize(value);
  const list = text === undefined ? undefined : parseList(text);
  if (!list) return undefined;
  return list.some((member) => isItem(member) && member[1].get('hit') === true);
}

/**
 * Was this response served from a cache (`Age` above 0, or a `Cache-Status` hit)? Its rate-limit
 * fields and its `Date` are of when it was stored, not of now.
 */
export function servedFromCache(res: { header(name: string): string | undefined }): boolean {
  const age = parseCount(res.header('age'));
  if (age !== undefined && age > 0) return true;
  const status = res.header('cache-status');
  return status !== undefined && parseCacheStatusHit(status) === true;
}
