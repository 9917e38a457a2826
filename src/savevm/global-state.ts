/**
 * The `globalstate` entry (QEMU: `migration/global_state.c`): the source's run state, which decides whether the
 * destination starts the guest.
 *
 * Wire layout (version 1): be32 `size` (strlen + 1), then a 100-byte NUL-padded `runstate` buffer.
 *
 * @module
 */

import { MigrationError } from "../errors.js";
import type { ByteReader } from "../wire/byte-reader.js";
import { decodeText } from "../wire/byte-reader.js";
import type { ByteWriter } from "../wire/byte-writer.js";
import { asciiOrUtf8 } from "../wire/byte-writer.js";
import type { StateHandlers } from "./registry.js";
import type { VmdescValue } from "./vmdesc.js";

/** Size of QEMU's `GlobalState.runstate` buffer. */
export const RUNSTATE_BUFFER_SIZE = 100;

/** QEMU's run state names (`RunState` in qapi/run-state.json, 7.2). */
export const RUN_STATES: readonly string[] = [
  "debug",
  "inmigrate",
  "internal-error",
  "io-error",
  "paused",
  "postmigrate",
  "prelaunch",
  "finish-migrate",
  "restore-vm",
  "running",
  "save-vm",
  "shutdown",
  "suspended",
  "watchdog",
  "guest-panicked",
  "colo",
];

/** Options of {@link globalStateHandlers}. */
export interface GlobalStateOptions {
  /** The run state to send (read at save time), e.g. `running`. */
  readonly runState: () => string;
  /** Called with the received run state after a load. */
  readonly onLoad: (runState: string) => void;
  /**
   * QEMU's `store-global-state` machine property (default true): always send the section. When false it is sent
   * only for states other than running and paused.
   */
  readonly storeGlobalState?: boolean;
}

/** The idstr and version of the globalstate entry. */
export const GLOBAL_STATE_ID = { idstr: "globalstate", version: 1 } as const;

/**
 * Creates the handlers of the `globalstate` entry; register them with `GLOBAL_STATE_ID`.
 */
export function globalStateHandlers(options: GlobalStateOptions): StateHandlers {
  return {
    vmsdName: "globalstate",
    needed(): boolean {
      if (options.storeGlobalState ?? true) return true;
      const s = options.runState();
      return s !== "running" && s !== "paused";
    },
    save(w: ByteWriter, vmdesc: boolean): Record<string, VmdescValue> | undefined {
      const name = asciiOrUtf8(options.runState());
      if (name.length >= RUNSTATE_BUFFER_SIZE) throw new RangeError(`Cannot save run state: name is too long`);
      w.u32(name.length + 1)
        .bytes(name)
        .zeros(RUNSTATE_BUFFER_SIZE - name.length);
      if (!vmdesc) return undefined;
      return {
        vmsd_name: "globalstate",
        version: 1,
        fields: [
          { name: "size", type: "uint32", size: 4 },
          { name: "runstate", type: "buffer", size: RUNSTATE_BUFFER_SIZE },
        ],
      };
    },
    decode(r: ByteReader, versionId: number): string {
      const at = r.offset;
      if (versionId !== 1) {
        throw new MigrationError(
          versionId > 1 ? "VERSION_TOO_NEW" : "VERSION_TOO_OLD",
          `Cannot load globalstate: stream version ${versionId} is not 1`,
          { path: ["globalstate"], offset: at },
        );
      }
      const size = r.u32();
      const buf = r.bytes(RUNSTATE_BUFFER_SIZE);
      const nul = buf.indexOf(0);
      if (nul < 0) {
        throw new MigrationError("FIELD_OUT_OF_RANGE", "Cannot load globalstate: runstate is not NUL-terminated", {
          path: ["globalstate", "runstate"],
          offset: at + 4,
        });
      }
      if (size > RUNSTATE_BUFFER_SIZE) {
        throw new MigrationError(
          "FIELD_OUT_OF_RANGE",
          `Cannot load globalstate: size ${size} is over ${RUNSTATE_BUFFER_SIZE}`,
          { path: ["globalstate", "size"], offset: at },
        );
      }
      const name = decodeText(buf.subarray(0, nul));
      if (!RUN_STATES.includes(name)) {
        throw new MigrationError("FIELD_OUT_OF_RANGE", `Cannot load globalstate: unknown run state "${name}"`, {
          path: ["globalstate", "runstate"],
          offset: at + 4,
        });
      }
      return name;
    },
    apply(decoded: unknown): void {
      options.onLoad(decoded as string);
    },
  };
}

/**
 * The `globalstate` entry of one machine: what to send and what was received.
 *
 * As in QEMU (`global_state_store()` before the source stops its vCPUs), the engine stores the run state it had
 * before stopping, so a running source announces `running` even though it is stopped while the section is
 * written.
 *
 * @example
 * ```ts
 * const gs = new GlobalState(() => control.runState());
 * registry.registerState(GLOBAL_STATE_ID, gs.handlers());
 * ```
 */
export class GlobalState {
  readonly #current: () => string;
  #stored: string | undefined;
  #received: string | undefined;
  readonly #storeGlobalState: boolean;

  /**
   * @param current Reads the machine's current run state.
   * @param storeGlobalState QEMU's `store-global-state` property (default true).
   */
  constructor(current: () => string, storeGlobalState = true) {
    this.#current = current;
    this.#storeGlobalState = storeGlobalState;
  }

  /** Remembers the run state to send (QEMU: `global_state_store`); defaults to the current one. */
  store(runState?: string): void {
    this.#stored = runState ?? this.#current();
  }

  /** Forgets a stored state (after a migration ends) so later snapshots send the current one. */
  clearStored(): void {
    this.#stored = undefined;
  }

  /** The run state received by the last load, or undefined when none arrived. */
  get received(): string | undefined {
    return this.#received;
  }

  /** Forgets what was received (before a new load). */
  resetReceived(): void {
    this.#received = undefined;
  }

  /** The entry's handlers; register them with {@link GLOBAL_STATE_ID}. */
  handlers(): StateHandlers {
    return globalStateHandlers({
      runState: () => this.#stored ?? this.#current(),
      onLoad: (s) => {
        this.#received = s;
      },
      storeGlobalState: this.#storeGlobalState,
    });
  }
}
