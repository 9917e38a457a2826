/**
 * A typed QMP client for Ferry and QEMU alike.
 *
 * @module
 */

import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { MigrationError } from "../errors.js";
import { parseQmpAddress } from "./address.js";
import { parseJson, stringifyJson } from "./json.js";
import { MessageSplitter } from "./message-splitter.js";
import { QmpError } from "./qmp-error.js";
import type { QmpCommandMap, QmpEvent, QmpEventMap, QmpGreeting } from "./qmp-types.js";

/** Options of {@link QmpClient.connect}. */
export interface QmpClientOptions {
  /** Limit for connecting, reading the greeting and negotiating, in ms. Default 10000. */
  readonly timeoutMs: number;
  /** Limit for each command's reply, in ms; 0 = none (the default: `migrate` and friends return quickly anyway). */
  readonly commandTimeoutMs: number;
  /** Largest message accepted from the server. Default 64 MiB (QEMU's `query-qmp-schema` is a few hundred KiB). */
  readonly maxMessageBytes: number;
  /** Events kept for {@link QmpClient.waitEvent} that nobody waited for yet; older ones are dropped. Default 1000. */
  readonly maxBufferedEvents: number;
}

const DEFAULTS: QmpClientOptions = {
  timeoutMs: 10_000,
  commandTimeoutMs: 0,
  maxMessageBytes: 64 * 1024 * 1024,
  maxBufferedEvents: 1000,
};

/** Arguments of a typed command: none, optional or required, from {@link QmpCommandMap}. */
export type QmpArgs<K extends keyof QmpCommandMap> = QmpCommandMap[K]["args"] extends undefined
  ? []
  : // biome-ignore lint/complexity/noBannedTypes: "{} extends T" is the test for "every member of T is optional"
    {} extends QmpCommandMap[K]["args"]
    ? [args?: QmpCommandMap[K]["args"]]
    : [args: QmpCommandMap[K]["args"]];

/** The data of a typed event. */
export type QmpEventOf<K extends keyof QmpEventMap> = QmpEvent<QmpEventMap[K]> & { event: K };

interface Pending {
  readonly command: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

interface Waiter {
  readonly name: string;
  readonly predicate: ((e: QmpEvent) => boolean) | undefined;
  resolve(e: QmpEvent): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

type EventListener = (event: QmpEvent) => void;
type CloseListener = (error: Error | undefined) => void;

/**
 * A QMP client: connects, reads the greeting, negotiates, then runs commands and collects events.
 *
 * Replies are matched to commands by `id`. Events go to `on("event")` listeners and into a bounded backlog that
 * {@link QmpClient.waitEvent} reads, so an event that arrives before its reply (QEMU sends STOP before `stop`'s
 * return) is not missed.
 *
 * @example
 * ```ts
 * const qmp = await QmpClient.connect("unix:/run/ferry/qmp.sock");
 * await qmp.execute("migrate-set-capabilities", { capabilities: [{ capability: "events", state: true }] });
 * await qmp.execute("migrate", { uri: "tcp:127.0.0.1:4444" });
 * await qmp.waitEvent("MIGRATION", (e) => e.data?.status === "completed", 60_000);
 * const info = await qmp.execute("query-migrate"); // typed: QmpMigrationInfo
 * await qmp.close();
 * ```
 */
export class QmpClient {
  /** The server's greeting. */
  readonly greeting: QmpGreeting;
  readonly #stream: Duplex;
  readonly #options: QmpClientOptions;
  readonly #splitter: MessageSplitter;
  readonly #pending = new Map<number, Pending>();
  readonly #waiters: Waiter[] = [];
  readonly #backlog: QmpEvent[] = [];
  readonly #eventListeners = new Set<EventListener>();
  readonly #closeListeners = new Set<CloseListener>();
  #nextId = 1;
  #closed = false;
  #closeError: Error | undefined;
  readonly #closedPromise: Promise<void>;

  private constructor(stream: Duplex, splitter: MessageSplitter, greeting: QmpGreeting, options: QmpClientOptions) {
    this.#stream = stream;
    this.#splitter = splitter;
    this.greeting = greeting;
    this.#options = options;
    this.#closedPromise = new Promise((resolve) => stream.once("close", () => resolve()));
  }

