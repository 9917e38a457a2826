/**
 * A bytes-per-second budget checked per 100 ms window, as QEMU's migration thread enforces `max-bandwidth`.
 *
 * QEMU: `migration_rate_limit()` / `qemu_file_rate_limit()`; the window is `BUFFER_DELAY` (100 ms) and each
 * window may carry `max-bandwidth / 10` bytes.
 *
 * @module
 */

/** QEMU's rate-limit window: `BUFFER_DELAY` = 100 ms. */
export const RATE_LIMIT_WINDOW_MS = 100;

/** A monotonic clock in milliseconds. */
export type Clock = () => number;

/** The default clock: `performance.now()`, monotonic and sub-millisecond. */
export const defaultClock: Clock = () => performance.now();

/**
 * Tracks how many bytes were sent in the current 100 ms window against a per-second budget.
 *
 * Iterative savers call {@link RateLimiter.isExceeded} with the writer's byte count before each chunk; when it says
 * yes they stop and the engine waits {@link RateLimiter.msUntilNextWindow}.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter(128 * 1024 * 1024);
 * while (!limiter.isExceeded(writer.offset)) ramSaver.sendSomePages(writer);
 * await sleep(limiter.msUntilNextWindow());
 * ```
 */
export class RateLimiter {
  #bytesPerSecond: number;
  #clock: Clock;
  #windowStart: number;
  #windowStartBytes = 0;

  /**
   * @param bytesPerSecond The budget; `Infinity` or 0 means unlimited.
   * @param clock A monotonic clock in ms (tests inject a fake one).
   */
  constructor(bytesPerSecond: number, clock: Clock = defaultClock) {
    this.#bytesPerSecond = RateLimiter.#normalise(bytesPerSecond);
    this.#clock = clock;
    this.#windowStart = clock();
  }

  static #normalise(bps: number): number {
    if (Number.isNaN(bps) || bps < 0)
      throw new RangeError(`Cannot set rate limit: ${bps} is not a non-negative number`);
    return bps === 0 ? Number.POSITIVE_INFINITY : bps;
  }

  /** The budget in bytes per second (`Infinity` when unlimited). */
  get bytesPerSecond(): number {
    return this.#bytesPerSecond;
  }

  /** Changes the budget; takes effect in the current window (as `migrate-set-parameters max-bandwidth` does). */
  set bytesPerSecond(bps: number) {
    this.#bytesPerSecond = RateLimiter.#normalise(bps);
  }

  /** Bytes allowed per window. */
  get bytesPerWindow(): number {
    return (this.#bytesPerSecond * RATE_LIMIT_WINDOW_MS) / 1000;
  }

  #roll(totalBytes: number): void {
    const now = this.#clock();
    if (now - this.#windowStart >= RATE_LIMIT_WINDOW_MS) {
      this.#windowStart = now;
      this.#windowStartBytes = totalBytes;
    }
  }

  /**
   * Whether the budget of the current window is used up.
   *
   * @param totalBytes The writer's running byte count (e.g. `ByteWriter.offset`).
   * @returns True when the caller should stop sending until the next window.
   */
  isExceeded(totalBytes: number): boolean {
    if (this.#bytesPerSecond === Number.POSITIVE_INFINITY) return false;
    this.#roll(totalBytes);
    return totalBytes - this.#windowStartBytes >= this.bytesPerWindow;
  }

  /** Bytes still allowed in the current window (`Infinity` when unlimited). */
  remaining(totalBytes: number): number {
    if (this.#bytesPerSecond === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
    this.#roll(totalBytes);
    return Math.max(0, this.bytesPerWindow - (totalBytes - this.#windowStartBytes));
  }

  /** Milliseconds until the current window ends. */
  msUntilNextWindow(): number {
    return Math.max(0, this.#windowStart + RATE_LIMIT_WINDOW_MS - this.#clock());
  }
}
