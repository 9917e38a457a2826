/**
 * The migration QMP commands — `migrate`, `migrate-incoming`, `migrate_cancel`, `migrate-continue`,
 * `query-migrate` — and the capability/parameter commands, wired to Ferry's engine and transports.
 *
 * This is the glue between the platform-neutral engine (`migration/`) and the OS (`transport/`), which is why it
 * lives here rather than in `migration/`.
 *
 * @module
 */

import { MigrationError } from "../errors.js";
import { Capabilities } from "../migration/capabilities.js";
import { MigrationDestination } from "../migration/destination.js";
import { MIGRATION_STATUSES, type MigrationEvent, type MigrationInfo } from "../migration/events.js";
import type { MigratableGuest } from "../migration/guest.js";
import { Parameters } from "../migration/parameters.js";
import type { MigrationSettings } from "../migration/settings.js";
import { MigrationSource } from "../migration/source.js";
import { connect } from "../transport/connect.js";
import { type Listener, listen } from "../transport/listen.js";
import { parseUri } from "../transport/uri.js";
import { registerMigrationConfigCommands } from "./migration-config-commands.js";
import { QmpError } from "./qmp-error.js";
import * as s from "./schema.js";
import type { QmpServer } from "./server.js";

/** Builds the engine's settings from QMP capabilities and parameters. */
export function settingsFrom(caps: Capabilities, params: Parameters): MigrationSettings {
  return {
    events: caps.get("events"),
    returnPath: caps.get("return-path"),
    autoConverge: caps.get("auto-converge"),
    pauseBeforeSwitchover: caps.get("pause-before-switchover"),
    maxBandwidth: Number(params.get("max-bandwidth")),
    downtimeLimit: Number(params.get("downtime-limit")),
    throttleTriggerThreshold: Number(params.get("throttle-trigger-threshold")),
    cpuThrottleInitial: Number(params.get("cpu-throttle-initial")),
    cpuThrottleIncrement: Number(params.get("cpu-throttle-increment")),
    cpuThrottleTailslow: Boolean(params.get("cpu-throttle-tailslow")),
    maxCpuThrottle: Number(params.get("max-cpu-throttle")),
  };
}

/** Options of {@link MigrationControl}. */
export interface MigrationControlOptions {
  /** Stay paused after an incoming migration (QEMU's `-S`). */
  readonly paused?: boolean;
  /** Called with every engine event (besides being sent to QMP clients). */
  readonly onEvent?: (e: MigrationEvent) => void;
}

/**
 * One machine's migration state: its capabilities and parameters, the current or last outgoing and incoming
 * migration, and the QMP commands that drive them.
 *
 * @example
 * ```ts
 * const control = new MigrationControl(guest, server);
 * control.register();
 * await control.incoming("tcp:0:4444"); // or QMP migrate-incoming
 * ```
 */
export class MigrationControl {
  readonly caps = new Capabilities();
  readonly params = new Parameters();
  readonly #guest: MigratableGuest;
  readonly #server: QmpServer | undefined;
  readonly #options: MigrationControlOptions;
  #source: MigrationSource | undefined;
  #destination: MigrationDestination | undefined;
  #listener: Listener | undefined;
  #last: "source" | "destination" | undefined;
  #autostart: boolean;

  constructor(guest: MigratableGuest, server: QmpServer | undefined, options: MigrationControlOptions = {}) {
    this.#guest = guest;
    this.#server = server;
    this.#options = options;
    this.#autostart = !(options.paused ?? false);
  }

  /**
   * Whether the guest starts once an incoming migration completes (QEMU's `autostart`): false with `-S`
   * ({@link MigrationControlOptions.paused}); QMP `stop` during the load clears it and `cont` sets it.
   */
  get autostart(): boolean {
    return this.#autostart;
  }

  set autostart(value: boolean) {
    this.#autostart = value;
  }

  /** The engine settings as currently configured. */
  settings(): MigrationSettings {
    return settingsFrom(this.caps, this.params);
  }

  /** The current or last outgoing migration. */
  get source(): MigrationSource | undefined {
    return this.#source;
  }

  /** The current or last incoming migration. */
  get destination(): MigrationDestination | undefined {
    return this.#destination;
  }

