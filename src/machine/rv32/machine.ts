/**
 * The `ferry-rv32` machine: one RV32IMA hart, RAM at 0x80000000, a 16550A UART, a CLINT and the SiFive test
 * finisher, laid out as QEMU's RISC-V `virt` machine. This class runs it synchronously in the calling thread with
 * an exact step budget; `VcpuWorker` runs the same machine in a worker thread.
 *
 * Determinism: nothing in a run depends on host time. `mtime` is derived from the hart's virtual cycle count, and
 * interrupts are checked exactly where their inputs can change (after CSR writes, MMIO stores, `mret`, `wfi`,
 * traps, and at the cycle where `mtime` reaches `mtimecmp`), so running N steps at once or in any split, with a
 * state save and restore between, gives the same CPU state and RAM.
 *
 * Platform-neutral: no `node:` imports.
 *
 * @module
 */

import { Bus } from "./bus.js";
import { Clint } from "./clint.js";
import { Cpu } from "./cpu.js";
import { MIP_MTIP } from "./csr.js";
import { checkElfFits, type ElfImage, parseElf } from "./elf.js";
import { buildDeviceTree, deviceTreeAddress } from "./fdt.js";
import { Finisher } from "./finisher.js";
import { DEFAULT_RAM_SIZE, PAGE_SHIFT, RAM_BASE } from "./memory-map.js";
import { checkMachineState, type MachineState } from "./state.js";
import { type RxSource, Uart16550 } from "./uart16550.js";

/** Why {@link Machine.run} returned. */
export const RunExit = {
  /** The step budget is used up. */
  Budget: "budget",
  /** The guest powered the machine off through the test finisher (see {@link Machine.exitCode}). */
  PowerOff: "poweroff",
  /** The hart waits in `wfi` for an interrupt that nothing can raise any more (no timer armed and enabled). */
  Idle: "idle",
} as const;

/** One of the {@link RunExit} values. */
export type RunExit = (typeof RunExit)[keyof typeof RunExit];

/** What the boot loader put in RAM, kept so a guest-requested reset can put it back (QEMU reloads its ROM blobs). */
export interface BootImage {
  /** The entry point: `pc` at reset. */
  readonly entry: number;
  /** The device tree's address, passed in `a1` (0 when RAM is too small to hold one). */
  readonly fdtAddr: number;
  /** Bytes to copy into RAM at reset, with zero-filled tails: the ELF segments, then the device tree. */
  readonly segments: readonly { readonly addr: number; readonly data: Uint8Array; readonly memSize: number }[];
}

/** Options of {@link Machine}. */
export interface MachineOptions {
  /**
   * Guest RAM, mapped at 0x80000000: length a multiple of 4 KiB (at most 2 GiB), byteOffset a multiple of 4. Put it
   * on a `SharedArrayBuffer` (or a shared `WebAssembly.Memory`) to share it with a worker or a migration thread.
   * Default: a new 128 MiB `SharedArrayBuffer`.
   */
  ram?: Uint8Array;
  /** The dirty byte map: one byte per 4 KiB page of `ram`. Default: a new one on a `SharedArrayBuffer`. */
  dirty?: Uint8Array;
  /** Whether guest stores mark `dirty`. Default: true. */
  trackDirty?: boolean;
  /** Virtual CPU cycles per CLINT `mtime` tick (10 MHz timebase). Default: 10 (a 100 MHz virtual CPU). */
  cyclesPerTick?: number;
  /** Receives every byte the guest writes to the UART. Default: discard. */
  onOutput?: (byte: number) => void;
}

/** A FIFO of input bytes for the UART. */
class ByteQueue implements RxSource {
  readonly #chunks: Uint8Array[] = [];
  #pos = 0;

  push(bytes: Uint8Array): void {
    if (bytes.length > 0) this.#chunks.push(bytes.slice());
  }

