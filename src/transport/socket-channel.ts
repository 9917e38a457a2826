/**
 * A {@link Channel} over a Node `net.Socket`: TCP and Unix-domain connections, and the pipes of `exec:` children
 * and `fd:` descriptors.
 *
 * QEMU: `QIOChannelSocket` (`io/channel-socket.c`).
 *
 * @module
 */

import { Socket } from "node:net";
import { MigrationError } from "../errors.js";
import { abortError, closedError, directionError, endedError, ioError } from "./_errors.js";
import type { Channel, LendingSource } from "./channel.js";
import { DEFAULT_RING_SLOT_BYTES, MIN_RING_SLOTS, ReceiveRing } from "./receive-ring.js";

/** Options of {@link SocketChannel}. */
export interface SocketChannelOptions {
  /** What the channel is, for messages, e.g. `tcp:127.0.0.1:4444`. Default: `socket`. */
  readonly description: string;
  /** Whether this end reads. Default `true`. */
  readonly canRead: boolean;
  /** Whether this end writes. Default `true`. */
  readonly canWrite: boolean;
  /**
   * Fail with `TIMEOUT` when a `read()` has been waiting this long without any byte arriving. Default: no limit.
   */
  readonly idleTimeoutMs: number | undefined;
  /**
   * Received bytes the channel queues before it stops reading from the socket (the kernel's buffers then push back
   * on the sender); reading resumes when the queue drains to half of this. Default 4 MiB.
   */
  readonly highWaterMark: number | undefined;
  /**
   * The receive ring the socket reads into: the socket must have been created with `onread: ring.onread`
   * ({@link ringForHighWaterMark}, {@link adoptAcceptedSocket}). The channel then lends its chunks
   * ({@link SocketChannel.readLent}) and the ring's size bounds what is buffered (`highWaterMark` is unused).
   * Without a ring the channel reads `'data'` events.
   */
  readonly ring: ReceiveRing | undefined;
}

/** Ring slot size in memory given to {@link SocketChannel.receiveInto}, when it holds enough of them. */
const LARGE_RING_SLOT_BYTES = 1024 * 1024;

/** Default {@link SocketChannelOptions.highWaterMark}: 4 MiB, what a ByteWriter keeps in flight by default (4 × 1 MiB). */
export const DEFAULT_SOCKET_HIGH_WATER_MARK = 4 * 1024 * 1024;

/** A pending `read()` or `end()`. */
interface Waiter {
  readonly resolve: (chunk: Uint8Array | null) => void;
  readonly reject: (error: Error) => void;
}

const resolved = Promise.resolve();

/**
 * A channel over a connected `net.Socket` (TCP, Unix socket or pipe).
 *
 * Reading is pull-based: received chunks wait in a queue for `read()`, and the socket is paused while the queue
 * holds more than `highWaterMark` bytes. `read()` returns `null` after the peer's FIN; a reset, an error, or a
 * close without FIN fails pending and later reads with `TRANSPORT` (chunks that arrived before the failure are
 * still returned first). Each `write()` is one `socket.write(chunk, callback)` and resolves in that callback,
 * i.e. once Node handed the bytes to the kernel; several may be outstanding. `end()` half-closes (the socket must
 * have been made with `allowHalfOpen: true` for the read side to stay open). `abort()` resets TCP connections
 * (RST) so the peer sees an error rather than a clean end of stream.
 *
 * Limits of what a reader can tell (both as in QEMU, whose stream format carries its own end marker for this):
 * - A peer process that dies, or calls plain `destroy()`, sends a FIN, which reads as a clean end of stream.
 * - A reset (RST) that arrives while the peer's data is still being read is reported by libuv as end of stream
 *   (it sees `POLLHUP` after a partial read and never reads the `ECONNRESET`); a reset that arrives while a
 *   `read()` waits on an empty socket fails that read with `TRANSPORT`.
 *
 * `close()` ends the write side, waits until the FIN is queued, then destroys the socket. If bytes from the peer
 * are still unread at that moment, the kernel answers with a reset, which can cost the peer the unsent tail of
 * what was written; a caller that needs delivery confirmed reads the peer's reply (or EOF) before `close()`.
 *
 * The channel owns the socket: it listens for `'error'` itself and destroys the socket on close, abort and failure.
 *
 * @example
 * ```ts
 * const socket = net.connect({ host: "127.0.0.1", port: 4444, allowHalfOpen: true });
 * await once(socket, "connect");
 * const channel = new SocketChannel(socket, { description: "tcp:127.0.0.1:4444" });
 * ```
 */
