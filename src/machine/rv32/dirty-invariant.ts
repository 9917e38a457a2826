/**
 * The RAM invariant QEMU's migration test checks on the destination after migrating its `dirty` guest
 * (`check_guests_ram` in QEMU's `tests/qtest/migration-test.c`; spec part 7).
 *
 * @module
 */

import { PAGE_SIZE } from "./memory-map.js";

/** The result of {@link checkDirtyInvariant}. */
export interface DirtyInvariantResult {
  /** Pages whose first byte breaks the invariant (0 means the RAM is consistent). */
  readonly errors: number;
  /** Byte offset of the page where the sweep stood (its first byte is one less than the previous page's), if any. */
  readonly edgeAt: number | undefined;
  /** Byte offset of the first bad page, if any. */
  readonly firstErrorAt: number | undefined;
  /** The first byte of the first page checked. */
  readonly firstByte: number;
}

/**
 * Checks that the first byte of every 4 KiB page in `[start, end)` equals the previous page's, except at most one
 * place where it is exactly one less (mod 256): the page the guest's sweep had not incremented yet.
 *
 * @param ram Guest RAM bytes (offset 0 = RAM base).
 * @param start Byte offset of the first page of the region (QEMU: 1 MiB).
 * @param end Byte offset one past the region (QEMU: 100 MiB).
 * @returns The error count and where the sweep stood.
 */
export function checkDirtyInvariant(ram: Uint8Array, start: number, end: number): DirtyInvariantResult {
  if (start < 0 || end > ram.byteLength || start >= end || start % PAGE_SIZE !== 0) {
    throw new RangeError(`Cannot check dirty invariant: bad region [${start}, ${end}) for ${ram.byteLength} bytes`);
  }
  const firstByte = ram[start] as number;
  let last = firstByte;
  let hitEdge = false;
  let edgeAt: number | undefined;
  let firstErrorAt: number | undefined;
  let errors = 0;
  for (let a = start + PAGE_SIZE; a < end; a += PAGE_SIZE) {
    const b = ram[a] as number;
    if (b !== last) {
      if (((b + 1) & 0xff) === last && !hitEdge) {
        hitEdge = true;
        edgeAt = a;
      } else {
        errors++;
        firstErrorAt ??= a;
      }
    }
    last = b;
  }
  return { errors, edgeAt, firstErrorAt, firstByte };
}
