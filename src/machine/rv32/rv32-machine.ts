/**
 * {@link Rv32Machine}: the `ferry-rv32` machine as a {@link MigratableGuest}: its RAM in one `ram/` RAM block, its
 * vCPU in a worker thread ({@link VcpuWorker}), its devices described with vmstate/ and registered, with
 * `globalstate`, in a savevm registry.
 *
 * State flow: the vCPU owns the live CPU and device state. `stop` parks it and copies its state into the vmstate
 * objects (what saving reads); `cont` pushes the vmstate objects back into the vCPU when they differ from what
 * was copied out (after an incoming migration or snapshot load), then resumes. So stop → save → cont changes
 * nothing, and a load fully decides the next run.
 *
 * @module
 */

import type { GuestControl, MigratableGuest, RunState } from "../../migration/guest.js";
import { DEFAULT_IO_MEMORY_BYTES, RamBlock } from "../../ram/ram-block.js";
import { RamDevice } from "../../ram/ram-device.js";
import type { MachineConfig } from "../../savevm/config.js";
import { GLOBAL_STATE_ID, GlobalState } from "../../savevm/global-state.js";
import { Registry } from "../../savevm/registry.js";
import { DEFAULT_RAM_SIZE, PAGE_SIZE, RAM_BASE } from "./memory-map.js";
import { encodeMachineState, MACHINE_STATE_WORDS, type MachineState } from "./state.js";
import { VcpuWorker } from "./vcpu-worker.js";
import { createRv32Devices, type Rv32DeviceSet } from "./vmstate.js";

/** The RAM block's idstr, as QEMU's RISC-V `virt` machine names it. */
export const RV32_RAM_IDSTR = "riscv_virt_board.ram";

/** Options of {@link Rv32Machine}. */
export interface Rv32MachineOptions {
  /** `ferry-rv32` (newest), `ferry-rv32-1.1` or `ferry-rv32-1.0`. Default `ferry-rv32-1.1`. */
  readonly machineType?: string;
  /** RAM size in bytes: a multiple of 4 KiB, at most 2 GiB. Default 128 MiB. */
  readonly memory?: number;
  /** The ELF to boot (also reloaded on a guest reset). Without it the machine waits for an incoming state. */
  readonly elf?: Uint8Array;
  /** The device descriptions (default: the current ones under `machineType`); the compat tests pass frozen ones. */
  readonly devices?: Rv32DeviceSet;
  /** Virtual cycles per `mtime` tick. Default 10. */
  readonly cyclesPerTick?: number;
  /** Receives the guest's UART output. */
  readonly onOutput?: (bytes: Uint8Array) => void;
  /** Called when the guest powers off through the test finisher. */
  readonly onPowerOff?: (exitCode: number) => void;
  /** Called if the vCPU thread fails. */
  readonly onError?: (error: Error) => void;
}

/**
 * The `ferry-rv32` machine, migratable.
 *
 * @example
 * ```ts
 * const m = new Rv32Machine({ elf: readFileSync("guests/dirty.elf"), onOutput: (b) => process.stdout.write(b) });
 * await m.start();               // parked in `prelaunch`
 * await m.control.cont();        // running
 * const src = new MigrationSource(m, { settings: () => settings });
 * src.start(() => connect("tcp:127.0.0.1:4444"));
 * ```
 */
export class Rv32Machine implements MigratableGuest {
  readonly registry = new Registry();
  readonly config: MachineConfig;
  readonly globalState: GlobalState;
  readonly control: GuestControl;
  /** The RAM block (`riscv_virt_board.ram`). */
  readonly block: RamBlock;
  /** Migration I/O memory after the RAM block: outgoing staging, or the incoming socket's receive ring. */
  readonly ioMemory: Uint8Array | undefined;
  /** The iterative `ram` entry. */
  readonly ram: RamDevice;
  /** The devices' vmstate objects. */
  readonly devices: Rv32DeviceSet;
  /** The vCPU thread. */
  readonly vcpu: VcpuWorker;
  #runState: RunState = "prelaunch";
  #started = false;
  /** The machine state last copied out of (or pushed into) the vCPU, as state words. */
  readonly #synced = new Int32Array(MACHINE_STATE_WORDS);
  readonly #scratch = new Int32Array(MACHINE_STATE_WORDS);

