/**
 * The staging buffer device saves write into before the bytes go to the `ByteWriter` in one `bytes()` call.
 *
 * Why a private buffer: the compiled savers write every scalar straight through one cached `DataView` with a single
 * capacity check, the vmdesc walker measures each field as the difference of two positions, and a save that fails
 * half way puts nothing on the stream. Fields are public (not `#private`) because they are read and written by the
 * compiled closures on the hot path.
 *
 * @module
 */

const INITIAL_SIZE = 4096;

/** A growable big-endian byte buffer. @internal */
export class SaveBuffer {
  /** The bytes; valid up to {@link SaveBuffer.pos}. */
  buf: Uint8Array;
  /** A view of {@link SaveBuffer.buf}, rebuilt when it grows. */
  view: DataView;
  /** The next write position. */
  pos = 0;

  constructor(size = INITIAL_SIZE) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  /** The last view {@link SaveBuffer.written} made, and the {@link SaveBuffer.buf} it is a view of. */
  #out: Uint8Array | undefined;
  #outOf: Uint8Array | undefined;

  /**
   * The bytes written so far (from 0 to {@link SaveBuffer.pos}), as a view. The last view is kept and returned
   * again while the length and the buffer are the same (saving a device of the same size again), since making a
   * view costs about as much as writing a dozen fields. A caller that lets the view escape must not put the buffer
   * back in the pool.
   */
  written(): Uint8Array {
    const o = this.#out;
    // The buffers are compared as the Uint8Arrays: reading `.buffer` costs more than making the view.
    if (o !== undefined && o.length === this.pos && this.#outOf === this.buf) return o;
    const v = new Uint8Array(this.buf.buffer, 0, this.pos);
    this.#out = v;
    this.#outOf = this.buf;
    return v;
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  /** Doubles (at least) the buffer so that `n` more bytes fit. */
  grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Puts one byte. */
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  /** Puts a big-endian u32. */
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  /** Puts raw bytes. */
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Puts `n` zero bytes. */
  zeros(n: number): void {
    this.ensure(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }
}

/** Buffers that grew beyond this are not kept in the pool. */
const POOL_LIMIT = 1024 * 1024;
const pool: SaveBuffer[] = [];

/** Takes a buffer from the pool (re-entrant saves each get their own). @internal */
export function acquireSaveBuffer(): SaveBuffer {
  const sb = pool.pop() ?? new SaveBuffer();
  sb.pos = 0;
  return sb;
}

/** Returns a buffer to the pool (nothing outside keeps a reference to its bytes). @internal */
export function releaseSaveBuffer(sb: SaveBuffer): void {
  if (sb.buf.length <= POOL_LIMIT && pool.length < 8) pool.push(sb);
}
