/**
 * An in-memory duplex channel pair, for tests and for running a source and a destination in one process.
 *
 * QEMU has no direct equivalent; the closest is `QIOChannelBuffer` (`io/channel-buffer.c`), which is one-way and
 * unbounded. This pair is bidirectional and applies backpressure.
 *
 * @module
 */

import type { MigrationError } from "../errors.js";
import { abortError, closedError, endedError, peerAbortedError, peerClosedError } from "./_errors.js";
import type { Channel } from "./channel.js";

/** Options of {@link createChannelPair}. */
export interface ChannelPairOptions {
  /**
   * How many bytes may sit unread in one direction before writes stop resolving (copying mode only, see `copy`).
   * Default 1 MiB.
   */
  readonly highWaterMark: number;
  /**
   * Whether `write()` copies each chunk. Default `true`.
   *
   * - `true`: the chunk is copied once when written; the write resolves as soon as the bytes queued for the peer
   *   (this chunk included) are at most `highWaterMark`, or else once the reader has drained the queue that far.
   *   The writer may reuse its buffer as soon as the write resolves, and the reader owns what it reads, exactly as
   *   with a socket.
   * - `false` (zero-copy): the chunk is passed by reference and the write resolves only once the reader has taken
   *   it with `read()`; `highWaterMark` is then unused (every write waits for its reader). From then on the reader
   *   owns those bytes and may keep views into them, so the writer must NOT reuse the buffer after the write
   *   resolves. Use this only with writers that hand over fresh buffers.
   */
  readonly copy: boolean;
}

/** Default {@link ChannelPairOptions.highWaterMark}: 1 MiB. */
export const DEFAULT_PAIR_HIGH_WATER_MARK = 1024 * 1024;

let pairCount = 0;

/**
 * Creates two connected in-memory channels: what one writes, the other reads.
 *
 * Backpressure is real: a write's promise stays pending while the peer has more than `highWaterMark` bytes
 * unread. `end()` on one side makes the peer's `read()` return `null` after the queued chunks; `abort()` makes the
 * peer's pending and later operations fail with `TRANSPORT`; `close()` ends the write side and makes the peer's
 * further writes fail with `TRANSPORT`.
 *
 * @example
 * ```ts
 * const [source, destination] = createChannelPair();
 * await source.write(new Uint8Array([1, 2, 3]));
 * await source.end();
 * await destination.read(); // Uint8Array [1, 2, 3]
 * await destination.read(); // null
 * ```
 *
 * @param options High-water mark and copy mode; see {@link ChannelPairOptions}.
 * @returns The two ends, `[a, b]`.
 */
