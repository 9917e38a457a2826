/**
 * FROZEN: the `ferry-rv32` device descriptions exactly as Ferry 1.0 shipped them (machine type `ferry-rv32-1.0`),
 * with their mapping to the machine state. The compat tests (`test/e2e/machine-compat.test.ts`) build a "1.0
 * Ferry" from this file and migrate to and from the current Ferry. Never edit this file: a change here would hide
 * a compatibility break. New state goes into `vmstate.ts`, behind a subsection and a compat property.
 *
 * @module
 */

import { registerDevice } from "../../savevm/device-entry.js";
import type { Registry } from "../../savevm/registry.js";
import * as vm from "../../vmstate/index.js";
import type { MachineState } from "./state.js";
import type { Rv32DeviceSet } from "./vmstate.js";

/** The hart. QEMU's counterpart: `vmstate_riscv_cpu` (`cpu`, `cpu/pmp`, …). */
const cpuDevice = vm.device("cpu", {
  version: 2,
  minVersion: 1,
  fields: {
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
  preLoad(s) {
    s.waitingForInterrupt = 0;
  },
});

/** The CLINT. */
const clintDevice = vm.device("clint", {
  version: 1,
  fields: {
    msip: vm.u8(),
    mtimecmp: vm.u64(),
    mtimeOffset: vm.u64({ name: "mtime_offset" }),
  },
});

/** The 16550A UART. Field names follow QEMU's `vmstate_serial`. */
const uartDevice = vm.device("uart", {
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
      fields: { count: vm.u8({ name: "num" }), data: vm.vbuffer("count", { max: 16, name: "data" }) },
      needed: (s) => s.rxFifo.count > 0,
    },
  },
  preLoad(s) {
    s.rxFifo.count = 0;
    s.rxFifo.data = new Uint8Array(0);
  },
});

/** The SiFive test finisher. */
const finisherDevice = vm.device("finisher", {
  version: 1,
  fields: { poweredOff: vm.u8({ name: "powered_off" }), exitCode: vm.u16({ name: "exit_code" }) },
});

function u64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

function lo(v: bigint): number {
  return Number(v & 0xffffffffn);
}

function hi(v: bigint): number {
  return Number((v >> 32n) & 0xffffffffn);
}

/** The Ferry 1.0 device set (machine type `ferry-rv32-1.0`). The LR reservation is not migrated. */
export function createFrozenRv32Devices10(): Rv32DeviceSet {
  const cpu = vm.initialState(cpuDevice);
  const clint = vm.initialState(clintDevice);
  const uart = vm.initialState(uartDevice);
  const finisher = vm.initialState(finisherDevice);
  return {
    machineType: "ferry-rv32-1.0",
    register(registry: Registry): void {
      registerDevice(registry, cpuDevice, cpu);
      registerDevice(registry, clintDevice, clint);
      registerDevice(registry, uartDevice, uart);
      registerDevice(registry, finisherDevice, finisher);
    },
    capture(s: MachineState): void {
      const c = s.cpu;
      cpu.pc = c.pc;
      cpu.x = c.x.slice(1);
      cpu.mstatus = c.mstatus;
      cpu.mie = c.mie;
      cpu.mtvec = c.mtvec;
      cpu.mscratch = c.mscratch;
      cpu.mepc = c.mepc;
      cpu.mcause = c.mcause;
      cpu.mtval = c.mtval;
      cpu.cycles = BigInt(c.cycles);
      cpu.instret = BigInt(c.instret);
      cpu.mcycleOffset = u64(c.mcycleOffsetLo, c.mcycleOffsetHi);
      cpu.minstretOffset = u64(c.minstretOffsetLo, c.minstretOffsetHi);
      cpu.waitingForInterrupt = c.waitingForInterrupt;
      clint.msip = s.clint.msip;
      clint.mtimecmp = u64(s.clint.mtimecmpLo, s.clint.mtimecmpHi);
      clint.mtimeOffset = u64(s.clint.mtimeOffsetLo, s.clint.mtimeOffsetHi);
      const u = s.uart;
      uart.irq = u.irq;
      uart.divider = u.divider;
      uart.rbr = u.rbr;
      uart.ier = u.ier;
      uart.iir = u.iir;
      uart.lcr = u.lcr;
      uart.mcr = u.mcr;
      uart.lsr = u.lsr;
      uart.msr = u.msr;
      uart.scr = u.scr;
      uart.fcr = u.fcr;
      uart.thrIpending = u.thrIpending;
      uart.rxFifo.count = u.rxCount;
      uart.rxFifo.data = u.rxFifo.slice(0, u.rxCount);
      finisher.poweredOff = s.finisher.poweredOff;
      finisher.exitCode = s.finisher.exitCode;
    },
    restore(): MachineState {
      const rxFifo = new Uint8Array(16);
      rxFifo.set(uart.rxFifo.data.subarray(0, 16));
      return {
        cpu: {
          pc: cpu.pc,
          x: [0, ...cpu.x],
          mstatus: cpu.mstatus,
          mie: cpu.mie,
          mtvec: cpu.mtvec,
          mscratch: cpu.mscratch,
          mepc: cpu.mepc,
          mcause: cpu.mcause,
          mtval: cpu.mtval,
          cycles: Number(cpu.cycles),
          instret: Number(cpu.instret),
          mcycleOffsetLo: lo(cpu.mcycleOffset),
          mcycleOffsetHi: hi(cpu.mcycleOffset),
          minstretOffsetLo: lo(cpu.minstretOffset),
          minstretOffsetHi: hi(cpu.minstretOffset),
          reservationValid: 0,
          reservationAddr: 0,
          reservationValue: 0,
          waitingForInterrupt: cpu.waitingForInterrupt,
        },
        clint: {
          msip: clint.msip,
          mtimecmpLo: lo(clint.mtimecmp),
          mtimecmpHi: hi(clint.mtimecmp),
          mtimeOffsetLo: lo(clint.mtimeOffset),
          mtimeOffsetHi: hi(clint.mtimeOffset),
        },
        uart: {
          divider: uart.divider,
          rbr: uart.rbr,
          ier: uart.ier,
          iir: uart.iir,
          lcr: uart.lcr,
          mcr: uart.mcr,
          lsr: uart.lsr,
          msr: uart.msr,
          scr: uart.scr,
          fcr: uart.fcr,
          thrIpending: uart.thrIpending,
          rxFifo,
          rxCount: Math.min(uart.rxFifo.count, uart.rxFifo.data.length),
          irq: uart.irq,
        },
        finisher: { poweredOff: finisher.poweredOff, exitCode: finisher.exitCode },
      };
    },
  };
}
