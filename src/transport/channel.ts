/**
 * The Channel contract: a byte stream between a migration source and its destination.
 *
 * This file is platform-neutral (no `node:` imports) so the layers above (`wire/`, `savevm/`, `migration/`) can
 * depend on the type without depending on Node. Implementations live in the other files of `transport/`.
 *
 * @module
 */

/**
 * A duplex (or one-way) byte stream. The main migration stream flows source → destination; where the transport is
 * bidirectional (`canRead && canWrite` on both ends), the return path flows back on the same channel, as in QEMU.
 *
 * Contract:
 * - {@link Channel.read} returns the next chunk of received bytes, or `null` once the peer finished writing (EOF).
 *   Chunks have any size ≥ 1 ("short reads"); the caller owns a returned chunk and may keep views into it.
 * - {@link Channel.write} passes `chunk` to the channel, which may keep a reference to it until the returned
 *   promise resolves; the caller must not modify the bytes before then. It resolves once the bytes were handed to
 *   the OS (or to the peer, for in-memory channels) and rejects with a `MigrationError` if the channel failed.
 *   Several writes may be outstanding; they are delivered in order.
 * - {@link Channel.end} finishes the write side after every outstanding write (a half-close where the transport
 *   has one), and resolves once the peer can see EOF.
 * - {@link Channel.close} ends both directions; {@link Channel.abort} tears the channel down at once, failing
 *   pending and later operations with the given error.
 * - Every failure surfaces as a rejected promise carrying a `MigrationError` (`TRANSPORT`, `TIMEOUT`,
 *   `CANCELLED`), never as an unhandled rejection or an `'error'` event nobody listens to.
 */
export interface Channel {
  /** What this channel is, for messages and statistics, e.g. `tcp:127.0.0.1:4444`. */
  readonly description: string;
  /** Whether this end can receive bytes. */
  readonly canRead: boolean;
  /** Whether this end can send bytes. */
  readonly canWrite: boolean;
  /** Reads the next chunk, or `null` at end of stream. */
  read(): Promise<Uint8Array | null>;
  /** Writes a chunk; see the contract above for ownership. */
  write(chunk: Uint8Array): Promise<void>;
  /** Flushes outstanding writes and half-closes the write side. */
  end(): Promise<void>;
  /** Closes both directions gracefully (ends the write side first when it is still open). */
  close(): Promise<void>;
  /** Tears the channel down at once; pending and later operations fail with `reason`. */
  abort(reason?: Error): void;
}

/** The part of a {@link Channel} a writer needs. */
export type ByteSink = Pick<Channel, "write">;

/** The part of a {@link Channel} a reader needs. */
export type ByteSource = Pick<Channel, "read">;

/**
 * A source that can lend its receive buffers instead of handing over chunks it allocated (a transport reading into
 * a fixed ring, possibly inside guest memory, as QEMU's destination reads into its own buffer).
 *
 * Contract:
 * - {@link LendingSource.readLent} returns the next chunk like `read()`, but the chunk is lent: its bytes stay
 *   valid only until it is passed to {@link LendingSource.release}; the source then reuses the memory. The borrower
 *   keeps no view of it afterwards.
 * - Chunks may be released in any order; each exactly once.
 * - The source stops receiving once {@link LendingSource.lendLimit} chunks are lent; a borrower that needs more
 *   bytes while holding `lendLimit - 1` chunks must copy what it holds and release it first, or it waits forever.
 * - `read()` keeps its meaning (the caller owns the chunk): it copies out of the lent memory.
 */
export interface LendingSource extends ByteSource {
  /** Most chunks lent at once; 0 when this source does not lend (then `readLent()` returns owned chunks). */
  readonly lendLimit: number;
  /** Reads the next chunk, lent until {@link LendingSource.release}; `null` at end of stream. */
  readLent(): Promise<Uint8Array | null>;
  /** Gives a lent chunk back. */
  release(chunk: Uint8Array): void;
  /**
   * Moves the source's receive buffers into `memory` (e.g. memory a machine set aside next to its RAM), if the
   * source can; chunks already lent stay valid.
   *
   * @returns Whether later chunks will lie in `memory`.
   */
  receiveInto?(memory: Uint8Array): boolean;
}

/** Whether `source` lends its chunks ({@link LendingSource} with a positive `lendLimit`). */
export function isLendingSource(source: ByteSource): source is LendingSource {
  const s = source as Partial<LendingSource>;
  return typeof s.readLent === "function" && typeof s.release === "function" && (s.lendLimit ?? 0) > 0;
}
