/**
 * The destination side of a migration: QEMU's `process_incoming_migration_co` — load the stream as it arrives,
 * answer the return path (PONG, SHUT), then start the guest or leave it paused.
 *
 * @module
 */

import { isMigrationError, MigrationError, toMigrationError } from "../errors.js";
import { Command } from "../savevm/format.js";
import { loadStream, receiveIntoMachine } from "../savevm/save-vm.js";
import type { StreamLoaderOptions } from "../savevm/stream-loader.js";
import type { Channel } from "../transport/channel.js";
import { ByteReader, type ByteReaderOptions } from "../wire/byte-reader.js";
import { MigrationJob } from "./_job.js";
import type { MigrationEventListener, MigrationInfo, MigrationStatus } from "./events.js";
import type { MigratableGuest } from "./guest.js";
import { encodeRpU32, RpMessage } from "./return-path.js";
import type { MigrationSettings } from "./settings.js";

/** How long a failed destination keeps draining the stream after SHUT(1) so the source can read it (ms). */
const SHUT_DRAIN_MS = 2000;

/** Options of {@link MigrationDestination}. */
export interface MigrationDestinationOptions {
  /** Reads the destination's capabilities (for `events`). */
  readonly settings: () => MigrationSettings;
  /** Receives MIGRATION / RESUME events. */
  readonly onEvent?: MigrationEventListener;
  /**
   * Stay paused after loading even when the source was running (QEMU's `-S`). Default false. A function is asked
   * when the load completes, so a QMP `stop` or `cont` during the load can change the answer (QEMU's `autostart`).
   */
  readonly paused?: boolean | (() => boolean);
  /** Reader caps. */
  readonly reader?: Partial<ByteReaderOptions>;
  /** Loader options (caps, vmdesc validation). */
  readonly loader?: Partial<Omit<StreamLoaderOptions, "onCommand">>;
}

/**
 * One incoming migration.
 *
 * @example
 * ```ts
 * const d = new MigrationDestination(guest, { settings: () => settings });
 * d.start(() => listener.accept());
 * await d.done;
 * ```
 */
export class MigrationDestination extends MigrationJob {
  readonly #guest: MigratableGuest;
  readonly #opts: MigrationDestinationOptions;
  #channel: Channel | undefined;
  #started = 0;
  #totalTime: number | undefined;
  #bytes = 0;
  #reader: ByteReader | undefined;

  constructor(guest: MigratableGuest, options: MigrationDestinationOptions) {
    super();
    this.#guest = guest;
    this.#opts = options;
  }

  /** Whether the incoming migration is still running. */
  get isActive(): boolean {
    return this.status === "setup" || this.status === "active";
  }

  #setStatus(s: MigrationStatus): void {
    if (!this.transition(s)) return;
    // QEMU 7.2's destination always announces setup; the rest only with the events capability.
    if (s === "setup" || this.#opts.settings().events)
      this.#opts.onEvent?.({ event: "MIGRATION", data: { status: s } });
  }

  /**
   * Starts loading in the background.
   *
   * @param accept Opens the incoming channel (e.g. a listener's accept).
   */
  start(accept: () => Promise<Channel>): void {
    if (this.status !== "none") throw new MigrationError("INVALID_STATE", "Cannot start an incoming migration twice");
    this.#started = performance.now();
    this.#guest.control.setRunState("inmigrate");
    this.#guest.globalState.resetReceived();
    this.#setStatus("setup");
    this.runInBackground(this.#run(accept));
  }

  /** Aborts a running incoming migration (the load fails with CANCELLED). */
  cancel(): void {
    this.#channel?.abort(new MigrationError("CANCELLED", "Incoming migration cancelled"));
  }

  async #run(accept: () => Promise<Channel>): Promise<void> {
    const guest = this.#guest;
    let rpOpen = false;
    let channel: Channel | undefined;
    try {
      channel = await accept();
      this.#channel = channel;
      receiveIntoMachine(guest, channel);
      this.#setStatus("active");
      const r = new ByteReader(channel, this.#opts.reader);
      this.#reader = r;
      const ch = channel;
      await loadStream(guest, r, {
        ...this.#opts.loader,
        onCommand: async (cmd, payload, offset) => {
          if (cmd === Command.OpenReturnPath) {
            if (!ch.canWrite) {
              throw new MigrationError("BAD_COMMAND", `Cannot open the return path on one-way ${ch.description}`, {
                offset,
              });
            }
            rpOpen = true;
            return;
          }
          if (cmd === Command.Ping) {
            if (!rpOpen) {
              throw new MigrationError("BAD_COMMAND", "Received PING without a return path", { offset });
            }
            const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
            await ch.write(encodeRpU32(RpMessage.Pong, v));
            return;
          }
          throw new MigrationError("BAD_COMMAND", `Cannot handle command ${cmd} in a precopy migration`, { offset });
        },
      });
      this.#bytes = r.offset;
      if (rpOpen) {
        await ch.write(encodeRpU32(RpMessage.Shut, 0));
        await ch.end().catch(() => {});
      }
      const received = guest.globalState.received;
      this.#totalTime = performance.now() - this.#started;
      this.#setStatus("completed");
      if (received === undefined || received === "running") {
        const paused = this.#opts.paused;
        if (typeof paused === "function" ? paused() : paused === true) guest.control.setRunState("paused");
        else {
          await guest.control.cont();
          this.#opts.onEvent?.({ event: "RESUME", data: {} });
        }
      } else {
        guest.control.setRunState(received === "prelaunch" ? "prelaunch" : "paused");
      }
      await ch.close().catch(() => {});
    } catch (e) {
      const err = isMigrationError(e) ? e : toMigrationError(e, "TRANSPORT", "Incoming migration failed");
      this.setError(err);
      this.#bytes = this.#reader?.offset ?? 0;
      if (rpOpen && channel !== undefined) {
        try {
          await channel.write(encodeRpU32(RpMessage.Shut, 1));
          await channel.end();
          // Keep reading (and dropping) what the source still sends until it reacts to SHUT(1) and closes:
          // closing with unread bytes would reset the connection and could destroy SHUT before the source reads
          // it. Bounded in time.
          const ch = channel;
          const deadline = performance.now() + SHUT_DRAIN_MS;
          while (performance.now() < deadline) {
            const next = await Promise.race([
              ch.read(),
              new Promise<null>((r) => setTimeout(() => r(null), Math.max(1, deadline - performance.now()))),
            ]);
            if (next === null) break;
          }
        } catch {
          // The source may be gone; it fails on its own then.
        }
      }
      channel?.abort(err);
      guest.control.setRunState("paused");
      this.#totalTime = performance.now() - this.#started;
      this.#setStatus("failed");
    }
  }

  /** QEMU's `query-migrate` result on the incoming side (`status`, plus `error-desc` on failure). */
  info(): MigrationInfo {
    if (this.status === "none") return {};
    const out: MigrationInfo = { status: this.status };
    if (this.status === "failed" && this.error !== undefined) out["error-desc"] = this.error.message;
    return out;
  }

  /** Stream bytes received so far (or in all, once done). */
  get bytes(): number {
    return this.#reader?.offset ?? this.#bytes;
  }

  /** Total time in ms, once done. */
  get totalTimeMs(): number | undefined {
    return this.#totalTime;
  }
}
