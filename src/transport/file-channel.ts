/**
 * `file:PATH[,offset=N]`: a migration stream stored in a file, and descriptors of regular files for `fd:`.
 *
 * QEMU: `migration/file.c` (`file_start_outgoing_migration()`, `file_start_incoming_migration()`) and
 * `QIOChannelFile` (`io/channel-file.c`).
 *
 * @module
 */

import { close as closeFd, constants, ftruncate, open, read, write } from "node:fs";
import type { MigrationError } from "../errors.js";
import { abortError, closedError, directionError, endedError, ioError } from "./_errors.js";
import type { Channel, LendingSource } from "./channel.js";
import { findFdInSet } from "./fd-registry.js";
import { FDSET_PREFIX, formatUri, type UriSide } from "./uri.js";

/** Options of {@link openFileChannel} and {@link FileChannel}. */
export interface FileChannelOptions {
  /** Bytes per positional read on the reading side; each `read()` returns at most this much. Default 1 MiB. */
  readonly blockSize: number | undefined;
  /**
   * Writing side: when `end()` is reached, cut the file at the end of what was written, so no bytes of an older,
   * longer file follow the stream. Bytes before the start offset are never touched. Default `true` for
   * {@link openFileChannel}, `false` for {@link FileChannel} itself.
   */
  readonly truncate: boolean | undefined;
}

/** Default {@link FileChannelOptions.blockSize}: 1 MiB. */
export const DEFAULT_FILE_BLOCK_SIZE = 1024 * 1024;

/** Blocks a reading file channel keeps in its own memory: one lent to the reader's record and three read ahead. */
const OWN_READ_SLOTS = 4;

/** A read issued ahead of the reader. */
interface PendingRead {
  readonly slot: Uint8Array;
  /** Where it reads: a file offset, or null for the descriptor's position. */
  readonly position: number | null;
  readonly done: Promise<number>;
}

/** What the {@link FileChannel} constructor needs. */
export interface FileChannelInit {
  /** What the channel is, for messages, e.g. `file:/tmp/vm.img,offset=4096`. */
  readonly description: string;
  /**
   * Where to start reading or writing: a byte offset (positional `pread`/`pwrite`; the descriptor's own file
   * position is neither used nor moved), or `null` for the descriptor's current file position (plain
   * `read`/`write`, which advance it).
   */
  readonly position: number | null;
  /** Whether the channel closes the descriptor when it is done. */
  readonly ownsFd: boolean;
  /** See {@link FileChannelOptions.blockSize}. Default 1 MiB. */
  readonly blockSize?: number | undefined;
  /** See {@link FileChannelOptions.truncate}. Default `false` here. */
  readonly truncate?: boolean | undefined;
}

/**
 * Opens the file of a `file:` URI. The writing side (`"connect"`, the source) opens PATH write-only, creating it
 * with mode 0600 if it does not exist, and writes from byte `offset`; the reading side (`"listen"`) reads from
 * `offset` to the end of the file.
 *
 * Unlike QEMU, which opens the file with `O_TRUNC` (so everything before `offset` becomes zeros), the writing side
 * keeps the bytes before `offset` untouched, so a caller can put its own header there. Like QEMU, the file ends
 * where the stream ends: on `end()` it is cut at `offset` + bytes written (option `truncate`, default on).
 *
 * PATH may be `/dev/fdset/ID`: the channel then uses a descriptor of that set (see {@link addFdToSet}) whose
 * access mode fits, without closing it (the set keeps it).
 *
 * @example
 * ```ts
 * const out = await openFileChannel("/tmp/vm.img", 4096, "connect");
 * await out.write(stream);
 * await out.end();
 * ```
 *
 * @param path The file path, or `/dev/fdset/ID`.
 * @param offset The byte offset where the stream starts.
 * @param side `"connect"` to write, `"listen"` to read.
 * @param options Block size and truncation; see {@link FileChannelOptions}.
 * @returns The channel.
 * @throws {MigrationError} `TRANSPORT` when the file cannot be opened (ENOENT, EACCES, ...) or the fd set has no
 * fitting descriptor.
 */
