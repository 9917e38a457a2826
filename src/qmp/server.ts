/**
 * The QMP server: QEMU's Machine Protocol over unix and loopback tcp sockets.
 *
 * Protocol as in QEMU's `docs/interop/qmp-spec` and checked against qemu-system-x86_64 7.2: on connect the server
 * sends a greeting; the client must send `qmp_capabilities` before anything else (other commands get
 * `CommandNotFound` "Expecting capabilities negotiation with 'qmp_capabilities'"); then
 * `{"execute", "arguments"?, "id"?}` gets `{"return", "id"}` or `{"error": {"class", "desc"}, "id"}`; events
 * `{"event", "data"?, "timestamp"}` go to negotiated clients only. Every line ends with CRLF.
 *
 * Each client has its own negotiation state and runs its commands one at a time, in order (QEMU does the same
 * for in-band commands). Hostile input never crashes the server or wedges a client:
 * - malformed JSON, non-objects, unknown or mistyped top-level members, unknown commands and bad arguments each
 *   get one QMP error reply with QEMU's wording, and the connection goes on;
 * - a message over `maxMessageBytes` (default 1 MiB), nested deeper than `maxDepth` (default 64) or with a raw
 *   control character inside a string gets an error and the rest of its line is dropped, so the next line is
 *   read fresh (see `message-splitter.ts`);
 * - reading is paced by command execution (at most one message buffered beyond the socket's own buffer), and a
 *   client that does not read its replies and events is disconnected once `maxOutputBytes` (default 16 MiB)
 *   are queued for it;
 * - parsed objects have no prototype, so `__proto__` and `constructor` are ordinary, unexpected keys.
 *
 * Security (ARCHITECTURE.md invariant 8: the control socket is not open to other users): a unix socket is bound
 * inside a fresh 0700 directory, chmod-ed to 0600 and only then renamed into place, so no other user can connect
 * at any moment, not even before the chmod; an existing file at the path is replaced only if it is a socket
 * nobody listens on. TCP listeners are refused unless the host is a loopback address; note that any local user
 * can reach a loopback port, so prefer unix sockets outside tests and single-user machines.
 *
 * @module
 */

import { chmod, lstat, mkdtemp, rename, rm } from "node:fs/promises";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { basename, dirname, join } from "node:path";
import type { Duplex } from "node:stream";
import { MigrationError } from "../errors.js";
import { MAX_UNIX_PATH_BYTES } from "../transport/uri.js";
import { formatQmpAddress, isLoopbackHost, parseQmpAddress } from "./address.js";
import { type JsonObject, parseJson, stringifyJson } from "./json.js";
import { MessageSplitter } from "./message-splitter.js";
import { QmpError, toQmpErrorBody } from "./qmp-error.js";
import type { CommandInfo, RunState, StatusInfo, VersionInfo } from "./qmp-types.js";
import {
  array,
  checkArguments,
  enumOf,
  type Fields,
  NO_ARGS,
  type ObjectOutput,
  type ObjectSchema,
  object,
  optional,
} from "./schema.js";
import { FERRY_PACKAGE, QEMU_INTERFACE_VERSION } from "./version.js";

/** The machine behind `query-status`, `stop`, `cont` and `quit`. */
export interface MachineControl {
  /** The current run state (QEMU's `query-status` `status`). */
  runState(): RunState;
  /**
   * Pauses the machine (QMP `stop`). Called whatever the state; QEMU's rules: a running machine pauses, an
   * incoming one (`inmigrate`) just will not start when the migration completes, others are left as they are.
   */
  stop(): void | Promise<void>;
  /**
   * Resumes the machine (QMP `cont`); throw a `MigrationError` or {@link QmpError} to refuse (QEMU: "Migration is
   * not finalized yet", "Resetting the Virtual Machine is required").
   */
  cont(): void | Promise<void>;
  /** Ends the process or machine (QMP `quit`), after the reply was sent. Default: close the QMP server. */
  quit?(): void | Promise<void>;
}