  take(): number {
    const c = this.#chunks[0];
    if (c === undefined) return -1;
    const b = c[this.#pos++] as number;
    if (this.#pos === c.length) {
      this.#chunks.shift();
      this.#pos = 0;
    }
    return b;
  }

  get length(): number {
    let n = -this.#pos;
    for (const c of this.#chunks) n += c.length;
    return n;
  }
}

/**
 * The `ferry-rv32` machine, run synchronously.
 *
 * @example
 * ```ts
 * const m = new Machine({ onOutput: (b) => process.stdout.write(String.fromCharCode(b)) });
 * m.loadElf(readFileSync("guests/sha.elf"));
 * while (m.run(10_000_000) === RunExit.Budget) {}
 * console.log("exit code", m.exitCode);
 * ```
 */
export class Machine {
  /** Guest RAM. */
  readonly ram: Uint8Array;
  /** The dirty byte map. */
  readonly dirty: Uint8Array;
  /** The hart. */
  readonly cpu: Cpu;
  /** The CLINT. */
  readonly clint: Clint;
  /** The UART. */
  readonly uart: Uart16550;
  /** The test finisher. */
  readonly finisher: Finisher;
  /** What {@link Machine.loadElf} put in RAM, or undefined. A guest reset reloads it. */
  bootImage: BootImage | undefined;
  /** Steps run by the last {@link Machine.run} call. */
  lastRunSteps = 0;
  readonly #input = new ByteQueue();
  #output: (byte: number) => void;

  /** @param options RAM, dirty map and callbacks; see {@link MachineOptions}. */
  constructor(options: MachineOptions = {}) {
    const ram = options.ram ?? new Uint8Array(new SharedArrayBuffer(DEFAULT_RAM_SIZE));
    const dirty = options.dirty ?? new Uint8Array(new SharedArrayBuffer(Math.max(1, ram.byteLength >>> PAGE_SHIFT)));
    this.ram = ram;
    this.dirty = dirty;
    this.#output = options.onOutput ?? (() => {});
    this.finisher = new Finisher();
    this.uart = new Uart16550((b) => this.#output(b));
    let cpu: Cpu | undefined;
    this.clint = new Clint(() => (cpu === undefined ? 0 : cpu.now()), options.cyclesPerTick ?? 10);
    const bus = new Bus({ finisher: this.finisher, clint: this.clint, uart: this.uart });
    cpu = new Cpu({ ram, dirty, trackDirty: options.trackDirty ?? true }, bus);
    this.cpu = cpu;
    cpu.readTime = (cycles) => this.clint.mtimeAt(cycles);
    this.uart.setSource(this.#input);
    this.reset();
  }

  /** RAM size in bytes. */
  get ramSize(): number {
    return this.ram.byteLength;
  }

  /** Whether guest stores mark the dirty map. */
  get trackDirty(): boolean {
    return this.cpu.trackDirty;
  }
  set trackDirty(on: boolean) {
    this.cpu.trackDirty = on;
  }

  /** Replaces the UART output callback. */
  set onOutput(fn: (byte: number) => void) {
    this.#output = fn;
  }

  /** Replaces where the UART's input comes from (default: the queue {@link Machine.pushInput} fills). */
  setInputSource(source: RxSource | undefined): void {
    this.uart.setSource(source ?? this.#input);
  }

  /** Whether the guest powered the machine off. */
  get poweredOff(): boolean {
    return this.finisher.poweredOff !== 0;
  }

  /** The guest's exit status once powered off (0 = pass). */
  get exitCode(): number {
    return this.finisher.exitCode;
  }

  /**
   * Loads an ELF executable and a device tree into RAM and resets the machine to boot it as QEMU's `virt` does
   * with `-bios none -kernel`: `pc` = entry, `a0` = hart id 0, `a1` = the device tree's address. (QEMU's reset
   * vector in ROM also passes `a2`, a pointer to its fw_dynamic info; Ferry has no ROM and passes 0.)
   *
   * @param file The ELF file.
   * @returns What was loaded.
   * @throws MigrationError for a bad or misplaced file (see `parseElf`).
   */
  loadElf(file: Uint8Array): BootImage {
    const image = parseElf(file);
    const boot = makeBootImage(image, this.ramSize);
    this.bootImage = boot;
    this.reset();
    return boot;
  }

  /**
   * Resets the machine as a power cycle does: CPU and devices to reset state and, when an image was loaded, the
   * image copied into RAM again and the hart pointed at it. Other RAM is left as it is. The UART input queue is
   * kept.
   */
  reset(): void {
    const boot = this.bootImage;
    if (boot !== undefined) copyBootImage(boot, this.ram, this.dirty, this.cpu.trackDirty);
    this.cpu.reset(boot?.entry ?? RAM_BASE);
    if (boot !== undefined) {
      this.cpu.x[11] = boot.fdtAddr;
    }
    this.clint.reset();
    this.uart.reset();
    this.finisher.reset();
  }

  /** Queues bytes for the guest to read from the UART. */
  pushInput(bytes: Uint8Array | string): void {
    this.#input.push(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes);
    this.uart.pull();
  }

  /** Input bytes queued and not yet taken by the UART. */
  get pendingInput(): number {
    return this.#input.length;
  }

  /**
   * Runs the guest for exactly `budget` steps (instructions retired or trapped), or until it powers off or idles.
   *
   * @param budget Steps to run (a non-negative integer).
   * @returns Why it returned; {@link Machine.lastRunSteps} has the steps run.
   */
  run(budget: number): RunExit {
    if (!Number.isInteger(budget) || budget < 0) throw new RangeError(`Cannot run: budget ${budget} is not a count`);
    const cpu = this.cpu;
    const clint = this.clint;
    const finisher = this.finisher;
    let left = budget;
    let exit: RunExit = RunExit.Budget;
    while (left > 0) {
      if (finisher.resetRequested) this.reset();
      if (finisher.poweredOff !== 0) {
        exit = RunExit.PowerOff;
        break;
      }
      const mip = clint.mipAt(cpu.cycles);
      cpu.mip = mip;
      if ((mip & cpu.mie) !== 0) {
        cpu.waitingForInterrupt = 0;
        cpu.takeInterrupt();
      } else if (cpu.waitingForInterrupt !== 0) {
        // Nothing pending: skip idle time to the timer deadline, if the timer can wake the hart.
        const deadline = clint.deadline;
        if ((cpu.mie & MIP_MTIP) !== 0 && deadline !== Number.POSITIVE_INFINITY) {
          cpu.cycles = deadline;
          continue;
        }
        exit = RunExit.Idle;
        break;
      }
      let chunk = left;
      const untilTimer = clint.deadline - cpu.cycles;
      if (untilTimer > 0 && untilTimer < chunk) chunk = untilTimer;
      left -= cpu.execute(chunk);
    }
    if (finisher.resetRequested) this.reset();
    if (exit === RunExit.Budget && finisher.poweredOff !== 0) exit = RunExit.PowerOff;
    this.lastRunSteps = budget - left;
    return exit;
  }

  /** Returns the state of the CPU and every device (not RAM) as plain objects. */
  getState(): MachineState {
    const c = this.cpu;
    const x: number[] = [];
    for (let i = 0; i < 32; i++) x.push((c.x[i] as number) >>> 0);
    return {
      cpu: {
        pc: c.pc >>> 0,
        x,
        mstatus: c.mstatus >>> 0,
        mie: c.mie >>> 0,
        mtvec: c.mtvec >>> 0,
        mscratch: c.mscratch >>> 0,
        mepc: c.mepc >>> 0,
        mcause: c.mcause >>> 0,
        mtval: c.mtval >>> 0,
        cycles: c.cycles,
        instret: c.instret,
        mcycleOffsetLo: c.mcycleOffsetLo >>> 0,
        mcycleOffsetHi: c.mcycleOffsetHi >>> 0,
        minstretOffsetLo: c.minstretOffsetLo >>> 0,
        minstretOffsetHi: c.minstretOffsetHi >>> 0,
        reservationValid: c.reservationValid,
        reservationAddr: c.reservationAddr >>> 0,
        reservationValue: c.reservationValue >>> 0,
        waitingForInterrupt: c.waitingForInterrupt,
      },
      clint: this.clint.getState(),
      uart: this.uart.getState(),
      finisher: this.finisher.getState(),
    };
  }

  /**
   * Loads the state of the CPU and every device (RAM is loaded separately).
   *
   * @throws MigrationError `FIELD_OUT_OF_RANGE` for a state the machine cannot hold; nothing is changed then.
   */
  setState(s: MachineState): void {
    checkMachineState(s);
    const c = this.cpu;
    const k = s.cpu;
    c.pc = k.pc | 0;
    for (let i = 0; i < 32; i++) c.x[i] = k.x[i] as number;
    c.mstatus = k.mstatus | 0;
    c.mie = k.mie | 0;
    c.mtvec = k.mtvec | 0;
    c.mscratch = k.mscratch | 0;
    c.mepc = k.mepc | 0;
    c.mcause = k.mcause | 0;
    c.mtval = k.mtval | 0;
    c.cycles = k.cycles;
    c.instret = k.instret;
    c.mcycleOffsetLo = k.mcycleOffsetLo | 0;
    c.mcycleOffsetHi = k.mcycleOffsetHi | 0;
    c.minstretOffsetLo = k.minstretOffsetLo | 0;
    c.minstretOffsetHi = k.minstretOffsetHi | 0;
    c.reservationValid = k.reservationValid;
    c.reservationAddr = k.reservationAddr | 0;
    c.reservationValue = k.reservationValue | 0;
    c.waitingForInterrupt = k.waitingForInterrupt;
    this.clint.setState(s.clint);
    c.mip = this.clint.mipAt(c.cycles);
    this.uart.setState(s.uart);
    this.finisher.setState(s.finisher);
    this.uart.pull();
  }
}

/**
 * Builds the boot image for an ELF: its segments plus the device tree at QEMU's address.
 *
 * @throws MigrationError `FIELD_OUT_OF_RANGE` when a segment or the entry point is outside RAM.
 */
export function makeBootImage(image: ElfImage, ramSize: number): BootImage {
  checkElfFits(image, RAM_BASE, ramSize);
  const segments: { addr: number; data: Uint8Array; memSize: number }[] = image.segments.map((s) => ({
    addr: s.addr,
    data: s.data.slice(),
    memSize: s.memSize,
  }));
  const dtb = buildDeviceTree(ramSize);
  const fdtAddr = deviceTreeAddress(ramSize, dtb.length);
  if (fdtAddr !== undefined) segments.push({ addr: fdtAddr, data: dtb, memSize: dtb.length });
  return { entry: image.entry, fdtAddr: fdtAddr ?? 0, segments };
}

/** Copies a boot image into RAM, zero-filling each segment's tail and marking its pages dirty. */
export function copyBootImage(boot: BootImage, ram: Uint8Array, dirty: Uint8Array, markDirty: boolean): void {
  for (const s of boot.segments) {
    const off = s.addr - RAM_BASE;
    if (off < 0 || off + s.memSize > ram.byteLength) {
      throw new RangeError(`Cannot copy boot image: segment at 0x${s.addr.toString(16)} is outside RAM`);
    }
    ram.set(s.data, off);
    if (s.memSize > s.data.length) ram.fill(0, off + s.data.length, off + s.memSize);
    if (markDirty) dirty.fill(1, off >>> PAGE_SHIFT, ((off + s.memSize - 1) >>> PAGE_SHIFT) + 1);
  }
}
