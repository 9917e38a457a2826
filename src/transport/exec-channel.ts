/**
 * `exec:COMMAND`: a channel to or from a shell command's standard streams.
 *
 * QEMU: `migration/exec.c` and `QIOChannelCommand` (`io/channel-command.c`): the source writes the stream to the
 * command's stdin (its stdout goes to `/dev/null`), the destination reads the command's stdout (its stdin is
 * `/dev/null`).
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { Socket } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { MigrationError } from "../errors.js";
import { deferred } from "./_deferred.js";
import { abortError, directionError } from "./_errors.js";
import type { Channel, LendingSource } from "./channel.js";
import type { ReceiveRing } from "./receive-ring.js";
import { adoptSpawnedPipe, ringForHighWaterMark, SocketChannel } from "./socket-channel.js";
import type { UriSide } from "./uri.js";

/** Options of {@link spawnExecChannel}. */
export interface ExecChannelOptions {
  /** Fail a `read()` with `TIMEOUT` after this long without output. Default: no limit. */
  readonly idleTimeoutMs: number | undefined;
  /** Bytes of the command's output queued before reading pauses. Default 4 MiB. */
  readonly highWaterMark: number | undefined;
  /** The most bytes of the command's stderr kept for error messages (the last ones are kept). Default 64 KiB. */
  readonly stderrLimit: number;
  /** How long `close()` waits for the command to exit after SIGTERM before it sends SIGKILL. Default 2000 ms. */
  readonly killGraceMs: number;
}

/** Default {@link ExecChannelOptions.stderrLimit}: 64 KiB. */
export const DEFAULT_STDERR_LIMIT = 64 * 1024;

/** How a child ended: its exit code, or the signal that killed it. */
interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** How long a failed write waits for the command's exit status before it reports the bare I/O error. */
const EXIT_WAIT_MS = 250;

/**
 * Starts `/bin/sh -c COMMAND` and returns a channel to it: for side `"connect"` (the source) a write-only channel
 * to its stdin, for `"listen"` (the destination) a read-only channel from its stdout.
 *
 * The command's exit status is part of the stream: on the writing side `end()` waits for the command to exit and
 * rejects with `TRANSPORT` if it exited non-zero or was killed; on the reading side the `read()` that would return
 * `null` does the same. A write that fails because the command stopped reading (`EPIPE`) rejects with `TRANSPORT`
 * naming the exit status when it is known. Messages include the end of the command's stderr.
 *
 * `close()` and `abort()` kill the command (SIGTERM, then SIGKILL; `abort()` sends SIGKILL at once) if it is still
 * running. Only the shell itself is signalled, as QEMU does; commands it started exit when their pipes close.
 *
 * @example
 * ```ts
 * const out = await spawnExecChannel("gzip > /tmp/vm.gz", "connect");
 * await out.write(bytes);
 * await out.end(); // rejects if gzip failed
 * ```
 *
 * @param command The shell command.
 * @param side `"connect"` to write to its stdin, `"listen"` to read its stdout.
 * @param options Timeouts and limits; see {@link ExecChannelOptions}.
 * @returns The channel, once the shell was started.
 * @throws {MigrationError} `TRANSPORT` when `/bin/sh` cannot be started.
 */
export async function spawnExecChannel(
  command: string,
  side: UriSide,
  options: Partial<ExecChannelOptions> = {},
): Promise<ExecChannel> {
  const description = `exec:${command}`;
  const child = spawn("/bin/sh", ["-c", command], {
    stdio: side === "connect" ? ["pipe", "ignore", "pipe"] : ["ignore", "pipe", "pipe"],
  });
  // In the same tick as spawn(), before any byte was read: move the stdout pipe into a receive ring.
  let receive: { socket: Socket; ring: ReceiveRing } | undefined;
  if (side === "listen" && child.stdout instanceof Socket) {
    const ring = ringForHighWaterMark(options.highWaterMark);
    const socket = adoptSpawnedPipe(child.stdout, ring);
    if (socket !== undefined) receive = { socket, ring };
  }
  const channel = new ExecChannel(child, side, description, options, receive);
  await channel.started;
  return channel;
}

/**
 * A channel to (`"connect"`) or from (`"listen"`) a child process; see {@link spawnExecChannel}.
 */
