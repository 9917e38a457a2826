/**
 * The machine's migratable device state as plain objects, their validation, and a fixed word layout that carries
 * them through shared memory between the vCPU worker and the main thread.
 *
 * The objects hold numbers, arrays of numbers and one `Uint8Array`, with a stable shape, so the vmstate layer can
 * describe them field by field. 32-bit registers are uint32 numbers; 64-bit values are split into `Lo`/`Hi`
 * uint32 halves, except `cycles` and `instret`, which are integers below 2^53.
 *
 * @module
 */

import { MigrationError } from "../../errors.js";
import type { ClintState } from "./clint.js";
import { MIE_WRITABLE, MSTATUS_MPP, MSTATUS_WRITABLE } from "./csr.js";
import type { FinisherState } from "./finisher.js";
import { UART_FIFO_LENGTH, type UartState } from "./uart16550.js";

/** The hart's migratable state. */
export interface CpuState {
  /** Program counter (uint32, 4-byte aligned). */
  pc: number;
  /** x0–x31 as uint32 (32 entries, x0 = 0). */
  x: number[];
  /** `mstatus` (MIE, MPIE; MPP reads as 3). */
  mstatus: number;
  /** `mie`. */
  mie: number;
  /** `mtvec`. */
  mtvec: number;
  /** `mscratch`. */
  mscratch: number;
  /** `mepc`. */
  mepc: number;
  /** `mcause`. */
  mcause: number;
  /** `mtval`. */
  mtval: number;
  /** Virtual cycles since reset (integer < 2^53): drives `mcycle` and the CLINT's `mtime`. */
  cycles: number;
  /** Instructions retired since reset (integer < 2^53): drives `minstret`. */
  instret: number;
  /** `mcycle - cycles` (mod 2^64), low word. */
  mcycleOffsetLo: number;
  /** `mcycle - cycles` (mod 2^64), high word. */
  mcycleOffsetHi: number;
  /** `minstret - instret` (mod 2^64), low word. */
  minstretOffsetLo: number;
  /** `minstret - instret` (mod 2^64), high word. */
  minstretOffsetHi: number;
  /** 1 while an LR.W reservation is held. */
  reservationValid: number;
  /** The reserved address (uint32). QEMU: `load_res`. */
  reservationAddr: number;
  /** The value LR.W read (uint32). QEMU: `load_val`. */
  reservationValue: number;
  /** 1 while the hart is stalled in `wfi`. */
  waitingForInterrupt: number;
}

/** The state of the whole `ferry-rv32` machine except RAM. */
export interface MachineState {
  readonly cpu: CpuState;
  readonly clint: ClintState;
  readonly uart: UartState;
  readonly finisher: FinisherState;
}

function u32(v: unknown): boolean {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
}

function bad(path: readonly (string | number)[], what: string, v: unknown): MigrationError {
  return new MigrationError("FIELD_OUT_OF_RANGE", `Cannot load machine state: ${what}, found ${String(v)}`, {
    path: ["ferry-rv32", ...path],
  });
}

function checkU32(obj: object, dev: string, keys: readonly string[]): void {
  const rec = obj as Record<string, unknown>;
  for (const k of keys) {
    if (!u32(rec[k])) throw bad([dev, k], "expected a uint32", rec[k]);
  }
}

function checkRange(obj: object, dev: string, key: string, max: number): void {
  const v = (obj as Record<string, unknown>)[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    throw bad([dev, key], `expected an integer in [0, ${max}]`, v);
  }
}

const CPU_U32 = [
  "pc",
  "mstatus",
  "mie",
  "mtvec",
  "mscratch",
  "mepc",
  "mcause",
  "mtval",
  "mcycleOffsetLo",
  "mcycleOffsetHi",
  "minstretOffsetLo",
  "minstretOffsetHi",
  "reservationAddr",
  "reservationValue",
] as const;
const CLINT_U32 = ["mtimecmpLo", "mtimecmpHi", "mtimeOffsetLo", "mtimeOffsetHi"] as const;
const UART_U8 = ["rbr", "ier", "iir", "lcr", "mcr", "lsr", "msr", "scr", "fcr"] as const;

/**
 * Checks a machine state before it is loaded: every field present, of the right kind and in range, and the
 * values the hardware cannot hold (a misaligned `pc`, reserved `mtvec` modes, unknown `mstatus` bits) rejected.
 *
 * @param s The state, e.g. decoded from a migration stream.
 * @throws MigrationError `FIELD_OUT_OF_RANGE` naming the field.
 */
