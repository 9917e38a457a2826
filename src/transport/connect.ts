/**
 * The source side: open a channel to a migration URI.
 *
 * QEMU: `migration/migration.c` `qmp_migrate()`, which dispatches to `socket_start_outgoing_migration()`,
 * `exec_start_outgoing_migration()`, `fd_start_outgoing_migration()` and `file_start_outgoing_migration()`.
 *
 * @module
 */

import { connect as netConnect, type Socket } from "node:net";
import { cancelledError, raceCancel } from "./_cancel.js";
import { ioError } from "./_errors.js";
import type { Channel } from "./channel.js";
import { spawnExecChannel } from "./exec-channel.js";
import { openFdChannel } from "./fd-channel.js";
import { openFileChannel } from "./file-channel.js";
import { ringForHighWaterMark, SocketChannel } from "./socket-channel.js";
import { formatUri, type MigrationUri, parseUri } from "./uri.js";

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Aborting it while connecting rejects with `CANCELLED`. Once connected, use `Channel.abort()`. */
  readonly signal: AbortSignal | undefined;
  /** tcp and unix: give up with `TIMEOUT` when not connected within this time. Default 10 000 ms. */
  readonly connectTimeoutMs: number;
  /** Fail a `read()` (return path) with `TIMEOUT` after this long without data. Default: no limit. */
  readonly idleTimeoutMs: number | undefined;
  /** Received bytes queued before reading pauses. Default 4 MiB. */
  readonly highWaterMark: number | undefined;
}

/** Default {@link ConnectOptions.connectTimeoutMs}: 10 s. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Opens the sending end of a migration: connects to `tcp:` / `unix:`, starts an `exec:` command and writes to its
 * stdin, opens a `file:` for writing, or wraps an `fd:` descriptor.
 *
 * @example
 * ```ts
 * const channel = await connect("tcp:127.0.0.1:4444", { connectTimeoutMs: 5000 });
 * await channel.write(bytes);
 * await channel.end();
 * ```
 *
 * @param uri The URI text (parsed with side `"connect"`) or an already parsed URI.
 * @param options Cancellation, timeouts and buffering; see {@link ConnectOptions}.
 * @returns The connected channel.
 * @throws {MigrationError} `BAD_URI` for a malformed URI; `TRANSPORT` when the peer refuses, the path does not
 * exist or is not accessible; `TIMEOUT` when connecting takes too long; `CANCELLED` when `signal` aborts.
 */
export async function connect(uri: string | MigrationUri, options: Partial<ConnectOptions> = {}): Promise<Channel> {
  const parsed = typeof uri === "string" ? parseUri(uri, "connect") : uri;
  const description = typeof uri === "string" ? uri : formatUri(uri);
  const action = `Cannot connect to ${description}`;
  const { signal } = options;
  if (signal?.aborted) throw cancelledError(action, signal);
  let channel: Channel;
  switch (parsed.kind) {
    case "tcp":
    case "unix":
      return connectSocket(parsed, description, options);
    case "exec":
      channel = await spawnExecChannel(parsed.command, "connect", {
        idleTimeoutMs: options.idleTimeoutMs,
        highWaterMark: options.highWaterMark,
      });
      break;
    case "file":
      channel = await openFileChannel(parsed.path, parsed.offset, "connect");
      break;
    case "fd":
      channel = openFdChannel(parsed.name, "connect", options);
      break;
  }
  if (signal?.aborted) {
    const error = cancelledError(action, signal);
    channel.abort(error);
    throw error;
  }
  return channel;
}

async function connectSocket(
  uri: MigrationUri & { kind: "tcp" | "unix" },
  description: string,
  options: Partial<ConnectOptions>,
): Promise<Channel> {
  const ring = ringForHighWaterMark(options.highWaterMark);
  const socket: Socket =
    uri.kind === "tcp"
      ? netConnect({ host: uri.host, port: uri.port, allowHalfOpen: true, noDelay: true, onread: ring.onread })
      : netConnect({ path: uri.path, allowHalfOpen: true, onread: ring.onread });
  const connected = new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", (error) => reject(ioError(description, "connect to", error)));
  });
  try {
    await raceCancel(connected, {
      signal: options.signal,
      timeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      action: `Cannot connect to ${description}`,
    });
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return new SocketChannel(socket, {
    description,
    idleTimeoutMs: options.idleTimeoutMs,
    highWaterMark: options.highWaterMark,
    ring,
  });
}