/** Options of {@link QmpServer}. */
export interface QmpServerOptions {
  /** The greeting's and `query-version`'s version. Default: QEMU 7.2.0, package "ferry VERSION" (see `version.ts`). */
  readonly version: VersionInfo;
  /** Largest message in bytes. Default 1 MiB. */
  readonly maxMessageBytes: number;
  /** Deepest JSON nesting. Default 64. */
  readonly maxDepth: number;
  /** Output bytes queued for one client before it is disconnected as not reading. Default 16 MiB. */
  readonly maxOutputBytes: number;
  /** The machine; without one, `query-status`, `stop` and `cont` are not registered and `quit` closes the server. */
  readonly machine: MachineControl | undefined;
}

/** One connected client. */
export interface QmpSession {
  /** A number unique within the server. */
  readonly id: number;
  /** The peer, for messages: `unix` or `HOST:PORT`. */
  readonly peer: string;
  /** Whether `qmp_capabilities` was accepted. */
  readonly negotiated: boolean;
  /** Ends the connection after what was already queued for it. */
  close(): void;
}

/** What a command handler gets besides its arguments. */
export interface CommandContext {
  /** The server. */
  readonly server: QmpServer;
  /** The client that sent the command. */
  readonly session: QmpSession;
  /** Runs `action` once the reply was written (errors in it are ignored). */
  afterReply(action: () => void | Promise<void>): void;
}

/** A command: its argument schema and handler. The handler's result becomes `return` (`undefined` → `{}`). */
export interface CommandDefinition<F extends Fields, R> {
  /** The arguments, checked before the handler runs. */
  readonly args: ObjectSchema<F>;
  /** Runs the command; throw a `MigrationError` or {@link QmpError} to fail it. */
  readonly handler: (args: ObjectOutput<F>, context: CommandContext) => R | Promise<R>;
}

interface RegisteredCommand {
  readonly args: ObjectSchema;
  readonly handler: (args: never, context: CommandContext) => unknown;
}

interface Listening {
  readonly server: Server;
  readonly address: string;
  readonly unixPath?: string;
  readonly unixId?: { readonly dev: number; readonly ino: number };
}

/** Default {@link QmpServerOptions.maxOutputBytes}. */
export const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

const NEGOTIATION_DESC = "Expecting capabilities negotiation with 'qmp_capabilities'";

/**
 * A QMP server. Register commands, then listen on one or more addresses.
 *
 * @example
 * ```ts
 * const server = new QmpServer({ machine });
 * registerMigrationConfigCommands(server, caps, params, () => engine.isActive());
 * const address = await server.listen("unix:/run/ferry/qmp.sock");
 * server.emit("MIGRATION", { status: "setup" });
 * await server.close();
 * ```
 */
export class QmpServer {
  readonly #options: QmpServerOptions;
  readonly #commands = new Map<string, RegisteredCommand>();
  readonly #sessions = new Set<Session>();
  readonly #listening: Listening[] = [];
  #nextSessionId = 1;
  #closed = false;
  #closing: Promise<void> | undefined;