export function checkMachineState(s: MachineState): void {
  const { cpu, clint, uart, finisher } = s;
  checkU32(cpu, "cpu", CPU_U32);
  if (!Array.isArray(cpu.x) || cpu.x.length !== 32) throw bad(["cpu", "x"], "expected 32 registers", cpu.x?.length);
  for (let i = 0; i < 32; i++) if (!u32(cpu.x[i])) throw bad(["cpu", "x", i], "expected a uint32", cpu.x[i]);
  if (cpu.x[0] !== 0) throw bad(["cpu", "x", 0], "x0 must be 0", cpu.x[0]);
  if ((cpu.pc & 3) !== 0) throw bad(["cpu", "pc"], "expected a 4-byte aligned pc", cpu.pc);
  if ((cpu.mepc & 3) !== 0) throw bad(["cpu", "mepc"], "expected a 4-byte aligned mepc", cpu.mepc);
  if ((cpu.mtvec & 3) > 1) throw bad(["cpu", "mtvec"], "expected mode 0 or 1", cpu.mtvec);
  if ((cpu.mstatus & ~(MSTATUS_WRITABLE | MSTATUS_MPP)) !== 0 || (cpu.mstatus & MSTATUS_MPP) !== MSTATUS_MPP) {
    throw bad(["cpu", "mstatus"], "expected only MIE, MPIE and MPP=3", cpu.mstatus);
  }
  if ((cpu.mie & ~MIE_WRITABLE) !== 0) throw bad(["cpu", "mie"], "expected only MSIE, MTIE, MEIE", cpu.mie);
  checkRange(cpu, "cpu", "cycles", Number.MAX_SAFE_INTEGER);
  checkRange(cpu, "cpu", "instret", Number.MAX_SAFE_INTEGER);
  checkRange(cpu, "cpu", "reservationValid", 1);
  checkRange(cpu, "cpu", "waitingForInterrupt", 1);
  checkRange(clint, "clint", "msip", 1);
  checkU32(clint, "clint", CLINT_U32);
  for (const k of UART_U8) checkRange(uart, "uart", k, 0xff);
  checkRange(uart, "uart", "divider", 0xffff);
  checkRange(uart, "uart", "thrIpending", 1);
  checkRange(uart, "uart", "irq", 1);
  checkRange(uart, "uart", "rxCount", UART_FIFO_LENGTH);
  if (!(uart.rxFifo instanceof Uint8Array) || uart.rxFifo.length !== UART_FIFO_LENGTH) {
    throw bad(["uart", "rxFifo"], `expected a Uint8Array of ${UART_FIFO_LENGTH} bytes`, uart.rxFifo?.length);
  }
  checkRange(finisher, "finisher", "poweredOff", 1);
  checkRange(finisher, "finisher", "exitCode", 0xffff);
}

// ---------------------------------------------------------------------------------------------------------------
// Word layout in shared memory (Int32Array), used by the vCPU worker to publish its state while parked.
// ---------------------------------------------------------------------------------------------------------------

const W_PC = 0;
const W_X = 1; // 32 words
const W_CSR = 33; // mstatus mie mtvec mscratch mepc mcause mtval
const W_CYCLES = 40; // lo, hi
const W_INSTRET = 42; // lo, hi
const W_OFFS = 44; // mcycleOffsetLo/Hi, minstretOffsetLo/Hi
const W_RES = 48; // valid, addr, value
const W_WFI = 51;
const W_CLINT = 52; // msip, mtimecmpLo/Hi, mtimeOffsetLo/Hi
const W_UART = 57; // divider rbr ier iir lcr mcr lsr msr scr fcr thrIpending rxCount irq
const W_FIFO = 70; // 16 words
const W_FIN = 86; // poweredOff, exitCode

/** Int32 words needed by {@link encodeMachineState}. */
export const MACHINE_STATE_WORDS = 88;

const TWO32 = 4294967296;

/**
 * Writes a machine state into `w` (at least {@link MACHINE_STATE_WORDS} words) with plain stores.
 *
 * The writer and reader must synchronise through an `Atomics` handshake around it.
 */
