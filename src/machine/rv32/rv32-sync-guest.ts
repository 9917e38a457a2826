/**
 * {@link Rv32SyncGuest}: the in-thread, deterministic `ferry-rv32` {@link Machine} as a {@link MigratableGuest}, for
 * exact-equivalence tests of snapshots and live migration. "Running" means the event loop runs slices of a fixed
 * number of steps (up to an optional step limit), so a migration can interleave with the guest in one thread.
 *
 * @module
 */

import type { GuestControl, MigratableGuest, RunState } from "../../migration/guest.js";
import { RamBlock } from "../../ram/ram-block.js";
import { RamDevice } from "../../ram/ram-device.js";
import type { MachineConfig } from "../../savevm/config.js";
import { GLOBAL_STATE_ID, GlobalState } from "../../savevm/global-state.js";
import { Registry } from "../../savevm/registry.js";
import { Machine, RunExit } from "./machine.js";
import { RV32_RAM_IDSTR } from "./rv32-machine.js";
import { createRv32Devices, type Rv32DeviceSet } from "./vmstate.js";

/** Options of {@link Rv32SyncGuest}. */
export interface Rv32SyncGuestOptions {
  /** Machine type (default `ferry-rv32-1.1`); ignored when `devices` is given. */
  readonly machineType?: string;
  /** The device descriptions; default the current ones under `machineType`. */
  readonly devices?: Rv32DeviceSet;
  /** RAM size in bytes (default 16 MiB). */
  readonly memory?: number;
  /** An ELF to boot. */
  readonly elf?: Uint8Array;
  /** Steps per slice while running (default 20 000). */
  readonly slice?: number;
  /** Stop running (stay `running`, idle) after this many steps in total since construction. Default: no limit. */
  readonly stepLimit?: number;
  /** Receives UART output. */
  readonly onOutput?: (byte: number) => void;
}

/** The deterministic machine as a migratable guest. */
export class Rv32SyncGuest implements MigratableGuest {
  readonly registry = new Registry();
  readonly config: MachineConfig;
  readonly globalState: GlobalState;
  readonly control: GuestControl;
  readonly block: RamBlock;
  readonly machine: Machine;
  readonly devices: Rv32DeviceSet;
  /** Steps run through `control` (the event-loop slices) so far. */
  steps = 0;
  #runState: RunState = "prelaunch";
  #timer: ReturnType<typeof setImmediate> | undefined;
  readonly #slice: number;
  readonly #limit: number;

  constructor(options: Rv32SyncGuestOptions = {}) {
    this.devices = options.devices ?? createRv32Devices(options.machineType);
    this.config = { machineType: this.devices.machineType };
    this.block = new RamBlock(RV32_RAM_IDSTR, options.memory ?? 16 << 20);
    this.machine = new Machine({
      ram: this.block.bytes,
      dirty: this.block.dirty,
      ...(options.onOutput === undefined ? {} : { onOutput: options.onOutput }),
    });
    if (options.elf !== undefined) this.machine.loadElf(options.elf);
    this.#slice = options.slice ?? 20_000;
    this.#limit = options.stepLimit ?? Number.POSITIVE_INFINITY;
    this.registry.registerIterative(new RamDevice([this.block]));
    this.devices.register(this.registry);
    this.globalState = new GlobalState(() => this.#runState);
    this.registry.registerState(GLOBAL_STATE_ID, this.globalState.handlers());
    this.capture();
    const self = this;
    this.control = {
      runState: () => self.#runState,
      async stop(next) {
        if (self.#timer !== undefined) clearImmediate(self.#timer);
        self.#timer = undefined;
        if (self.#runState === "running") self.capture();
        self.#runState = next;
      },
      async cont() {
        if (self.#runState !== "running") self.restore();
        self.#runState = "running";
        self.#schedule();
      },
      setRunState(s) {
        self.#runState = s;
      },
      setThrottle() {},
    };
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.steps >= this.#limit) return;
    this.#timer = setImmediate(() => {
      this.#timer = undefined;
      if (this.#runState !== "running") return;
      const exit = this.run(Math.min(this.#slice, this.#limit - this.steps));
      if (exit === RunExit.Budget) this.#schedule();
    });
  }

  /** Runs `budget` steps now (counted in {@link Rv32SyncGuest.steps}). */
  run(budget: number): RunExit {
    const exit = this.machine.run(budget);
    this.steps += this.machine.lastRunSteps;
    return exit;
  }

  /** Copies the machine's state into the vmstate objects. */
  capture(): void {
    this.devices.capture(this.machine.getState());
  }

  /** Loads the vmstate objects into the machine. */
  restore(): void {
    this.machine.setState(this.devices.restore());
  }
}
