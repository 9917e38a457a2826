/**
 * The big-endian reader: QEMU's `QEMUFile` for the receiving side, over a list of received chunks.
 *
 * Design (STYLE.md 3.7): every read of buffered bytes is synchronous. A decoder that runs out of buffered bytes
 * throws a private, preallocated underflow sentinel; the driver ({@link ByteReader.decode} or
 * {@link ByteReader.tryDecode}) rewinds to where the decoder started, waits until the needed bytes have arrived
 * and runs it again. Decoders must therefore have no side effects until they return. Reading past the end of
 * the stream raises `TRUNCATED` with the exact offset.
 *
 * @module
 */

import { MigrationError, toMigrationError } from "../errors.js";
import { type ByteSource, isLendingSource, type LendingSource } from "../transport/channel.js";

/** Options of {@link ByteReader}. */
export interface ByteReaderOptions {
  /**
   * Most bytes the reader keeps buffered ahead of the last commit point (the start of the decoder being run).
   * A decoder that needs more fails with `LIMIT_EXCEEDED`. Default 64 MiB.
   */
  readonly maxBufferedBytes: number;
}

const DEFAULT_MAX_BUFFERED = 64 * 1024 * 1024;
const TWO_POW_32 = 2 ** 32;
const EMPTY = new Uint8Array(0);

/** The underflow sentinel: thrown by sync reads when bytes are missing; never escapes the drivers. */
class Underflow {
  /** Absolute stream offset up to which bytes are needed (exclusive). */
  needUntil = 0;
}
const UNDERFLOW = new Underflow();

/** Returned by {@link ByteReader.tryDecode} when the decoder needs more bytes than are buffered. */
export const NEED_MORE: unique symbol = Symbol("NEED_MORE");

const utf8 = new TextDecoder("utf-8", { fatal: false });

/**
 * Reads big-endian values from a chunk list fed by a {@link ByteSource} (or from one byte array).
 *
 * Reads inside the current chunk return views and cost no copy; reads across chunks copy into a scratch buffer
 * (scalars) or straight into the destination ({@link ByteReader.copyTo}).
 *
 * @example
 * ```ts
 * const r = new ByteReader(channel);
 * const magic = await r.decode((r) => r.u32());
 * ```
 */
export class ByteReader {
  readonly #source: ByteSource | undefined;
  readonly #maxBuffered: number;
  #chunks: Uint8Array[] = [];
  #views: DataView[] = [];
  /** Per chunk: the lent chunk to give back to the source, or `undefined` for a chunk the reader owns. */
  #lentOf: (Uint8Array | undefined)[] = [];
  /** Lent chunks in #chunks. */
  #lentHeld = 0;
  /** The source, when it lends its chunks. */
  readonly #lender: LendingSource | undefined;
  /** Whether #cur is lent (so `bytes()` must copy). */
  #curLent = false;
  /** Index of the current chunk in #chunks. */
  #ci = 0;
  /** Position inside the current chunk. */
  #pos = 0;
  /** Absolute offset of #chunks[0][0]. */
  #base = 0;
  /** Absolute offset of the first byte after the buffered data. */
  #end = 0;
  #eof = false;
  #error: MigrationError | undefined;
  readonly #scratch = new Uint8Array(8);
  readonly #scratchView = new DataView(this.#scratch.buffer);
  #cur: Uint8Array = EMPTY;
  #curView: DataView = new DataView(EMPTY.buffer);
  /** Absolute offset of #cur[0]. */
  #curBase = 0;

  /**
   * @param source Where bytes come from, or `undefined` for a reader over {@link ByteReader.fromBytes} data.
   * @param options Caps; see {@link ByteReaderOptions}.
   */
  constructor(source: ByteSource | undefined, options: Partial<ByteReaderOptions> = {}) {
    this.#source = source;
    this.#lender = source !== undefined && isLendingSource(source) ? source : undefined;
    this.#maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
    if (source === undefined) this.#eof = true;
  }

