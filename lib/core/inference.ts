import type { Bucket } from './bucket.js';

/** Resets are read to the second: two within half of one name the same window. */
const SECOND = 1000;
/** How much earlier than the window's start the first counted send may read (timer and clock slop). */
const SLOP_MS = 50;
/** Full windows in a row without a 429 before the first probe for more room. */
const PROBE_AFTER = 16;
/** Most full windows between two probes, after the server refused several. */
const MAX_PROBE_AFTER = 1024;
/** Most send times kept per window (2 KB a bucket); past it, every success counts. */
const MAX_SENDS = 256;

/** What we learned of one window no header describes. */
interface Learning {
  /** Where the current window began on our clock; unknown before the first 429. */
  start: number | undefined;
  /** Where it ends: the reset a 429 told, or a window after its start. */
  end: number | undefined;
  /** The earliest send among this window's successes. */
  firstSent: number;
  /** Successes of requests sent in this window. */
  count: number;
  /**
   * When the successes were sent and answered (at most `MAX_SENDS`), to judge them against the
   * 429s of the window.
   */
  sends: Array<{ readonly sent: number; readonly answered: number }>;
  /** A 429 named this window: its successes, however late they come back, are its capacity. */
  limited: boolean;
  /**
   * When the earliest request a 429 refused in this window was sent. A fixed window refuses
   * everything once full: a request sent after it that succeeded reached the server after the
   * reset (a slow path, a stalled event loop), and counts in the next window.
   */
  limitedSent: number;
  /** When the first answer of a 429 in this window came back. */
  limitedAnswered: number;
  /** This window admits one request more than the capacity, to see whether the server takes it. */
  probing: boolean;
  /** The reset of the last 429 learned from. */
  reset: number | undefined;
  /**
   * That reset on the server's clock, and where our clock put it: the grid moves with the
   * offset's estimate, which the `Date` headers sharpen after the first 429.
   */
  anchor: { readonly server: number; local: number } | undefined;
  capacity: number | undefined;
  windowMs: number | undefined;
  /** Full windows in a row without a 429, and how many before the next probe for more room. */
  clean: number;
  probeAfter: number;
}

/** Whether a success counts in the window a 429 closed (see `CapacityInference.counted`). */
const inWindow = (s: Learning, t: Learning['sends'][number]) => t.sent <= s.limitedSent || t.sent < s.limitedAnswered;

/**
 * What the current window has left: its capacity less its successes and our other requests in
 * flight (`holding`: the units of the one being answered, still among them).
 */
const roomLeft = (b: Bucket, s: Learning, capacity: number, holding: number) =>
  Math.max(0, capacity - s.count - (b.inFlight - holding));

/** Called when what we infer changes a bucket's limit. */
export type InferredChange = (bucket: Bucket, from: number | null, to: number) => void;

/**
 * Capacity of windows no header describes (Fieldwire's legacy endpoints answer nothing until a
 * 429, and then only when the window resets). The successes of a window a 429 closed are that
 * window's capacity; two resets give its length (until then, the time from the window's first
 * send to its reset, rounded up to a second). The bucket is then paced by them, on the grid of
 * the resets the server told, with `source: 'inferred'`:
 *
 * - a 429 after fewer successes lowers the capacity to them (the limit dropped, or another
 *   client of the token spends it too);
 * - windows filled to the capacity without a 429 probe for one more request now and then
 *   (after 16 such windows, then twice as many after each probe the server refuses), so a
 *   raised limit is found at the cost of at most one 429 per probe.
 *
 * The first window's start is unknown: when a window boundary falls among its first requests,
 * successes of the window before are counted too, and the next window's 429s correct it.
 * A bucket whose numbers a response's headers gave is left alone. Memory is a record of at
 * most 2 KB per bucket (a WeakMap: evicted buckets take theirs along).
 */
export class CapacityInference {
  /** Made at the first bucket learnt from (most limiters' buckets are all told by headers). */
  private learned: WeakMap<Bucket, Learning> | undefined = undefined;

