/**
 * A sequential big-endian reader over a {@link RandomAccessSource}, through one reused window buffer.
 *
 * Synchronous on purpose: the inspector reads files, where a positional `readSync` of a few MiB costs less than
 * the promise machinery per chunk, and a synchronous walker is simpler to make hostile-input safe.
 *
 * @module
 */

import { MigrationError } from "../errors.js";
import type { RandomAccessSource } from "./source.js";

/** Default window: 8 MiB (large sequential reads; a few pages of slack for records across the edge). */
export const DEFAULT_WINDOW_BYTES = 8 * 1024 * 1024;
/** The largest single item the cursor buffers at once (a device section field, a vmdesc): 64 MiB. */
export const MAX_ITEM_BYTES = 64 * 1024 * 1024;

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: false });

/** Decodes a short byte string: ASCII fast path, UTF-8 otherwise. */
export function decodeName(b: Uint8Array): string {
  for (let i = 0; i < b.length; i++) if ((b[i] as number) >= 0x80) return utf8.decode(b);
  return latin1.decode(b);
}

/** A sequential reader with a movable window. Views it returns stay valid until the next read call. */
export class Cursor {
  readonly #src: RandomAccessSource;
  #buf: Uint8Array;
  #view: DataView;
  /** Stream position of `#buf[0]`. */
  #base = 0;
  /** Valid bytes in `#buf`. */
  #len = 0;
  /** Read position inside `#buf`. */
  #pos = 0;
  /** Called after each window refill with the new stream position (progress reporting). */
  onRefill: ((offset: number) => void) | undefined;

  /**
   * @param src The source.
   * @param windowBytes The window size.
   */
  constructor(src: RandomAccessSource, windowBytes = DEFAULT_WINDOW_BYTES) {
    this.#src = src;
    this.#buf = new Uint8Array(windowBytes);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** The current stream offset. */
  get offset(): number {
    return this.#base + this.#pos;
  }
  /** The source size. */
  get size(): number {
    return this.#src.size;
  }
  /** Bytes left in the source after the current offset. */
  get remaining(): number {
    return this.#src.size - this.offset;
  }
  /** The window buffer (for hot loops: index with {@link Cursor.index} after {@link Cursor.ensure}). */
  get buffer(): Uint8Array {
    return this.#buf;
  }
  /** The window's DataView. */
  get view(): DataView {
    return this.#view;
  }
  /** The read position inside {@link Cursor.buffer}. */
  get index(): number {
    return this.#pos;
  }

  /** Moves to a stream offset. */
  seek(offset: number): void {
    if (offset >= this.#base && offset <= this.#base + this.#len) {
      this.#pos = offset - this.#base;
      return;
    }
    this.#base = offset;
    this.#len = 0;
    this.#pos = 0;
  }

  /**
   * Makes `n` bytes available at {@link Cursor.index}.
   *
   * @throws MigrationError `TRUNCATED` when the source ends first, `LIMIT_EXCEEDED` when `n` is over
   *   {@link MAX_ITEM_BYTES}.
   */
  ensure(n: number): void {
    if (this.#pos + n <= this.#len) return;
    this.#fill(n);
  }

  #fill(n: number): void {
    const at = this.offset;
    if (n > this.#src.size - at) {
      throw new MigrationError(
        "TRUNCATED",
        `Cannot read ${n} bytes at offset ${at}: the stream ends after ${this.#src.size - at} more bytes`,
        { offset: at },
      );
    }
    if (n > this.#buf.length) {
      if (n > MAX_ITEM_BYTES) {
        throw new MigrationError("LIMIT_EXCEEDED", `Cannot read an item of ${n} bytes: over ${MAX_ITEM_BYTES}`, {
          offset: at,
        });
      }
      const bigger = new Uint8Array(Math.max(n, this.#buf.length * 2));
      bigger.set(this.#buf.subarray(this.#pos, this.#len));
      this.#buf = bigger;
      this.#view = new DataView(bigger.buffer);
    } else {
      this.#buf.copyWithin(0, this.#pos, this.#len);
    }
    const kept = this.#len - this.#pos;
    this.#base = at;
    this.#pos = 0;
    this.#len = kept;
    const want = Math.min(this.#buf.length - kept, this.#src.size - (at + kept));
    let got = 0;
    while (got < want) {
      const r = this.#src.readAt(at + kept + got, this.#buf, kept + got, want - got);
      if (r === 0) break;
      got += r;
    }
    this.#len = kept + got;
    if (this.#len < n) {
      throw new MigrationError("TRUNCATED", `Cannot read ${n} bytes at offset ${at}: the source ended early`, {
        offset: at,
      });
    }
    this.onRefill?.(at);
  }

  /** Advances by `n` bytes that were {@link Cursor.ensure}d. */
  advance(n: number): void {
    this.#pos += n;
  }

  /** Skips `n` bytes (need not be buffered). @throws MigrationError `TRUNCATED` past the end. */
  skip(n: number): void {
    if (this.#pos + n <= this.#len) {
      this.#pos += n;
      return;
    }
    const to = this.offset + n;
    if (to > this.#src.size) {
      throw new MigrationError("TRUNCATED", `Cannot skip ${n} bytes at offset ${this.offset}: the stream ends first`, {
        offset: this.offset,
      });
    }
    this.seek(to);
  }

  u8(): number {
    this.ensure(1);
    return this.#buf[this.#pos++] as number;
  }
  u16(): number {
    this.ensure(2);
    const v = this.#view.getUint16(this.#pos);
    this.#pos += 2;
    return v;
  }
  u32(): number {
    this.ensure(4);
    const v = this.#view.getUint32(this.#pos);
    this.#pos += 4;
    return v;
  }
  /** A be64 as `hi * 2^32 + lo`; exact below 2^53 (callers check with {@link Cursor.u64Hi}). */
  u64n(): number {
    this.ensure(8);
    const hi = this.#view.getUint32(this.#pos);
    const lo = this.#view.getUint32(this.#pos + 4);
    this.#pos += 8;
    this.lastHi = hi;
    return hi * 2 ** 32 + lo;
  }
  /** The high word of the last {@link Cursor.u64n}. */
  lastHi = 0;

  /** `n` bytes as a view valid until the next read call. */
  bytes(n: number): Uint8Array {
    this.ensure(n);
    const v = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }

  /** A counted string (u8 length + bytes). */
  str(): string {
    const n = this.u8();
    return decodeName(this.bytes(n));
  }

  /** The byte at the current offset plus `ahead`, or -1 past the end. */
  peekU8(ahead = 0): number {
    if (this.offset + ahead >= this.#src.size) return -1;
    this.ensure(ahead + 1);
    return this.#buf[this.#pos + ahead] as number;
  }
}

/**
 * Reads `length` bytes at `position` into a new array (small reads: the trailer, single pages).
 *
 * @throws MigrationError `TRUNCATED` when the source is shorter.
 */
export function readExact(src: RandomAccessSource, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = src.readAt(position + got, out, got, length - got);
    if (n === 0) break;
    got += n;
  }
  if (got < length) {
    throw new MigrationError("TRUNCATED", `Cannot read ${length} bytes at offset ${position}: the stream ends first`, {
      offset: position,
    });
  }
  return out;
}