export class ExecChannel implements Channel, LendingSource {
  readonly description: string;
  readonly canRead: boolean;
  readonly canWrite: boolean;
  /** The child's process id (undefined if it could not be started). */
  readonly pid: number | undefined;
  /** Settles once the child was started, or rejects with `TRANSPORT` if it could not be. */
  readonly started: Promise<void>;
  readonly #child: ChildProcess;
  readonly #inner: SocketChannel;
  readonly #exit: Promise<ExitStatus>;
  readonly #stderrDone: Promise<void>;
  readonly #stderrLimit: number;
  readonly #killGraceMs: number;
  #stderr: Buffer = Buffer.alloc(0);
  /** Whether the start of stderr was dropped to stay within the limit. */
  #stderrCut = false;
  #status: ExitStatus | null = null;
  /** Set once `close()` or `abort()` ran: later failures are not explained by the exit status. */
  #local: MigrationError | null = null;
  #closing: Promise<void> | null = null;

  /**
   * @param child A child spawned with piped stdin (`"connect"`) or stdout (`"listen"`) and piped stderr.
   * @param side Which stream to use.
   * @param description The channel's description, normally the URI.
   * @param options Timeouts and limits; see {@link ExecChannelOptions}.
   * @param receive The child's stdout already moved into a receive ring ({@link adoptSpawnedPipe}), to read from
   *   instead of `child.stdout`.
   */
  constructor(
    child: ChildProcess,
    side: UriSide,
    description: string,
    options: Partial<ExecChannelOptions> = {},
    receive?: { readonly socket: Socket; readonly ring: ReceiveRing },
  ) {
    this.description = description;
    this.canRead = side === "listen";
    this.canWrite = side === "connect";
    this.pid = child.pid;
    this.#child = child;
    this.#stderrLimit = options.stderrLimit ?? DEFAULT_STDERR_LIMIT;
    this.#killGraceMs = options.killGraceMs ?? 2000;
    const stream = side === "connect" ? child.stdin : child.stdout;
    if (!(stream instanceof Socket)) {
      throw new TypeError(
        `Cannot use ${description}: the child's ${side === "connect" ? "stdin" : "stdout"} is not a pipe`,
      );
    }
    this.#inner = new SocketChannel(receive?.socket ?? stream, {
      description,
      canRead: this.canRead,
      canWrite: this.canWrite,
      idleTimeoutMs: options.idleTimeoutMs,
      highWaterMark: options.highWaterMark,
      ring: receive?.ring,
    });
    const stderr = child.stderr;
    this.#stderrDone = new Promise<void>((resolve) => {
      if (stderr === null) return resolve();
      stderr.on("data", (chunk: Buffer) => this.#addStderr(chunk));
      stderr.on("error", () => resolve());
      stderr.on("close", () => resolve());
    });
    const exit = deferred<ExitStatus>();
    this.#exit = exit.promise;
    child.on("exit", (code, signal) => {
      this.#status = { code, signal };
      exit.resolve(this.#status);
    });
    this.started = new Promise<void>((resolve, reject) => {
      if (child.pid !== undefined) resolve();
      else child.once("spawn", () => resolve());
      child.on("error", (error) => {
        // An 'error' without a pid means the shell never ran; later ones come from kill() and change nothing.
        if (child.pid !== undefined) return;
        const failure = new MigrationError("TRANSPORT", `Cannot start ${description}: ${error.message}`, {
          cause: error,
        });
        this.#status = { code: 127, signal: null };
        exit.resolve(this.#status);
        this.#inner.abort(failure);
        reject(failure);
      });
    });
    // Callers that never await `started` still see the failure through read/write; do not make it unhandled.
    this.started.catch(() => {});
  }

  /** How many chunks {@link ExecChannel.readLent} lends at most (0: the output is read with `'data'` events). */
  get lendLimit(): number {
    return this.canRead ? this.#inner.lendLimit : 0;
  }

  /** Reads the next chunk of the command's output; the caller owns it. */
  async read(): Promise<Uint8Array | null> {
    const chunk = await this.readLent();
    if (chunk === null || this.#inner.lendLimit === 0) return chunk;
    const copy = chunk.slice();
    this.#inner.release(chunk);
    return copy;
  }

  /** Gives back a chunk {@link ExecChannel.readLent} returned. */
  release(chunk: Uint8Array): void {
    this.#inner.release(chunk);
  }

  /** Moves the receive ring into `memory` (see {@link SocketChannel.receiveInto}). */
  receiveInto(memory: Uint8Array): boolean {
    return this.canRead && this.#inner.receiveInto(memory);
  }

  /**
   * Reads the next chunk of the command's output, lent until {@link ExecChannel.release} when the output pipe
   * reads into a receive ring. At the end of the output it fails if the command failed.
   */
  async readLent(): Promise<Uint8Array | null> {
    if (!this.canRead) throw directionError(this.description, "read");
    let chunk: Uint8Array | null;
    try {
      chunk = await this.#inner.readLent();
    } catch (error) {
      throw await this.#explain(error);
    }
    if (chunk !== null) return chunk;
    // End of output: the stream is complete only if the command also succeeded.
    const failure = this.#statusError(await this.#finalStatus());
    if (failure !== null) throw failure;
    return null;
  }

  async write(chunk: Uint8Array): Promise<void> {
    try {
      await this.#inner.write(chunk);
    } catch (error) {
      throw await this.#explain(error);
    }
  }

  async end(): Promise<void> {
    if (!this.canWrite) return;
    try {
      await this.#inner.end();
    } catch (error) {
      throw await this.#explain(error);
    }
    const failure = this.#statusError(await this.#finalStatus());
    if (failure !== null) throw failure;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    try {
      if (this.canWrite && this.#local === null) await this.end();
    } finally {
      this.#local ??= abortError(this.description, undefined);
      const inner = this.#inner.close().catch(() => {});
      if (this.#status === null) {
        this.#child.kill("SIGTERM");
        const exited = await Promise.race([this.#exit, delay(this.#killGraceMs, null, { ref: false })]);
        if (exited === null && this.#status === null) this.#child.kill("SIGKILL");
        await this.#exit;
      }
      await inner;
      this.#child.stderr?.destroy();
    }
  }

  abort(reason?: Error): void {
    const error = abortError(this.description, reason);
    this.#local = error;
    this.#inner.abort(error);
    if (this.#status === null && this.#child.pid !== undefined) this.#child.kill("SIGKILL");
    this.#child.stderr?.destroy();
  }

  /** Waits for the exit, then briefly for the rest of stderr (a grandchild may hold it open). */
  async #finalStatus(): Promise<ExitStatus> {
    const status = await this.#exit;
    await Promise.race([this.#stderrDone, delay(EXIT_WAIT_MS, null, { ref: false })]);
    return status;
  }

  #addStderr(chunk: Buffer): void {
    const limit = this.#stderrLimit;
    const all = this.#stderr.length === 0 ? chunk : Buffer.concat([this.#stderr, chunk]);
    if (all.length > limit) this.#stderrCut = true;
    this.#stderr = all.length > limit ? all.subarray(all.length - limit) : all;
  }

  /** A `TRANSPORT` error for a non-zero exit or a signal, or null for a clean exit. */
  #statusError(status: ExitStatus): MigrationError | null {
    if (status.code === 0) return null;
    const how = status.signal !== null ? `was killed by ${status.signal}` : `exited with status ${status.code}`;
    let stderr = this.#stderr.toString("utf8");
    // After a cut, drop the partial first line and mark the cut.
    if (this.#stderrCut) stderr = `...${stderr.slice(stderr.indexOf("\n") + 1)}`;
    stderr = stderr.trim();
    const tail = stderr === "" ? "" : `: ${stderr}`;
    return new MigrationError("TRANSPORT", `Channel ${this.description} failed: the command ${how}${tail}`);
  }

  /** Turns an I/O failure into the command's exit status when that explains it (e.g. EPIPE after an exit 3). */
  async #explain(error: unknown): Promise<unknown> {
    if (this.#local !== null) return this.#local;
    const exited = await Promise.race([this.#exit, delay(EXIT_WAIT_MS, null, { ref: false })]);
    if (exited === null) return error;
    const failure = this.#statusError(await this.#finalStatus());
    if (failure !== null) return new MigrationError(failure.code, failure.message, { cause: error });
    const detail = error instanceof Error ? error.message : String(error);
    return new MigrationError(
      "TRANSPORT",
      `Channel ${this.description} failed: the command exited before the end of the stream (${detail})`,
      { cause: error },
    );
  }
}