  constructor(
    private readonly changed: InferredChange,
    /** A server instant on our clock, as the limiter's offset estimate reads it now. */
    private readonly toLocal: (serverMs: number) => number = (ms) => ms,
    /** A server instant on our clock at the earliest the clock offset's interval allows. */
    private readonly earliestLocal: (serverMs: number) => number = toLocal,
    /**
     * How much later than the truth `toLocal` may read a server instant: 0 while the offset's
     * interval holds 0 (the clocks agree as far as `Date` tells, and are taken to), else the
     * interval's width (the estimate is then its lower bound, which reads resets late).
     */
    private readonly lateByMs: () => number = () => 0,
    /** How much later than with no offset server instants are read while the clocks may agree. */
    private readonly heldBackMs: () => number = () => 0,
    /** Longest window inferred: the longest wait the limiter obeys a server for (`maxServerWaitMs`). */
    private readonly maxWindowMs: () => number = () => Infinity,
  ) {}

  /**
   * A response other than a 429 answered a request sent at `sentAt` that counted against `b`;
   * `holding`: its units still count among the bucket's requests in flight.
   */
  succeeded(b: Bucket, sentAt: number, answeredAt: number, holding = 0): void {
    if (b.source === 'headers' || b.leaky) return;
    const s = this.of(b);
    if (s.start !== undefined && sentAt < s.start - SLOP_MS) return; // counted in an earlier window
    // Counted in this window, however close to its end it was sent: one that reached the server
    // before the end as far as its round trip tells (half-way from send to answer, latency that
    // varies taken as even; the end at the earliest the clock offset allows), or sent no later
    // than a request of this window the server refused.
    // Rolled on for being sent within the slop of the end, such successes (their answers come
    // after a 429 of the window when latency varies) made the capacity what the answers read
    // before the 429 showed, and every later window went short.
    this.follow(s);
    const reached = (sentAt + answeredAt) / 2;
    const before = s.end !== undefined && reached < s.end - this.lateByMs();
    if (!(before || (s.end !== undefined && s.limited && sentAt <= s.limitedSent))) this.roll(s, sentAt);
    s.firstSent = Math.min(s.firstSent, sentAt);
    if (s.sends.length < MAX_SENDS) {
      s.sends.push({ sent: sentAt, answered: answeredAt });
      s.count = this.counted(s);
    } else s.count++;
    if (s.limited && s.windowMs === undefined && s.reset !== undefined)
      this.guessWindow(b, s, s.reset, s.anchor?.server);
    if (s.end !== undefined && !s.limited && b.resetAt !== s.end) {
      if (s.capacity !== undefined && s.start !== undefined && b.resetAt !== undefined && b.resetAt < s.end - SLOP_MS) {
        // The bucket is still held for a window already over (a 429 of it read after its reset,
        // or an end read late until a `Date` header pinned the clock offset): this window has
        // what its successes and our requests still in flight leave. Moving the reset on without
        // that held the bucket empty for the whole window.
        b.remaining = roomLeft(b, s, s.capacity, holding);
      }
      // The server's windows follow one another from the reset it told: keep the bucket on that
      // grid, where it would otherwise start each window at its first send, a guard late.
      b.resetAt = s.end;
      b.resetKind = 'server';
    }
    if (s.end !== undefined && !s.limited && b.resetAt === s.end) {
      // An end read later than the clocks-agree reading (a server clock behind ours by less
      // than a second cannot be told from one that agrees): one request may go at that reading,
      // and its answer's `Date` shows which it is. No header here ever pins the offset, so the
      // end was read late by up to a second at every window.
      const held = this.heldBackMs();
      b.earlyAt = held > 0 ? s.end - held : Number.NaN;
    }
    if (s.limited) {
      // A window a 429 closed holds what went through it, answers coming back in any order.
      if (s.count !== s.capacity) this.set(b, s, s.count);
    } else if (s.capacity === undefined || s.windowMs === undefined) {
      return;
    } else if (s.count > s.capacity) {
      // More went through a window than we thought: a probe passed (the limit rose). Without a
      // probe, our sends of one window reached the server in two (a stalled event loop).
      if (s.probing) this.set(b, s, s.count);
    } else if (s.count === s.capacity && ++s.clean >= s.probeAfter) {
      // One more request in this window: a 429 tells nothing new, a success raises the capacity.
      s.probing = true;
      b.limit = s.capacity + 1;
      b.remaining = (b.remaining ?? 0) + 1;
    }
  }

