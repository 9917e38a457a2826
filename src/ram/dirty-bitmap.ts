/**
 * Dirty-page tracking shared between the vCPU worker (writer) and the migration (collector).
 *
 * Layout of one block's tracking state (all in SharedArrayBuffers, so a worker can share it):
 *
 * - **dirty map**: a `Uint8Array`, one byte per 4 KiB page, padded to a multiple of 32 bytes. Non-zero means
 *   "written since the last collection".
 * - **ever-written bitmap**: a `Uint32Array`, one bit per page (bit `p & 31` of word `p >>> 5`). Set by the
 *   collector (and by the loader) for every page it has seen marked. A page whose bit is clear and whose dirty
 *   byte is 0 has never been written since the block was allocated, so it is known to be zero without reading it
 *   (reading untouched memory costs a page fault per page: node-perf-probes part 1b/2).
 *
 * **Contract for the vCPU author** (node-perf-probes part 5a, recommendation 6): after every store to guest RAM at
 * block offset `addr`, do a plain byte store `dirty[addr >>> 12] = 1`, *after* the data store. Never use an
 * `Atomics` operation per store (8–10× slower), and never "check then set" (slower when stores hit the cache,
 * and it can lose a mark). A store that spans two pages marks both. The collector below clears marks with
 * `Atomics.exchange`, so a mark set while it runs is either collected now or stays for the next collection.
 *
 * On x86 (TSO) the data store is visible before the mark, which is what invariant 3 needs. On weakly ordered hosts
 * (arm64) the JS memory model does not order the two plain stores; the final collection happens with the vCPU
 * stopped (after a synchronising handshake), which is what makes the END section exact there too.
 *
 * @module
 */

import { TARGET_PAGE_SIZE } from "./ram-flags.js";

/** Whether typed arrays use little-endian byte order on this host (every supported host, in practice). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * For a big-endian host: maps the nibble read as if little-endian to the right page order (bit k ↔ bit 3-k).
 */
const REVERSE_NIBBLE = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];

