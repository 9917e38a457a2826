/**
 * The `ferry-rv32` machine's device state described with vmstate/ (the current descriptions, Ferry 1.1), the
 * machine types `ferry-rv32-1.0` and `ferry-rv32-1.1` with their compat properties, and {@link Rv32DeviceSet}: the
 * vmstate state objects of one machine, mapped from and to the plain {@link MachineState} objects of `state.ts`.
 *
 * Wire sections (idstr = description name, instance 0):
 * - `cpu` v2 (min 1): pc, x1–x31, the M-mode CSRs, cycle/instret counters and offsets, and, since v2, the `wfi`
 *   stall flag. Subsection `cpu/reservation` (new in 1.1): the LR reservation, sent only while one is held and
 *   the machine type's `migrate-reservation` compat property is on (QEMU style: `needed` checks the property).
 * - `clint` v1: msip, mtimecmp, the guest's mtime offset.
 * - `uart` v1: the 16550A registers and the pending THR-empty interrupt. Subsection `uart/rx-fifo`: the bytes in
 *   the receive FIFO, sent only when there are some.
 * - `finisher` v1: whether the guest powered off, and its exit code.
 *
 * The frozen 1.0 descriptions live in `_frozen-1.0.ts` (the compat tests' fixture; never edit it).
 *
 * @module
 */

import { MigrationError } from "../../errors.js";
import { registerDevice } from "../../savevm/device-entry.js";
import type { Registry } from "../../savevm/registry.js";
import * as vm from "../../vmstate/index.js";
import type { ClintState } from "./clint.js";
import type { FinisherState } from "./finisher.js";
import { type CpuState, checkMachineState, type MachineState } from "./state.js";
import { UART_FIFO_LENGTH, type UartState } from "./uart16550.js";

/** Machine type names, newest first; `ferry-rv32` is an alias of the newest. */
export const RV32_MACHINE_TYPES = ["ferry-rv32-1.1", "ferry-rv32-1.0"] as const;

/** One of {@link RV32_MACHINE_TYPES}. */
export type Rv32MachineTypeName = (typeof RV32_MACHINE_TYPES)[number];

/** A machine type: its name and compat properties (QEMU: `hw_compat_*` / `GlobalProperty`). */
export interface Rv32MachineType {
  /** The canonical name sent in the stream's configuration section. */
  readonly name: Rv32MachineTypeName;
  /** `cpu.migrate-reservation`: send the `cpu/reservation` subsection (off under `ferry-rv32-1.0`). */
  readonly migrateReservation: boolean;
}

const MACHINE_TYPES: Readonly<Record<Rv32MachineTypeName, Rv32MachineType>> = {
  "ferry-rv32-1.1": { name: "ferry-rv32-1.1", migrateReservation: true },
  "ferry-rv32-1.0": { name: "ferry-rv32-1.0", migrateReservation: false },
};

/**
 * Looks up a machine type by name (`ferry-rv32` means the newest).
 *
 * @throws MigrationError `INVALID_STATE` for an unknown name.
 */