export async function openFileChannel(
  path: string,
  offset: number,
  side: UriSide,
  options: Partial<FileChannelOptions> = {},
): Promise<FileChannel> {
  const description = formatUri({ kind: "file", path, offset });
  const common = {
    description,
    position: offset,
    blockSize: options.blockSize ?? DEFAULT_FILE_BLOCK_SIZE,
    truncate: options.truncate ?? true,
  };
  if (path.startsWith(FDSET_PREFIX)) {
    const fdsetId = Number(path.slice(FDSET_PREFIX.length));
    const fd = findFdInSet(fdsetId, side === "connect" ? "write" : "read");
    if (fd === undefined) {
      throw ioError(
        description,
        "open",
        new Error(`fd set ${fdsetId} has no descriptor open for ${side === "connect" ? "writing" : "reading"}`),
      );
    }
    return new FileChannel(fd, side, { ...common, ownsFd: false });
  }
  const flags = side === "connect" ? constants.O_WRONLY | constants.O_CREAT : constants.O_RDONLY;
  const fd = await new Promise<number>((resolve, reject) => {
    open(path, flags, 0o600, (error, fd) => {
      if (error === null) resolve(fd);
      else reject(ioError(description, side === "connect" ? "open for writing" : "open for reading", error));
    });
  });
  return new FileChannel(fd, side, { ...common, ownsFd: true });
}

/**
 * A one-way channel over a file descriptor: write-only for `"connect"`, read-only for `"listen"`.
 *
 * Writes run one at a time in order (several may be outstanding; each resolves once its bytes are in the file).
 * `end()` waits for the writes, truncates if asked, and closes the descriptor when the channel owns it.
 *
 * Reading goes through `blockSize` slots, read ahead in order (positional reads run several at a time; reads at the
 * descriptor's own position one at a time), and lends them ({@link FileChannel.readLent}): a slot is read into
 * again only once it is given back. `read()` returns copies. The slots are the channel's own memory (4 blocks) or,
 * after {@link FileChannel.receiveInto}, a machine's I/O memory. `null` marks the end of the file.
 */
export class FileChannel implements Channel, LendingSource {
  readonly description: string;
  readonly canRead: boolean;
  readonly canWrite: boolean;
  readonly #fd: number;
  readonly #ownsFd: boolean;
  readonly #blockSize: number;
  readonly #truncate: boolean;
  /** Next byte offset, or null to use the descriptor's file position. */
  #position: number | null;
  /** Bytes written or read so far. */
  #done = 0;
  readonly #start: number | null;
  /** Every operation chains on this, so they run in order and the fd is closed only after the last one. */
  #tail: Promise<unknown> = Promise.resolve();
  #error: MigrationError | null = null;
  #ending: Promise<void> | null = null;
  #closing: Promise<void> | null = null;
  #eof = false;
  #fdClosed = false;
  /** Slots of the current memory (own or set by receiveInto). */
  #slots: Set<Uint8Array> = new Set();
  /** Slots of the current memory that are neither being read into nor lent. */
  #free: Uint8Array[] = [];
  /** Reads issued ahead, in stream order. */
  readonly #ahead: PendingRead[] = [];
  /** Lent chunk → its slot. */
  readonly #lent = new Map<Uint8Array, Uint8Array>();
  /** A read returned 0 bytes: issue no more. */
  #sawEnd = false;