/** Number of set bits in a 32-bit value. */
export function popcount32(v: number): number {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/**
 * Turns a 32-bit word of 4 dirty bytes into a 4-bit mask: bit k set when the byte of page `4i + k` is non-zero.
 * Any non-zero byte counts, not only 1.
 */
function nibbleOf(v: number): number {
  let t = v | (v >>> 4);
  t |= t >>> 2;
  t |= t >>> 1;
  t &= 0x01010101;
  const n = (t | (t >>> 7) | (t >>> 14) | (t >>> 21)) & 0xf;
  return LITTLE_ENDIAN ? n : (REVERSE_NIBBLE[n] as number);
}

/** Number of 32-bit words of a one-bit-per-page bitmap for `pages` pages. */
export function bitmapWords(pages: number): number {
  return Math.ceil(pages / 32);
}

/**
 * A bitmap with one bit per page over a `Uint32Array` (bit `p & 31` of word `p >>> 5`): the migration's own
 * to-send bitmap (QEMU: `RAMBlock.bmap`). Not shared; only the migration thread touches it.
 */
export class PageBitmap {
  /** The bitmap words. Bits at or beyond {@link PageBitmap.pages} are always clear. */
  readonly words: Uint32Array;
  /** Number of pages covered. */
  readonly pages: number;
  readonly #lastMask: number;

  /**
   * @param pages Number of pages.
   * @param buffer Existing storage (for a shared bitmap); a fresh ArrayBuffer when omitted.
   */
  constructor(pages: number, buffer?: ArrayBuffer | SharedArrayBuffer) {
    const words = bitmapWords(pages);
    this.pages = pages;
    this.words = buffer === undefined ? new Uint32Array(words) : new Uint32Array(buffer, 0, words);
    const tail = pages & 31;
    this.#lastMask = tail === 0 ? 0xffffffff : (1 << tail) - 1;
  }

  /** Mask of the valid bits of the last word. */
  get lastWordMask(): number {
    return this.#lastMask;
  }

  /** Sets the bit of every page. */
  setAll(): void {
    const w = this.words;
    w.fill(0xffffffff);
    if (w.length > 0) w[w.length - 1] = this.#lastMask;
  }

  /** Clears every bit. */
  clearAll(): void {
    this.words.fill(0);
  }

  /** Whether page `p`'s bit is set. */
  test(p: number): boolean {
    return ((this.words[p >>> 5] as number) & (1 << (p & 31))) !== 0;
  }

  /** Sets page `p`'s bit. */
  set(p: number): void {
    const i = p >>> 5;
    this.words[i] = (this.words[i] as number) | (1 << (p & 31));
  }

  /** Clears page `p`'s bit. */
  clear(p: number): void {
    const i = p >>> 5;
    this.words[i] = (this.words[i] as number) & ~(1 << (p & 31));
  }

  /** Number of set bits. */
  count(): number {
    const w = this.words;
    let n = 0;
    for (let i = 0; i < w.length; i++) {
      const v = w[i] as number;
      if (v !== 0) n += popcount32(v);
    }
    return n;
  }
}

/** The SharedArrayBuffers behind a {@link DirtyMap}, for rebuilding it in another thread. */
export interface DirtyMapBuffers {
  /** The dirty byte map (one byte per page, padded to 32). */
  readonly dirty: SharedArrayBuffer;
  /** The ever-written bitmap (one bit per page). */
  readonly everWritten: SharedArrayBuffer;
}

/** Result of one {@link DirtyMap.collect}. */
export interface CollectResult {
  /** Pages found marked in the dirty map (each counted once). */
  marked: number;
  /** Of those, pages whose bit in the target bitmap was not set yet (QEMU's `num_dirty` of a sync). */
  added: number;
}

/**
 * One block's dirty map and ever-written bitmap; see the module comment for the layout and the vCPU contract.
 */
export class DirtyMap {
  /** Number of pages tracked. */
  readonly pages: number;
  /**
   * The dirty byte map the vCPU writes: `dirty[offset >>> 12] = 1` after a store at block offset `offset`.
   * Length is `pages` rounded up to a multiple of 32.
   */
  readonly dirty: Uint8Array;
  /** The same bytes as 32-bit words, for the collector. */
  readonly #dirty32: Int32Array;
  /** The ever-written bitmap. */
  readonly everWritten: PageBitmap;
  readonly #buffers: DirtyMapBuffers;

  /**
   * @param pages Number of 4 KiB pages of the block.
   * @param buffers Existing shared storage (from {@link DirtyMap.buffers} of another thread's map); fresh
   *   SharedArrayBuffers when omitted.
   */
  constructor(pages: number, buffers?: DirtyMapBuffers) {
    if (!(Number.isSafeInteger(pages) && pages > 0)) {
      throw new RangeError(`Cannot create dirty map: page count ${pages} is not a positive integer`);
    }
    const words = bitmapWords(pages);
    const dirtyBytes = words * 32;
    const everBytes = words * 4;
    let b: DirtyMapBuffers;
    if (buffers === undefined) {
      b = { dirty: new SharedArrayBuffer(dirtyBytes), everWritten: new SharedArrayBuffer(everBytes) };
    } else {
      if (buffers.dirty.byteLength < dirtyBytes || buffers.everWritten.byteLength < everBytes) {
        throw new RangeError(`Cannot attach dirty map: the shared buffers are too small for ${pages} pages`);
      }
      b = buffers;
    }
    this.pages = pages;
    this.#buffers = b;
    this.dirty = new Uint8Array(b.dirty, 0, dirtyBytes);
    this.#dirty32 = new Int32Array(b.dirty, 0, dirtyBytes >>> 2);
    this.everWritten = new PageBitmap(pages, b.everWritten);
  }

  /** The shared storage, to post to a worker and attach there with `new DirtyMap(pages, buffers)`. */
  get buffers(): DirtyMapBuffers {
    return this.#buffers;
  }

  /**
   * Marks the pages of a host-side write of `length` bytes at block offset `offset` (device DMA, firmware
   * loading, tests). Plain stores, like the vCPU's.
   */
  markDirty(offset: number, length: number): void {
    if (length <= 0) return;
    if (!(offset >= 0 && offset + length <= this.pages * TARGET_PAGE_SIZE)) {
      throw new RangeError(`Cannot mark dirty: range ${offset}+${length} is outside the block`);
    }
    const first = Math.floor(offset / TARGET_PAGE_SIZE);
    const last = Math.floor((offset + length - 1) / TARGET_PAGE_SIZE);
    const d = this.dirty;
    for (let p = first; p <= last; p++) d[p] = 1;
  }

  /** Marks page `p` dirty (a plain store). */
  markPage(p: number): void {
    this.dirty[p] = 1;
  }

  /**
   * Whether page `p` has never been written: no ever-written bit and no pending mark. Such a page is all zero
   * without reading it.
   */
  isNeverWritten(p: number): boolean {
    return !this.everWritten.test(p) && this.dirty[p] === 0;
  }

  /**
   * Collects marks into `target` (QEMU: `cpu_physical_memory_sync_dirty_bitmap`): for every page marked in the
   * dirty map, clears the mark, sets its ever-written bit and sets its bit in `target`.
   *
   * Safe against a concurrent vCPU (probe 5b/5c, recommendation 7): it reads the map as 32-bit words with plain
   * loads and calls `Atomics.exchange(word, 0)` only on non-zero words, so a mark stored after the exchange stays
   * for the next collection and a mark stored before it is returned by it. Never read-then-fill: that loses
   * marks. The caller reads a page's contents only after this returns (invariant 3).
   *
   * @param target A bitmap over the same pages (the migration's to-send bitmap).
   * @param result Where to put the counts (pass one object per caller to avoid an allocation per sync).
   * @returns How many pages were marked and how many of them were new in `target`.
   */
  collect(target: PageBitmap, result: CollectResult = { marked: 0, added: 0 }): CollectResult {
    const d32 = this.#dirty32;
    const ever = this.everWritten.words;
    const bm = target.words;
    const n = d32.length;
    const lastWi = bm.length - 1;
    const lastMask = target.lastWordMask;
    let marked = 0;
    let added = 0;
    for (let i = 0; i < n; i++) {
      // Plain read first: at 0–1 % dirty this skips the atomic on almost every word (43 µs per 64 Ki pages).
      if (d32[i] !== 0) {
        const v = Atomics.exchange(d32, i, 0);
        if (v === 0) continue;
        const wi = i >>> 3;
        let bits = nibbleOf(v) << ((i & 7) << 2);
        if (wi === lastWi) bits &= lastMask;
        if (bits === 0) continue;
        ever[wi] = (ever[wi] as number) | bits;
        const old = bm[wi] as number;
        const fresh = bits & ~old;
        if (fresh !== 0) {
          bm[wi] = old | bits;
          added += popcount32(fresh);
        }
        marked += popcount32(bits);
      }
    }
    result.marked = marked;
    result.added = added;
    return result;
  }

  /** Number of pages marked right now (plain reads; for tests and statistics). */
  countMarked(): number {
    const d = this.dirty;
    let n = 0;
    for (let p = 0; p < this.pages; p++) if (d[p] !== 0) n++;
    return n;
  }
}
