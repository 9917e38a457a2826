/**
 * The iterative-device interface: QEMU's `SaveVMHandlers` for live sections (START / PART / END).
 *
 * The savevm layer writes each section's header and footer; a handler writes and reads only the payload in
 * between. RAM (`ram/`) is the main implementation.
 *
 * @module
 */

import type { ByteReader } from "../wire/byte-reader.js";
import type { ByteWriter } from "../wire/byte-writer.js";
import type { RateLimiter } from "../wire/rate-limiter.js";

/** The section types an iterative handler's payload can appear in. */
export type LiveSectionType = "start" | "part" | "end";

/** Source side of an iterative handler. QEMU: the save_* members of `SaveVMHandlers`. */
export interface IterativeSaveHandlers {
  /** Writes the START payload (RAM: the block list) and prepares the first pass. QEMU: `save_setup`. */
  saveSetup(w: ByteWriter): Promise<void>;
  /**
   * A cheap estimate of the bytes still to send (RAM: dirty pages × page size, without a dirty sync).
   * QEMU: `state_pending_estimate`.
   */
  pendingEstimate(): number;
  /** An exact figure: syncs dirty tracking first, then counts. QEMU: `state_pending_exact`. */
  pendingExact(): number;
  /**
   * Writes one PART payload while the guest runs. Sends until nothing is dirty, or `limiter` says the window's
   * budget is spent, or `deadline` (a `performance.now()` value) passes, whichever comes first.
   * Awaits the writer's backpressure between batches.
   *
   * @returns True when everything that was dirty at the last sync has been sent. QEMU: `save_live_iterate`.
   */
  saveLiveIterate(w: ByteWriter, limiter: RateLimiter | undefined, deadline: number): Promise<boolean>;
  /** Writes the END payload with the guest stopped: a final sync and every remaining dirty page. */
  saveComplete(w: ByteWriter): Promise<void>;
  /** Releases per-migration state on the source (after success, failure or cancel). QEMU: `save_cleanup`. */
  saveCleanup(): void;
}

/** Destination side of an iterative handler. QEMU: `load_setup`, `load_state`, `load_cleanup`. */
export interface IterativeLoadHandlers {
  /** Prepares for an incoming stream. */
  loadSetup(): void;
  /**
   * Reads one section payload (START, PART or END) up to (not including) the section footer. Validates every
   * record before writing guest state; failures are `MigrationError`s with path and stream offset.
   */
  loadState(r: ByteReader, versionId: number, section: LiveSectionType): Promise<void>;
  /** Releases per-migration state on the destination. */
  loadCleanup(): void;
}

/** A live (iterative) device: both sides, with QEMU's identity fields. */
export interface IterativeDevice extends IterativeSaveHandlers, IterativeLoadHandlers {
  /** The section idstr, e.g. `ram`. */
  readonly idstr: string;
  /** The version written in the START section header (RAM: 4). */
  readonly version: number;
}