  /**
   * A reader over bytes already in memory; the end of `bytes` is the end of the stream.
   *
   * @param bytes The whole stream (not copied).
   * @param baseOffset The stream offset of `bytes[0]` (for error messages), default 0.
   */
  static fromBytes(bytes: Uint8Array, baseOffset = 0): ByteReader {
    const r = new ByteReader(undefined, { maxBufferedBytes: Number.POSITIVE_INFINITY });
    r.#base = baseOffset;
    r.#end = baseOffset;
    r.#curBase = baseOffset;
    if (bytes.length > 0) r.#append(bytes);
    return r;
  }

  /** The absolute stream offset of the next byte to read. */
  get offset(): number {
    return this.#curBase + this.#pos;
  }

  /** Bytes buffered after the cursor. */
  get available(): number {
    return this.#end - this.offset;
  }

  /** Whether the source has reported end of stream (more bytes may still be buffered). */
  get sourceEnded(): boolean {
    return this.#eof;
  }

  /** The latched error, if any. */
  get error(): MigrationError | undefined {
    return this.#error;
  }

  /** Latches `e` (first one wins) and returns the latched error. */
  fail(e: unknown): MigrationError {
    if (this.#error === undefined) {
      this.#error = toMigrationError(e, "TRANSPORT", "Cannot read the migration stream");
      // Make the buffer look empty so the synchronous fast paths fall through to #need(), which throws the
      // latched error: the latch costs nothing on the hot path.
      const off = this.offset;
      this.#releaseAll();
      this.#chunks = [];
      this.#views = [];
      this.#lentOf = [];
      this.#ci = 0;
      this.#cur = EMPTY;
      this.#pos = 0;
      this.#curBase = off;
      this.#base = off;
      this.#end = off;
    }
    return this.#error;
  }

  /** Gives every lent chunk back to the source (the reader is failing: nothing reads them again). */
  #releaseAll(): void {
    const lender = this.#lender;
    if (lender === undefined || this.#lentHeld === 0) return;
    for (const lent of this.#lentOf) if (lent !== undefined) lender.release(lent);
    this.#lentOf.fill(undefined);
    this.#lentHeld = 0;
    this.#curLent = false;
  }

  /**
   * Replaces every lent chunk the reader holds by a copy and gives the lent one back: the source lends only
   * `lendLimit` chunks, so a record longer than that many chunks would otherwise wait forever for more bytes.
   */
  #unlendAll(): void {
    const lender = this.#lender as LendingSource;
    const chunks = this.#chunks;
    for (let i = 0; i < chunks.length; i++) {
      const lent = this.#lentOf[i];
      if (lent === undefined) continue;
      const copy = (chunks[i] as Uint8Array).slice();
      chunks[i] = copy;
      this.#views[i] = new DataView(copy.buffer);
      this.#lentOf[i] = undefined;
      lender.release(lent);
    }
    this.#lentHeld = 0;
    this.#curLent = false;
    this.#cur = chunks[this.#ci] ?? EMPTY;
    this.#curView = this.#views[this.#ci] ?? new DataView(EMPTY.buffer);
  }

  #append(input: Uint8Array, lent?: Uint8Array): void {
    // Sources may hand us Uint8Array subclasses (Node's Buffer), whose slice() is a view, not a copy. Re-wrap them
    // as plain Uint8Arrays so that views we return behave like standard typed arrays.
    const chunk =
      Object.getPrototypeOf(input) === Uint8Array.prototype
        ? input
        : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    this.#chunks.push(chunk);
    this.#views.push(new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#lentOf.push(lent);
    if (lent !== undefined) this.#lentHeld++;
    this.#end += chunk.length;
    if (this.#chunks.length === this.#ci + 1) this.#enter(this.#ci);
  }

  #enter(ci: number): void {
    let base = this.#base;
    for (let i = 0; i < ci; i++) base += (this.#chunks[i] as Uint8Array).length;
    this.#ci = ci;
    this.#cur = this.#chunks[ci] ?? EMPTY;
    this.#curView = this.#views[ci] ?? new DataView(EMPTY.buffer);
    this.#curLent = this.#lentOf[ci] !== undefined;
    this.#curBase = base;
    this.#pos = 0;
  }

