/**
 * The source side of a live migration: QEMU's migration thread (`migration_thread`, `migration_iteration_run`,
 * `migration_completion`) — precopy rounds under `max-bandwidth`, convergence by `downtime-limit`, auto-converge,
 * pause-before-switchover, the return path, statistics and events.
 *
 * @module
 */

import { isMigrationError, MigrationError, toMigrationError } from "../errors.js";
import type { RamStats } from "../ram/ram-saver.js";
import { StreamSaver } from "../savevm/stream-saver.js";
import type { Channel } from "../transport/channel.js";
import { ByteReader, NEED_MORE } from "../wire/byte-reader.js";
import { ByteWriter, type ByteWriterOptions } from "../wire/byte-writer.js";
import { RateLimiter } from "../wire/rate-limiter.js";
import { MigrationJob } from "./_job.js";
import type { MigrationEventListener, MigrationInfo, MigrationStatus } from "./events.js";
import { hasRamStatistics, type MigratableGuest, type RunState } from "./guest.js";
import { decodeRpMessage, RpMessage } from "./return-path.js";
import type { MigrationSettings } from "./settings.js";

/** QEMU's `BUFFER_DELAY`: how often bandwidth and the convergence threshold are recomputed. */
const WINDOW_MS = 100;
/** QEMU's `MAX_WAIT`: the longest one PART iteration may run. */
const ITERATION_MAX_MS = 50;
/** Switch over at once when what is left takes at most this long to send (ms). */
const SMALL_SWITCHOVER_MS = 20;
/** Passes beyond the first that fit the downtime limit, after which Ferry switches over anyway. */
const MAX_EXTRA_PASSES = 10;
/** Auto-converge looks at dirty vs sent bytes once per sync period of at least this long (QEMU: 1 s). */
const THROTTLE_PERIOD_MS = 1000;

/** Options of {@link MigrationSource}. */
export interface MigrationSourceOptions {
  /** Reads the current capabilities and parameters (called every iteration). */
  readonly settings: () => MigrationSettings;
  /** Receives MIGRATION / MIGRATION_PASS / STOP / RESUME events. */
  readonly onEvent?: MigrationEventListener;
  /** Writer buffers. */
  readonly writer?: Partial<ByteWriterOptions>;
  /** How long to wait for the destination's SHUT on the return path after EOF; default 60 s. */
  readonly shutTimeoutMs?: number;
}

const yieldToEventLoop: () => Promise<void> =
  typeof setImmediate === "function"
    ? () => new Promise((resolve) => setImmediate(resolve))
    : () => new Promise((resolve) => setTimeout(resolve, 0));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One outgoing migration. Create it, call {@link MigrationSource.start}, then follow {@link MigrationSource.info}
 * and events; {@link MigrationSource.done} resolves when it reaches completed, failed or cancelled.
 *
 * Guarantee (invariant 1): on failure or cancel at any point the guest resumes as it was (if it was running when
 * the migration began) and its state is unchanged; after success it stays stopped in `postmigrate`.
 *
 * @example
 * ```ts
 * const m = new MigrationSource(guest, { settings: () => settings });
 * m.start(() => connect("tcp:127.0.0.1:4444"));
 * await m.done;
 * console.log(m.info());
 * ```
 */
export class MigrationSource extends MigrationJob {
  readonly #guest: MigratableGuest;
  readonly #opts: MigrationSourceOptions;
  #channel: Channel | undefined;
  #writer: ByteWriter | undefined;
  #cancelRequested = false;
  #continueResolve: (() => void) | undefined;
  #started = 0;
  #setupTime: number | undefined;
  #totalTime: number | undefined;
  #downtime: number | undefined;
  #expectedDowntime = 0;
  #bandwidth = 0; // bytes per ms in the last window
  #throttle = 0;
  #stoppedAt: number | undefined;
  #wasRunning = false;
  #rpFailure: MigrationError | undefined;
  #prevRunState: RunState = "running";
  #precopyBytes = 0;
  #downtimeBytes = 0;
  #pendingBytes = 0;
  #lastSyncCount = 0;

  constructor(guest: MigratableGuest, options: MigrationSourceOptions) {
    super();
    this.#guest = guest;
    this.#opts = options;
  }

  /** Whether the migration is between setup and its end. */
  get isActive(): boolean {
    return !["none", "completed", "failed", "cancelled"].includes(this.status);
  }

