/**
 * The source side of the `ram` section: block list, page passes, dirty sync and statistics.
 *
 * QEMU: `ram_save_setup`, `ram_save_iterate`, `ram_save_complete`, `ram_state_pending_*`, `migration_bitmap_sync`
 * and `save_page_header` in `migration/ram.c` (7.2 stream format, no multifd, xbzrle, compression or postcopy).
 *
 * @module
 */

import type { ByteWriter } from "../wire/byte-writer.js";
import { type Clock, defaultClock, type RateLimiter } from "../wire/rate-limiter.js";
import { PageCopier } from "./_page-copy.js";
import { type CollectResult, PageBitmap } from "./dirty-bitmap.js";
import type { RamBlock } from "./ram-block.js";
import { RamFlag, TARGET_PAGE_SIZE } from "./ram-flags.js";

/** Options of {@link RamSaver}. */
export interface RamSaverOptions {
  /**
   * Pages sent between two checks of the rate limiter and the deadline, and between two `await w.ready()`
   * (backpressure). Default 128 (≈ 512 KiB of page data; QEMU checks its clock every 64 pages).
   */
  readonly batchPages: number;
  /** A monotonic clock in ms, the same one the `deadline` argument uses. Default `performance.now()`. */
  readonly clock: Clock;
}

/**
 * RAM migration statistics. Names follow QMP's `MigrationStats` (`query-migrate` → `ram`) where QEMU has one;
 * `transferred` is not here because counting bytes is the writer's job (`ByteWriter.offset`).
 */
export interface RamStats {
  /** Bytes of RAM in all blocks. QMP: `total`. */
  total: number;
  /** Bytes still to send (to-send pages × 4096) as of the last sync and sends. QMP: `remaining`. */
  remaining: number;
  /** Pages sent as ZERO records. QMP: `duplicate`. */
  duplicate: number;
  /** Pages sent as PAGE records. QMP: `normal`. */
  normal: number;
  /** Bytes of page data in PAGE records (normal × 4096). QMP: `normal-bytes`. */
  normalBytes: number;
  /** Dirty syncs done (the setup sync counts). QMP: `dirty-sync-count`. */
  dirtySyncCount: number;
  /**
   * Pages dirtied per second, measured over sync periods of at least 1 s as QEMU does
   * (`migration_update_rates`); 0 until one such period has passed. QMP: `dirty-pages-rate`.
   */
  dirtyPagesRate: number;
  /** Pages newly found dirty by the last sync. */
  lastSyncDirtyPages: number;
  /** Pages sent per second, over windows of at least 100 ms while sending. QMP: `pages-per-second`. */
  pagesPerSecond: number;
  /** The target page size. QMP: `page-size`. */
  pageSize: number;
}

const DEFAULT_BATCH_PAGES = 128;
/** QEMU: `migration_bitmap_sync` recomputes the dirty rate once more than 1000 ms have passed. */
const DIRTY_RATE_PERIOD_MS = 1000;
/** Window of the pages-per-second figure (QEMU updates its counters every `BUFFER_DELAY` = 100 ms). */
const PPS_WINDOW_MS = 100;

/** The ZERO record's fill byte; QEMU always sends 0 (`save_zero_page_to_file`). */
const ZERO_FILL = 0;

/**
 * Sends the RAM of a list of blocks in QEMU 7.2's `ram` section format.
 *
 * Life cycle (driven by the savevm/migration layers through {@link RamDevice}): {@link RamSaver.setup} writes the
 * START payload and arms a full first pass; {@link RamSaver.iterate} writes PART payloads while the guest runs;
 * {@link RamSaver.sync} (via `pendingExact`) moves new dirty marks into the to-send bitmap;
 * {@link RamSaver.complete} writes the END payload with the guest stopped; {@link RamSaver.cleanup} frees the
 * bitmaps.
 */