  /** Moves to the next chunk when the current one is used up. */
  #advance(): void {
    while (this.#pos >= this.#cur.length && this.#ci + 1 < this.#chunks.length) {
      const nextBase = this.#curBase + this.#cur.length;
      this.#ci++;
      this.#cur = this.#chunks[this.#ci] as Uint8Array;
      this.#curView = this.#views[this.#ci] as DataView;
      this.#curLent = this.#lentOf[this.#ci] !== undefined;
      this.#curBase = nextBase;
      this.#pos = 0;
    }
  }

  /** Throws underflow (or TRUNCATED at EOF) when fewer than `n` bytes are buffered after the cursor. */
  #need(n: number): never {
    if (this.#error !== undefined) throw this.#error;
    const needUntil = this.offset + n;
    if (this.#eof) {
      // Not latched here: a decoder may add its field path on the way out; the drivers (tryDecode, decode, fill)
      // latch what finally escapes.
      throw new MigrationError(
        "TRUNCATED",
        `Cannot read ${n} byte${n === 1 ? "" : "s"}: the stream ends at offset ${this.#end}`,
        { offset: this.offset },
      );
    }
    UNDERFLOW.needUntil = needUntil;
    throw UNDERFLOW;
  }

  /** Copies `n` (≤ 8) bytes that cross chunks into the scratch buffer. */
  #gather(n: number): DataView {
    if (this.#end - this.offset < n) this.#need(n);
    let got = 0;
    while (got < n) {
      this.#advance();
      const k = Math.min(n - got, this.#cur.length - this.#pos);
      this.#scratch.set(this.#cur.subarray(this.#pos, this.#pos + k), got);
      this.#pos += k;
      got += k;
    }
    return this.#scratchView;
  }

  /** Reads one unsigned byte. QEMU: `qemu_get_byte`. */
  u8(): number {
    if (this.#pos < this.#cur.length) return this.#cur[this.#pos++] as number;
    this.#advance();
    if (this.#pos < this.#cur.length) return this.#cur[this.#pos++] as number;
    return this.#need(1);
  }

  /** Reads a big-endian u16. QEMU: `qemu_get_be16`. */
  u16(): number {
    const p = this.#pos;
    if (p + 2 <= this.#cur.length) {
      this.#pos = p + 2;
      return this.#curView.getUint16(p);
    }
    return this.#gather(2).getUint16(0);
  }

  /** Reads a big-endian u32. QEMU: `qemu_get_be32`. */
  u32(): number {
    const p = this.#pos;
    if (p + 4 <= this.#cur.length) {
      this.#pos = p + 4;
      return this.#curView.getUint32(p);
    }
    return this.#gather(4).getUint32(0);
  }

  /** Reads a big-endian u64 as a bigint. QEMU: `qemu_get_be64`. */
  u64(): bigint {
    const p = this.#pos;
    if (p + 8 <= this.#cur.length) {
      this.#pos = p + 8;
      return this.#curView.getBigUint64(p);
    }
    return this.#gather(8).getBigUint64(0);
  }

  /**
   * Reads a big-endian u64 as a number (no BigInt: the RAM page-header path). Values of 2^53 or more fail with
   * `FIELD_OUT_OF_RANGE`.
   */
  u64n(): number {
    const start = this.offset;
    let hi: number;
    let lo: number;
    const p = this.#pos;
    if (p + 8 <= this.#cur.length) {
      this.#pos = p + 8;
      hi = this.#curView.getUint32(p);
      lo = this.#curView.getUint32(p + 4);
    } else {
      const v = this.#gather(8);
      hi = v.getUint32(0);
      lo = v.getUint32(4);
    }
    if (hi >= 0x200000) {
      throw new MigrationError(
        "FIELD_OUT_OF_RANGE",
        `Cannot read u64 as a number: 0x${hi.toString(16)}${lo.toString(16).padStart(8, "0")} is 2^53 or more`,
        {
          offset: start,
        },
      );
    }
    return hi * TWO_POW_32 + lo;
  }

  /** Reads a signed byte. */
  i8(): number {
    const v = this.u8();
    return v >= 0x80 ? v - 0x100 : v;
  }

  /** Reads a big-endian i16. */
  i16(): number {
    const v = this.u16();
    return v >= 0x8000 ? v - 0x10000 : v;
  }

  /** Reads a big-endian i32. */
  i32(): number {
    return this.u32() | 0;
  }

  /** Reads a big-endian i64 as a bigint. */
  i64(): bigint {
    return BigInt.asIntN(64, this.u64());
  }

  /** Reads a big-endian float64 (a u64 bit pattern on the wire). */
  f64(): number {
    const p = this.#pos;
    if (p + 8 <= this.#cur.length) {
      this.#pos = p + 8;
      return this.#curView.getFloat64(p);
    }
    return this.#gather(8).getFloat64(0);
  }

  /**
   * Reads `n` bytes the caller may keep. Within one chunk this is a view (no copy) when the reader owns the chunk,
   * and a copy when the source lent it (a receive ring reuses its memory). Across chunks it is a fresh copy. QEMU:
   * `qemu_get_buffer`.
   */
  bytes(n: number): Uint8Array {
    if (n === 0) return EMPTY;
    if (this.#pos >= this.#cur.length) this.#advance();
    const p = this.#pos;
    if (p + n <= this.#cur.length) {
      this.#pos = p + n;
      return this.#curLent ? this.#cur.slice(p, p + n) : this.#cur.subarray(p, p + n);
    }
    if (this.#end - this.offset < n) this.#need(n);
    const out = new Uint8Array(n);
    this.#copyOut(out, 0, n);
    return out;
  }

  /**
   * Reads `n` bytes for immediate use: within one chunk a view of the received bytes (no copy, even of a lent
   * chunk), across chunks a fresh copy. The view is valid until the reader next waits for bytes (`fill`, `more`,
   * `decode`, `atEnd`), when a lent chunk may go back to its source: copy what must outlive the current decoder.
   */
  view(n: number): Uint8Array {
    if (n === 0) return EMPTY;
    if (this.#pos >= this.#cur.length) this.#advance();
    const p = this.#pos;
    if (p + n <= this.#cur.length) {
      this.#pos = p + n;
      return this.#cur.subarray(p, p + n);
    }
    if (this.#end - this.offset < n) this.#need(n);
    const out = new Uint8Array(n);
    this.#copyOut(out, 0, n);
    return out;
  }

  /**
   * Consumes `n` bytes when all of them are in the current chunk and returns where they start in
   * {@link ByteReader.chunkView} / {@link ByteReader.chunk}; returns -1 and consumes nothing otherwise (the caller
   * then reads value by value, which raises underflow or `TRUNCATED` at the right offset). The generated vmstate
   * decoders read a run of fixed-size fields this way, with no allocation. @internal
   */
  take(n: number): number {
    let p = this.#pos;
    if (p + n <= this.#cur.length) {
      this.#pos = p + n;
      return p;
    }
    if (p < this.#cur.length) return -1;
    this.#advance();
    p = this.#pos;
    if (p + n <= this.#cur.length) {
      this.#pos = p + n;
      return p;
    }
    return -1;
  }

  /**
   * Where the cursor is in {@link ByteReader.chunk} when the next `n` bytes are all in that chunk; -1 otherwise.
   * Consumes nothing (a finished chunk may be left for the next one, which does not move the offset). @internal
   */
  peekPos(n: number): number {
    if (this.#pos + n <= this.#cur.length) return this.#pos;
    if (this.#pos < this.#cur.length) return -1;
    this.#advance();
    return this.#pos + n <= this.#cur.length ? this.#pos : -1;
  }

  /** The current chunk (what positions returned by {@link ByteReader.take} index). @internal */
  get chunk(): Uint8Array {
    return this.#cur;
  }

  /** A DataView of exactly {@link ByteReader.chunk} (position 0 is the chunk's first byte). @internal */
  get chunkView(): DataView {
    return this.#curView;
  }

  /**
   * Whether the `bytes.length` bytes starting `ahead` bytes after the cursor equal `bytes`, without consuming
   * them. Bytes are compared in order and the first difference stops the comparison, so underflow is raised only
   * when a byte that would be compared is not buffered (as a loop of {@link ByteReader.peekU8} would).
   */
  peekIs(ahead: number, bytes: Uint8Array): boolean {
    const n = bytes.length;
    const p = this.#pos + ahead;
    const c = this.#cur;
    if (p + n <= c.length) {
      for (let k = 0; k < n; k++) if (c[p + k] !== bytes[k]) return false;
      return true;
    }
    for (let k = 0; k < n; k++) if (this.peekU8(ahead + k) !== bytes[k]) return false;
    return true;
  }

  /**
   * Copies `n` bytes straight into `target` at `targetOffset` (piece by piece across chunks; no intermediate
   * buffer). Either all `n` bytes are copied or none (underflow is raised before copying).
   */
  copyTo(target: Uint8Array, targetOffset: number, n: number): void {
    const p = this.#pos;
    if (p + n <= this.#cur.length) {
      target.set(this.#cur.subarray(p, p + n), targetOffset);
      this.#pos = p + n;
      return;
    }
    if (this.#end - this.offset < n) this.#need(n);
    this.#copyOut(target, targetOffset, n);
  }

  #copyOut(target: Uint8Array, targetOffset: number, n: number): void {
    let got = 0;
    while (got < n) {
      this.#advance();
      const k = Math.min(n - got, this.#cur.length - this.#pos);
      target.set(this.#cur.subarray(this.#pos, this.#pos + k), targetOffset + got);
      this.#pos += k;
      got += k;
    }
  }

  /** Skips `n` bytes. */
  skip(n: number): void {
    if (this.#end - this.offset < n) this.#need(n);
    let left = n;
    while (left > 0) {
      this.#advance();
      const k = Math.min(left, this.#cur.length - this.#pos);
      this.#pos += k;
      left -= k;
    }
  }

  /** Reads a QEMU counted string (u8 length, bytes, no NUL) as text. QEMU: `qemu_get_counted_string`. */
  str(): string {
    const n = this.u8();
    const b = this.bytes(n);
    return decodeText(b);
  }

  /** Returns the byte `ahead` bytes after the cursor without consuming it (underflow if not buffered). */
  peekU8(ahead = 0): number {
    if (this.#end - this.offset <= ahead) this.#need(ahead + 1);
    let ci = this.#ci;
    let p = this.#pos + ahead;
    let c = this.#cur;
    while (p >= c.length) {
      p -= c.length;
      ci++;
      c = this.#chunks[ci] as Uint8Array;
    }
    return c[p] as number;
  }

  /** Returns `n` bytes starting `ahead` bytes after the cursor without consuming them (a copy when needed). */
  peekBytes(ahead: number, n: number): Uint8Array {
    if (this.#end - this.offset < ahead + n) this.#need(ahead + n);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.peekU8(ahead + i);
    return out;
  }

  /** Drops chunks that lie wholly before the cursor. */
  #compact(): void {
    if (this.#ci === 0) return;
    // Keep the current chunk; everything before it is consumed and will not be rewound to.
    const drop = this.#ci;
    let dropped = 0;
    for (let i = 0; i < drop; i++) dropped += (this.#chunks[i] as Uint8Array).length;
    if (this.#lentHeld > 0) {
      const lender = this.#lender as LendingSource;
      for (let i = 0; i < drop; i++) {
        const lent = this.#lentOf[i];
        if (lent === undefined) continue;
        this.#lentHeld--;
        lender.release(lent);
      }
    }
    this.#chunks.splice(0, drop);
    this.#views.splice(0, drop);
    this.#lentOf.splice(0, drop);
    this.#base += dropped;
    this.#ci = 0;
  }

  /**
   * Waits until at least `n` bytes are buffered after the cursor.
   *
   * @throws MigrationError `TRUNCATED` when the stream ends first, `LIMIT_EXCEEDED` when `n` is over the cap.
   */
  async fill(n: number): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    this.#compact();
    if (this.#end - this.offset >= n) return;
    if (n > this.#maxBuffered) {
      throw this.fail(
        new MigrationError(
          "LIMIT_EXCEEDED",
          `Cannot buffer ${n} bytes: the reader's cap is ${this.#maxBuffered} bytes`,
          {
            offset: this.offset,
          },
        ),
      );
    }
    while (this.#end - this.offset < n) {
      if (this.#eof) {
        throw this.fail(
          new MigrationError("TRUNCATED", `Cannot read ${n} bytes: the stream ends at offset ${this.#end}`, {
            offset: this.offset,
          }),
        );
      }
      await this.#pull();
    }
  }

  /** Pulls one chunk from the source; sets EOF on null. */
  async #pull(): Promise<void> {
    if (this.#source === undefined) {
      this.#eof = true;
      return;
    }
    const lender = this.#lender;
    let chunk: Uint8Array | null;
    try {
      if (lender !== undefined) {
        // Holding all but one of what the source lends, the next read could wait forever: keep copies instead.
        if (this.#lentHeld > 0 && this.#lentHeld >= lender.lendLimit - 1) this.#unlendAll();
        chunk = await lender.readLent();
      } else {
        chunk = await this.#source.read();
      }
    } catch (e) {
      throw this.fail(e);
    }
    if (this.#error !== undefined) {
      // Failed while waiting (e.g. another caller latched an error): give the chunk straight back.
      if (chunk !== null && lender !== undefined) lender.release(chunk);
      throw this.#error;
    }
    if (chunk === null) {
      this.#eof = true;
      return;
    }
    if (chunk.length === 0) {
      if (lender !== undefined) lender.release(chunk);
    } else {
      const wasAtEnd = this.#pos >= this.#cur.length && this.#ci === this.#chunks.length - 1;
      this.#append(chunk, lender === undefined ? undefined : chunk);
      if (wasAtEnd) this.#advance();
    }
  }

  /**
   * Pulls at least one more chunk (or learns EOF). Used by loops built on {@link ByteReader.tryDecode}.
   *
   * @returns False at end of stream.
   */
  async more(): Promise<boolean> {
    if (this.#error !== undefined) throw this.#error;
    this.#compact();
    if (this.#eof) return false;
    const before = this.#end;
    while (this.#end === before && !this.#eof) await this.#pull();
    return this.#end > before;
  }

  /**
   * Whether the stream has ended exactly at the cursor (no more bytes buffered or to come).
   */
  async atEnd(): Promise<boolean> {
    if (this.#error !== undefined) throw this.#error;
    while (this.#end - this.offset === 0 && !this.#eof) await this.#pull();
    return this.#end - this.offset === 0;
  }

  /**
   * Runs a synchronous decoder over the buffered bytes once.
   *
   * @returns The decoder's result, or {@link NEED_MORE} when it ran out of bytes (the cursor is then back where
   *   it was, and {@link ByteReader.neededBytes} tells how many bytes after the cursor it needed).
   * @throws MigrationError from the decoder (latched) or `TRUNCATED` when the stream ended.
   */
  tryDecode<T>(decoder: (r: ByteReader) => T): T | typeof NEED_MORE {
    if (this.#error !== undefined) throw this.#error;
    // Remember the cursor in locals, not an object: this runs once per record on the RAM path.
    const ci = this.#ci;
    const pos = this.#pos;
    const start = this.#curBase + pos;
    try {
      return decoder(this);
    } catch (e) {
      if (e === UNDERFLOW) {
        if (this.#ci !== ci) this.#enter(ci);
        this.#pos = pos;
        this.#needed = UNDERFLOW.needUntil - start;
        return NEED_MORE;
      }
      throw this.fail(e);
    }
  }

  #needed = 0;

  /** After {@link ByteReader.tryDecode} returned NEED_MORE: bytes the decoder needed after its start. */
  get neededBytes(): number {
    return this.#needed;
  }

  /**
   * Runs a synchronous decoder, re-running it from the same position whenever it runs out of buffered bytes, until
   * it completes. The decoder must not have side effects before it returns.
   *
   * @param decoder Reads from the reader and returns a value.
   * @returns What the decoder returned.
   */
  async decode<T>(decoder: (r: ByteReader) => T): Promise<T> {
    for (;;) {
      const v = this.tryDecode(decoder);
      if (v !== NEED_MORE) return v;
      await this.fill(this.#needed);
    }
  }
}

/** Decodes a short string: an ASCII loop, one shared TextDecoder for the rare non-ASCII case. */
export function decodeText(b: Uint8Array): string {
  const n = b.length;
  if (n < 256) {
    let s = "";
    for (let i = 0; i < n; i++) {
      const c = b[i] as number;
      if (c > 0x7f) return utf8.decode(b);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return utf8.decode(b);
}