  /**
   * @param fd An open descriptor: writable for `"connect"`, readable for `"listen"`.
   * @param side `"connect"` to write, `"listen"` to read.
   * @param init Description, start position, ownership, block size and truncation.
   */
  constructor(fd: number, side: UriSide, init: FileChannelInit) {
    this.description = init.description;
    this.canRead = side === "listen";
    this.canWrite = side === "connect";
    this.#fd = fd;
    this.#ownsFd = init.ownsFd;
    this.#position = init.position;
    this.#start = init.position;
    this.#blockSize = init.blockSize ?? DEFAULT_FILE_BLOCK_SIZE;
    this.#truncate = init.truncate ?? false;
    if (!Number.isSafeInteger(this.#blockSize) || this.#blockSize < 1) {
      throw new RangeError(`Cannot create channel ${this.description}: blockSize must be a positive integer`);
    }
  }

  /** How many chunks {@link FileChannel.readLent} lends at most: all slots but one. */
  get lendLimit(): number {
    return this.canRead ? Math.max(this.#slots.size, OWN_READ_SLOTS) - 1 : 0;
  }

  /** Reads the next block; the caller owns it (a copy of the lent slot). */
  async read(): Promise<Uint8Array | null> {
    const chunk = await this.readLent();
    if (chunk === null) return null;
    const copy = chunk.slice();
    this.release(chunk);
    return copy;
  }

  /**
   * Reads the next block as a view of a slot, valid until {@link FileChannel.release}.
   *
   * @returns Up to `blockSize` bytes, or `null` at the end of the file.
   */
  async readLent(): Promise<Uint8Array | null> {
    if (this.#error !== null) throw this.#error;
    if (!this.canRead) throw directionError(this.description, "read");
    for (;;) {
      if (this.#eof) return null;
      if (this.#slots.size === 0) this.#useSlots(this.#ownSlots());
      this.#readAhead(true);
      const head = this.#ahead.shift();
      if (head === undefined) {
        throw new Error(`Cannot read ${this.description}: every slot is lent (a borrower kept more than lendLimit)`);
      }
      let n: number;
      try {
        n = await head.done;
      } catch (error) {
        this.#putBack(head.slot);
        throw error;
      }
      this.#check();
      if (n === 0) {
        this.#putBack(head.slot);
        this.#eof = true;
        await this.#settleReads();
        await this.#closeFd();
        return null;
      }
      this.#done += n;
      if (head.position !== null && n < head.slot.byteLength && this.#ahead.length > 0) {
        // A short read before the end of the file (rare on local files): the reads issued after it start past
        // bytes it did not return. Drop them and read on from where it stopped.
        await this.#settleReads();
        for (const r of this.#ahead.splice(0)) this.#putBack(r.slot);
        this.#position = head.position + n;
        this.#sawEnd = false;
      }
      const chunk = n === head.slot.byteLength ? head.slot : head.slot.subarray(0, n);
      this.#lent.set(chunk, head.slot);
      this.#readAhead(false);
      return chunk;
    }
  }

  /** Gives back a chunk {@link FileChannel.readLent} returned. */
  release(chunk: Uint8Array): void {
    const slot = this.#lent.get(chunk);
    if (slot === undefined) return;
    this.#lent.delete(chunk);
    this.#putBack(slot);
    if (this.#error === null && !this.#eof) this.#readAhead(false);
  }

  /**
   * Reads later blocks into `memory` (e.g. a machine's I/O memory), cut into `blockSize` slots; blocks already read
   * ahead or lent stay where they are.
   *
   * @returns False when `memory` holds fewer than two blocks, or the channel writes.
   */
  receiveInto(memory: Uint8Array): boolean {
    const size = this.#blockSize;
    if (!this.canRead || memory.byteLength < 2 * size) return false;
    const slots: Uint8Array[] = [];
    for (let at = 0; at + size <= memory.byteLength; at += size) {
      slots.push(new Uint8Array(memory.buffer, memory.byteOffset + at, size));
    }
    this.#useSlots(slots);
    return true;
  }

  #ownSlots(): Uint8Array[] {
    const memory = new Uint8Array(OWN_READ_SLOTS * this.#blockSize);
    return Array.from(
      { length: OWN_READ_SLOTS },
      (_, i) => new Uint8Array(memory.buffer, i * this.#blockSize, this.#blockSize),
    );
  }

  #useSlots(slots: Uint8Array[]): void {
    this.#slots = new Set(slots);
    this.#free = slots.slice().reverse();
  }

  /** A slot is free again: back to the free list if it belongs to the current memory. */
  #putBack(slot: Uint8Array): void {
    if (this.#slots.has(slot)) this.#free.push(slot);
  }

  /**
   * Issues reads into free slots at file offsets. At the descriptor's own position it reads only on demand (when
   * the reader asks and nothing is pending), so the position never runs ahead of what the reader took.
   */
  #readAhead(demand: boolean): void {
    const positional = this.#start !== null;
    if (!positional && !(demand && this.#ahead.length === 0)) return;
    while (!this.#sawEnd && this.#error === null && this.#free.length > 0 && (positional || this.#ahead.length === 0)) {
      const slot = this.#free.pop() as Uint8Array;
      const position = this.#position;
      const done = new Promise<number>((resolve, reject) => {
        read(this.#fd, slot, 0, slot.byteLength, position, (error, bytesRead) => {
          if (error !== null) reject(this.#failWith(ioError(this.description, "read from", error)));
          else {
            if (bytesRead === 0) this.#sawEnd = true;
            resolve(bytesRead);
          }
        });
      });
      // Failures surface through readLent(); a read nobody waits for must not be an unhandled rejection.
      done.catch(() => {});
      if (position !== null) this.#position = position + slot.byteLength;
      this.#ahead.push({ slot, position, done });
    }
  }

  /** Waits for every read in flight (before the descriptor may be closed). */
  async #settleReads(): Promise<void> {
    await Promise.allSettled(this.#ahead.map((r) => r.done));
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.#error !== null) return Promise.reject(this.#error);
    if (!this.canWrite) return Promise.reject(directionError(this.description, "write"));
    if (this.#ending !== null) return Promise.reject(endedError(this.description));
    const result = this.#tail.then(() => this.#writeAll(chunk));
    this.#tail = result.catch(() => {});
    return result;
  }

  end(): Promise<void> {
    if (this.#ending !== null) return this.#ending;
    if (this.#error !== null) return Promise.reject(this.#error);
    if (!this.canWrite) {
      this.#ending = Promise.resolve();
      return this.#ending;
    }
    const result = this.#tail.then(async () => {
      this.#check();
      if (this.#truncate && this.#start !== null) await this.#ftruncate(this.#start + this.#done);
      await this.#closeFd();
    });
    this.#tail = result.catch(() => {});
    this.#ending = result;
    return result;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    try {
      if (this.canWrite && this.#error === null) await this.end();
    } finally {
      this.#error ??= closedError(this.description);
      await this.#tail;
      await this.#settleReads();
      await this.#closeFd();
    }
  }

  abort(reason?: Error): void {
    this.#error = abortError(this.description, reason);
    // An fs call may still be running on the descriptor in the thread pool: close it only after that call.
    this.#tail = this.#tail
      .then(() => this.#settleReads())
      .then(() => this.#closeFd())
      .catch(() => {});
  }

  /** Throws the channel's error, if it has failed or was aborted meanwhile. */
  #check(): void {
    if (this.#error !== null) throw this.#error;
  }

  async #writeAll(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.byteLength) {
      this.#check();
      const n = await new Promise<number>((resolve, reject) => {
        write(this.#fd, chunk, offset, chunk.byteLength - offset, this.#position, (error, written) => {
          if (error === null) resolve(written);
          else reject(this.#failWith(ioError(this.description, "write to", error)));
        });
      });
      this.#advance(n);
      offset += n;
    }
  }

  #advance(n: number): void {
    this.#done += n;
    if (this.#position !== null) this.#position += n;
  }

  #ftruncate(length: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      ftruncate(this.#fd, length, (error) => {
        if (error === null) resolve();
        else reject(this.#failWith(ioError(this.description, "truncate", error)));
      });
    });
  }

  #closeFd(): Promise<void> {
    if (this.#fdClosed || !this.#ownsFd) {
      this.#fdClosed = true;
      return Promise.resolve();
    }
    this.#fdClosed = true;
    return new Promise<void>((resolve, reject) => {
      closeFd(this.#fd, (error) => {
        if (error === null) resolve();
        else reject(this.#failWith(ioError(this.description, "close", error)));
      });
    });
  }

  #failWith(error: MigrationError): MigrationError {
    this.#error ??= error;
    return error;
  }
}
