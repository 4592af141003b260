/**
 * The IETF RateLimit problem types (draft-ietf-httpapi-ratelimit-headers §5): a refused
 * response's `application/problem+json` body (RFC 9457) may name, in `violated-policies`, the
 * quota policies the request exceeded, so that only the buckets of those policies wait.
 */
import { bodyValue, field, items } from './endpoint.js';

/** Most policy names read from one body; the rest are ignored. */
const MAX_POLICIES = 16;
/**
 * A policy name as `RateLimit-Policy` can carry it (a Structured Fields String: printable
 * ASCII), at most 64 characters.
 */
const POLICY = /^[\x20-\x7e]{1,64}$/;

/**
 * The policy names of a problem body's `violated-policies` member (§5.1 quota-exceeded, §5.2
 * temporary-reduced-capacity, §5.3 abnormal-usage-detected all define it as an array of
 * strings), whatever its `type`; `undefined` when the body has no such array or none of its
 * entries is a name. A JSON string body is parsed (up to 64 KB); entries that are not strings
 * of 1 to 64 printable ASCII characters are skipped, and at most 16 names are read. Never throws.
 *
 * ```ts
 * import { violatedPolicies } from 'rx-ratelimit';
 * violatedPolicies({ type: 'https://iana.org/assignments/http-problem-types#quota-exceeded', 'violated-policies': ['daily'] });
 * // ['daily']
 * ```
 */
export function violatedPolicies(body: unknown): string[] | undefined {
  const names: string[] = [];
  for (const entry of items(field(bodyValue(body), 'violated-policies'))) {
    if (names.length >= MAX_POLICIES) break;
    if (typeof entry === 'string' && POLICY.test(entry) && !names.includes(entry)) names.push(entry);
  }
  return names.length ? names : undefined;
}
