/**
 * The destination side: wait for a migration on a URI.
 *
 * QEMU: `migration/migration.c` `qemu_start_incoming_migration()`, which dispatches to
 * `socket_start_incoming_migration()`, `exec_start_incoming_migration()`, `fd_start_incoming_migration()` and
 * `file_start_incoming_migration()`.
 *
 * @module
 */

import { chmodSync, lstatSync, readFileSync, unlinkSync } from "node:fs";
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import { resolve as resolvePath } from "node:path";
import { MigrationError } from "../errors.js";
import { cancelledError, raceCancel } from "./_cancel.js";
import { type Deferred, deferred } from "./_deferred.js";
import { ioError } from "./_errors.js";
import type { Channel } from "./channel.js";
import { spawnExecChannel } from "./exec-channel.js";
import { openFdChannel } from "./fd-channel.js";
import { openFileChannel } from "./file-channel.js";
import { adoptAcceptedSocket, ringForHighWaterMark, SocketChannel } from "./socket-channel.js";
import { formatUri, type MigrationUri, parseUri } from "./uri.js";

/** Where a socket listener listens: a TCP address or a Unix socket path. */
export type ListenerAddress = { readonly host: string; readonly port: number } | { readonly path: string };

/** Options of {@link Listener.accept}. */
export interface AcceptOptions {
  /** Aborting it rejects the pending `accept()` with `CANCELLED` (the listener stays open). */
  readonly signal: AbortSignal | undefined;
  /** Reject with `TIMEOUT` when no source arrives within this time (the listener stays open). Default: none. */
  readonly timeoutMs: number | undefined;
}

/**
 * A destination waiting for its one source. QEMU listens for exactly one migration connection: the first one is
 * accepted, the listening socket is closed at once, and any other connection is refused.
 */
export interface Listener {
  /** The URI with what listening resolved, e.g. the port picked for `tcp:127.0.0.1:0`. */
  readonly uri: string;
  /** The TCP address or Unix path for socket listeners; undefined for `exec:`, `file:` and `fd:`. */
  readonly address?: ListenerAddress | undefined;
  /**
   * Waits for the source and returns its channel. For `exec:`, `file:` and `fd:` this opens the source (starts the
   * command, opens the file, wraps the descriptor). Can succeed once; later calls reject with `TRANSPORT`.
   */
  accept(options?: Partial<AcceptOptions>): Promise<Channel>;
  /** Stops listening; a connection that was not accepted yet is dropped; a pending `accept()` is `CANCELLED`. */
  close(): Promise<void>;
}

/** Options of {@link listen}. */
export interface ListenOptions {
  /** Aborting it closes the listener: `listen()` or a pending `accept()` rejects with `CANCELLED`. */
  readonly signal: AbortSignal | undefined;
  /** Fail a `read()` on the accepted channel with `TIMEOUT` after this long without data. Default: no limit. */
  readonly idleTimeoutMs: number | undefined;
  /** Received bytes queued before reading pauses. Default 4 MiB. */
  readonly highWaterMark: number | undefined;
  /** `file:` and file descriptors: bytes per read. Default 1 MiB. */
  readonly blockSize: number | undefined;
}

/**
 * Starts listening for the incoming migration on a URI.
 *
 * tcp and unix: the listening socket is open when this resolves (with `tcp:HOST:0` the picked port is in
 * `uri` and `address`). A Unix socket is created with mode 0600 (changed right after `bind`), a stale socket file
 * at the path is replaced (a path that is not a socket, or a socket some process still listens on, is an error),
 * and the file is removed when listening stops (at the first connection, or on `close()`). exec, file and fd: nothing happens until `accept()`.
 *
 * @example
 * ```ts
 * const listener = await listen("tcp:127.0.0.1:0");
 * console.log(listener.uri); // tcp:127.0.0.1:41234
 * const channel = await listener.accept({ timeoutMs: 30_000 });
 * ```
 *
 * @param uri The URI text (parsed with side `"listen"`) or an already parsed URI.
 * @param options Cancellation and buffering; see {@link ListenOptions}.
 * @returns The listener.
 * @throws {MigrationError} `BAD_URI` for a malformed URI; `TRANSPORT` when the address is in use or not
 * available, or the path is not usable; `CANCELLED` when `signal` aborts.
 */