export function createChannelPair(options: Partial<ChannelPairOptions> = {}): [Channel, Channel] {
  const highWaterMark = options.highWaterMark ?? DEFAULT_PAIR_HIGH_WATER_MARK;
  if (!Number.isSafeInteger(highWaterMark) || highWaterMark < 1) {
    throw new RangeError(
      `Cannot create a channel pair: highWaterMark must be a positive integer, got ${highWaterMark}`,
    );
  }
  const copy = options.copy ?? true;
  const id = ++pairCount;
  const aToB = new Pipe(highWaterMark, copy);
  const bToA = new Pipe(highWaterMark, copy);
  const a = new MemoryChannel(`memory:${id}/a`, bToA, aToB);
  const b = new MemoryChannel(`memory:${id}/b`, aToB, bToA);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** One queued chunk, with the settle functions of its write while that write is still pending. */
interface Entry {
  readonly chunk: Uint8Array;
  resolve: (() => void) | null;
  reject: ((error: Error) => void) | null;
}

/** A pending `read()`. */
interface Waiter {
  readonly resolve: (chunk: Uint8Array | null) => void;
  readonly reject: (error: Error) => void;
}

const resolved = Promise.resolve();

/** One direction of a pair: a chunk queue between a writer and a reader. */
class Pipe {
  readonly #highWaterMark: number;
  readonly #copy: boolean;
  /** Queued chunks from `#head` on; the array is compacted when the head passes half of it. */
  #queue: Entry[] = [];
  #head = 0;
  /** Bytes queued and not yet read. */
  #bytes = 0;
  /** Writes whose promise is still pending. */
  #unsettled = 0;
  #ended = false;
  /** Set once the pipe is broken: what `read()` fails with. */
  #readError: MigrationError | null = null;
  /** Set once the pipe is broken: what `write()` fails with. */
  #writeError: MigrationError | null = null;
  #waiters: Waiter[] = [];
  /** `end()` calls waiting for every write to settle. */
  #endWaiters: Waiter[] = [];

  constructor(highWaterMark: number, copy: boolean) {
    this.#highWaterMark = highWaterMark;
    this.#copy = copy;
  }

  get writeError(): MigrationError | null {
    return this.#writeError;
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.#writeError !== null) return Promise.reject(this.#writeError);
    if (chunk.byteLength === 0) return resolved;
    const data = this.#copy ? chunk.slice() : chunk;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      // A reader is waiting: hand the chunk over; it is consumed at once.
      waiter.resolve(data);
      return resolved;
    }
    this.#bytes += data.byteLength;
    if (this.#copy && this.#bytes <= this.#highWaterMark) {
      this.#queue.push({ chunk: data, resolve: null, reject: null });
      return resolved;
    }
    this.#unsettled++;
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ chunk: data, resolve, reject });
    });
  }

  read(): Promise<Uint8Array | null> {
    if (this.#readError !== null) return Promise.reject(this.#readError);
    if (this.#head < this.#queue.length) return Promise.resolve(this.#shift());
    if (this.#ended) return Promise.resolve(null);
    return new Promise<Uint8Array | null>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  /** Marks EOF after the queued chunks; resolves once every write has settled. */
  end(): Promise<void> {
    if (this.#writeError !== null) return Promise.reject(this.#writeError);
    if (!this.#ended) {
      this.#ended = true;
      for (const waiter of this.#waiters.splice(0)) waiter.resolve(null);
    }
    if (this.#unsettled === 0) return resolved;
    return new Promise<void>((resolve, reject) => {
      this.#endWaiters.push({ resolve: () => resolve(), reject });
    });
  }

  /** Breaks the pipe: pending and later reads fail with `readError`, writes with `writeError`. */
  break(readError: MigrationError, writeError: MigrationError): void {
    this.#readError ??= readError;
    this.#writeError ??= writeError;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#readError);
    for (let i = this.#head; i < this.#queue.length; i++) this.#queue[i]?.reject?.(this.#writeError);
    for (const waiter of this.#endWaiters.splice(0)) waiter.reject(this.#writeError);
    this.#queue = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#unsettled = 0;
  }

  #shift(): Uint8Array {
    const entry = this.#queue[this.#head] as Entry;
    this.#head++;
    this.#bytes -= entry.chunk.byteLength;
    this.#settle(entry);
    if (this.#copy) {
      // Writes resolve in order once the bytes up to and including them fit under the high-water mark.
      let bytes = 0;
      for (let i = this.#head; i < this.#queue.length; i++) {
        const next = this.#queue[i] as Entry;
        bytes += next.chunk.byteLength;
        if (bytes > this.#highWaterMark) break;
        this.#settle(next);
      }
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 64 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return entry.chunk;
  }

  #settle(entry: Entry): void {
    const resolve = entry.resolve;
    if (resolve === null) return;
    entry.resolve = null;
    entry.reject = null;
    resolve();
    if (--this.#unsettled === 0) {
      for (const waiter of this.#endWaiters.splice(0)) waiter.resolve(null);
    }
  }
}

/** One end of a pair. */
class MemoryChannel implements Channel {
  readonly description: string;
  readonly canRead = true;
  readonly canWrite = true;
  /** The other end; set right after both are made. */
  peer!: MemoryChannel;
  readonly #in: Pipe;
  readonly #out: Pipe;
  #ended = false;

  constructor(description: string, input: Pipe, output: Pipe) {
    this.description = description;
    this.#in = input;
    this.#out = output;
  }

  read(): Promise<Uint8Array | null> {
    return this.#in.read();
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.#ended && this.#out.writeError === null) return Promise.reject(endedError(this.description));
    return this.#out.write(chunk);
  }

  end(): Promise<void> {
    this.#ended = true;
    return this.#out.end();
  }

  async close(): Promise<void> {
    // Stop reading first so a peer blocked on a full queue fails instead of waiting for us.
    this.#in.break(closedError(this.description), peerClosedError(this.peer.description));
    if (this.#out.writeError === null) await this.end();
  }

  abort(reason?: Error): void {
    const error = abortError(this.description, reason);
    const toPeer = peerAbortedError(this.peer.description, error);
    this.#out.break(toPeer, error);
    this.#in.break(error, toPeer);
  }
}