export class RamSaver {
  readonly #blocks: readonly RamBlock[];
  readonly #batchPages: number;
  readonly #clock: Clock;
  /** Per block: the to-send bitmap (QEMU: `RAMBlock.bmap`). Allocated at setup, never per iteration. */
  #toSend: PageBitmap[] = [];
  /** Pages set in all to-send bitmaps (QEMU: `migration_dirty_pages`). */
  #remainingPages = 0;
  /** Where the page search resumes: block index and word index (QEMU: `last_seen_block`, `last_page`). */
  #cursorBlock = 0;
  #cursorWord = 0;
  /** Index of the block last named on the stream, or -1 (QEMU: `last_sent_block`). Persists across sections. */
  #lastSent = -1;
  #active = false;
  readonly #collect: CollectResult = { marked: 0, added: 0 };
  /** An 8-aligned page-sized buffer for pages whose staging position is not 8-aligned. */
  /** Copies pages into the writer's staging buffers (see `#startBatch`). */
  readonly #pages = new PageCopier();
  // Rate bookkeeping.
  #dirtyPeriodStart = 0;
  #dirtyPeriodPages = 0;
  #ppsWindowStart = 0;
  #ppsWindowPages = 0;
  readonly #stats: RamStats;

  /**
   * @param blocks The blocks, in stream order. Their idstrs must be unique.
   * @param options See {@link RamSaverOptions}.
   */
  constructor(blocks: readonly RamBlock[], options: Partial<RamSaverOptions> = {}) {
    this.#blocks = blocks;
    this.#batchPages = options.batchPages ?? DEFAULT_BATCH_PAGES;
    if (!(Number.isSafeInteger(this.#batchPages) && this.#batchPages > 0)) {
      throw new RangeError(`Cannot create RAM saver: batchPages ${this.#batchPages} is not a positive integer`);
    }
    this.#clock = options.clock ?? defaultClock;
    let total = 0;
    for (const b of blocks) total += b.size;
    this.#stats = {
      total,
      remaining: 0,
      duplicate: 0,
      normal: 0,
      normalBytes: 0,
      dirtySyncCount: 0,
      dirtyPagesRate: 0,
      lastSyncDirtyPages: 0,
      pagesPerSecond: 0,
      pageSize: TARGET_PAGE_SIZE,
    };
  }

  /** A snapshot of the statistics. */
  get stats(): RamStats {
    this.#stats.remaining = this.#remainingPages * TARGET_PAGE_SIZE;
    return { ...this.#stats };
  }

  /** Pages still to send (set in the to-send bitmaps). */
  get remainingPages(): number {
    return this.#remainingPages;
  }

  /**
   * Writes the START payload: `be64 (total | MEM_SIZE)`, each block's counted idstr and `be64 used_length`, then
   * `be64 EOS`. Arms the first pass (every page to send) and does the first dirty sync, so marks made before the
   * migration count as "ever written". QEMU: `ram_save_setup` + `ram_init_bitmaps`.
   */
  async setup(w: ByteWriter): Promise<void> {
    const blocks = this.#blocks;
    this.#toSend = blocks.map((b) => new PageBitmap(b.pages));
    let pages = 0;
    for (const bm of this.#toSend) {
      bm.setAll();
      pages += bm.pages;
    }
    this.#remainingPages = pages;
    this.#cursorBlock = 0;
    this.#cursorWord = 0;
    this.#lastSent = -1;
    this.#active = true;
    const s = this.#stats;
    s.duplicate = 0;
    s.normal = 0;
    s.normalBytes = 0;
    s.dirtySyncCount = 0;
    s.dirtyPagesRate = 0;
    s.lastSyncDirtyPages = 0;
    s.pagesPerSecond = 0;
    const now = this.#clock();
    this.#dirtyPeriodStart = now;
    this.#dirtyPeriodPages = 0;
    this.#ppsWindowStart = now;
    this.#ppsWindowPages = 0;
    this.sync();

    w.u64n(s.total + RamFlag.MemSize);
    for (const b of blocks) {
      w.u8(b.idstrBytes.length).bytes(b.idstrBytes).u64n(b.size);
    }
    w.u64n(RamFlag.Eos);
    await w.ready();
  }

  /**
   * The dirty sync (QEMU: `migration_bitmap_sync`): collects every block's dirty marks into the to-send bitmaps
   * and updates the dirty-page statistics.
   *
   * @returns Pages newly added to the to-send bitmaps.
   */
  sync(): number {
    this.#requireActive("sync dirty pages");
    let added = 0;
    const r = this.#collect;
    for (let i = 0; i < this.#blocks.length; i++) {
      (this.#blocks[i] as RamBlock).dirtyMap.collect(this.#toSend[i] as PageBitmap, r);
      added += r.added;
    }
    this.#remainingPages += added;
    const s = this.#stats;
    s.dirtySyncCount++;
    s.lastSyncDirtyPages = added;
    this.#dirtyPeriodPages += added;
    const now = this.#clock();
    const elapsed = now - this.#dirtyPeriodStart;
    if (elapsed > DIRTY_RATE_PERIOD_MS) {
      s.dirtyPagesRate = Math.round((this.#dirtyPeriodPages * 1000) / elapsed);
      this.#dirtyPeriodStart = now;
      this.#dirtyPeriodPages = 0;
    }
    return added;
  }

  /** Bytes left to send without a sync. QEMU: `ram_state_pending_estimate`. */
  pendingEstimate(): number {
    return this.#remainingPages * TARGET_PAGE_SIZE;
  }

  /** Syncs, then returns the bytes left to send. QEMU: `ram_state_pending_exact`. */
  pendingExact(): number {
    this.sync();
    return this.#remainingPages * TARGET_PAGE_SIZE;
  }

  /**
   * Writes one PART payload: page records until nothing is left to send, `limiter` is exceeded or `deadline`
   * passes (checked before each batch and after each batch respectively), then `be64 EOS`. Awaits the writer's
   * backpressure between batches; never per page.
   *
   * @returns True when every page that was dirty at the last sync has been sent.
   */
  async iterate(w: ByteWriter, limiter: RateLimiter | undefined, deadline: number): Promise<boolean> {
    this.#requireActive("send RAM");
    const batch = this.#batchPages;
    while (this.#remainingPages > 0) {
      if (limiter?.isExceeded(w.offset)) break;
      this.#startBatch(w);
      const sent = this.#sendPages(w, batch);
      const now = this.#clock();
      this.#countSent(sent, now);
      if (now >= deadline) break;
      await w.ready();
    }
    w.u64n(RamFlag.Eos);
    return this.#remainingPages === 0;
  }

  /**
   * Writes the END payload with the guest stopped: a final sync, every page left, then `be64 EOS`.
   * QEMU: `ram_save_complete`.
   */
  async complete(w: ByteWriter): Promise<void> {
    this.#requireActive("complete RAM");
    this.sync();
    const batch = this.#batchPages;
    while (this.#remainingPages > 0) {
      this.#startBatch(w);
      const sent = this.#sendPages(w, batch);
      this.#countSent(sent, this.#clock());
      await w.ready();
    }
    w.u64n(RamFlag.Eos);
    await w.ready();
  }

  /** Frees the per-migration bitmaps. QEMU: `ram_save_cleanup`. */
  cleanup(): void {
    this.#toSend = [];
    this.#remainingPages = 0;
    this.#active = false;
    this.#lastSent = -1;
  }

  #requireActive(what: string): void {
    if (!this.#active) throw new TypeError(`Cannot ${what}: saveSetup has not run`);
  }

  /**
   * Starts a batch in a fresh staging buffer of the writer (`push()` hands off what is staged): the batch's
   * first page header then sits at staging offset 0 and its data at offset 8.
   *
   * Why: V8 copies into or out of a SharedArrayBuffer with relaxed word-sized accesses and falls back to a byte
   * loop when source and destination are not equally aligned mod 8 (measured here: 1.5 GB/s instead of
   * 4.9 GB/s per 4 KiB page). Guest pages are page-aligned; stream positions are fixed by the format (a name or a
   * 9-byte ZERO record shifts everything after it), so alignment is restored at each batch boundary and pages
   * that are still misaligned go through an aligned bounce buffer.
   */
  #startBatch(w: ByteWriter): void {
    w.push();
  }

  #countSent(sent: number, now: number): void {
    this.#ppsWindowPages += sent;
    const elapsed = now - this.#ppsWindowStart;
    if (elapsed >= PPS_WINDOW_MS) {
      this.#stats.pagesPerSecond = Math.round((this.#ppsWindowPages * 1000) / elapsed);
      this.#ppsWindowStart = now;
      this.#ppsWindowPages = 0;
    }
  }

  /**
   * Sends up to `max` to-send pages from the cursor on, wrapping around the block list
   * (QEMU: `ram_find_and_save_block`). Synchronous: puts go into the writer's staging buffer.
   *
   * @returns Pages sent.
   */
  #sendPages(w: ByteWriter, max: number): number {
    const blocks = this.#blocks;
    const nBlocks = blocks.length;
    let sent = 0;
    let emptyScans = 0;
    while (sent < max && this.#remainingPages > 0) {
      const bi = this.#cursorBlock;
      const words = (this.#toSend[bi] as PageBitmap).words;
      const n = words.length;
      let wi = this.#cursorWord;
      while (wi < n && words[wi] === 0) wi++;
      if (wi === n) {
        // More than a full round of empty blocks means the page count is wrong: stop rather than spin.
        if (++emptyScans > nBlocks + 1) {
          this.#remainingPages = 0;
          break;
        }
        // End of this block: go on with the next one, wrapping around.
        this.#cursorWord = 0;
        this.#cursorBlock = bi + 1 === nBlocks ? 0 : bi + 1;
        continue;
      }
      emptyScans = 0;
      this.#cursorWord = wi;
      const block = blocks[bi] as RamBlock;
      const ever = block.dirtyMap.everWritten.words;
      let bits = (words[wi] as number) | 0;
      while (bits !== 0 && sent < max) {
        const low = bits & -bits;
        bits ^= low;
        // Clear the to-send bit before the page is read (invariant 3 for the migration's own bitmap; the
        // shared dirty mark was already cleared by the sync that set this bit).
        words[wi] = bits;
        this.#remainingPages--;
        const page = (wi << 5) | (31 - Math.clz32(low));
        this.#sendPage(w, bi, block, page, ((ever[wi] as number) & low) !== 0);
        sent++;
      }
    }
    return sent;
  }

  /**
   * Writes one page record (QEMU: `save_zero_page` / `save_normal_page` + `save_page_header`). A page never
   * written since allocation is a ZERO record without reading it; a written page is scanned and sent as ZERO
   * or PAGE.
   */
  #sendPage(w: ByteWriter, bi: number, block: RamBlock, page: number, written: boolean): void {
    const off = page * TARGET_PAGE_SIZE;
    const named = bi !== this.#lastSent;
    const cont = named ? 0 : RamFlag.Continue;
    if (!written || block.ops.isZero(block.byteOffset + off, TARGET_PAGE_SIZE)) {
      w.u64n(off + (RamFlag.Zero | cont));
      if (named) this.#putName(w, bi, block);
      w.u8(ZERO_FILL);
      this.#stats.duplicate++;
    } else {
      w.u64n(off + (RamFlag.Page | cont));
      if (named) this.#putName(w, bi, block);
      const at = w.claim(TARGET_PAGE_SIZE); // first: claiming may start a new staging buffer
      this.#pages.fromBlock(block, off, w.staging, at);
      this.#stats.normal++;
      this.#stats.normalBytes += TARGET_PAGE_SIZE;
    }
  }

  #putName(w: ByteWriter, bi: number, block: RamBlock): void {
    w.u8(block.idstrBytes.length).bytes(block.idstrBytes);
    this.#lastSent = bi;
  }
}