export async function listen(uri: string | MigrationUri, options: Partial<ListenOptions> = {}): Promise<Listener> {
  const parsed = typeof uri === "string" ? parseUri(uri, "listen") : uri;
  const description = typeof uri === "string" ? uri : formatUri(uri);
  const { signal } = options;
  if (signal?.aborted) throw cancelledError(`Cannot listen on ${description}`, signal);
  if (parsed.kind === "tcp" || parsed.kind === "unix") {
    const listener = new SocketListener(parsed, description, options);
    await listener.listening;
    return listener;
  }
  return new OpenerListener(description, options, () => {
    switch (parsed.kind) {
      case "exec":
        return spawnExecChannel(parsed.command, "listen", {
          idleTimeoutMs: options.idleTimeoutMs,
          highWaterMark: options.highWaterMark,
        });
      case "file":
        return openFileChannel(parsed.path, parsed.offset, "listen", {
          blockSize: options.blockSize,
        });
      case "fd":
        return Promise.resolve(openFdChannel(parsed.name, "listen", options));
    }
  });
}

/** The accept/close bookkeeping shared by both listener kinds. */
abstract class BaseListener implements Listener {
  abstract readonly uri: string;
  abstract readonly address: ListenerAddress | undefined;
  protected readonly description: string;
  protected closed = false;
  #accepted = false;
  #waiting = false;
  #onListenAbort: (() => void) | null = null;
  readonly #signal: AbortSignal | undefined;