  #emit(event: "MIGRATION" | "MIGRATION_PASS" | "STOP" | "RESUME", data: Record<string, unknown>): void {
    this.#opts.onEvent?.({ event, data });
  }

  #setStatus(s: MigrationStatus): void {
    if (!this.transition(s)) return;
    if (this.#opts.settings().events) this.#emit("MIGRATION", { status: s });
  }

  /**
   * Starts the migration in the background (QMP `migrate` returns at once).
   *
   * @param connect Opens the channel to the destination.
   */
  start(connect: () => Promise<Channel>): void {
    if (this.status !== "none") throw new MigrationError("INVALID_STATE", "Cannot start a migration twice");
    this.#started = performance.now();
    this.#setStatus("setup");
    this.runInBackground(this.#run(connect));
  }

  /** Requests cancellation (QMP `migrate_cancel`); the migration ends `cancelled` with the guest as it was. */
  cancel(): void {
    if (!this.isActive || this.#cancelRequested) return;
    this.#cancelRequested = true;
    this.#setStatus("cancelling");
    this.#continueResolve?.();
    this.#channel?.abort(new MigrationError("CANCELLED", "Migration cancelled"));
  }

  /** Continues from `pre-switchover` (QMP `migrate-continue`). */
  continueFrom(state: MigrationStatus): void {
    if (this.status !== state) {
      throw new MigrationError("INVALID_STATE", `Migration not in expected state: ${state} (it is ${this.status})`);
    }
    this.#continueResolve?.();
  }

  #checkCancel(): void {
    if (this.#cancelRequested) throw new MigrationError("CANCELLED", "Migration cancelled");
  }

  #ram(): RamStats | undefined {
    for (const e of this.#guest.registry.iterative) if (hasRamStatistics(e.device)) return e.device.stats;
    return undefined;
  }

  /** Emits MIGRATION_PASS for each dirty sync since the last check; runs auto-converge at sync points. */
  #afterSync(throttleState: {
    periodStart: number;
    bytesAtStart: number;
    dirtyPages: number;
    highCount: number;
  }): void {
    const ram = this.#ram();
    if (ram === undefined) return;
    while (this.#lastSyncCount < ram.dirtySyncCount) {
      this.#lastSyncCount++;
      if (this.#opts.settings().events) this.#emit("MIGRATION_PASS", { pass: this.#lastSyncCount });
      if (this.#lastSyncCount > 1) throttleState.dirtyPages += ram.lastSyncDirtyPages;
    }
    const s = this.#opts.settings();
    const now = performance.now();
    if (now - throttleState.periodStart < THROTTLE_PERIOD_MS) return;
    const sent = (this.#writer?.offset ?? 0) - throttleState.bytesAtStart;
    const dirtied = throttleState.dirtyPages * ram.pageSize;
    throttleState.periodStart = now;
    throttleState.bytesAtStart = this.#writer?.offset ?? 0;
    throttleState.dirtyPages = 0;
    if (!s.autoConverge) return;
    // QEMU's migration_trigger_throttle: dirtied > threshold% of sent, twice in a row.
    if (dirtied > (sent * s.throttleTriggerThreshold) / 100) {
      if (++throttleState.highCount >= 2) {
        throttleState.highCount = 0;
        const next =
          this.#throttle === 0
            ? s.cpuThrottleInitial
            : Math.min(this.#throttle + s.cpuThrottleIncrement, s.maxCpuThrottle);
        this.#throttle = Math.min(next, s.maxCpuThrottle);
        this.#guest.control.setThrottle(this.#throttle);
      }
    }
  }

  async #run(connect: () => Promise<Channel>): Promise<void> {
    const guest = this.#guest;
    let saver: StreamSaver | undefined;
    let rpDone: Promise<number> | undefined;
    try {
      const channel = await connect();
      this.#channel = channel;
      this.#checkCancel();
      const w = new ByteWriter(channel, { stagingMemory: this.#guest.ioMemory, ...this.#opts.writer });
      this.#writer = w;
      saver = new StreamSaver(w, guest.registry, guest.config);
      const settings = this.#opts.settings();
      saver.writeHeader();
      if (settings.returnPath) {
        if (!channel.canRead) {
          throw new MigrationError(
            "TRANSPORT",
            `Cannot open the return path: ${channel.description} is one-way (turn the return-path capability off)`,
          );
        }
        saver.openReturnPath();
        saver.ping(1);
        rpDone = this.#readReturnPath(channel);
        // A destination that gives up early (SHUT(1), or a closed return path) fails the migration at once
        // instead of when the source reaches the end of its stream.
        rpDone.then(
          (v) => {
            if (v !== 0 && this.#stoppedAt === undefined) {
              this.#rpFailure = new MigrationError(
                "DESTINATION_FAILED",
                `The destination failed to load the stream (SHUT ${v})`,
              );
              channel.abort(this.#rpFailure);
            }
          },
          (e: unknown) => {
            if (this.#stoppedAt === undefined && this.isActive) {
              this.#rpFailure = isMigrationError(e) ? e : toMigrationError(e, "TRANSPORT", "Return path failed");
              channel.abort(this.#rpFailure);
            }
          },
        );
      }
      await saver.setup();
      await w.ready();
      const throttleState = { periodStart: performance.now(), bytesAtStart: w.offset, dirtyPages: 0, highCount: 0 };
      this.#afterSync(throttleState);
      this.#setupTime = performance.now() - this.#started;
      this.#checkCancel();
      this.#setStatus("active");

      const limiter = new RateLimiter(settings.maxBandwidth);
      let windowStart = performance.now();
      let windowBytes = w.offset;
      let threshold = 0;
      let lastExact: number | undefined;
      let lastSyncAt = performance.now();
      let extraPasses = 0;
      for (;;) {
        this.#checkCancel();
        const s = this.#opts.settings();
        limiter.bytesPerSecond = s.maxBandwidth;
        const now = performance.now();
        if (now - windowStart >= WINDOW_MS) {
          const elapsed = now - windowStart;
          this.#bandwidth = (w.offset - windowBytes) / elapsed;
          threshold = this.#bandwidth * s.downtimeLimit;
          windowStart = now;
          windowBytes = w.offset;
          this.#expectedDowntime = this.#bandwidth > 0 ? this.#pendingBytes / this.#bandwidth : 0;
        }
        // When to switch over. QEMU 7.2 completes as soon as the cheap estimate (without a dirty sync) is 0 or
        // below bandwidth × downtime-limit, and then sends up to that much with the guest stopped: with the
        // default 300 ms limit, an idle 1 GiB guest on a fast link stops for ~300 ms. Ferry syncs at pass
        // boundaries and keeps iterating while the passes still shrink what is dirty, so the stop only carries
        // what a pass can no longer reduce: completion needs the exact figure to fit the limit, and either to be
        // small (≤ SMALL_SWITCHOVER_MS of bandwidth) or to have stopped shrinking.
        let pending = saver.pendingEstimate();
        const small = this.#bandwidth * Math.min(s.downtimeLimit, SMALL_SWITCHOVER_MS);
        if (pending === 0 || pending < small) {
          pending = saver.pendingExact();
          this.#afterSync(throttleState);
          this.#pendingBytes = pending;
          const now = performance.now();
          const fits = pending === 0 || pending < threshold;
          // Stalled: the last pass did not shrink the dirty set, or the next one cannot — what is dirty now was
          // dirtied during the last pass, so if sending it takes about as long as that pass did, the guest will
          // have dirtied about as much again by then (a guest rewriting its working set faster than we send).
          const nextPassMs = this.#bandwidth > 0 ? pending / this.#bandwidth : 0;
          const stalled =
            (lastExact !== undefined && pending >= lastExact * 0.8) ||
            (this.#bandwidth > 0 && nextPassMs >= 0.8 * (now - lastSyncAt));
          lastSyncAt = now;
          if (pending === 0 || pending < small || (fits && (stalled || ++extraPasses > MAX_EXTRA_PASSES))) break;
          lastExact = pending;
        }
        this.#pendingBytes = pending;
        if (limiter.isExceeded(w.offset)) {
          await w.ready();
          await sleep(Math.max(1, limiter.msUntilNextWindow()));
          continue;
        }
        await saver.iterate(limiter, performance.now() + ITERATION_MAX_MS);
        await w.ready();
        this.#precopyBytes = w.offset;
        await yieldToEventLoop();
      }

      // Completion: stop the guest, send the rest, wait for the destination.
      this.#checkCancel();
      this.#stoppedAt = performance.now();
      this.#prevRunState = guest.control.runState();
      this.#wasRunning = this.#prevRunState === "running";
      guest.globalState.store(this.#prevRunState);
      if (this.#wasRunning) {
        await guest.control.stop("finish-migrate");
        this.#emit("STOP", {});
      } else {
        guest.control.setRunState("finish-migrate");
      }
      if (this.#opts.settings().pauseBeforeSwitchover) {
        this.#setStatus("pre-switchover");
        await new Promise<void>((resolve) => {
          this.#continueResolve = resolve;
        });
        this.#continueResolve = undefined;
        this.#checkCancel();
        this.#setStatus("device");
      }
      const before = w.offset;
      await saver.complete();
      this.#afterSync(throttleState);
      await w.flush();
      this.#downtimeBytes = w.offset - before;
      if (rpDone !== undefined) {
        const shut = await withTimeout(rpDone, this.#opts.shutTimeoutMs ?? 60_000, "the destination's SHUT");
        if (shut !== 0) {
          throw new MigrationError("DESTINATION_FAILED", `The destination failed to load the stream (SHUT ${shut})`);
        }
      } else {
        await channel.end();
      }
      this.#downtime = performance.now() - this.#stoppedAt;
      this.#pendingBytes = 0;
      this.#totalTime = performance.now() - this.#started;
      saver.cleanup();
      saver = undefined;
      guest.globalState.clearStored();
      guest.control.setRunState("postmigrate");
      guest.control.setThrottle(0);
      this.#throttle = 0;
      this.#setStatus("completed");
      await channel.close().catch(() => {});
    } catch (e) {
      const cancelled = this.#cancelRequested;
      const err = cancelled
        ? new MigrationError("CANCELLED", "Migration cancelled", { cause: e })
        : (this.#rpFailure ?? (isMigrationError(e) ? e : toMigrationError(e, "TRANSPORT", "Migration failed")));
      this.setError(err);
      this.#channel?.abort(err);
      try {
        saver?.cleanup();
      } catch {
        // Cleanup must not hide the original error.
      }
      guest.control.setThrottle(0);
      this.#throttle = 0;
      guest.globalState.clearStored();
      await this.#resumeGuest();
      this.#totalTime = performance.now() - this.#started;
      this.#setStatus(cancelled ? "cancelled" : "failed");
    }
  }

  async #resumeGuest(): Promise<void> {
    const control = this.#guest.control;
    if (this.#stoppedAt === undefined) return;
    if (this.#wasRunning) {
      if (control.runState() !== "running") {
        await control.cont();
        this.#emit("RESUME", {});
      }
    } else {
      control.setRunState(this.#prevRunState);
    }
  }

  /** Reads return-path messages until SHUT; resolves with SHUT's value. */
  async #readReturnPath(channel: Channel): Promise<number> {
    const r = new ByteReader(channel, { maxBufferedBytes: 1 << 20 });
    for (;;) {
      let msg = r.tryDecode(decodeRpMessage);
      while (msg === NEED_MORE) {
        if (!(await r.more())) {
          throw new MigrationError("TRANSPORT", "The destination closed the return path before sending SHUT", {
            path: ["return-path"],
            offset: r.offset,
          });
        }
        msg = r.tryDecode(decodeRpMessage);
      }
      if (msg.type === RpMessage.Shut) return msg.value ?? 1;
      if (msg.type === RpMessage.Pong) continue;
      throw new MigrationError("BAD_COMMAND", `Unexpected return-path message ${msg.type} during precopy`, {
        path: ["return-path"],
        offset: r.offset,
      });
    }
  }

  /** QEMU's `query-migrate` result for this migration. */
  info(): MigrationInfo {
    if (this.status === "none") return {};
    const out: MigrationInfo = { status: this.status };
    const ram = this.#ram();
    const transferred = this.#writer?.offset ?? 0;
    const now = performance.now();
    const total = this.#totalTime ?? now - this.#started;
    if (this.status !== "setup") {
      const remaining = this.isActive ? (ram?.remaining ?? 0) : 0;
      out.ram = {
        transferred,
        remaining,
        total: ram?.total ?? 0,
        duplicate: ram?.duplicate ?? 0,
        skipped: 0,
        normal: ram?.normal ?? 0,
        "normal-bytes": ram?.normalBytes ?? 0,
        "dirty-pages-rate": Math.round(ram?.dirtyPagesRate ?? 0),
        mbps:
          this.status === "completed"
            ? round1((transferred * 8) / 1e6 / (total / 1000))
            : round1(this.#bandwidth * 8e-3),
        "dirty-sync-count": ram?.dirtySyncCount ?? 0,
        "postcopy-requests": 0,
        "page-size": ram?.pageSize ?? 4096,
        "multifd-bytes": 0,
        "pages-per-second": Math.round(ram?.pagesPerSecond ?? 0),
        "precopy-bytes": this.#precopyBytes,
        "downtime-bytes": this.#downtimeBytes,
        "postcopy-bytes": 0,
        "dirty-sync-missed-zero-copy": 0,
      };
    }
    out["total-time"] = Math.round(total);
    if (this.#setupTime !== undefined) out["setup-time"] = Math.round(this.#setupTime);
    if (this.status === "completed" && this.#downtime !== undefined) out.downtime = Math.round(this.#downtime);
    if (this.isActive && this.status !== "setup") out["expected-downtime"] = Math.round(this.#expectedDowntime);
    if (this.#throttle > 0) out["cpu-throttle-percentage"] = this.#throttle;
    if (this.status === "failed" && this.error !== undefined) out["error-desc"] = this.error.message;
    return out;
  }

  /** Downtime in ms with sub-millisecond precision (completed migrations only). */
  get downtimeMs(): number | undefined {
    return this.#downtime;
  }
}

function round1(v: number): number {
  return Number.isFinite(v) ? Math.round(v * 10) / 10 : 0;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new MigrationError("TIMEOUT", `Timed out after ${ms} ms waiting for ${what}`)),
          ms,
        );
      }),
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