  /** @throws MigrationError for a bad ELF or machine type; RangeError for a bad memory size. */
  constructor(options: Rv32MachineOptions = {}) {
    const size = options.memory ?? DEFAULT_RAM_SIZE;
    if (!(Number.isSafeInteger(size) && size > 0 && size % PAGE_SIZE === 0 && size <= 0x8000_0000)) {
      throw new RangeError(`Cannot create ferry-rv32: memory ${size} is not a multiple of 4 KiB in (0, 2 GiB]`);
    }
    this.devices = options.devices ?? createRv32Devices(options.machineType);
    this.config = { machineType: this.devices.machineType };
    this.block = new RamBlock(RV32_RAM_IDSTR, size, { ioMemoryBytes: DEFAULT_IO_MEMORY_BYTES });
    this.ioMemory = this.block.ioMemory;
    this.ram = new RamDevice([this.block]);
    this.registry.registerIterative(this.ram);
    this.devices.register(this.registry);
    this.globalState = new GlobalState(() => this.#runState);
    this.registry.registerState(GLOBAL_STATE_ID, this.globalState.handlers());
    this.vcpu = new VcpuWorker({
      ram: this.block.bytes,
      dirty: this.block.dirty,
      elf: options.elf,
      paused: true,
      cyclesPerTick: options.cyclesPerTick,
      onOutput: options.onOutput,
      onPowerOff: options.onPowerOff,
      onError: options.onError,
    });
    this.#syncFromVcpu();
    const self = this;
    this.control = {
      runState: () => self.#runState,
      async stop(next: RunState) {
        if (self.#runState === "running") {
          await self.vcpu.stop();
          self.#syncFromVcpu();
        }
        self.#runState = next;
      },
      async cont() {
        if (!self.#started) await self.start();
        self.#pushIfChanged();
        if (self.#runState !== "running") self.vcpu.cont();
        self.#runState = "running";
      },
      setRunState(s: RunState) {
        self.#runState = s;
      },
      setThrottle(pct: number) {
        self.vcpu.setThrottle(Math.min(99, Math.max(0, Math.round(pct))));
      },
    };
  }

  /** Spawns the vCPU thread, parked (run state unchanged; `control.cont()` runs it). */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.vcpu.start();
  }

  /** RAM size in bytes. */
  get memorySize(): number {
    return this.block.size;
  }

  /** Copies the parked vCPU's state into the vmstate objects. */
  #syncFromVcpu(): void {
    const s = this.vcpu.getState();
    this.devices.capture(s);
    encodeMachineState(s, this.#synced);
  }

  /** Pushes the vmstate objects into the parked vCPU when they differ from what it holds. */
  #pushIfChanged(): void {
    const s: MachineState = this.devices.restore();
    encodeMachineState(s, this.#scratch);
    let same = true;
    for (let i = 0; i < MACHINE_STATE_WORDS; i++) {
      if (this.#scratch[i] !== this.#synced[i]) {
        same = false;
        break;
      }
    }
    if (same) return;
    this.vcpu.setState(s);
    this.#synced.set(this.#scratch);
  }

  /** The machine state as the vmstate objects hold it (what a save would send). */
  savedState(): MachineState {
    return this.devices.restore();
  }

  /** Sends bytes to the guest's UART. */
  pushInput(bytes: Uint8Array | string): void {
    this.vcpu.pushInput(bytes);
  }

  /**
   * Copies guest-physical memory (QMP `pmemsave`'s source). Only RAM is readable.
   *
   * @throws RangeError when `[addr, addr + size)` is not inside RAM.
   */
  readPhysical(addr: number, size: number): Uint8Array {
    const off = addr - RAM_BASE;
    if (
      !(
        Number.isSafeInteger(off) &&
        Number.isSafeInteger(size) &&
        off >= 0 &&
        size >= 0 &&
        off + size <= this.block.size
      )
    ) {
      throw new RangeError(
        `Cannot read guest memory at 0x${addr.toString(16)}+${size}: RAM is 0x${RAM_BASE.toString(16)}+${this.block.size}`,
      );
    }
    return this.block.bytes.subarray(off, off + size);
  }

  /** Stops the vCPU thread for good. */
  async dispose(): Promise<void> {
    await this.vcpu.terminate();
    this.#runState = "shutdown";
  }
}