  /**
   * A 429 named `b` for a request sent at `sentAt`, with the server's word that the window ends
   * at `resetAt` (our clock), and `serverAt` (its clock) when it gave an instant; answered at
   * `answeredAt`; `holding`: its units still count among the bucket's requests in flight.
   */
  limited(b: Bucket, sentAt: number, resetAt: number, answeredAt: number, serverAt?: number, holding = 0): void {
    // A leaky bucket has no window to learn: its capacity and rate are the provider's or the server's.
    if (b.source === 'headers' || b.leaky) return;
    const s = this.of(b);
    if (s.start !== undefined && sentAt < s.start - SLOP_MS) return; // a request of an earlier window
    // The window a 429 names is the one its reset ends, wherever its request was sent: a reset
    // of an earlier window teaches nothing more; a later one moves to that window.
    this.follow(s);
    if (s.end !== undefined) {
      // Earlier: its reset is this window's start or before (a window whose length was only a
      // guess, too long, may hold a reset in its span: that reset corrects the guess below).
      if (s.start !== undefined && resetAt < s.start + SECOND / 2) {
        // Refused by a window already over: it does not count in this one, whose room was
        // reckoned with it among those in flight (it might have landed here).
        if (holding > 0 && !s.limited && s.capacity !== undefined && b.remaining !== undefined)
          b.remaining = Math.min(roomLeft(b, s, s.capacity, holding), b.remaining + holding);
        return;
      }
      if (resetAt >= s.end + SECOND / 2) this.roll(s, Math.max(sentAt, resetAt - (s.windowMs ?? resetAt - s.end)));
    }
    if (s.limited && (sentAt < s.limitedSent || answeredAt < s.limitedAnswered)) {
      // An earlier request of this window refused: fewer of its successes count in it.
      s.limitedSent = Math.min(s.limitedSent, sentAt);
      s.limitedAnswered = Math.min(s.limitedAnswered, answeredAt);
      s.count = this.counted(s);
      if (s.count > 0 && s.count !== s.capacity) this.set(b, s, s.count);
    }
    if (s.limited || (s.reset !== undefined && resetAt < s.reset + SECOND / 2)) return; // learned already
    if (s.reset !== undefined && s.windowMs !== undefined) {
      // Resets a whole number of windows apart confirm the length; otherwise it was a guess.
      const gap = resetAt - s.reset;
      const k = Math.round(gap / s.windowMs);
      if (!(k >= 1 && Math.abs(gap - k * s.windowMs) <= SECOND / 2)) this.setWindow(b, s, gap);
    } else if (s.count > 0) {
      this.guessWindow(b, s, resetAt, serverAt);
    }
    if (s.clean >= s.probeAfter) s.probeAfter = Math.min(MAX_PROBE_AFTER, s.probeAfter * 2);
    s.clean = 0;
    s.limited = true;
    s.limitedSent = sentAt;
    s.limitedAnswered = answeredAt;
    s.count = this.counted(s);
    s.reset = resetAt;
    s.anchor = serverAt === undefined ? undefined : { server: serverAt, local: resetAt };
    s.end = resetAt;
    if (s.windowMs !== undefined) s.start = resetAt - s.windowMs;
    b.resetKind = 'server';
    // No success in the window yet: someone else spent it, or our answers are still on their way.
    if (s.count > 0) this.set(b, s, s.count);
  }

  /**
   * The time from the window's first send to its reset, rounded up to a second: at most its
   * length. A reset told as an instant of the server's clock is taken at the earliest the clock
   * offset allows: read through the offset's lower bound (as a wait is, so that it ends late
   * rather than early), a reset a second unsure made a 1-s window look 2 s long, and no later 429
   * ever came to correct it: the bucket went at half the speed the server allows for good.
   */
  private guessWindow(b: Bucket, s: Learning, resetAt: number, serverAt: number | undefined): void {
    const reset = serverAt === undefined ? resetAt : Math.min(resetAt, this.earliestLocal(serverAt));
    let windowMs = Math.max(SECOND, Math.ceil((reset - s.firstSent - SLOP_MS) / SECOND) * SECOND);
    // Shorter than the window the profile hints (HubSpot's second, Fieldwire's minute), never
    // longer: from the first success ever, a 429 after days of traffic guessed a window of days,
    // and took every success since for its capacity (256 where the server allows 5). The
    // successes before the hinted window are not this window's. A sliding window's hinted length
    // (a Fieldwire legacy endpoint's declared numbers) is not shortened either: the guess is only
    // a lower bound, and a declared minute whose 429 came 4 s after our first success of it
    // (another client had spent the rest) was paced as 4-s windows, several times the limit.
    const hinted = b.windowSource === 'hint' ? b.windowMs : undefined;
    if (hinted !== undefined && (windowMs > hinted || (b.rolling && windowMs < hinted))) {
      windowMs = hinted;
      const start = resetAt - windowMs - SLOP_MS;
      s.sends = s.sends.filter((t) => t.sent >= start);
      s.firstSent = s.sends.length > 0 ? Math.min(...s.sends.map((t) => t.sent)) : Infinity;
      s.count = s.sends.length;
    }
    this.setWindow(b, s, windowMs);
  }