  constructor(description: string, signal: AbortSignal | undefined) {
    this.description = description;
    this.#signal = signal;
    if (signal !== undefined) {
      this.#onListenAbort = () => void this.close().catch(() => {});
      signal.addEventListener("abort", this.#onListenAbort, { once: true });
    }
  }

  async accept(options: Partial<AcceptOptions> = {}): Promise<Channel> {
    const action = `Cannot accept a migration on ${this.description}`;
    if (this.closed) throw this.closedError(action);
    if (this.#accepted) {
      throw new MigrationError("TRANSPORT", `${action}: the listener takes one connection and already accepted it`);
    }
    if (this.#waiting) throw new MigrationError("TRANSPORT", `${action}: another accept() is already waiting`);
    this.#waiting = true;
    try {
      const channel = await this.acceptOne(action, options);
      if (this.closed) {
        // close() ran while the source was being opened.
        channel.abort();
        throw this.closedError(action);
      }
      this.#accepted = true;
      this.#detachSignal();
      return channel;
    } finally {
      this.#waiting = false;
    }
  }

  close(): Promise<void> {
    this.closed = true;
    this.#detachSignal();
    return this.closeResources();
  }

  protected closedError(action: string): MigrationError {
    if (this.#signal?.aborted) return cancelledError(action, this.#signal);
    return new MigrationError("CANCELLED", `${action}: the listener is closed`);
  }

  #detachSignal(): void {
    if (this.#onListenAbort !== null) this.#signal?.removeEventListener("abort", this.#onListenAbort);
    this.#onListenAbort = null;
  }

  protected abstract acceptOne(action: string, options: Partial<AcceptOptions>): Promise<Channel>;
  protected abstract closeResources(): Promise<void>;
}

/** tcp and unix: a server that takes one connection. */
class SocketListener extends BaseListener {
  uri: string;
  address: ListenerAddress | undefined;
  /** Resolves once the socket listens; rejects with `TRANSPORT` or `CANCELLED`. */
  readonly listening: Promise<void>;
  readonly #server: Server;
  readonly #options: Partial<ListenOptions>;
  /** The one connection, from its arrival until accept() takes it. */
  #pending: SocketChannel | null = null;
  #taken = false;
  #waiter: Deferred<Channel> | null = null;
  #error: MigrationError | null = null;
  #serverClosed: Promise<void> | null = null;
  /** The Unix socket file we created, to remove it only if it is still ours. */
  #unixFile: { path: string; dev: number; ino: number } | null = null;

  constructor(uri: MigrationUri & { kind: "tcp" | "unix" }, description: string, options: Partial<ListenOptions>) {
    super(description, options.signal);
    this.uri = description;
    this.address = undefined;
    this.#options = options;
    this.#server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (socket) =>
      this.#onConnection(socket),
    );
    this.listening = this.#listen(uri);
    this.listening.catch(() => {});
  }

  async #listen(uri: MigrationUri & { kind: "tcp" | "unix" }): Promise<void> {
    const action = `Cannot listen on ${this.description}`;
    const server = this.#server;
    const ready = new Promise<void>((resolve, reject) => {
      server.once("listening", () => resolve());
      server.once("error", (error) => reject(ioError(this.description, "listen on", error)));
    });
    server.on("error", (error) => this.#onServerError(error));
    try {
      if (uri.kind === "unix") {
        removeStaleSocket(uri.path, this.description);
        server.listen({ path: uri.path });
        // listen() binds synchronously: tighten the mode before the event loop can accept anything.
        try {
          chmodSync(uri.path, 0o600);
          const stats = lstatSync(uri.path);
          this.#unixFile = { path: uri.path, dev: stats.dev, ino: stats.ino };
        } catch {
          // The bind failed: the 'error' event reports it.
        }
      } else {
        server.listen(uri.host === "" ? { port: uri.port } : { host: uri.host, port: uri.port });
      }
      await raceCancel(ready, { signal: this.#options.signal, action });
      if (this.closed) throw this.closedError(action);
    } catch (error) {
      ready.catch(() => {});
      await this.close();
      throw error;
    }
    const address = server.address();
    if (uri.kind === "tcp" && address !== null && typeof address === "object") {
      const info = address as AddressInfo;
      this.address = { host: info.address, port: info.port };
      this.uri = formatUri({ kind: "tcp", host: info.address, port: info.port });
    } else if (uri.kind === "unix") {
      this.address = { path: uri.path };
    }
  }

  #onConnection(socket: Socket): void {
    if (this.#taken || this.closed) {
      // One source per destination: refuse everything after the first.
      socket.destroy();
      return;
    }
    this.#taken = true;
    void this.#closeServer();
    // Read into a receive ring (no allocation per read) when Node lets us move the handle; else 'data' events.
    const ring = ringForHighWaterMark(this.#options.highWaterMark);
    const adopted = adoptAcceptedSocket(socket, ring);
    if (adopted === undefined) socket.resume();
    const channel = new SocketChannel(adopted ?? socket, {
      description: this.uri,
      idleTimeoutMs: this.#options.idleTimeoutMs,
      highWaterMark: this.#options.highWaterMark,
      ring: adopted === undefined ? undefined : ring,
    });
    const waiter = this.#waiter;
    if (waiter !== null) {
      this.#waiter = null;
      waiter.resolve(channel);
    } else {
      this.#pending = channel;
    }
  }

  #onServerError(error: Error): void {
    this.#error ??= ioError(this.description, "accept a migration on", error);
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.reject(this.#error);
  }

  protected override async acceptOne(action: string, options: Partial<AcceptOptions>): Promise<Channel> {
    const pending = this.#pending;
    if (pending !== null) {
      this.#pending = null;
      return pending;
    }
    if (this.#error !== null) throw this.#error;
    const waiter = deferred<Channel>();
    this.#waiter = waiter;
    try {
      return await raceCancel(waiter.promise, { signal: options.signal, timeoutMs: options.timeoutMs, action });
    } catch (error) {
      if (this.#waiter === waiter) this.#waiter = null;
      throw error;
    }
  }

  protected override async closeResources(): Promise<void> {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.reject(this.closedError(`Cannot accept a migration on ${this.description}`));
    const pending = this.#pending;
    this.#pending = null;
    pending?.abort(new MigrationError("CANCELLED", `Channel ${this.uri} was dropped: the listener closed`));
    await this.#closeServer();
  }

  #closeServer(): Promise<void> {
    this.#serverClosed ??= new Promise<void>((resolve) => {
      if (!this.#server.listening) {
        // Not listening (yet): if a host name lookup is still running, close as soon as it binds.
        this.#server.once("listening", () => this.#server.close(() => this.#removeUnixFile()));
        this.#removeUnixFile();
        return resolve();
      }
      this.#server.close(() => {
        this.#removeUnixFile();
        resolve();
      });
    });
    return this.#serverClosed;
  }

  /** libuv removes the socket file when the server closes; this covers the paths where it did not. */
  #removeUnixFile(): void {
    const file = this.#unixFile;
    this.#unixFile = null;
    if (file === null) return;
    try {
      const stats = lstatSync(file.path);
      if (stats.isSocket() && stats.dev === file.dev && stats.ino === file.ino) unlinkSync(file.path);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Prepares a Unix socket path: nothing there is fine; a socket nobody listens on is stale and removed; a regular
 * file, a directory, or a socket some process listens on is an error. Whether a socket is live is read from
 * `/proc/net/unix` rather than by connecting, since a probe connection would take the one connection a live Ferry
 * or QEMU listener accepts. Where `/proc/net/unix` is not readable the socket is taken as stale, as QEMU does.
 */
function removeStaleSocket(path: string, description: string): void {
  let stats: ReturnType<typeof lstatSync>;
  try {
    stats = lstatSync(path);
  } catch {
    return;
  }
  if (!stats.isSocket()) {
    throw new MigrationError("TRANSPORT", `Cannot listen on ${description}: the path exists and is not a socket`);
  }
  if (isListeningUnixPath(path)) {
    throw new MigrationError("TRANSPORT", `Cannot listen on ${description}: another process is listening on it`);
  }
  try {
    unlinkSync(path);
  } catch (error) {
    throw ioError(description, "remove the stale socket of", error);
  }
}

/** `__SO_ACCEPTCON` in the Flags column of `/proc/net/unix`: the socket listens. */
const SO_ACCEPTCON = 0x10000;

/** Whether `/proc/net/unix` lists a listening socket bound to `path` (false when it cannot be read). */
function isListeningUnixPath(path: string): boolean {
  let table: string;
  try {
    table = readFileSync("/proc/net/unix", "utf8");
  } catch {
    return false;
  }
  const wanted = new Set([path, resolvePath(path)]);
  // Num: RefCount Protocol Flags Type St Inode Path
  const row = /^\s*[0-9a-fA-F]+:\s+\S+\s+\S+\s+([0-9a-fA-F]+)\s+\S+\s+\S+\s+\S+\s(.+)$/;
  for (const line of table.split("\n")) {
    const match = row.exec(line);
    if (match === null || match[1] === undefined || match[2] === undefined) continue;
    if ((Number.parseInt(match[1], 16) & SO_ACCEPTCON) !== 0 && wanted.has(match[2])) return true;
  }
  return false;
}

/** exec, file and fd: accept() opens the source. */
class OpenerListener extends BaseListener {
  readonly uri: string;
  readonly address: ListenerAddress | undefined = undefined;
  readonly #open: () => Promise<Channel>;

  constructor(description: string, options: Partial<ListenOptions>, open: () => Promise<Channel>) {
    super(description, options.signal);
    this.uri = description;
    this.#open = open;
  }

  protected override async acceptOne(action: string, options: Partial<AcceptOptions>): Promise<Channel> {
    const opening = this.#open();
    try {
      return await raceCancel(opening, { signal: options.signal, timeoutMs: options.timeoutMs, action });
    } catch (error) {
      // Cancelled or timed out while opening: do not leave a child process or a descriptor behind.
      void opening.then(
        (channel) => channel.abort(),
        () => {},
      );
      throw error;
    }
  }

  protected override closeResources(): Promise<void> {
    return Promise.resolve();
  }
}
