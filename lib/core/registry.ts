/**
 * One limit state per provider + credential in a process, for code that creates limiters from
 * options on the user's behalf (NestJS modules). Two limiters on one token, each believing it
 * owns the whole budget, send twice what the provider allows: two NestJS feature modules that
 * each called `forRoot` for one Pipedrive token earned 75 × 429, then Pipedrive's block. So
 * `shareLimiter` hands every registration of the same provider and key the same limiter,
 * counts its holders, and closes it when the last one lets go; two registrations that disagree
 * on its options fail at once with an error naming both.
 */
import { createLimiter, type Limiter } from './limiter.js';
import { rulesOf } from './credential.js';
import { keyLabel } from './keyLabel.js';
import { sha256Hex } from './sha256.js';
import { LIMITER_DEFAULTS, parseLimiterOptions, SECRET_OPTIONS, type LimiterOptions } from './options.js';
import { memoryStore, type LimiterStore } from './store.js';

/** Thrown when two registrations of one provider and key in a process ask for different limiters. */
export class DuplicateLimiterError extends Error {
  override readonly name = 'DuplicateLimiterError' as const;
  /** The provider's name. */
  readonly provider: string;
  /** Where the limiter in use was registered. */
  readonly first: string;
  /** Where the conflicting registration was made. */
  readonly second: string;

  /** Thrown by {@link shareLimiter}; not meant to be constructed by applications. */
  constructor(provider: string, first: string, second: string, difference: string) {
    super(
      `${second} and ${first} both register a ${provider} limiter for the same key, but differ (${difference}).` +
        ` One process keeps one limit state per provider and credential: two limiters would each spend the` +
        ` whole budget. Register it once (e.g. RateLimitModule.forRoot in the root module, forFeature in the` +
        ` others) or give both the same options.`,
    );
    this.provider = provider;
    this.first = first;
    this.second = second;
  }
}

/** Is `error` a {@link DuplicateLimiterError}? */
export function isDuplicateLimiterError(error: unknown): error is DuplicateLimiterError {
  return error instanceof DuplicateLimiterError;
}

/** A hold on a process-wide limiter; `release()` once, when its holder shuts down. */
export interface SharedLimiter {
  readonly limiter: Limiter;
  /** Lets go of the limiter; the last holder's release closes it. Idempotent. */
  release(): Promise<void>;
  /**
   * @internal As `release()`, but the limiter it closes goes on answering (`Limiter.retire`):
   * a pool's eviction of an idle limiter that a request may still hold.
   */
  retire(): Promise<void>;
}

interface Entry {
  readonly limiter: Limiter;
  readonly place: string;
  readonly fingerprint: string;
  /** The provider it was made with, and a label of its rules then (see {@link rulesLabel}). */
  readonly provider: LimiterOptions['provider'] | undefined;
  readonly rules: string;
  holders: number;
}

const shared = new Map<string, Entry>();

/**
 * A provider's rules (its buckets, as its options made them: a plan of 20 or of 120 per 2 s),
 * short: the same profile made with other options is another limiter, not the one registered.
 * Compared only between two provider objects: one object's rules may change as it learns (a
 * resource a response named), and it is the same provider still.
 */
function rulesLabel(provider: LimiterOptions['provider']): string {
  return sha256Hex(rulesOf(provider)).slice(0, 12);
}

/** The options that must agree for two registrations to share one limiter (primitives only). */
function fingerprint(options: LimiterOptions): string {
  const parts: string[] = [];
  // `maxConcurrent` left out is the provider's own (GitHub's 100): compared as the limiter runs it.
  const effective = { ...options, maxConcurrent: options.maxConcurrent ?? options.provider.maxConcurrent };
  for (const [name, value] of Object.entries(effective).sort(([a], [b]) => a.localeCompare(b))) {
    // The store is part of the identity (`identity`), not an option to agree on.
    if (name === 'key' || name === 'provider' || name === 'store') continue;
    // A secret (labelSecret) is compared by its keyed label: this string may reach an error message.
    if (SECRET_OPTIONS.has(name)) parts.push(`${name}: ${keyLabel(String(value))}`);
    // A default spelled out is the default left out: `{ dedupe: true }` is the same limiter.
    else if (value !== undefined && !Object.is(value, LIMITER_DEFAULTS[name]))
      parts.push(`${name}: ${optionLabel(value)}`);
  }
  return parts.join(', ');
}

