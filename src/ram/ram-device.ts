/**
 * The iterative device `ram` (instance 0, version 4): QEMU's `savevm_ram_handlers` over a list of RAM blocks.
 *
 * @module
 */

import type { IterativeDevice, LiveSectionType } from "../savevm/handlers.js";
import type { ByteReader } from "../wire/byte-reader.js";
import type { ByteWriter } from "../wire/byte-writer.js";
import type { RateLimiter } from "../wire/rate-limiter.js";
import type { RamBlock } from "./ram-block.js";
import { RAM_SECTION_NAME, RAM_SECTION_VERSION } from "./ram-flags.js";
import { RamLoader, type RamLoadStats } from "./ram-loader.js";
import { RamSaver, type RamSaverOptions, type RamStats } from "./ram-saver.js";

/** Options of {@link RamDevice}. */
export type RamDeviceOptions = RamSaverOptions;

/**
 * The `ram` live section over a fixed list of blocks, both directions, in QEMU 7.2's format.
 *
 * Register it with the savevm layer as an iterative entry; the same object serves as source and destination.
 *
 * @example
 * ```ts
 * const ram = new RamDevice([new RamBlock("pc.ram", 128 << 20), new RamBlock("pc.bios", 256 << 10)]);
 * registry.registerLive(ram); // START: block list; PART: dirty pages; END: the rest
 * ```
 */
export class RamDevice implements IterativeDevice {
  /** The section idstr: `ram`. */
  readonly idstr = RAM_SECTION_NAME;
  /** The section instance id: 0. */
  readonly instanceId = 0;
  /** The section version: 4. */
  readonly version = RAM_SECTION_VERSION;
  /** The blocks, in stream order. */
  readonly blocks: readonly RamBlock[];
  readonly #saver: RamSaver;
  readonly #loader: RamLoader;

  /**
   * @param blocks The machine's migratable RAM blocks, in the order QEMU lists them (unique idstrs).
   * @param options Saver tuning; see {@link RamSaverOptions}.
   * @throws TypeError when two blocks share an idstr.
   */
  constructor(blocks: readonly RamBlock[], options: Partial<RamDeviceOptions> = {}) {
    this.blocks = Object.freeze([...blocks]);
    let total = 0;
    for (const b of this.blocks) total += b.size;
    if (!Number.isSafeInteger(total)) throw new RangeError("Cannot create RAM device: total size is too large");
    this.#loader = new RamLoader(this.blocks);
    this.#saver = new RamSaver(this.blocks, options);
  }

  /** Source statistics (QMP `ram` names; see {@link RamStats}). */
  get stats(): RamStats {
    return this.#saver.stats;
  }

  /** Destination counters. */
  get loadStats(): RamLoadStats {
    return this.#loader.stats;
  }

  /** Runs a dirty sync now and returns the pages it added (QEMU: `migration_bitmap_sync`). */
  syncDirty(): number {
    return this.#saver.sync();
  }

  saveSetup(w: ByteWriter): Promise<void> {
    return this.#saver.setup(w);
  }

  pendingEstimate(): number {
    return this.#saver.pendingEstimate();
  }

  pendingExact(): number {
    return this.#saver.pendingExact();
  }

  saveLiveIterate(w: ByteWriter, limiter: RateLimiter | undefined, deadline: number): Promise<boolean> {
    return this.#saver.iterate(w, limiter, deadline);
  }

  saveComplete(w: ByteWriter): Promise<void> {
    return this.#saver.complete(w);
  }

  saveCleanup(): void {
    this.#saver.cleanup();
  }

  loadSetup(): void {
    this.#loader.setup();
  }

  loadState(r: ByteReader, versionId: number, section: LiveSectionType): Promise<void> {
    return this.#loader.load(r, versionId, section);
  }

  loadCleanup(): void {
    this.#loader.cleanup();
  }
}