export function rv32MachineType(name: string): Rv32MachineType {
  const canonical = name === "ferry-rv32" ? RV32_MACHINE_TYPES[0] : name;
  const t = Object.hasOwn(MACHINE_TYPES, canonical) ? MACHINE_TYPES[canonical as Rv32MachineTypeName] : undefined;
  if (t === undefined) {
    throw new MigrationError(
      "INVALID_STATE",
      `Unknown machine type "${name}": expected ferry-rv32, ${RV32_MACHINE_TYPES.join(", ")}`,
    );
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------------------
// Descriptions

/** The hart. QEMU's counterpart: `vmstate_riscv_cpu` (`cpu`, `cpu/pmp`, …). */
export const cpuDevice = vm.device("cpu", {
  version: 2,
  minVersion: 1,
  fields: {
    /** Compat property, not on the wire: whether `cpu/reservation` may be sent. */
    migrateReservation: vm.local(vm.u8()),
    pc: vm.u32(),
    x: vm.array(vm.u32(), 31, { name: "gpr" }),
    mstatus: vm.u32(),
    mie: vm.u32(),
    mtvec: vm.u32(),
    mscratch: vm.u32(),
    mepc: vm.u32(),
    mcause: vm.u32(),
    mtval: vm.u32(),
    cycles: vm.u64(),
    instret: vm.u64(),
    mcycleOffset: vm.u64({ name: "mcycle_offset" }),
    minstretOffset: vm.u64({ name: "minstret_offset" }),
    waitingForInterrupt: vm.u8({ since: 2, name: "wfi" }),
  },
  subsections: {
    reservation: {
      name: "cpu/reservation",
      version: 1,
      fields: { valid: vm.u8(), addr: vm.u32({ name: "load_res" }), value: vm.u32({ name: "load_val" }) },
      needed: (s) => s.migrateReservation !== 0 && s.reservation.valid !== 0,
    },
  },
  preLoad(s) {
    // A stream without the subsection means "no reservation" (an SC then fails, which the ISA allows).
    s.reservation.valid = 0;
    s.reservation.addr = 0;
    s.reservation.value = 0;
    s.waitingForInterrupt = 0;
  },
  postLoad(s) {
    checkMachineState({ ...PLACEHOLDER, cpu: cpuFromWire(s) });
  },
});

/** The CLINT. */
export const clintDevice = vm.device("clint", {
  version: 1,
  fields: {
    msip: vm.u8(),
    mtimecmp: vm.u64(),
    mtimeOffset: vm.u64({ name: "mtime_offset" }),
  },
  postLoad(s) {
    checkMachineState({ ...PLACEHOLDER, clint: clintFromWire(s) });
  },
});

/** The 16550A UART. Field names follow QEMU's `vmstate_serial`. */
export const uartDevice = vm.device("uart", {
  version: 1,
  fields: {
    /** The interrupt line's level: derived from the registers, not sent. */
    irq: vm.local(vm.u8()),
    divider: vm.u16(),
    rbr: vm.u8(),
    ier: vm.u8(),
    iir: vm.u8(),
    lcr: vm.u8(),
    mcr: vm.u8(),
    lsr: vm.u8(),
    msr: vm.u8(),
    scr: vm.u8(),
    fcr: vm.u8({ name: "fcr_vmstate" }),
    thrIpending: vm.u8({ name: "thr_ipending" }),
  },
  subsections: {
    rxFifo: {
      name: "uart/rx-fifo",
      version: 1,
      fields: { count: vm.u8({ name: "num" }), data: vm.vbuffer("count", { max: UART_FIFO_LENGTH, name: "data" }) },
      needed: (s) => s.rxFifo.count > 0,
    },
  },
  preLoad(s) {
    s.rxFifo.count = 0;
    s.rxFifo.data = new Uint8Array(0);
  },
  postLoad(s) {
    checkMachineState({ ...PLACEHOLDER, uart: uartFromWire(s) });
  },
});

/** The SiFive test finisher. */
export const finisherDevice = vm.device("finisher", {
  version: 1,
  fields: { poweredOff: vm.u8({ name: "powered_off" }), exitCode: vm.u16({ name: "exit_code" }) },
  postLoad(s) {
    checkMachineState({ ...PLACEHOLDER, finisher: { poweredOff: s.poweredOff, exitCode: s.exitCode } });
  },
});

/** The state object of {@link cpuDevice}. */
export type CpuWire = vm.Infer<typeof cpuDevice>;
/** The state object of {@link clintDevice}. */
export type ClintWire = vm.Infer<typeof clintDevice>;
/** The state object of {@link uartDevice}. */
export type UartWire = vm.Infer<typeof uartDevice>;
/** The state object of {@link finisherDevice}. */
export type FinisherWire = vm.Infer<typeof finisherDevice>;

// ---------------------------------------------------------------------------------------------------------------
// Mapping between the plain machine state and the vmstate objects

const TWO32 = 4294967296n;

/** `hi:lo` (two uint32) as a bigint. */
export function joinU64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** A u64 bigint as `[lo, hi]` uint32 numbers. */
export function splitU64(v: bigint): [number, number] {
  return [Number(v % TWO32), Number((v >> 32n) % TWO32)];
}

/** A u64 counter as a number; values above 2^53 become NaN so that validation rejects them. */
function counter(v: bigint): number {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : Number.NaN;
}

/** A valid machine state for validating one device at a time. */
const PLACEHOLDER: MachineState = {
  cpu: {
    pc: 0,
    x: new Array<number>(32).fill(0),
    mstatus: 0x1800,
    mie: 0,
    mtvec: 0,
    mscratch: 0,
    mepc: 0,
    mcause: 0,
    mtval: 0,
    cycles: 0,
    instret: 0,
    mcycleOffsetLo: 0,
    mcycleOffsetHi: 0,
    minstretOffsetLo: 0,
    minstretOffsetHi: 0,
    reservationValid: 0,
    reservationAddr: 0,
    reservationValue: 0,
    waitingForInterrupt: 0,
  },
  clint: { msip: 0, mtimecmpLo: 0, mtimecmpHi: 0, mtimeOffsetLo: 0, mtimeOffsetHi: 0 },
  uart: {
    divider: 0,
    rbr: 0,
    ier: 0,
    iir: 0,
    lcr: 0,
    mcr: 0,
    lsr: 0,
    msr: 0,
    scr: 0,
    fcr: 0,
    thrIpending: 0,
    rxFifo: new Uint8Array(UART_FIFO_LENGTH),
    rxCount: 0,
    irq: 0,
  },
  finisher: { poweredOff: 0, exitCode: 0 },
};

/** Writes a CPU state into a `cpu` vmstate object (the compat flag is left alone). */
export function cpuToWire(c: CpuState, s: CpuWire): void {
  s.pc = c.pc;
  for (let i = 1; i < 32; i++) s.x[i - 1] = c.x[i] as number;
  s.mstatus = c.mstatus;
  s.mie = c.mie;
  s.mtvec = c.mtvec;
  s.mscratch = c.mscratch;
  s.mepc = c.mepc;
  s.mcause = c.mcause;
  s.mtval = c.mtval;
  s.cycles = BigInt(c.cycles);
  s.instret = BigInt(c.instret);
  s.mcycleOffset = joinU64(c.mcycleOffsetLo, c.mcycleOffsetHi);
  s.minstretOffset = joinU64(c.minstretOffsetLo, c.minstretOffsetHi);
  s.waitingForInterrupt = c.waitingForInterrupt;
  s.reservation.valid = c.reservationValid;
  s.reservation.addr = c.reservationAddr;
  s.reservation.value = c.reservationValue;
}

/** Reads a CPU state from a `cpu` vmstate object. */
export function cpuFromWire(s: CpuWire): CpuState {
  const [mcLo, mcHi] = splitU64(s.mcycleOffset);
  const [miLo, miHi] = splitU64(s.minstretOffset);
  return {
    pc: s.pc,
    x: [0, ...s.x],
    mstatus: s.mstatus,
    mie: s.mie,
    mtvec: s.mtvec,
    mscratch: s.mscratch,
    mepc: s.mepc,
    mcause: s.mcause,
    mtval: s.mtval,
    cycles: counter(s.cycles),
    instret: counter(s.instret),
    mcycleOffsetLo: mcLo,
    mcycleOffsetHi: mcHi,
    minstretOffsetLo: miLo,
    minstretOffsetHi: miHi,
    reservationValid: s.reservation.valid,
    reservationAddr: s.reservation.addr,
    reservationValue: s.reservation.value,
    waitingForInterrupt: s.waitingForInterrupt,
  };
}

/** Writes a CLINT state into a `clint` vmstate object. */
export function clintToWire(c: ClintState, s: ClintWire): void {
  s.msip = c.msip;
  s.mtimecmp = joinU64(c.mtimecmpLo, c.mtimecmpHi);
  s.mtimeOffset = joinU64(c.mtimeOffsetLo, c.mtimeOffsetHi);
}

/** Reads a CLINT state from a `clint` vmstate object. */
export function clintFromWire(s: ClintWire): ClintState {
  const [cmpLo, cmpHi] = splitU64(s.mtimecmp);
  const [offLo, offHi] = splitU64(s.mtimeOffset);
  return { msip: s.msip, mtimecmpLo: cmpLo, mtimecmpHi: cmpHi, mtimeOffsetLo: offLo, mtimeOffsetHi: offHi };
}

/** Writes a UART state into a `uart` vmstate object. */
export function uartToWire(u: UartState, s: UartWire): void {
  s.irq = u.irq;
  s.divider = u.divider;
  s.rbr = u.rbr;
  s.ier = u.ier;
  s.iir = u.iir;
  s.lcr = u.lcr;
  s.mcr = u.mcr;
  s.lsr = u.lsr;
  s.msr = u.msr;
  s.scr = u.scr;
  s.fcr = u.fcr;
  s.thrIpending = u.thrIpending;
  s.rxFifo.count = u.rxCount;
  s.rxFifo.data = u.rxFifo.slice(0, u.rxCount);
}

/** Reads a UART state from a `uart` vmstate object. */
export function uartFromWire(s: UartWire): UartState {
  const rxFifo = new Uint8Array(UART_FIFO_LENGTH);
  rxFifo.set(s.rxFifo.data.subarray(0, UART_FIFO_LENGTH));
  return {
    divider: s.divider,
    rbr: s.rbr,
    ier: s.ier,
    iir: s.iir,
    lcr: s.lcr,
    mcr: s.mcr,
    lsr: s.lsr,
    msr: s.msr,
    scr: s.scr,
    fcr: s.fcr,
    thrIpending: s.thrIpending,
    rxFifo,
    rxCount: Math.min(s.rxFifo.count, s.rxFifo.data.length),
    irq: s.irq,
  };
}

function finisherToWire(f: FinisherState, s: FinisherWire): void {
  s.poweredOff = f.poweredOff;
  s.exitCode = f.exitCode;
}

/**
 * The vmstate state objects of one machine's devices and how they map to a {@link MachineState}. A machine built
 * from other descriptions (the frozen 1.0 ones in the compat tests) supplies its own set.
 */
export interface Rv32DeviceSet {
  /** The machine type sent in (and expected from) the stream's configuration section. */
  readonly machineType: string;
  /** Registers every device section with the registry, in save order. */
  register(registry: Registry): void;
  /** Copies a machine state into the vmstate objects (after a stop, before a save). */
  capture(state: MachineState): void;
  /** Builds the machine state the vmstate objects hold (after a load, before a run). */
  restore(): MachineState;
}

/**
 * The current (1.1) device descriptions under a machine type.
 *
 * @param machineType `ferry-rv32`, `ferry-rv32-1.1` or `ferry-rv32-1.0`.
 */
export function createRv32Devices(machineType: string = RV32_MACHINE_TYPES[0]): Rv32DeviceSet {
  const type = rv32MachineType(machineType);
  const cpu = vm.initialState(cpuDevice);
  cpu.migrateReservation = type.migrateReservation ? 1 : 0;
  const clint = vm.initialState(clintDevice);
  const uart = vm.initialState(uartDevice);
  const finisher = vm.initialState(finisherDevice);
  return {
    machineType: type.name,
    register(registry) {
      registerDevice(registry, cpuDevice, cpu);
      registerDevice(registry, clintDevice, clint);
      registerDevice(registry, uartDevice, uart);
      registerDevice(registry, finisherDevice, finisher);
    },
    capture(state) {
      cpuToWire(state.cpu, cpu);
      clintToWire(state.clint, clint);
      uartToWire(state.uart, uart);
      finisherToWire(state.finisher, finisher);
    },
    restore() {
      return {
        cpu: cpuFromWire(cpu),
        clint: clintFromWire(clint),
        uart: uartFromWire(uart),
        finisher: { poweredOff: finisher.poweredOff, exitCode: finisher.exitCode },
      };
    },
  };
}
