/**
 * `fd:NAME`: a channel over a file descriptor that was passed in (registered by name, or inherited by number).
 *
 * QEMU: `migration/fd.c` (`fd_start_outgoing_migration()`, `fd_start_incoming_migration()`), which wraps the
 * descriptor with `qio_channel_new_fd()`: a socket channel for sockets, a file channel for anything else.
 *
 * @module
 */

import { fstatSync } from "node:fs";
import { Socket } from "node:net";
import { MigrationError } from "../errors.js";
import { ioError } from "./_errors.js";
import type { Channel } from "./channel.js";
import { takeFd } from "./fd-registry.js";
import { FileChannel } from "./file-channel.js";
import { ringForHighWaterMark, SocketChannel } from "./socket-channel.js";
import type { UriSide } from "./uri.js";

/** Options of {@link openFdChannel}. */
export interface FdChannelOptions {
  /** Socket and pipe descriptors: fail a `read()` with `TIMEOUT` after this long without data. Default: none. */
  readonly idleTimeoutMs: number | undefined;
  /** Socket and pipe descriptors: received bytes queued before reading pauses. Default 4 MiB. */
  readonly highWaterMark: number | undefined;
  /** Other descriptors: bytes per read. Default 1 MiB. */
  readonly blockSize: number | undefined;
}

/**
 * Opens a channel on the descriptor an `fd:NAME` URI names. NAME is looked up with {@link takeFd} (so it is used
 * once, and the channel owns and closes the descriptor, as in QEMU); on the listen side a decimal NAME is taken as
 * a raw inherited descriptor number.
 *
 * The descriptor's type decides the channel (checked with `fstat`):
 * - a socket: a two-way {@link SocketChannel} (so a return path works);
 * - a pipe or FIFO: a one-way {@link SocketChannel}, write-only for `"connect"`, read-only for `"listen"`;
 * - anything else (a regular file, a character or block device): a one-way {@link FileChannel} that reads or
 *   writes at the descriptor's current file position (0 for a freshly opened file) and moves it, as QEMU's plain
 *   `read()`/`write()` calls do; nothing is truncated.
 *
 * @example
 * ```ts
 * registerFd("mig", 7);
 * const channel = await openFdChannel("mig", "connect");
 * ```
 *
 * @param name A registered name, or (listen side only) a decimal descriptor number.
 * @param side `"connect"` (source) or `"listen"` (destination).
 * @param options Timeouts and sizes; see {@link FdChannelOptions}.
 * @returns The channel.
 * @throws {MigrationError} `TRANSPORT` when the name is not registered or the descriptor is not open.
 */
export function openFdChannel(name: string, side: UriSide, options: Partial<FdChannelOptions> = {}): Channel {
  const description = `fd:${name}`;
  const isNumber = /^[0-9]+$/.test(name);
  const fd = isNumber && side === "listen" ? Number(name) : takeFd(name);
  if (fd === undefined) {
    throw new MigrationError("TRANSPORT", `Cannot open ${description}: no file descriptor is registered as "${name}"`);
  }
  let stats: ReturnType<typeof fstatSync>;
  try {
    stats = fstatSync(fd);
  } catch (error) {
    throw ioError(description, "open", error);
  }
  if (stats.isSocket() || stats.isFIFO()) {
    const twoWay = stats.isSocket();
    const canRead = twoWay || side === "listen";
    const canWrite = twoWay || side === "connect";
    const ring = canRead ? ringForHighWaterMark(options.highWaterMark) : undefined;
    let socket: Socket;
    try {
      // `onread` is a documented option of `new net.Socket()` that @types/node 20 leaves out.
      const socketOptions = { fd, readable: canRead, writable: canWrite, allowHalfOpen: true, onread: ring?.onread };
      socket = new Socket(socketOptions as ConstructorParameters<typeof Socket>[0]);
    } catch (error) {
      throw ioError(description, "open", error);
    }
    return new SocketChannel(socket, {
      description,
      canRead,
      canWrite,
      idleTimeoutMs: options.idleTimeoutMs,
      highWaterMark: options.highWaterMark,
      ring,
    });
  }
  return new FileChannel(fd, side, { description, position: null, ownsFd: true, blockSize: options.blockSize });
}