export function encodeMachineState(s: MachineState, w: Int32Array): void {
  const { cpu, clint, uart, finisher } = s;
  w[W_PC] = cpu.pc;
  for (let i = 0; i < 32; i++) w[W_X + i] = cpu.x[i] as number;
  w[W_CSR] = cpu.mstatus;
  w[W_CSR + 1] = cpu.mie;
  w[W_CSR + 2] = cpu.mtvec;
  w[W_CSR + 3] = cpu.mscratch;
  w[W_CSR + 4] = cpu.mepc;
  w[W_CSR + 5] = cpu.mcause;
  w[W_CSR + 6] = cpu.mtval;
  w[W_CYCLES] = cpu.cycles % TWO32;
  w[W_CYCLES + 1] = Math.floor(cpu.cycles / TWO32);
  w[W_INSTRET] = cpu.instret % TWO32;
  w[W_INSTRET + 1] = Math.floor(cpu.instret / TWO32);
  w[W_OFFS] = cpu.mcycleOffsetLo;
  w[W_OFFS + 1] = cpu.mcycleOffsetHi;
  w[W_OFFS + 2] = cpu.minstretOffsetLo;
  w[W_OFFS + 3] = cpu.minstretOffsetHi;
  w[W_RES] = cpu.reservationValid;
  w[W_RES + 1] = cpu.reservationAddr;
  w[W_RES + 2] = cpu.reservationValue;
  w[W_WFI] = cpu.waitingForInterrupt;
  w[W_CLINT] = clint.msip;
  w[W_CLINT + 1] = clint.mtimecmpLo;
  w[W_CLINT + 2] = clint.mtimecmpHi;
  w[W_CLINT + 3] = clint.mtimeOffsetLo;
  w[W_CLINT + 4] = clint.mtimeOffsetHi;
  const u = [
    uart.divider,
    uart.rbr,
    uart.ier,
    uart.iir,
    uart.lcr,
    uart.mcr,
    uart.lsr,
    uart.msr,
    uart.scr,
    uart.fcr,
    uart.thrIpending,
    uart.rxCount,
    uart.irq,
  ];
  for (let i = 0; i < u.length; i++) w[W_UART + i] = u[i] as number;
  for (let i = 0; i < UART_FIFO_LENGTH; i++) w[W_FIFO + i] = uart.rxFifo[i] as number;
  w[W_FIN] = finisher.poweredOff;
  w[W_FIN + 1] = finisher.exitCode;
}

/** Reads a machine state written by {@link encodeMachineState}. */
export function decodeMachineState(w: Int32Array): MachineState {
  const g = (i: number): number => (w[i] as number) >>> 0;
  const x: number[] = [];
  for (let i = 0; i < 32; i++) x.push(g(W_X + i));
  const rxFifo = new Uint8Array(UART_FIFO_LENGTH);
  for (let i = 0; i < UART_FIFO_LENGTH; i++) rxFifo[i] = g(W_FIFO + i);
  return {
    cpu: {
      pc: g(W_PC),
      x,
      mstatus: g(W_CSR),
      mie: g(W_CSR + 1),
      mtvec: g(W_CSR + 2),
      mscratch: g(W_CSR + 3),
      mepc: g(W_CSR + 4),
      mcause: g(W_CSR + 5),
      mtval: g(W_CSR + 6),
      cycles: g(W_CYCLES) + g(W_CYCLES + 1) * TWO32,
      instret: g(W_INSTRET) + g(W_INSTRET + 1) * TWO32,
      mcycleOffsetLo: g(W_OFFS),
      mcycleOffsetHi: g(W_OFFS + 1),
      minstretOffsetLo: g(W_OFFS + 2),
      minstretOffsetHi: g(W_OFFS + 3),
      reservationValid: g(W_RES),
      reservationAddr: g(W_RES + 1),
      reservationValue: g(W_RES + 2),
      waitingForInterrupt: g(W_WFI),
    },
    clint: {
      msip: g(W_CLINT),
      mtimecmpLo: g(W_CLINT + 1),
      mtimecmpHi: g(W_CLINT + 2),
      mtimeOffsetLo: g(W_CLINT + 3),
      mtimeOffsetHi: g(W_CLINT + 4),
    },
    uart: {
      divider: g(W_UART),
      rbr: g(W_UART + 1),
      ier: g(W_UART + 2),
      iir: g(W_UART + 3),
      lcr: g(W_UART + 4),
      mcr: g(W_UART + 5),
      lsr: g(W_UART + 6),
      msr: g(W_UART + 7),
      scr: g(W_UART + 8),
      fcr: g(W_UART + 9),
      thrIpending: g(W_UART + 10),
      rxFifo,
      rxCount: g(W_UART + 11),
      irq: g(W_UART + 12),
    },
    finisher: { poweredOff: g(W_FIN), exitCode: g(W_FIN + 1) },
  };
}
