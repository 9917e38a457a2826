/**
 * The buffered big-endian writer: QEMU's `QEMUFile` for the sending side.
 *
 * Puts are synchronous and go into a large staging buffer; full buffers are handed to the {@link ByteSink}
 * without waiting, and callers `await writer.ready()` between batches so that at most `maxInFlight` buffers are
 * outstanding (backpressure), or `await writer.flush()` to push everything out.
 *
 * @module
 */

import { type MigrationError, toMigrationError } from "../errors.js";
import type { ByteSink } from "../transport/channel.js";

/** Options of {@link ByteWriter}. */
export interface ByteWriterOptions {
  /**
   * Size of each staging buffer. Default 1 MiB. shared/research/node-perf-probes.md part 3 staged page records in
   * 4 MiB buffers; in paired runs of `bench transport` (tcp and unix, same machine and load) 1 MiB buffers with 4
   * in flight were faster in most pairs, probably because the kernel then copies out of a buffer still in cache.
   * The RAM saver hands off at each 128-page batch anyway (≈ 513 KiB), so it is not affected.
   */
  readonly bufferSize: number;
  /** How many staging buffers may be in the sink at once before {@link ByteWriter.ready} waits. Default 4. */
  readonly maxInFlight: number;
  /**
   * Payloads at least this long that do not fit in the space left are passed to the sink as views instead of
   * being copied ({@link ByteWriter.bytesNoCopy} always does). Default: `bufferSize / 2`.
   */
  readonly passThroughThreshold: number;
  /**
   * Memory to cut the staging buffers from (as many whole `bufferSize` buffers as fit), e.g. the I/O memory a
   * machine sets aside next to its RAM in the same wasm memory, so the RAM saver copies pages into staging with
   * one wasm `memory.copy`. When every one of them is in the sink, a plain buffer is allocated. Default: plain
   * buffers only.
   */
  readonly stagingMemory: Uint8Array | undefined;
}

const DEFAULT_BUFFER_SIZE = 1024 * 1024;
const DEFAULT_MAX_IN_FLIGHT = 4;
const TWO_POW_32 = 2 ** 32;

const textEncoder = new TextEncoder();

/**
 * A buffered big-endian writer over a {@link ByteSink}.
 *
 * Every put method returns `this` so calls chain. Integer puts check their range and throw `RangeError` for
 * out-of-range values (a programmer error, not bad input). After the first sink failure every later call throws
 * that same `MigrationError` (the first-error latch, QEMU's `qemu_file_set_error`).
 *
 * @example
 * ```ts
 * const w = new ByteWriter(channel);
 * w.u32(0x5145564d).u32(3);
 * await w.flush();
 * ```
 */
export class ByteWriter {
  readonly #sink: ByteSink;
  readonly #bufferSize: number;
  readonly #maxInFlight: number;
  readonly #passThrough: number;
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;
  /** Bytes handed to the sink so far; `offset` = this + `#pos`. */
  #flushed = 0;
  #pool: Uint8Array[] = [];
  /** Buffers cut from `stagingMemory`: always recycled. */
  readonly #slots = new Set<Uint8Array>();
  #inFlight = new Set<Promise<void>>();
  #error: MigrationError | undefined;
  #waiters: (() => void)[] = [];