  /**
   * Connects, reads the greeting and negotiates capabilities (none are enabled).
   *
   * @param address `unix:PATH` or `tcp:HOST:PORT`.
   * @param options Timeouts and caps.
   * @returns A ready client.
   * @throws {MigrationError} `BAD_URI`, `TRANSPORT` (refused, closed, not a QMP server) or `TIMEOUT`.
   * @throws {QmpError} When the server refuses `qmp_capabilities`.
   */
  static async connect(address: string, options: Partial<QmpClientOptions> = {}): Promise<QmpClient> {
    const parsed = parseQmpAddress(address);
    const socket: Socket =
      parsed.kind === "unix" ? netConnect({ path: parsed.path }) : netConnect({ host: parsed.host, port: parsed.port });
    return QmpClient.attach(socket, options, address);
  }

  /**
   * Runs the client over an already-open stream (a socket pair end, a child's stdio).
   *
   * @param stream The connection.
   * @param options Timeouts and caps.
   * @param description What to call the peer in errors.
   * @returns A ready client.
   */
  static async attach(
    stream: Duplex,
    options: Partial<QmpClientOptions> = {},
    description = "QMP server",
  ): Promise<QmpClient> {
    const opts: QmpClientOptions = { ...DEFAULTS, ...options };
    // Keep one 'error' listener for the stream's whole life, so no error event can ever go unhandled (the phase
    // listeners below come and go).
    stream.on("error", () => {});
    const splitter = new MessageSplitter({ maxMessageBytes: opts.maxMessageBytes, maxDepth: 1024 });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const failure = (error: Error): void => {
      stream.destroy();
      rejectStart(error);
    };
    let rejectStart: (e: Error) => void = () => {};
    const greeting = await new Promise<QmpGreeting>((resolve, reject) => {
      rejectStart = reject;
      timer = setTimeout(
        () =>
          failure(
            new MigrationError("TIMEOUT", `Cannot connect to ${description}: no greeting within ${opts.timeoutMs} ms`),
          ),
        opts.timeoutMs,
      );
      const onError = (error: Error): void =>
        failure(
          new MigrationError("TRANSPORT", `Cannot connect to ${description}: ${error.message}`, { cause: error }),
        );
      const onClose = (): void =>
        failure(new MigrationError("TRANSPORT", `Cannot connect to ${description}: closed before the greeting`));
      const onData = (chunk: Uint8Array): void => {
        splitter.push(chunk);
        const item = splitter.next();
        if (item === undefined) return;
        stream.off("data", onData);
        stream.off("error", onError);
        stream.off("close", onClose);
        stream.pause();
        let value: unknown;
        try {
          if (item.kind === "error") throw new Error(item.desc);
          value = parseJson(item.text, { nullPrototype: false, maxDepth: 1024 });
        } catch (e) {
          failure(
            new MigrationError("TRANSPORT", `Cannot connect to ${description}: bad greeting (${(e as Error).message})`),
          );
          return;
        }
        if (typeof value !== "object" || value === null || !Object.hasOwn(value, "QMP")) {
          failure(
            new MigrationError(
              "TRANSPORT",
              `Cannot connect to ${description}: the first message is not a QMP greeting`,
            ),
          );
          return;
        }
        resolve(value as QmpGreeting);
      };
      stream.on("data", onData);
      stream.on("error", onError);
      stream.on("close", onClose);
    }).finally(() => clearTimeout(timer));
    const client = new QmpClient(stream, splitter, greeting, opts);
    client.#start();
    try {
      await client.#call("qmp_capabilities", undefined, opts.timeoutMs);
    } catch (e) {
      client.#stream.destroy();
      throw e;
    }
    return client;
  }