/**
 * An option's value as registrations compare it: a primitive as it is; a plain object (`cache`)
 * by its fields, so `{ ttlMs: 1 }` and `{ ttlMs: 3600000 }` differ (they shared one limiter, the
 * second registration's cache silently the first's); a function or another object by its kind
 * only (two lambdas written alike in two modules are one setting).
 */
function optionLabel(value: unknown, depth = 0): string {
  const kind = typeof value;
  if (kind === 'number' || kind === 'string' || kind === 'boolean' || value === undefined) return String(value);
  if (kind === 'function') return 'a function';
  if (value === null || kind !== 'object') return String(kind);
  const proto = Object.getPrototypeOf(value) as unknown;
  if (depth > 2 || (proto !== Object.prototype && proto !== null)) return 'an object';
  const fields = Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => a.localeCompare(b))
    .slice(0, 20)
    .map(([k, v]) => `${k}: ${optionLabel(v, depth + 1)}`);
  return `{ ${fields.join(', ')} }`;
}

/** A number per store object (0: the memory store): two stores are two places for the state. */
const storeIds = new WeakMap<LimiterStore, number>();
let storesSeen = 0;

function storeId(store: LimiterStore | undefined): number {
  if (store === undefined || store === memoryStore()) return 0;
  let id = storeIds.get(store);
  if (id === undefined) {
    id = ++storesSeen;
    storeIds.set(store, id);
  }
  return id;
}

/** Which limit state `options` (already validated) name, or `undefined` for one of its own. */
function identity(options: LimiterOptions): string | undefined {
  // Limiters on another clock (a TestScheduler) live in another time: never the same state.
  if (options.scheduler !== undefined) return undefined;
  // Two stores (two Redis servers or prefixes) hold two states of one credential.
  return `${options.provider.name}\u0000${keyLabel(options.key)}\u0000${storeId(options.store)}`;
}

/**
 * The process's limiter for `options.provider` + `options.key` in `options.store`: created on
 * first use, the same object for every later call with the same provider, key and store object
 * (the memory store when none is given) while any holder keeps it.
 * `place` names the registration in errors (e.g. `RateLimitModule limiter "pipedrive"`).
 * Throws a {@link DuplicateLimiterError} when the options differ from those in use, and
 * `createLimiter`'s `TypeError` for bad options.
 */
export function shareLimiter(options: LimiterOptions, place: string): SharedLimiter {
  parseLimiterOptions(options); // a bad option is a TypeError naming it, before anything is shared
  const id = identity(options);
  if (id === undefined)
    return new Hold(
      { limiter: createLimiter(options), place, fingerprint: '', provider: undefined, rules: '', holders: 1 },
      undefined,
    );
  const print = fingerprint(options);
  let entry = shared.get(id);
  if (entry) {
    const rules = entry.provider === options.provider ? entry.rules : rulesLabel(options.provider);
    if (entry.fingerprint !== print || rules !== entry.rules) {
      // The provider's rules are named only where they differ.
      const label = (r: string, f: string) =>
        `{ ${(rules === entry?.rules ? f : `provider rules: ${r}${f ? `, ${f}` : ''}`) || 'defaults'} }`;
      throw new DuplicateLimiterError(
        options.provider.name,
        entry.place,
        place,
        `${label(rules, print)} against ${label(entry.rules, entry.fingerprint)}`,
      );
    }
  }
  if (!entry) {
    const provider = options.provider;
    entry = {
      limiter: createLimiter(options),
      place,
      fingerprint: print,
      provider,
      rules: rulesLabel(provider),
      holders: 0,
    };
    shared.set(id, entry);
  }
  entry.holders++;
  return new Hold(entry, id);
}

/** One holder's share of a limiter. */
class Hold implements SharedLimiter {
  readonly limiter: Limiter;
  private released = false;

  constructor(
    private readonly held: Entry,
    /** Its entry's name in `shared`; none for a limiter not shared. */
    private readonly id: string | undefined,
  ) {
    this.limiter = held.limiter;
  }

  // Functions of their own, not methods: a caller may pass them on (`finalize(hold.release)`).
  readonly release = (): Promise<void> => this.letGo(false);

  readonly retire = (): Promise<void> => this.letGo(true);

  private async letGo(retire: boolean): Promise<void> {
    if (this.released) return;
    this.released = true;
    const held = this.held;
    held.holders--;
    if (held.holders > 0) return;
    if (this.id !== undefined && shared.get(this.id) === held) shared.delete(this.id);
    await (retire ? held.limiter.retire() : held.limiter.close());
  }
}