  /**
   * @param sink Where the bytes go (a Channel, or a {@link MemorySink}).
   * @param options Buffer sizes; see {@link ByteWriterOptions}.
   */
  constructor(sink: ByteSink, options: Partial<ByteWriterOptions> = {}) {
    this.#sink = sink;
    this.#bufferSize = options.bufferSize ?? DEFAULT_BUFFER_SIZE;
    if (!Number.isInteger(this.#bufferSize) || this.#bufferSize < 64) {
      throw new RangeError(`Cannot create writer: bufferSize ${this.#bufferSize} is below 64`);
    }
    this.#maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.#passThrough = options.passThroughThreshold ?? this.#bufferSize / 2;
    const memory = options.stagingMemory;
    if (memory !== undefined) {
      const size = this.#bufferSize;
      for (let at = 0; at + size <= memory.byteLength; at += size) {
        const slot = new Uint8Array(memory.buffer, memory.byteOffset + at, size);
        this.#slots.add(slot);
        this.#pool.unshift(slot);
      }
    }
    this.#buf = this.#pool.pop() ?? new Uint8Array(this.#bufferSize);
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  }

  /** Total bytes put so far (handed off or still staged): the stream offset of the next byte. */
  get offset(): number {
    return this.#flushed + this.#pos;
  }

  /** The latched error, if the sink failed. */
  get error(): MigrationError | undefined {
    return this.#error;
  }

  /** How many buffers are in the sink right now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Latches `e` as the writer's error (first one wins) and returns the latched error. */
  fail(e: unknown): MigrationError {
    if (this.#error === undefined) {
      this.#error = toMigrationError(e, "TRANSPORT", "Cannot write to the migration stream");
      const ws = this.#waiters;
      this.#waiters = [];
      for (const w of ws) w();
    }
    return this.#error;
  }

  #check(): void {
    if (this.#error !== undefined) throw this.#error;
  }

  /** Makes room for `n` more bytes in the staging buffer (n ≤ bufferSize). */
  #reserve(n: number): void {
    this.#check();
    if (this.#pos + n > this.#buf.length) this.#handOff();
  }

  /** Hands the staged bytes to the sink and starts a fresh (or recycled) staging buffer. */
  #handOff(): void {
    if (this.#pos === 0) return;
    const full = this.#buf;
    const chunk = this.#pos === full.length ? full : full.subarray(0, this.#pos);
    this.#send(chunk, full);
    this.#buf = this.#pool.pop() ?? new Uint8Array(this.#bufferSize);
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
    this.#pos = 0;
  }

  /** Sends `chunk`; `recycle` (if given) returns to the pool once the sink is done with it. */
  #send(chunk: Uint8Array, recycle: Uint8Array | undefined): void {
    this.#flushed += chunk.length;
    let p: Promise<void>;
    try {
      p = this.#sink.write(chunk);
    } catch (e) {
      throw this.fail(e);
    }
    const tracked = p.then(
      () => {
        this.#inFlight.delete(tracked);
        // Slots of stagingMemory go back always, and on top (popped first); plain buffers up to maxInFlight.
        if (recycle !== undefined) {
          if (this.#slots.has(recycle)) this.#pool.push(recycle);
          else if (this.#pool.length < this.#maxInFlight) this.#pool.unshift(recycle);
        }
        this.#wake();
      },
      (e: unknown) => {
        this.#inFlight.delete(tracked);
        this.fail(e);
        this.#wake();
      },
    );
    this.#inFlight.add(tracked);
  }

  #wake(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w();
  }

  #waitOne(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Waits until at most `maxInFlight - 1` buffers are outstanding, so the caller may put another batch.
   * Staged bytes are not forced out. Rejects with the latched error after a failure.
   */
  async ready(): Promise<void> {
    while (this.#error === undefined && this.#inFlight.size >= this.#maxInFlight) await this.#waitOne();
    this.#check();
  }

  /** Hands every staged byte to the sink and waits until the sink has taken all of them. */
  async flush(): Promise<void> {
    this.#check();
    this.#handOff();
    while (this.#error === undefined && this.#inFlight.size > 0) await this.#waitOne();
    this.#check();
  }

  /** Hands the staged bytes to the sink without waiting (a batch boundary). */
  push(): this {
    this.#check();
    this.#handOff();
    return this;
  }

  /** Puts one unsigned byte. QEMU: `qemu_put_byte`. */
  u8(v: number): this {
    if (!(v >= 0 && v <= 0xff && Number.isInteger(v))) throw new RangeError(`Cannot put u8: ${v} is out of range`);
    this.#reserve(1);
    this.#buf[this.#pos++] = v;
    return this;
  }

  /** Puts a big-endian u16. QEMU: `qemu_put_be16`. */
  u16(v: number): this {
    if (!(v >= 0 && v <= 0xffff && Number.isInteger(v))) throw new RangeError(`Cannot put u16: ${v} is out of range`);
    this.#reserve(2);
    this.#view.setUint16(this.#pos, v);
    this.#pos += 2;
    return this;
  }

  /** Puts a big-endian u32. QEMU: `qemu_put_be32`. */
  u32(v: number): this {
    if (!(v >= 0 && v <= 0xffffffff && Number.isInteger(v))) {
      throw new RangeError(`Cannot put u32: ${v} is out of range`);
    }
    this.#reserve(4);
    this.#view.setUint32(this.#pos, v);
    this.#pos += 4;
    return this;
  }

  /** Puts a big-endian u64 from a bigint. QEMU: `qemu_put_be64`. */
  u64(v: bigint): this {
    if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`Cannot put u64: ${v} is out of range`);
    this.#reserve(8);
    this.#view.setBigUint64(this.#pos, v);
    this.#pos += 8;
    return this;
  }

  /**
   * Puts a big-endian u64 from a number below 2^53 without a BigInt (the RAM page-header path).
   */
  u64n(v: number): this {
    if (!(v >= 0 && Number.isSafeInteger(v))) throw new RangeError(`Cannot put u64: ${v} is not a safe integer ≥ 0`);
    this.#reserve(8);
    const hi = Math.floor(v / TWO_POW_32);
    this.#view.setUint32(this.#pos, hi);
    this.#view.setUint32(this.#pos + 4, v - hi * TWO_POW_32);
    this.#pos += 8;
    return this;
  }

  /** Puts a signed byte. */
  i8(v: number): this {
    if (!(v >= -0x80 && v <= 0x7f && Number.isInteger(v))) throw new RangeError(`Cannot put i8: ${v} is out of range`);
    this.#reserve(1);
    this.#view.setInt8(this.#pos++, v);
    return this;
  }

  /** Puts a big-endian i16. */
  i16(v: number): this {
    if (!(v >= -0x8000 && v <= 0x7fff && Number.isInteger(v))) {
      throw new RangeError(`Cannot put i16: ${v} is out of range`);
    }
    this.#reserve(2);
    this.#view.setInt16(this.#pos, v);
    this.#pos += 2;
    return this;
  }

  /** Puts a big-endian i32. */
  i32(v: number): this {
    if (!(v >= -0x80000000 && v <= 0x7fffffff && Number.isInteger(v))) {
      throw new RangeError(`Cannot put i32: ${v} is out of range`);
    }
    this.#reserve(4);
    this.#view.setInt32(this.#pos, v);
    this.#pos += 4;
    return this;
  }

  /** Puts a big-endian i64 from a bigint. */
  i64(v: bigint): this {
    if (v < -0x8000000000000000n || v > 0x7fffffffffffffffn) {
      throw new RangeError(`Cannot put i64: ${v} is out of range`);
    }
    this.#reserve(8);
    this.#view.setBigInt64(this.#pos, v);
    this.#pos += 8;
    return this;
  }

  /** Puts a big-endian i64 from a safe-integer number. */
  i64n(v: number): this {
    if (!Number.isSafeInteger(v)) throw new RangeError(`Cannot put i64: ${v} is not a safe integer`);
    this.#reserve(8);
    const hi = Math.floor(v / TWO_POW_32);
    this.#view.setInt32(this.#pos, hi);
    this.#view.setUint32(this.#pos + 4, v - hi * TWO_POW_32);
    this.#pos += 8;
    return this;
  }

  /** Puts a float64 as its big-endian IEEE-754 bit pattern (QEMU sends doubles as u64). */
  f64(v: number): this {
    this.#reserve(8);
    this.#view.setFloat64(this.#pos, v);
    this.#pos += 8;
    return this;
  }

  /** Puts `n` zero bytes (QEMU's `VMSTATE_UNUSED` padding). */
  zeros(n: number): this {
    if (!(n >= 0 && Number.isSafeInteger(n))) throw new RangeError(`Cannot put zeros: ${n} is not a valid count`);
    let left = n;
    while (left > 0) {
      this.#reserve(Math.min(left, this.#bufferSize));
      const k = Math.min(left, this.#buf.length - this.#pos);
      this.#buf.fill(0, this.#pos, this.#pos + k);
      this.#pos += k;
      left -= k;
    }
    return this;
  }

  /**
   * Puts raw bytes, copied into the staging buffer. Large payloads that do not fit in the space left are passed
   * to the sink as views (then the {@link ByteWriter.bytesNoCopy} ownership rule applies to them).
   * QEMU: `qemu_put_buffer`.
   */
  bytes(src: Uint8Array): this {
    this.#check();
    const n = src.length;
    if (n <= this.#buf.length - this.#pos) {
      this.#buf.set(src, this.#pos);
      this.#pos += n;
      return this;
    }
    if (n >= this.#passThrough) return this.bytesNoCopy(src);
    let off = 0;
    while (off < n) {
      this.#reserve(1);
      const k = Math.min(n - off, this.#buf.length - this.#pos);
      this.#buf.set(src.subarray(off, off + k), this.#pos);
      this.#pos += k;
      off += k;
    }
    return this;
  }

  /**
   * Reserves `n` bytes (at most `bufferSize`) in the staging buffer for the caller to fill at once, before any
   * other put: they go at {@link ByteWriter.staging}`[position … position + n)`. For copies a put method cannot
   * make, e.g. wasm `memory.copy` from guest RAM into staging that lies in the same memory.
   *
   * @returns The position in {@link ByteWriter.staging}.
   */
  claim(n: number): number {
    if (!(n >= 0 && n <= this.#bufferSize && Number.isInteger(n))) {
      throw new RangeError(`Cannot claim ${n} bytes: the staging buffer holds ${this.#bufferSize}`);
    }
    this.#reserve(n);
    const p = this.#pos;
    this.#pos = p + n;
    return p;
  }

  /** The current staging buffer (what {@link ByteWriter.claim} positions index). */
  get staging(): Uint8Array {
    return this.#buf;
  }

  /**
   * Puts raw bytes without copying them: the staged bytes are handed off and `src` goes to the sink as is.
   * The caller must not modify `src` until the next {@link ByteWriter.flush} resolves.
   * QEMU: `qemu_put_buffer_async`.
   */
  bytesNoCopy(src: Uint8Array): this {
    this.#check();
    if (src.length === 0) return this;
    this.#handOff();
    this.#send(src, undefined);
    return this;
  }

  /**
   * Puts a QEMU counted string: u8 length then the bytes (no NUL). Strings are encoded as UTF-8.
   *
   * @throws RangeError when the encoded string is longer than 255 bytes.
   */
  str(s: string): this {
    const b = asciiOrUtf8(s);
    if (b.length > 255) throw new RangeError(`Cannot put counted string: "${s.slice(0, 32)}…" is over 255 bytes`);
    this.u8(b.length);
    return this.bytes(b);
  }

  /** Ends the stream: flushes, then (if the sink is a Channel) leaves closing to the caller. */
  async finish(): Promise<void> {
    await this.flush();
  }
}

/** Encodes a string as UTF-8 (fast path for short ASCII strings). */
export function asciiOrUtf8(s: string): Uint8Array {
  const n = s.length;
  if (n < 64) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
      return out;
    }
  }
  return textEncoder.encode(s);
}

/**
 * A sink that keeps everything written to it in memory (tests, vmdesc sizing, encoding small items).
 * It copies each chunk, so writers may reuse their buffers at once.
 */
export class MemorySink implements ByteSink {
  #chunks: Uint8Array[] = [];
  #length = 0;

  /** Bytes received so far. */
  get length(): number {
    return this.#length;
  }

  write(chunk: Uint8Array): Promise<void> {
    this.#chunks.push(chunk.slice());
    this.#length += chunk.length;
    return Promise.resolve();
  }

  /** All bytes received so far, as one array. */
  bytes(): Uint8Array {
    if (this.#chunks.length === 1) return this.#chunks[0] as Uint8Array;
    const out = new Uint8Array(this.#length);
    let o = 0;
    for (const c of this.#chunks) {
      out.set(c, o);
      o += c.length;
    }
    this.#chunks = [out];
    return out;
  }
}

/**
 * Encodes with a synchronous callback into a fresh byte array (for small items: headers, device states in tests).
 *
 * @param fn Puts bytes into the writer it is given.
 * @returns The bytes put.
 */
export function encodeBytes(fn: (w: ByteWriter) => void): Uint8Array {
  const sink = new MemorySink();
  const w = new ByteWriter(sink, { bufferSize: 64 * 1024, passThroughThreshold: Number.POSITIVE_INFINITY });
  fn(w);
  w.push();
  return sink.bytes();
}