  /** Whether the connection is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs a command and resolves with its `return` value.
   *
   * @param command A command name.
   * @param args Its arguments.
   * @returns The `return` member of the reply.
   * @throws {QmpError} When the server answers with an error (`errorClass`, `desc`).
   * @throws {MigrationError} `TRANSPORT` when the connection closes first, `TIMEOUT` past `commandTimeoutMs`.
   */
  execute<K extends keyof QmpCommandMap>(command: K, ...args: QmpArgs<K>): Promise<QmpCommandMap[K]["ret"]>;
  /**
   * Runs a command the typed map does not know.
   *
   * @param command A command name.
   * @param args Its arguments.
   * @returns The `return` member of the reply, typed as `T`.
   */
  execute<T = unknown, C extends string = string>(
    command: C extends keyof QmpCommandMap ? never : C,
    args?: Record<string, unknown>,
  ): Promise<T>;
  execute(command: string, args?: unknown): Promise<unknown> {
    return this.#call(command, args, this.#options.commandTimeoutMs);
  }

  /**
   * Adds a listener.
   *
   * @param type `"event"` for every event, `"close"` once the connection is gone (with the error, if any).
   * @param listener The listener.
   * @returns This client.
   */
  on(type: "event", listener: EventListener): this;
  on(type: "close", listener: CloseListener): this;
  on(type: "event" | "close", listener: EventListener | CloseListener): this {
    if (type === "event") this.#eventListeners.add(listener as EventListener);
    else this.#closeListeners.add(listener as CloseListener);
    return this;
  }

  /**
   * Removes a listener.
   *
   * @param type As for {@link QmpClient.on}.
   * @param listener The listener.
   * @returns This client.
   */
  off(type: "event", listener: EventListener): this;
  off(type: "close", listener: CloseListener): this;
  off(type: "event" | "close", listener: EventListener | CloseListener): this {
    if (type === "event") this.#eventListeners.delete(listener as EventListener);
    else this.#closeListeners.delete(listener as CloseListener);
    return this;
  }