  private setWindow(b: Bucket, s: Learning, windowMs: number): void {
    // Never longer than the limiter waits for a server: a guess of days stopped the bucket for days.
    s.windowMs = Math.min(windowMs, this.maxWindowMs());
    if (b.windowSource === 'headers') return;
    b.windowMs = s.windowMs;
    b.windowSource = 'inferred';
  }

  private set(b: Bucket, s: Learning, capacity: number): void {
    const from = s.capacity ?? b.limit ?? null;
    s.capacity = capacity;
    b.limit = capacity;
    b.limitSource = 'inferred';
    b.source = 'inferred';
    if (from !== capacity) this.changed(b, from, capacity);
  }

  /**
   * This window's successes: in a window a 429 closed, every success sent before the first
   * refusal came back. A fixed window refuses everything once full, so a success reached the
   * server before the refused request did, or in the next window; and one sent before that
   * refusal was answered may have done either. Latency that varies reorders requests sent a few
   * ms apart: counting only those sent before the refused request undercounted the window, and
   * every later window then went a request short (a lost window in ten). Counting one of the
   * next window costs at most one 429 there, which lowers the capacity to what it admitted.
   */
  private counted(s: Learning): number {
    if (!s.limited) return Math.max(s.count, s.sends.length);
    let n = 0;
    for (const t of s.sends) if (inWindow(s, t)) n++;
    return n;
  }

  /** Moves the window's grid with the clock offset's estimate (sharpened by later `Date` headers). */
  private follow(s: Learning): void {
    if (s.anchor) {
      const shift = this.toLocal(s.anchor.server) - s.anchor.local;
      if (shift !== 0) {
        s.anchor.local += shift;
        if (s.start !== undefined) s.start += shift;
        if (s.end !== undefined) s.end += shift;
        if (s.reset !== undefined) s.reset += shift;
      }
    }
    if (s.end === undefined && s.start !== undefined && s.windowMs !== undefined) s.end = s.start + s.windowMs;
  }

  /** Moves to the window `sentAt` falls in, once the current one is over (after {@link follow}). */
  private roll(s: Learning, sentAt: number): void {
    if (s.end === undefined || sentAt < s.end - SLOP_MS) return;
    const w = s.windowMs;
    s.start = w === undefined ? s.end : s.end + Math.floor((sentAt - s.end + SLOP_MS) / w) * w;
    s.end = w === undefined ? undefined : s.start + w;
    // Successes sent after a refused request of a closed window were counted in the next one.
    const late = s.limited ? s.sends.filter((t) => !inWindow(s, t)) : [];
    s.sends = late;
    s.count = late.length;
    s.firstSent = late.length ? Math.min(...late.map((t) => t.sent)) : Infinity;
    s.limited = false;
    s.limitedSent = Infinity;
    s.limitedAnswered = Infinity;
    s.probing = false;
  }

  private of(b: Bucket): Learning {
    const learned = (this.learned ??= new WeakMap());
    let s = learned.get(b);
    if (!s) {
      s = {
        start: undefined,
        end: undefined,
        firstSent: Infinity,
        count: 0,
        sends: [],
        limited: false,
        limitedSent: Infinity,
        limitedAnswered: Infinity,
        probing: false,
        reset: undefined,
        anchor: undefined,
        capacity: undefined,
        windowMs: undefined,
        clean: 0,
        probeAfter: PROBE_AFTER,
      };
      learned.set(b, s);
    }
    return s;
  }
}