  /**
   * @param options Version, caps and the machine.
   */
  constructor(options: Partial<QmpServerOptions> = {}) {
    this.#options = {
      version: options.version ?? { qemu: { ...QEMU_INTERFACE_VERSION }, package: FERRY_PACKAGE },
      maxMessageBytes: options.maxMessageBytes ?? 1024 * 1024,
      maxDepth: options.maxDepth ?? 64,
      maxOutputBytes: options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
      machine: options.machine,
    };
    this.#registerBuiltins();
  }

  /** The version the greeting and `query-version` report. */
  get version(): VersionInfo {
    return this.#options.version;
  }

  /**
   * Registers a command.
   *
   * @param name The command name, e.g. `"migrate"`.
   * @param definition Its argument schema and handler.
   * @throws {TypeError} When a command of that name exists.
   */
  register<const F extends Fields, R>(name: string, definition: CommandDefinition<F, R>): void {
    if (this.#commands.has(name))
      throw new TypeError(`Cannot register QMP command "${name}": it is already registered`);
    this.#commands.set(name, definition as unknown as RegisteredCommand);
  }

  /**
   * Removes a command.
   *
   * @param name The command name.
   * @returns Whether it was registered.
   */
  unregister(name: string): boolean {
    return this.#commands.delete(name);
  }

  /**
   * The registered command names, in registration order.
   *
   * @returns The names.
   */
  commandNames(): string[] {
    return [...this.#commands.keys()];
  }

  /** The connected clients. */
  get sessions(): readonly QmpSession[] {
    return [...this.#sessions];
  }

  /** The addresses listened on (`unix:PATH`, `tcp:HOST:PORT` with the real port). */
  get addresses(): readonly string[] {
    return this.#listening.map((l) => l.address);
  }

  /**
   * Sends an event to every negotiated client: `{"event", "data", "timestamp"}` (no `data` member when `data` is
   * undefined, as QEMU does for STOP and RESUME).
   *
   * @param event The event name, e.g. `"MIGRATION"`.
   * @param data Its data.
   */
  emit(event: string, data?: Record<string, unknown>): void {
    const message: Record<string, unknown> = { event };
    if (data !== undefined) message.data = data;
    message.timestamp = timestamp();
    const line = `${stringifyJson(message)}\r\n`;
    for (const session of this.#sessions) {
      if (session.negotiated) session.writeLine(line);
    }
  }

  /**
   * Starts listening.
   *
   * @param address `unix:PATH` (socket created with mode 0600) or `tcp:HOST:PORT` on a loopback host (port 0
   *   picks a free port).
   * @returns The address listened on, with the real port.
   * @throws {MigrationError} `BAD_URI` for a malformed or non-loopback address, `TRANSPORT` when the socket cannot
   *   be created or a live server owns the path.
   */
  async listen(address: string): Promise<string> {
    if (this.#closed) throw new MigrationError("INVALID_STATE", "Cannot listen: the QMP server is closed");
    const parsed = parseQmpAddress(address);
    const server = createServer({ allowHalfOpen: false });
    server.on("connection", (socket) => this.handleConnection(socket));
    // accept() failures (EMFILE, ...) arrive as 'error' on a listening server: transient, never fatal.
    server.on("error", () => {});
    if (parsed.kind === "tcp") {
      if (!isLoopbackHost(parsed.host)) {
        throw new MigrationError(
          "BAD_URI",
          `Cannot listen for QMP on ${address}: the control socket must be on a loopback address (127.0.0.0/8, ::1, localhost)`,
        );
      }
      const host = parsed.host === "localhost" ? "127.0.0.1" : parsed.host;
      await listenOn(server, { host, port: parsed.port }, address);
      const bound = server.address();
      const port = typeof bound === "object" && bound !== null ? bound.port : parsed.port;
      return this.#adopt({ server, address: formatQmpAddress({ kind: "tcp", host, port }) });
    }
    const unixId = await listenUnixPrivately(server, parsed.path, address);
    return this.#adopt({ server, address: `unix:${parsed.path}`, unixPath: parsed.path, unixId });
  }

  /** Keeps a new listener, unless close() ran while it was being set up. */
  async #adopt(listening: Listening): Promise<string> {
    if (this.#closed) {
      await new Promise<void>((resolve) => listening.server.close(() => resolve()));
      if (listening.unixPath !== undefined && listening.unixId !== undefined) {
        await removeIfSame(listening.unixPath, listening.unixId);
      }
      throw new MigrationError("INVALID_STATE", `Cannot listen on ${listening.address}: the QMP server was closed`);
    }
    this.#listening.push(listening);
    return listening.address;
  }

  /**
   * Serves one already-connected stream (a socket from elsewhere, one end of a socket pair). Listening servers
   * call this for every connection.
   *
   * @param stream The connection.
   * @returns The session.
   */
  handleConnection(stream: Duplex): QmpSession {
    const socket = stream as Partial<Socket> & Duplex;
    const peer =
      typeof socket.remoteAddress === "string" ? `${socket.remoteAddress}:${String(socket.remotePort)}` : "unix";
    const lookup = (name: string): RegisteredCommand | undefined => this.#commands.get(name);
    const session = new Session(this, lookup, this.#nextSessionId++, peer, stream, this.#options);
    if (this.#closed) {
      stream.destroy();
      return session;
    }
    this.#sessions.add(session);
    void session.run().finally(() => this.#sessions.delete(session));
    return session;
  }

  /**
   * Stops listening, removes unix socket files and ends every connection.
   *
   * @returns Resolves once listeners are closed and clients are gone.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const listeners = this.#listening.splice(0);
    // net.Server.close() calls back only once its connections are gone, so stop accepting first, then end the
    // sessions, then wait.
    const stopped = listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve())));
    await Promise.all(
      listeners.map(async (l) => {
        if (l.unixPath !== undefined && l.unixId !== undefined) await removeIfSame(l.unixPath, l.unixId);
      }),
    );
    await Promise.all([...this.#sessions].map((s) => s.shutdown()));
    await Promise.all(stopped);
  }

  #registerBuiltins(): void {
    this.register("qmp_capabilities", {
      args: object({ enable: optional(array(enumOf(["oob"]))) }),
      handler: ({ enable }, { session }) => {
        const s = session as Session;
        if (s.negotiated) {
          throw new QmpError("CommandNotFound", "Capabilities negotiation is already complete, command ignored");
        }
        // Ferry offers no capability (no out-of-band execution), so any requested one is unavailable.
        if (enable !== undefined && enable.length > 0) {
          throw new QmpError("GenericError", `Capability ${enable.join(", ")} not available`);
        }
        s.markNegotiated();
        return {};
      },
    });
    this.register("query-version", { args: NO_ARGS, handler: (): VersionInfo => this.#options.version });
    this.register("query-commands", {
      args: NO_ARGS,
      handler: (): CommandInfo[] => this.commandNames().map((name) => ({ name })),
    });
    const machine = this.#options.machine;
    if (machine !== undefined) {
      this.register("query-status", {
        args: NO_ARGS,
        handler: (): StatusInfo => {
          const status = machine.runState();
          return { status, singlestep: false, running: status === "running" } as StatusInfo;
        },
      });
      this.register("stop", {
        args: NO_ARGS,
        handler: async () => {
          const before = machine.runState();
          await machine.stop();
          if (before === "running" && machine.runState() !== "running") this.emit("STOP");
          return {};
        },
      });
      this.register("cont", {
        args: NO_ARGS,
        handler: async () => {
          const before = machine.runState();
          await machine.cont();
          if (before !== "running" && machine.runState() === "running") this.emit("RESUME");
          return {};
        },
      });
    }
    this.register("quit", {
      args: NO_ARGS,
      handler: (_args, { session, afterReply }) => {
        this.emit("SHUTDOWN", { guest: false, reason: "host-qmp-quit" });
        afterReply(async () => {
          session.close();
          if (machine?.quit !== undefined) await machine.quit();
          else await this.close();
        });
        return {};
      },
    });
  }
}

/** One client connection. */
class Session implements QmpSession {
  readonly id: number;
  readonly peer: string;
  readonly #server: QmpServer;
  readonly #lookup: (name: string) => RegisteredCommand | undefined;
  readonly #stream: Duplex;
  readonly #options: QmpServerOptions;
  readonly #splitter: MessageSplitter;
  #negotiated = false;
  #ended = false;

  constructor(
    server: QmpServer,
    lookup: (name: string) => RegisteredCommand | undefined,
    id: number,
    peer: string,
    stream: Duplex,
    options: QmpServerOptions,
  ) {
    this.#server = server;
    this.#lookup = lookup;
    this.id = id;
    this.peer = peer;
    this.#stream = stream;
    this.#options = options;
    this.#splitter = new MessageSplitter({ maxMessageBytes: options.maxMessageBytes, maxDepth: options.maxDepth });
    // Errors (ECONNRESET, EPIPE) end the session through the read loop; never let them surface as 'error' crashes.
    stream.on("error", () => {});
  }

  get negotiated(): boolean {
    return this.#negotiated;
  }

  markNegotiated(): void {
    this.#negotiated = true;
  }

  close(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stream.end();
    // A peer that never closes its side must not keep the socket open forever.
    setTimeout(() => this.#stream.destroy(), 2000).unref();
  }

  /** Ends the connection for server shutdown and resolves once it is closed. */
  shutdown(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stream.destroyed) {
        resolve();
        return;
      }
      this.#stream.once("close", () => resolve());
      this.close();
      // Pending output gets a short grace period; then the socket goes.
      setTimeout(() => this.#stream.destroy(), 200).unref();
    });
  }

  /** Queues one line; disconnects a client that has stopped reading. */
  writeLine(line: string): void {
    const stream = this.#stream;
    if (this.#ended || stream.destroyed || !stream.writable) return;
    stream.write(line);
    if (stream.writableLength > this.#options.maxOutputBytes) {
      this.#ended = true;
      stream.destroy();
    }
  }

  #reply(body: Record<string, unknown>, id: { present: boolean; value: unknown }): void {
    if (id.present) body.id = id.value;
    let line: string;
    try {
      line = stringifyJson(body);
    } catch (e) {
      const detail = e instanceof Error ? e.message : String(e);
      const fallback: Record<string, unknown> = {
        error: { class: "GenericError", desc: `Cannot send the reply: ${detail}` },
      };
      if (id.present) fallback.id = id.value;
      line = stringifyJson(fallback);
    }
    this.writeLine(`${line}\r\n`);
  }

  #error(desc: string, id: { present: boolean; value: unknown } = NO_ID, errorClass = "GenericError"): void {
    this.#reply({ error: { class: errorClass, desc } }, id);
  }

  async run(): Promise<void> {
    const greeting = { QMP: { version: this.#options.version, capabilities: [] } };
    this.writeLine(`${stringifyJson(greeting)}\r\n`);
    try {
      for await (const chunk of this.#stream) {
        if (this.#ended) break;
        this.#splitter.push(chunk as Uint8Array);
        for (let item = this.#splitter.next(); item !== undefined; item = this.#splitter.next()) {
          if (item.kind === "error") this.#error(item.desc);
          else await this.#handleMessage(item.text);
          if (this.#ended) return;
          await this.#drained();
        }
      }
    } catch {
      // The peer reset the connection or the server destroyed it: nothing to answer.
      this.#stream.destroy();
    } finally {
      // End gracefully: replies still queued are flushed before the FIN (close() also arms a destroy timer).
      this.close();
    }
  }

  /** Waits while the client has not read what was written (pauses command processing, hence reading). */
  async #drained(): Promise<void> {
    const stream = this.#stream;
    if (!stream.writableNeedDrain || stream.destroyed) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        stream.off("drain", done);
        stream.off("close", done);
        resolve();
      };
      stream.on("drain", done);
      stream.on("close", done);
    });
  }

  async #handleMessage(text: string): Promise<void> {
    let message: unknown;
    try {
      message = parseJson(text, { maxDepth: this.#options.maxDepth, nullPrototype: true });
    } catch (e) {
      this.#error(e instanceof Error ? e.message : String(e));
      return;
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      this.#error("QMP input must be a JSON object");
      return;
    }
    const request = message as JsonObject;
    const id = Object.hasOwn(request, "id") ? { present: true, value: request.id } : NO_ID;
    // QEMU's qmp_dispatch_check_obj(): members in order; the first bad one is reported.
    let execute: string | undefined;
    for (const key of Object.keys(request)) {
      const value = request[key];
      if (key === "execute") {
        if (typeof value !== "string") return this.#error("QMP input member 'execute' must be a string", id);
        execute = value;
      } else if (key === "arguments") {
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
          return this.#error("QMP input member 'arguments' must be an object", id);
        }
      } else if (key !== "id") {
        return this.#error(`QMP input member '${key}' is unexpected`, id);
      }
    }
    if (execute === undefined) return this.#error("QMP input lacks member 'execute'", id);
    if (!this.#negotiated && execute !== "qmp_capabilities") {
      return this.#error(NEGOTIATION_DESC, id, "CommandNotFound");
    }
    const command = this.#lookup(execute);
    if (command === undefined) return this.#error(`The command ${execute} has not been found`, id, "CommandNotFound");
    const after: (() => void | Promise<void>)[] = [];
    const context: CommandContext = {
      server: this.#server,
      session: this,
      afterReply: (action) => {
        after.push(action);
      },
    };
    try {
      const args = checkArguments(command.args, request.arguments);
      const result = await command.handler(args as never, context);
      this.#reply({ return: result === undefined ? {} : result }, id);
    } catch (e) {
      const body = toQmpErrorBody(e);
      this.#error(body.desc, id, body.class);
    }
    for (const action of after) {
      try {
        await action();
      } catch {
        // After the reply there is nobody to tell.
      }
    }
  }
}

const NO_ID = { present: false, value: undefined } as const;

/** The event timestamp: wall-clock seconds and microseconds, as QEMU sends them. */
function timestamp(): { seconds: number; microseconds: number } {
  const ms = performance.timeOrigin + performance.now();
  const seconds = Math.floor(ms / 1000);
  const microseconds = Math.min(999_999, Math.max(0, Math.floor((ms - seconds * 1000) * 1000)));
  return { seconds, microseconds };
}

function listenOn(
  server: Server,
  options: { host?: string; port?: number; path?: string },
  address: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(
        new MigrationError("TRANSPORT", `Cannot listen for QMP on ${address}: ${error.message}`, { cause: error }),
      );
    };
    server.once("error", onError);
    server.listen(options, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/**
 * Binds a unix socket that no other user can ever connect to: bound in a fresh 0700 directory, chmod 0600, then
 * renamed over the target path (atomically replacing a stale socket).
 *
 * @returns The socket file's identity, to remove exactly this file on close.
 */
async function listenUnixPrivately(
  server: Server,
  path: string,
  address: string,
): Promise<{ dev: number; ino: number }> {
  if (Buffer.byteLength(path) > MAX_UNIX_PATH_BYTES) {
    throw new MigrationError(
      "BAD_URI",
      `Cannot listen for QMP on ${address}: the path is longer than ${MAX_UNIX_PATH_BYTES} bytes`,
    );
  }
  await checkTarget(path, address);
  // ".qXXXXXX/s" keeps the temporary path short: it must fit sun_path too.
  const dir = await mkdtemp(join(dirname(path), ".q"));
  const tmp = join(dir, "s");
  if (Buffer.byteLength(tmp) > MAX_UNIX_PATH_BYTES) {
    await rm(dir, { recursive: true, force: true });
    throw new MigrationError(
      "BAD_URI",
      `Cannot listen for QMP on ${address}: the directory path is too long for a socket (limit ${MAX_UNIX_PATH_BYTES} bytes)`,
    );
  }
  try {
    await listenOn(server, { path: tmp }, address);
    try {
      await chmod(tmp, 0o600);
      await rename(tmp, path);
    } catch (e) {
      server.close();
      throw new MigrationError("TRANSPORT", `Cannot listen for QMP on ${address}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const st = await lstat(path);
  return { dev: st.dev, ino: st.ino };
}

/** Refuses a path that holds anything but a stale socket. */
async function checkTarget(path: string, address: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new MigrationError("TRANSPORT", `Cannot listen for QMP on ${address}: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isSocket()) {
    throw new MigrationError(
      "TRANSPORT",
      `Cannot listen for QMP on ${address}: "${basename(path)}" exists and is not a socket`,
    );
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = netConnect({ path });
    const timer = setTimeout(() => {
      probe.destroy();
      resolve(true);
    }, 1000);
    probe.once("connect", () => {
      clearTimeout(timer);
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (live)
    throw new MigrationError("TRANSPORT", `Cannot listen for QMP on ${address}: another server is listening there`);
}

async function removeIfSame(path: string, id: { dev: number; ino: number }): Promise<void> {
  try {
    const st = await lstat(path);
    if (st.dev === id.dev && st.ino === id.ino) await rm(path, { force: true });
  } catch {
    // Already gone.
  }
}
