/**
 * Copies 4 KiB pages between a RAM block and a byte buffer (a staging buffer, a received chunk) by the fastest
 * route, shared by the RAM saver and loader (node-perf-probes part 4):
 * - the buffer lies in the block's own wasm memory (the machine's I/O memory): one wasm `memory.copy`, any
 *   alignment;
 * - the buffer position is 8-aligned: one `set` (V8's relaxed word copy to or from shared memory);
 * - otherwise: through an aligned bounce page (V8 falls back to a byte-wise shared copy when the two sides differ
 *   in alignment mod 8, measured 2× slower than the bounce).
 *
 * @module
 */

import type { RamBlock } from "./ram-block.js";
import { TARGET_PAGE_SIZE } from "./ram-flags.js";

/** One per saver or loader: it remembers the buffer it last saw. @internal */
export class PageCopier {
  readonly #bounce = new Uint8Array(TARGET_PAGE_SIZE);
  #seen: Uint8Array | undefined;
  #seenBuffer: ArrayBufferLike | undefined;

  /** Whether `buf` lies in `block`'s memory. `.buffer` costs more than a copy's bookkeeping: read once per buffer. */
  #inBlock(buf: Uint8Array, block: RamBlock): boolean {
    if (buf !== this.#seen) {
      this.#seen = buf;
      this.#seenBuffer = buf.buffer;
    }
    return this.#seenBuffer === block.buffer;
  }

  /** Copies the page at block offset `addr` to `dst[at …]`. */
  fromBlock(block: RamBlock, addr: number, dst: Uint8Array, at: number): void {
    if (this.#inBlock(dst, block)) {
      block.ops.copy(dst.byteOffset + at, block.byteOffset + addr, TARGET_PAGE_SIZE);
    } else if (((dst.byteOffset + at) & 7) === 0) {
      dst.set(block.bytes.subarray(addr, addr + TARGET_PAGE_SIZE), at);
    } else {
      this.#bounce.set(block.bytes.subarray(addr, addr + TARGET_PAGE_SIZE));
      dst.set(this.#bounce, at);
    }
  }

  /** Copies `src[at … at + 4096)` to the page at block offset `addr`. */
  toBlock(block: RamBlock, addr: number, src: Uint8Array, at: number): void {
    if (this.#inBlock(src, block)) {
      block.ops.copy(block.byteOffset + addr, src.byteOffset + at, TARGET_PAGE_SIZE);
    } else if (((src.byteOffset + at) & 7) === 0) {
      block.bytes.set(src.subarray(at, at + TARGET_PAGE_SIZE), addr);
    } else {
      this.#bounce.set(src.subarray(at, at + TARGET_PAGE_SIZE));
      block.bytes.set(this.#bounce, addr);
    }
  }
}