  /** Whether a migration (either direction) is in progress. */
  get isActive(): boolean {
    return (this.#source?.isActive ?? false) || (this.#destination?.isActive ?? false);
  }

  #emit = (e: MigrationEvent): void => {
    this.#options.onEvent?.(e);
    const noData = e.event === "STOP" || e.event === "RESUME";
    this.#server?.emit(e.event, noData ? undefined : e.data);
  };

  /**
   * Starts an outgoing migration (QMP `migrate`); returns at once.
   *
   * @throws MigrationError `INVALID_STATE` while another migration runs, `BAD_URI` for a bad URI.
   */
  migrate(uri: string): MigrationSource {
    if (this.isActive) throw new MigrationError("INVALID_STATE", "There's a migration process in progress");
    const parsed = parseUri(uri, "connect");
    const src = new MigrationSource(this.#guest, { settings: () => this.settings(), onEvent: this.#emit });
    this.#source = src;
    this.#last = "source";
    src.start(() => connect(parsed));
    return src;
  }

  /**
   * Starts listening for an incoming migration (QMP `migrate-incoming`, or `--incoming URI`); resolves once the
   * listener is up (the load runs in the background).
   *
   * @returns The listening URI (with the port picked for `tcp:…:0`).
   */
  async incoming(uri: string): Promise<string> {
    if (this.isActive || this.#listener !== undefined) {
      throw new MigrationError("INVALID_STATE", "The incoming migration has already been started");
    }
    if (this.#guest.control.runState() === "running") {
      throw new MigrationError("INVALID_STATE", "Cannot take an incoming migration while the guest runs");
    }
    const listener = await listen(parseUri(uri, "listen"));
    this.#listener = listener;
    const dst = new MigrationDestination(this.#guest, {
      settings: () => this.settings(),
      onEvent: this.#emit,
      paused: () => !this.#autostart,
    });
    this.#destination = dst;
    this.#last = "destination";
    dst.start(() => listener.accept());
    void dst.done.finally(() => {
      void listener.close().catch(() => {});
    });
    return listener.uri;
  }

  /** Cancels the outgoing migration (QMP `migrate_cancel`; a no-op when none runs). */
  cancel(): void {
    this.#source?.cancel();
  }

  /** QMP `query-migrate`. */
  info(): MigrationInfo {
    if (this.#last === "source" && this.#source !== undefined) return this.#source.info();
    if (this.#last === "destination" && this.#destination !== undefined) {
      const info = this.#destination.info();
      const addr = this.#listener?.address;
      if (addr !== undefined && this.#destination.isActive) {
        info["socket-address"] = [
          "port" in addr
            ? { type: "inet", host: addr.host, port: String(addr.port) }
            : { type: "unix", path: addr.path },
        ];
      }
      return info;
    }
    return {};
  }

  /** Registers the migration commands (and the capability/parameter commands) on the QMP server. */
  register(): void {
    const server = this.#server;
    if (server === undefined) throw new TypeError("Cannot register migration commands: no QMP server");
    registerMigrationConfigCommands(server, this.caps, this.params, () => this.isActive);
    server.register("migrate", {
      args: s.object({
        uri: s.str(),
        blk: s.optional(s.bool()),
        inc: s.optional(s.bool()),
        detach: s.optional(s.bool()),
        resume: s.optional(s.bool()),
      }),
      handler: (args) => {
        if (args.blk === true || args.inc === true) {
          throw new QmpError("GenericError", "Block migration is not supported by Ferry");
        }
        if (args.resume === true) throw new QmpError("GenericError", "Postcopy recovery is not supported by Ferry yet");
        this.migrate(args.uri);
        return {};
      },
    });
    server.register("migrate-incoming", {
      args: s.object({ uri: s.str() }),
      handler: async (args) => {
        await this.incoming(args.uri);
        return {};
      },
    });
    server.register("migrate_cancel", {
      args: s.object({}),
      handler: () => {
        this.cancel();
        return {};
      },
    });
    server.register("migrate-continue", {
      args: s.object({ state: s.enumOf(MIGRATION_STATUSES) }),
      handler: (args) => {
        if (this.#source === undefined) {
          throw new QmpError("GenericError", `Migration not in expected state: ${args.state}`);
        }
        this.#source.continueFrom(args.state);
        return {};
      },
    });
    server.register("query-migrate", { args: s.object({}), handler: () => this.info() });
  }

  /** Stops listening and cancels whatever runs (on shutdown). */
  async close(): Promise<void> {
    this.#source?.cancel();
    this.#destination?.cancel();
    await this.#listener?.close().catch(() => {});
  }
}