  /**
   * Waits for an event: the oldest matching one received and not yet taken by an earlier `waitEvent`, or the next
   * one to arrive. The event is consumed.
   *
   * @param name The event name.
   * @param predicate Further condition on the event.
   * @param timeoutMs How long to wait. Default 30000.
   * @returns The event.
   * @throws {MigrationError} `TIMEOUT`, or `TRANSPORT` when the connection closes first.
   */
  waitEvent<K extends keyof QmpEventMap>(
    name: K,
    predicate?: (e: QmpEventOf<K>) => boolean,
    timeoutMs?: number,
  ): Promise<QmpEventOf<K>>;
  waitEvent(name: string, predicate?: (e: QmpEvent) => boolean, timeoutMs?: number): Promise<QmpEvent>;
  waitEvent(name: string, predicate?: (e: QmpEvent) => boolean, timeoutMs = 30_000): Promise<QmpEvent> {
    const index = this.#backlog.findIndex((e) => e.event === name && (predicate === undefined || predicate(e)));
    if (index >= 0) return Promise.resolve(this.#backlog.splice(index, 1)[0] as QmpEvent);
    if (this.#closed) return Promise.reject(this.#closedError(`waiting for event ${name}`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { name, predicate, resolve, reject, timer: undefined };
      waiter.timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new MigrationError("TIMEOUT", `No ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Drops the events kept for {@link QmpClient.waitEvent}. */
  clearEvents(): void {
    this.#backlog.length = 0;
  }

  /**
   * Closes the connection; pending commands and waits fail with `TRANSPORT`.
   *
   * @returns Resolves once the socket is closed.
   */
  async close(): Promise<void> {
    if (!this.#stream.destroyed) {
      this.#stream.end();
      setTimeout(() => this.#stream.destroy(), 1000).unref();
    }
    await this.#closedPromise;
  }

  #start(): void {
    const stream = this.#stream;
    stream.on("data", (chunk: Uint8Array) => {
      this.#splitter.push(chunk);
      for (let item = this.#splitter.next(); item !== undefined; item = this.#splitter.next()) {
        if (item.kind === "error") {
          this.#fail(new MigrationError("TRANSPORT", `QMP server sent bad data: ${item.desc}`));
          return;
        }
        let message: unknown;
        try {
          message = parseJson(item.text, { nullPrototype: false, maxDepth: 1024 });
        } catch (e) {
          this.#fail(new MigrationError("TRANSPORT", `QMP server sent bad JSON: ${(e as Error).message}`));
          return;
        }
        this.#dispatch(message);
      }
    });
    stream.on("error", (error) =>
      this.#fail(new MigrationError("TRANSPORT", `QMP connection failed: ${error.message}`, { cause: error })),
    );
    stream.on("close", () => this.#fail(undefined));
    stream.resume();
    // Anything that arrived together with the greeting.
    for (let item = this.#splitter.next(); item !== undefined; item = this.#splitter.next()) {
      try {
        if (item.kind === "error") throw new Error(item.desc);
        this.#dispatch(parseJson(item.text, { nullPrototype: false, maxDepth: 1024 }));
      } catch (e) {
        this.#fail(new MigrationError("TRANSPORT", `QMP server sent bad data: ${(e as Error).message}`));
        return;
      }
    }
  }

  #dispatch(message: unknown): void {
    if (typeof message !== "object" || message === null || Array.isArray(message)) return;
    const m = message as Record<string, unknown>;
    if (typeof m.event === "string") {
      this.#onEvent(m as unknown as QmpEvent);
      return;
    }
    if (typeof m.id !== "number") return; // not ours (we always send numeric ids)
    const pending = this.#pending.get(m.id);
    if (pending === undefined) return;
    this.#pending.delete(m.id);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    if (Object.hasOwn(m, "return")) {
      pending.resolve(m.return);
    } else if (typeof m.error === "object" && m.error !== null) {
      const error = m.error as { class?: unknown; desc?: unknown };
      pending.reject(new QmpError(String(error.class ?? "GenericError"), String(error.desc ?? "")));
    } else {
      pending.reject(new MigrationError("TRANSPORT", `QMP reply to ${pending.command} has neither return nor error`));
    }
  }

  #onEvent(event: QmpEvent): void {
    for (const listener of this.#eventListeners) {
      try {
        listener(event);
      } catch {
        // A listener's bug must not break the connection.
      }
    }
    const index = this.#waiters.findIndex(
      (w) => w.name === event.event && (w.predicate === undefined || w.predicate(event)),
    );
    if (index >= 0) {
      const [waiter] = this.#waiters.splice(index, 1);
      if (waiter !== undefined) {
        if (waiter.timer !== undefined) clearTimeout(waiter.timer);
        waiter.resolve(event);
      }
      return;
    }
    this.#backlog.push(event);
    if (this.#backlog.length > this.#options.maxBufferedEvents) this.#backlog.shift();
  }

  #call(command: string, args: unknown, timeoutMs: number): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closedError(`running ${command}`));
    const id = this.#nextId++;
    const request: Record<string, unknown> = { execute: command };
    if (args !== undefined) request.arguments = args;
    request.id = id;
    let line: string;
    try {
      line = `${stringifyJson(request)}\r\n`;
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const pending: Pending = { command, resolve, reject, timer: undefined };
      if (timeoutMs > 0) {
        pending.timer = setTimeout(() => {
          this.#pending.delete(id);
          reject(new MigrationError("TIMEOUT", `QMP command ${command} got no reply within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.#pending.set(id, pending);
      this.#stream.write(line);
    });
  }

  #closedError(action: string): MigrationError {
    const detail = this.#closeError === undefined ? "" : `: ${this.#closeError.message}`;
    return new MigrationError("TRANSPORT", `Cannot finish ${action}: the QMP connection is closed${detail}`, {
      cause: this.#closeError,
    });
  }

  #fail(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    if (!this.#stream.destroyed) this.#stream.destroy();
    for (const [, pending] of this.#pending) {
      if (pending.timer !== undefined) clearTimeout(pending.timer);
      pending.reject(this.#closedError(`running ${pending.command}`));
    }
    this.#pending.clear();
    for (const waiter of this.#waiters.splice(0)) {
      if (waiter.timer !== undefined) clearTimeout(waiter.timer);
      waiter.reject(this.#closedError(`waiting for event ${waiter.name}`));
    }
    for (const listener of this.#closeListeners) {
      try {
        listener(error);
      } catch {
        // Ignore listener bugs.
      }
    }
  }
}
