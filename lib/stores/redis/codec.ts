/**
 * The session's side of the scripts' wire format: numbers as script arguments (so that Lua keeps
 * them digit for digit), ACQUIRE's and OBSERVE's per-bucket arguments, ACQUIRE's reply, and the
 * change notices on a credential's channel. Pure functions; the layouts are documented on the scripts
 * (scriptAcquire.ts, scriptObserve.ts, scriptControl.ts).
 */
import type { StoreBlock, StoreBucketSpec, StoreBucketState, StoreReading } from '../../core/store.js';

/**
 * Largest number sent to a script. Lua prints numbers with 14 significant digits, so larger
 * ones would be stored as `1e+20` and read back wrong; no count or duration we use comes near.
 */
const MAX_SCRIPT_NUMBER = 1e12;

/**
 * A number for a script argument; '' for none (garbage from a provider is "says nothing").
 * Clamped to ±{@link MAX_SCRIPT_NUMBER}, so Lua stores it digit for digit.
 */
export function finite(n: number | undefined): number | '' {
  return n !== undefined && Number.isFinite(n) ? Math.max(-MAX_SCRIPT_NUMBER, Math.min(MAX_SCRIPT_NUMBER, n)) : '';
}

/** A duration for a script argument: whole ms in [0, {@link MAX_SCRIPT_NUMBER}]. */
export function duration(ms: number): number {
  return Number.isFinite(ms) ? Math.max(0, Math.min(MAX_SCRIPT_NUMBER, Math.ceil(ms))) : MAX_SCRIPT_NUMBER;
}

/** A change notice about a block ('block:<ms left or inf>:<status>', 'unblock'); `undefined` for others. */
export function parseBlockNotice(message: string): StoreBlock | null | undefined {
  if (message === 'unblock') return null;
  const m = /^block:(inf|\d+):(\d+)$/.exec(message);
  if (!m) return undefined;
  return { ms: m[1] === 'inf' ? null : Number(m[1]), status: Number(m[2]) };
}

/**
 * ACQUIRE's arguments for one bucket of a request: its hints, what this process spent of it
 * locally (`debit`: units and when their window ends, ms from now; a leaky bucket: units its
 * share has not restored yet, and when it will have; `share`: its local share per window, or of
 * a leaky bucket's capacity, when coming back from an outage), the cost of each request, the
 * costs of the requests sent on the local share that this call carries, and a leaky bucket's
 * restore rate (which tells the script it is one).
 */
export function acquireBucketArgs(
  b: StoreBucketSpec,
  debit: readonly [number, number | ''],
  share: number | '',
  cost: number,
  carried: readonly number[],
): Array<string | number> {
  return [
    finite(b.limit),
    finite(b.windowMs),
    b.pacing === 'smooth' ? 1 : 0,
    ...debit,
    share,
    b.rolling ? 1 : 0,
    cost,
    carried.map((c) => Math.max(1, Math.ceil(c))).join(','),
    leakRate(b),
  ];
}

/** A leaky bucket's restore rate hint for a script ('' for a window: the script's sign of which kind). */
function leakRate(b: StoreBucketSpec): number | '' {
  if (b.restorePerSecond === undefined) return '';
  const rate = finite(b.restorePerSecond);
  return rate === '' || rate < 0 ? 0 : rate;
}

/** RELEASE's kinds of buckets: one character each, '0' a fixed window, '1' rolling, '2' leaky. */
export function releaseKinds(buckets: readonly StoreBucketSpec[]): string {
  return buckets.map((b) => (b.restorePerSecond !== undefined ? '2' : b.rolling ? '1' : '0')).join('');
}

/**
 * OBSERVE's arguments for each bucket of a response: its reading (if any) and its hints, and
 * whether the request learns its cost from the drops.
 */
