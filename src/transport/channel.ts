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