export class SocketChannel implements Channel, LendingSource {
  readonly description: string;
  readonly canRead: boolean;
  readonly canWrite: boolean;
  readonly #socket: Socket;
  readonly #highWaterMark: number;
  readonly #idleTimeoutMs: number | undefined;
  /** Received chunks from `#head` on. */
  #chunks: Uint8Array[] = [];
  #head = 0;
  #bytes = 0;
  #paused = false;
  /** The peer's FIN arrived. */
  #eof = false;
  #readError: MigrationError | null = null;
  #writeError: MigrationError | null = null;
  #waiters: Waiter[] = [];
  /** Reject functions of writes whose callback has not run yet. */
  readonly #writes = new Set<(error: Error) => void>();
  #ending: Promise<void> | null = null;
  #endWaiter: Waiter | null = null;
  #closing: Promise<void> | null = null;
  /** Set once this side destroyed the socket, so its `'close'` is not taken for a peer failure. */
  #destroyedHere = false;
  #idleTimer: NodeJS.Timeout | null = null;
  readonly #ring: ReceiveRing | undefined;

  /**
   * @param socket A connected socket. The channel takes it over.
   * @param options Description, directions, idle timeout and read high-water mark; see {@link SocketChannelOptions}.
   */
  constructor(socket: Socket, options: Partial<SocketChannelOptions> = {}) {
    this.description = options.description ?? "socket";
    this.canRead = options.canRead ?? true;
    this.canWrite = options.canWrite ?? true;
    this.#highWaterMark = options.highWaterMark ?? DEFAULT_SOCKET_HIGH_WATER_MARK;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    if (!Number.isSafeInteger(this.#highWaterMark) || this.#highWaterMark < 1) {
      throw new RangeError(`Cannot create channel ${this.description}: highWaterMark must be a positive integer`);
    }
    const idle = this.#idleTimeoutMs;
    if (idle !== undefined && !(Number.isFinite(idle) && idle > 0)) {
      throw new RangeError(`Cannot create channel ${this.description}: idleTimeoutMs must be a positive number`);
    }
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on("error", (error) => this.#fail(this.#failure(error)));
    socket.on("close", () => this.#onClose());
    const ring = options.ring;
    this.#ring = ring;
    if (ring !== undefined) {
      ring.attach({
        onLent: (chunk) => this.#onData(chunk),
        onSlotFree: () => {
          if (!socket.destroyed) socket.resume();
        },
      });
    }
    if (this.canRead) {
      if (ring === undefined) socket.on("data", (chunk: Buffer) => this.#onData(chunk));
      socket.on("end", () => this.#onEnd());
    }
  }

  /** How many chunks {@link SocketChannel.readLent} lends at most: the ring's, or 0 without a ring. */
  get lendLimit(): number {
    return this.#ring?.lendLimit ?? 0;
  }

  /**
   * Reads the next chunk. With a receive ring it is a copy (the caller owns it, as the Channel contract says);
   * {@link SocketChannel.readLent} avoids that copy.
   */
  read(): Promise<Uint8Array | null> {
    const ring = this.#ring;
    if (ring === undefined) return this.readLent();
    return this.readLent().then((chunk) => {
      if (chunk === null) return null;
      const copy = chunk.slice();
      ring.release(chunk);
      return copy;
    });
  }

  /**
   * Reads the next chunk without copying it: with a receive ring, a view of a ring slot that stays valid until
   * {@link SocketChannel.release}; without one, a chunk the caller owns (release is then a no-op).
   */
  readLent(): Promise<Uint8Array | null> {
    if (this.#head < this.#chunks.length) return Promise.resolve(this.#shift());
    if (this.#readError !== null) return Promise.reject(this.#readError);
    if (this.#eof) return Promise.resolve(null);
    if (!this.canRead) return Promise.reject(directionError(this.description, "read"));
    this.#armIdleTimer();
    return new Promise<Uint8Array | null>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  /**
   * Moves the receive ring into `memory`: later reads land there, in slots of 1 MiB when `memory` holds at least
   * {@link MIN_RING_SLOTS} of them (fewer reads per GiB: measured a little faster into guest memory than 256 KiB),
   * else of 256 KiB. Chunks already lent stay valid.
   *
   * @returns False when the channel has no ring or `memory` is too small for one (reading goes on as before).
   */
  receiveInto(memory: Uint8Array): boolean {
    if (this.#ring === undefined) return false;
    for (const slot of [LARGE_RING_SLOT_BYTES, DEFAULT_RING_SLOT_BYTES]) {
      if (memory.byteLength >= MIN_RING_SLOTS * slot) {
        this.#ring.useMemory(memory, slot);
        return true;
      }
    }
    return false;
  }

  /** Gives back a chunk {@link SocketChannel.readLent} returned; its ring slot may be read into again. */
  release(chunk: Uint8Array): void {
    // After close/abort the ring forgot its chunks; a late release from a reader that is unwinding is harmless.
    if (this.#ring !== undefined && this.#readError === null) this.#ring.release(chunk);
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.#writeError !== null) return Promise.reject(this.#writeError);
    if (this.#ending !== null) return Promise.reject(endedError(this.description));
    if (!this.canWrite) return Promise.reject(directionError(this.description, "write"));
    if (chunk.byteLength === 0) return resolved;
    return new Promise<void>((resolve, reject) => {
      this.#writes.add(reject);
      this.#socket.write(chunk, (error) => {
        this.#writes.delete(reject);
        if (error === null || error === undefined) resolve();
        else reject(this.#fail(ioError(this.description, "write to", error)).write);
      });
    });
  }

  end(): Promise<void> {
    if (this.#ending !== null) return this.#ending;
    if (this.#writeError !== null) return Promise.reject(this.#writeError);
    if (!this.canWrite) {
      this.#ending = resolved;
      return this.#ending;
    }
    this.#ending = new Promise<void>((resolve, reject) => {
      this.#endWaiter = { resolve: () => resolve(), reject };
      // The callback runs after 'finish' (every write flushed, the FIN sent), or with the error that prevented it.
      this.#socket.end((error?: Error | null) => {
        this.#endWaiter = null;
        if (error === null || error === undefined) resolve();
        else reject(this.#fail(ioError(this.description, "end", error)).write);
      });
    });
    return this.#ending;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const error = closedError(this.description);
    this.#readError = error;
    this.#dropQueue();
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    this.#clearIdleTimer();
    try {
      if (this.canWrite && this.#writeError === null) await this.end();
    } finally {
      this.#writeError ??= error;
      this.#destroy(false);
    }
  }

  abort(reason?: Error): void {
    const error = abortError(this.description, reason);
    this.#readError = error;
    this.#writeError = error;
    this.#dropQueue();
    this.#rejectAll(error, error);
    this.#destroy(true);
  }

  #onData(chunk: Uint8Array): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve(chunk);
      return;
    }
    if (this.#readError !== null) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.byteLength;
    // With a ring, the ring's size bounds what is buffered (it stops the socket when its next slot is lent).
    if (this.#ring === undefined && !this.#paused && this.#bytes > this.#highWaterMark) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  #onEnd(): void {
    this.#eof = true;
    this.#clearIdleTimer();
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(null);
  }

  #onClose(): void {
    this.#clearIdleTimer();
    if (this.#destroyedHere) return;
    const reading = this.canRead && !this.#eof;
    const error = new MigrationError(
      "TRANSPORT",
      reading
        ? `Channel ${this.description} failed: the connection closed before the end of the stream`
        : `Channel ${this.description} failed: the connection closed`,
    );
    this.#fail(error);
  }

  #shift(): Uint8Array {
    const chunk = this.#chunks[this.#head] as Uint8Array;
    this.#head++;
    this.#bytes -= chunk.byteLength;
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    if (this.#paused && this.#bytes <= this.#highWaterMark / 2) {
      this.#paused = false;
      this.#socket.resume();
    }
    return chunk;
  }

  #dropQueue(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#ring?.releaseAll();
  }

  /** Records a failure (the first one wins), fails everything pending and destroys the socket. */
  #fail(error: MigrationError): { read: MigrationError; write: MigrationError } {
    if (!this.#eof) this.#readError ??= error;
    this.#writeError ??= error;
    this.#rejectAll(this.#readError ?? error, this.#writeError);
    this.#destroy(false);
    return { read: this.#readError ?? error, write: this.#writeError };
  }

  #rejectAll(readError: MigrationError, writeError: MigrationError): void {
    this.#clearIdleTimer();
    for (const waiter of this.#waiters.splice(0)) waiter.reject(readError);
    for (const reject of this.#writes) reject(writeError);
    this.#writes.clear();
    const endWaiter = this.#endWaiter;
    this.#endWaiter = null;
    endWaiter?.reject(writeError);
  }

  #failure(error: Error): MigrationError {
    return new MigrationError("TRANSPORT", `Channel ${this.description} failed: ${error.message}`, { cause: error });
  }

  #destroy(reset: boolean): void {
    if (this.#socket.destroyed) return;
    this.#destroyedHere = true;
    if (reset) {
      try {
        // RST instead of FIN, so the peer sees a failure and not a clean (truncated) end of stream. TCP only.
        this.#socket.resetAndDestroy();
      } catch {
        // Not a TCP handle: a plain destroy is the best we can do.
      }
    }
    if (!this.#socket.destroyed) this.#socket.destroy();
  }

  #armIdleTimer(): void {
    const ms = this.#idleTimeoutMs;
    if (ms === undefined) return;
    if (this.#idleTimer === null) {
      this.#idleTimer = setTimeout(() => this.#onIdle(ms), ms);
      this.#idleTimer.unref();
    } else {
      // Cheaper than a new timer per read: restart the countdown from now.
      this.#idleTimer.refresh();
    }
  }

  #onIdle(ms: number): void {
    // Every read that starts waiting restarts the countdown, and data resolves waiting reads, so a waiter here has
    // waited `ms` without a byte arriving.
    if (this.#waiters.length === 0 || this.#eof) return;
    this.#fail(new MigrationError("TIMEOUT", `Channel ${this.description} timed out: no data received for ${ms} ms`));
  }

  #clearIdleTimer(): void {
    if (this.#idleTimer !== null) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = null;
    }
  }
}

/**
 * A receive ring sized for a channel whose read high-water mark is `highWaterMark` (default
 * {@link DEFAULT_SOCKET_HIGH_WATER_MARK}): that many bytes in slots of at most 256 KiB, and at least
 * {@link MIN_RING_SLOTS} slots.
 */
export function ringForHighWaterMark(highWaterMark = DEFAULT_SOCKET_HIGH_WATER_MARK): ReceiveRing {
  if (!(Number.isSafeInteger(highWaterMark) && highWaterMark >= 1)) {
    throw new RangeError(`Cannot make a receive ring: highWaterMark ${highWaterMark} is not a positive integer`);
  }
  const perSlot = Math.floor(highWaterMark / MIN_RING_SLOTS / 4096) * 4096;
  const slotBytes = Math.min(DEFAULT_RING_SLOT_BYTES, Math.max(4096, perSlot));
  const slots = Math.max(MIN_RING_SLOTS, Math.floor(highWaterMark / slotBytes));
  return new ReceiveRing(new Uint8Array(slots * slotBytes), slotBytes);
}

/** The private part of a Node socket that {@link adoptAcceptedSocket} moves. */
interface SocketHandle {
  reading?: boolean;
  readStart?: unknown;
  readStop?: unknown;
  useUserBuffer?: unknown;
}

/**
 * Makes an accepted socket read into `ring`. Node 20's `net.Server` offers no `onread` for the sockets it
 * accepts, so this moves the connection's handle into a new `net.Socket` made with `onread: ring.onread`; the
 * server must have been created with `pauseOnConnect: true`, so no byte was read before the move. The old socket
 * object is destroyed without its handle (the server then no longer counts it).
 *
 * This relies on `socket._handle`, which Node does not document; when it is missing or the socket has started
 * reading, nothing is moved and the result is `undefined` (the caller resumes the socket and reads `'data'`).
 *
 * @returns The new socket, or `undefined` when the handle could not be moved.
 */
export function adoptAcceptedSocket(socket: Socket, ring: ReceiveRing): Socket | undefined {
  return adoptHandle(socket, ring, { allowHalfOpen: true, readable: true, writable: true });
}

/**
 * Makes the stdout pipe of a child process just spawned read into `ring`, as {@link adoptAcceptedSocket} does for
 * an accepted socket. Node starts reading a child's pipes when it makes them, so this stops the read first; call
 * it in the same tick as `spawn()`, before any byte can have been read (it checks that none was).
 *
 * @returns The new read-only socket, or `undefined` when the handle could not be moved (the old socket is then
 *   untouched and reading goes on with `'data'` events).
 */
export function adoptSpawnedPipe(socket: Socket, ring: ReceiveRing): Socket | undefined {
  const handle = (socket as unknown as { _handle: SocketHandle | null })._handle;
  if (
    handle === null ||
    typeof handle !== "object" ||
    typeof handle.readStop !== "function" ||
    typeof handle.readStart !== "function" ||
    typeof handle.useUserBuffer !== "function"
  ) {
    return undefined;
  }
  if (socket.bytesRead !== 0 || socket.readableLength !== 0 || socket.destroyed) return undefined;
  if (handle.reading === true) {
    (handle.readStop as () => number).call(handle);
    handle.reading = false;
  }
  return adoptHandle(socket, ring, { allowHalfOpen: false, readable: true, writable: false });
}

function adoptHandle(
  socket: Socket,
  ring: ReceiveRing,
  flags: { allowHalfOpen: boolean; readable: boolean; writable: boolean },
): Socket | undefined {
  const holder = socket as unknown as { _handle: SocketHandle | null };
  const handle = holder._handle;
  if (
    handle === null ||
    typeof handle !== "object" ||
    typeof handle.readStart !== "function" ||
    typeof handle.useUserBuffer !== "function" ||
    handle.reading === true ||
    socket.destroyed
  ) {
    return undefined;
  }
  holder._handle = null;
  socket.destroy();
  const options = { handle, ...flags, onread: ring.onread };
  return new Socket(options as ConstructorParameters<typeof Socket>[0]);
}