export function observeArgs(
  buckets: readonly StoreBucketSpec[],
  read: readonly StoreReading[],
  learns = false,
): Array<string | number> {
  const args: Array<string | number> = [];
  for (const b of buckets) {
    const r = read.find((x) => x.name === b.name);
    const has = r && (r.limit !== undefined || r.remaining !== undefined || r.resetInMs !== undefined);
    args.push(
      // 2: no reading of the bucket in an answer that described others (`silent`); 3: in a
      // server error that described none (`blind`: it leaves a refilled window's probe open).
      has ? 1 : r?.silent === true ? (r.blind === true ? 3 : 2) : 0,
      finite(r?.limit),
      finite(r?.remaining),
      finite(r?.resetInMs === undefined ? undefined : Math.ceil(r.resetInMs)),
      finite(r?.windowMs),
      r?.index ?? '',
      finite(b.limit),
      finite(b.windowMs),
      b.rolling ? 1 : 0,
      // An epoch instant, not clamped as the durations are (it only names the window).
      r?.resetServerAt !== undefined && Number.isSafeInteger(r.resetServerAt) ? r.resetServerAt : '',
      finite(r?.resetLatestInMs === undefined ? undefined : Math.ceil(r.resetLatestInMs)),
      finite(r?.restorePerSecond),
      finite(r?.cost),
      leakRate(b),
      learns ? 1 : '',
      r?.counted === true ? 1 : '',
    );
  }
  return args;
}

/**
 * OBSERVE's reply: the costs learnt from the drops, per bucket of `buckets` (in their order),
 * as `[name, cost]`; nothing for a reply of another shape.
 */
export function observeLearnt(reply: unknown, buckets: readonly StoreBucketSpec[]): Array<[string, number]> {
  if (!Array.isArray(reply)) return [];
  const out: Array<[string, number]> = [];
  buckets.forEach((b, i) => {
    const cost = Number(reply[i + 1]);
    if (Number.isSafeInteger(cost) && cost > 0) out.push([b.name, cost]);
  });
  return out;
}

/** ACQUIRE's reply, decoded (nothing judged yet: a pause or block in it may be out of date). */
export interface AcquireReply {
  readonly granted: number;
  /** ms; -1: only a response can tell. */
  readonly wait: number;
  /** The key of the bucket that held the request back ('' none). */
  readonly blocking: string;
  readonly pauseMs: number;
  readonly pauseReason: string;
  readonly peers: number;
  /** ms left of a block (-1: until lifted); `undefined` for none. */
  readonly blockMs: number | undefined;
  readonly blockStatus: number;
  /** Each bucket as Redis left it, in the order of the request's buckets. */
  readonly states: StoreBucketState[];
  /** Per bucket, the admission index of the first request this call carried. */
  readonly carriedFirst: ReadonlyMap<string, number>;
}

/** Fields per bucket in ACQUIRE's reply. */
const PER_BUCKET = 9;

export function decodeAcquire(
  reply: ReadonlyArray<string | number>,
  buckets: readonly StoreBucketSpec[],
): AcquireReply {
  const field = (i: number): number | undefined => {
    const v = reply[i];
    return v === '' || v === undefined ? undefined : Number(v);
  };
  return {
    granted: Number(reply[0] ?? 0),
    wait: Number(reply[1] ?? 0),
    blocking: String(reply[2] ?? ''),
    pauseMs: Number(reply[3] ?? 0),
    pauseReason: String(reply[4] ?? ''),
    peers: Math.max(1, Number(reply[5] ?? 1)),
    blockMs: field(6),
    blockStatus: Number(reply[7] ?? 403),
    states: buckets.map((b, i) => {
      const j = 8 + i * PER_BUCKET;
      const rate = field(j + 6);
      const level = field(j + 7);
      return {
        name: b.name,
        limit: field(j),
        remaining: field(j + 1),
        resetInMs: field(j + 2),
        windowMs: field(j + 3),
        admitted: field(j + 4) ?? 0,
        ...(rate === undefined ? {} : { restorePerSecond: rate }),
        ...(level === undefined ? {} : { level }),
        ...(reply[j + 8] === '1' ? { awaitsAnswers: true } : {}),
      };
    }),
    carriedFirst: new Map(buckets.map((b, i) => [b.name, field(8 + i * PER_BUCKET + 5) ?? 0])),
  };
}
