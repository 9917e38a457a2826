/**
 * The RV32IMA hart: Zicsr, Zifencei, machine mode only, with precise traps and interrupts.
 *
 * The interpreter is one function ({@link Cpu.execute}) with a switch on the major opcode and the fields decoded
 * inline with shifts: no allocation and no call per instruction. RAM is read and written through typed-array views
 * of the guest's bytes (so the host must be little-endian, like RISC-V); everything else (MMIO, misaligned and
 * faulting accesses, CSRs, traps) leaves the hot loop for a method.
 *
 * Counting: `execute(max)` runs at most `max` *steps*. A step is one instruction that retired or raised an
 * exception. `cycles` counts steps plus idle cycles skipped in `wfi`; `instret` counts retired instructions only
 * (an instruction that traps does not retire). Both are exact integers below 2^53 (2.8 years at 100 MIPS).
 *
 * Memory behaviour matches qemu-system-riscv32 7.2 `virt` where the spec leaves a choice: misaligned loads and
 * stores are carried out (split into bytes), not trapped; misaligned LR/SC/AMOs trap. Where QEMU 7.2 deviates from
 * the spec, the spec wins: a misaligned or faulting SC/AMO raises a *store/AMO* exception (QEMU 7.2 reports a load
 * exception), and `ebreak` leaves `mtval` 0 as QEMU 7.2 does.
 *
 * Platform-neutral: no `node:` imports.
 *
 * @module
 */

import type { Bus } from "./bus.js";
import {
  Csr,
  Exception,
  MIE_WRITABLE,
  MIP_MEIP,
  MIP_MSIP,
  MISA_VALUE,
  MSTATUS_MIE,
  MSTATUS_MPIE,
  MSTATUS_MPP,
  MSTATUS_WRITABLE,
} from "./csr.js";
import { PAGE_SHIFT } from "./memory-map.js";

const TWO32 = 4294967296;
const MASK64 = 0xffff_ffff_ffff_ffffn;

/** `mvendorid`, `marchid`, `mimpid` of the hart: 0 (not implemented), as QEMU's generic `rv32` CPU. */
const ID_ZERO = 0;

/** Where the CPU's guest RAM is and whether stores mark pages dirty. */
export interface CpuMemory {
  /** Guest RAM, mapped at `RAM_BASE`; length a multiple of 4 KiB; byteOffset a multiple of 4. */
  readonly ram: Uint8Array;
  /** One byte per 4 KiB page of `ram`; a store sets its page's byte to 1 after the data store. */
  readonly dirty: Uint8Array;
  /** Whether stores mark `dirty` (checked once per {@link Cpu.execute} call, not per store). */
  readonly trackDirty: boolean;
}

/**
 * One RV32IMA hart in machine mode.
 *
 * Fields are public for the machine and the state codec; registers hold int32 values (read them with `>>> 0` for
 * the unsigned view). Guest code changes them only through {@link Cpu.execute}.
 */
export class Cpu {
  /** Integer registers x0–x31 (x0 is forced to 0 before every instruction). */
  readonly x = new Int32Array(32);
  /** Program counter (int32 view; always 4-byte aligned). */
  pc = 0;
  /** `mstatus`: only MIE and MPIE change; MPP reads as M. */
  mstatus = MSTATUS_MPP;
  /** `mie`: MSIE, MTIE, MEIE. */
  mie = 0;
  /** `mip` as last computed by the machine from the CLINT (read-only to the guest). */
  mip = 0;
  /** `mtvec`: base (4-byte aligned) and mode (0 direct, 1 vectored). */
  mtvec = 0;
  /** `mscratch`. */
  mscratch = 0;
  /** `mepc` (4-byte aligned). */
  mepc = 0;
  /** `mcause`. */
  mcause = 0;
  /** `mtval`. */
  mtval = 0;
  /** Virtual cycles since reset: steps plus idle cycles skipped in `wfi`. Drives `mcycle` and the CLINT's `mtime`. */
  cycles = 0;
  /** Instructions retired since reset. Drives `minstret`. */
  instret = 0;
  /** `mcycle` = `cycles` + this 64-bit offset (low word), set by guest writes to `mcycle`/`mcycleh`. */
  mcycleOffsetLo = 0;
  /** High word of the `mcycle` offset. */
  mcycleOffsetHi = 0;
  /** `minstret` = `instret` + this 64-bit offset (low word). */
  minstretOffsetLo = 0;
  /** High word of the `minstret` offset. */
  minstretOffsetHi = 0;
  /** Whether an LR.W reservation is held (0 or 1). QEMU: `load_res != -1`. */
  reservationValid = 0;
  /** The reserved address (int32 view). QEMU: `load_res`. */
  reservationAddr = 0;
  /** The value LR.W loaded; SC.W succeeds only if memory still holds it (QEMU's cmpxchg semantics). QEMU: `load_val`. */
  reservationValue = 0;
  /** Whether the hart is stalled in `wfi` (0 or 1). */
  waitingForInterrupt = 0;

  /** Returns `mtime` (for the `time`/`timeh` CSRs) at a given cycle count; wired to the CLINT by the machine. */
  readTime: (cycles: number) => bigint = () => 0n;

  readonly #bus: Bus;
  readonly #u8: Uint8Array;
  readonly #i8: Int8Array;
  readonly #u16: Uint16Array;
  readonly #i16: Int16Array;
  readonly #i32: Int32Array;
  readonly #dirty: Uint8Array;
  readonly #ramSize: number;
  #trackDirty: boolean;
  /** Steps completed in the current `execute` call before the instruction being run (for counter reads). */
  #inflight = 0;
  /** Set by slow paths: 0, or an exception cause + 1. */
  #fault = 0;
  #faultValue = 0;

  /**
   * @param memory Guest RAM and its dirty map.
   * @param bus Every physical address outside RAM.
   */
  constructor(memory: CpuMemory, bus: Bus) {
    const { ram, dirty } = memory;
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
      throw new RangeError("Cannot create an rv32 CPU: the host is big-endian; the CPU needs a little-endian host");
    }
    if (ram.byteLength === 0 || ram.byteLength % 4096 !== 0 || ram.byteLength > 0x8000_0000) {
      throw new RangeError(
        `Cannot create an rv32 CPU: RAM size ${ram.byteLength} is not a multiple of 4096 in (0, 2 GiB]`,
      );
    }
    if (ram.byteOffset % 4 !== 0) {
      throw new RangeError(`Cannot create an rv32 CPU: RAM byteOffset ${ram.byteOffset} is not a multiple of 4`);
    }
    if (dirty.byteLength < ram.byteLength >>> PAGE_SHIFT) {
      throw new RangeError(
        `Cannot create an rv32 CPU: the dirty map has ${dirty.byteLength} bytes, expected ${ram.byteLength >>> PAGE_SHIFT}`,
      );
    }
    const buf = ram.buffer;
    const o = ram.byteOffset;
    const n = ram.byteLength;
    this.#u8 = ram;
    this.#i8 = new Int8Array(buf, o, n);
    this.#u16 = new Uint16Array(buf, o, n >>> 1);
    this.#i16 = new Int16Array(buf, o, n >>> 1);
    this.#i32 = new Int32Array(buf, o, n >>> 2);
    this.#dirty = dirty;
    this.#ramSize = n;
    this.#trackDirty = memory.trackDirty;
    this.#bus = bus;
  }

  /** Whether stores mark the dirty map. Switching it off is for measuring the tracking's cost. */
  get trackDirty(): boolean {
    return this.#trackDirty;
  }
  set trackDirty(on: boolean) {
    this.#trackDirty = on;
  }

  /** Resets the hart: registers, CSRs and counters to their reset values, `pc` to `resetPc`. */
  reset(resetPc: number): void {
    this.x.fill(0);
    this.pc = resetPc | 0;
    this.mstatus = MSTATUS_MPP;
    this.mie = 0;
    this.mip = 0;
    this.mtvec = 0;
    this.mscratch = 0;
    this.mepc = 0;
    this.mcause = 0;
    this.mtval = 0;
    this.cycles = 0;
    this.instret = 0;
    this.mcycleOffsetLo = 0;
    this.mcycleOffsetHi = 0;
    this.minstretOffsetLo = 0;
    this.minstretOffsetHi = 0;
    this.reservationValid = 0;
    this.reservationAddr = 0;
    this.reservationValue = 0;
    this.waitingForInterrupt = 0;
  }

  /**
   * Takes the highest-priority interrupt that is pending in `mip`, enabled in `mie`, with `mstatus.MIE` set.
   * Priority: external, software, timer (privileged spec 3.1.9).
   *
   * @returns Whether an interrupt was taken.
   */
  takeInterrupt(): boolean {
    const pending = this.mip & this.mie;
    if (pending === 0 || (this.mstatus & MSTATUS_MIE) === 0) return false;
    const cause = pending & MIP_MEIP ? 11 : pending & MIP_MSIP ? 3 : 7;
    this.waitingForInterrupt = 0;
    this.#enterTrap(cause, true, 0);
    return true;
  }

  /**
   * Runs at most `max` steps (instructions retired or trapped). Returns early after any instruction that may
   * change interrupt state or needs the machine's attention: CSR writes, MMIO stores, `mret`, `wfi`, traps.
   *
   * @param max Step budget, ≥ 1.
   * @returns The number of steps run (≥ 1 when `max` ≥ 1).
   */
  execute(max: number): number {
    const x = this.x;
    const u8 = this.#u8;
    const i8 = this.#i8;
    const u16 = this.#u16;
    const i16 = this.#i16;
    const i32 = this.#i32;
    const dirty = this.#dirty;
    const track = this.#trackDirty;
    const size = this.#ramSize;
    let pc = this.pc;
    let n = 0;
    let end = max;
    let exc = -1;
    let tval = 0;

    // biome-ignore lint/suspicious/noConfusingLabels: the labelled block is the loop's exception exit (`break trap`), so the hot path needs no flag check.
    trap: {
      main: while (n < end) {
        // RAM sits at 0x80000000: flipping bit 31 turns an address into a RAM offset, and one unsigned compare
        // rejects everything below RAM (negative after the flip) and above it.
        const fo = pc ^ 0x80000000;
        n++;
        if (fo >>> 0 >= size) {
          exc = Exception.InstructionAccessFault;
          tval = pc;
          break trap;
        }
        const inst = i32[fo >> 2] as number;
        x[0] = 0;
        // Switch on opcode[6:2] (a dense 0-28 range, so V8 emits a jump table); opcode[1:0] must be 11 (no RVC),
        // else the key leaves that range and lands in `default` (illegal).
        switch (((inst >>> 2) & 31) | (((inst & 3) ^ 3) << 5)) {
          case 4: {
            // OP-IMM (0x13)
            const rd = (inst >> 7) & 31;
            const a = x[(inst >> 15) & 31] as number;
            const imm = inst >> 20;
            switch ((inst >> 12) & 7) {
              case 0:
                x[rd] = a + imm;
                break;
              case 1:
                if (inst >>> 25 !== 0) break trap;
                x[rd] = a << imm;
                break;
              case 2:
                x[rd] = a < imm ? 1 : 0;
                break;
              case 3:
                x[rd] = a >>> 0 < imm >>> 0 ? 1 : 0;
                break;
              case 4:
                x[rd] = a ^ imm;
                break;
              case 5: {
                const f7 = inst >>> 25;
                if (f7 === 0) x[rd] = a >>> imm;
                else if (f7 === 0x20) x[rd] = a >> imm;
                else break trap;
                break;
              }
              case 6:
                x[rd] = a | imm;
                break;
              default:
                x[rd] = a & imm;
                break;
            }
            pc = (pc + 4) | 0;
            break;
          }
          case 12: {
            // OP (0x33)
            const rd = (inst >> 7) & 31;
            const a = x[(inst >> 15) & 31] as number;
            const b = x[(inst >> 20) & 31] as number;
            const f7 = inst >>> 25;
            if (f7 === 0) {
              switch ((inst >> 12) & 7) {
                case 0:
                  x[rd] = a + b;
                  break;
                case 1:
                  x[rd] = a << b;
                  break;
                case 2:
                  x[rd] = a < b ? 1 : 0;
                  break;
                case 3:
                  x[rd] = a >>> 0 < b >>> 0 ? 1 : 0;
                  break;
                case 4:
                  x[rd] = a ^ b;
                  break;
                case 5:
                  x[rd] = a >>> b;
                  break;
                case 6:
                  x[rd] = a | b;
                  break;
                default:
                  x[rd] = a & b;
                  break;
              }
            } else if (f7 === 0x20) {
              const f3 = (inst >> 12) & 7;
              if (f3 === 0) x[rd] = a - b;
              else if (f3 === 5) x[rd] = a >> b;
              else break trap;
            } else if (f7 === 1) {
              switch ((inst >> 12) & 7) {
                case 0:
                  x[rd] = Math.imul(a, b);
                  break;
                case 1:
                  x[rd] = mulhu(a, b) - (a < 0 ? b : 0) - (b < 0 ? a : 0);
                  break;
                case 2:
                  x[rd] = mulhu(a, b) - (a < 0 ? b : 0);
                  break;
                case 3:
                  x[rd] = mulhu(a, b);
                  break;
                case 4:
                  // Quotients of int32s are exact enough in a double for truncation to be right.
                  x[rd] = b === 0 ? -1 : b === -1 ? -a : a / b;
                  break;
                case 5:
                  x[rd] = b === 0 ? -1 : (a >>> 0) / (b >>> 0);
                  break;
                case 6:
                  x[rd] = b === 0 ? a : b === -1 ? 0 : a % b;
                  break;
                default:
                  x[rd] = b === 0 ? a : (a >>> 0) % (b >>> 0);
                  break;
              }
            } else {
              break trap;
            }
            pc = (pc + 4) | 0;
            break;
          }
          case 0: {
            // LOAD (0x03)
            const rd = (inst >> 7) & 31;
            const addr = ((x[(inst >> 15) & 31] as number) + (inst >> 20)) | 0;
            const o = addr ^ 0x80000000;
            const f3 = (inst >> 12) & 7;
            if (f3 === 2) {
              if (o >>> 0 < size && (o & 3) === 0) x[rd] = i32[o >> 2] as number;
              else {
                const v = this.#loadSlow(addr, 4, n);
                if (this.#fault !== 0) break trap;
                x[rd] = v;
              }
            } else if (f3 === 4) {
              if (o >>> 0 < size) x[rd] = u8[o] as number;
              else {
                const v = this.#loadSlow(addr, 1, n);
                if (this.#fault !== 0) break trap;
                x[rd] = v & 0xff;
              }
            } else if (f3 === 0) {
              if (o >>> 0 < size) x[rd] = i8[o] as number;
              else {
                const v = this.#loadSlow(addr, 1, n);
                if (this.#fault !== 0) break trap;
                x[rd] = (v << 24) >> 24;
              }
            } else if (f3 === 5) {
              if (o >>> 0 < size && (o & 1) === 0) x[rd] = u16[o >> 1] as number;
              else {
                const v = this.#loadSlow(addr, 2, n);
                if (this.#fault !== 0) break trap;
                x[rd] = v & 0xffff;
              }
            } else if (f3 === 1) {
              if (o >>> 0 < size && (o & 1) === 0) x[rd] = i16[o >> 1] as number;
              else {
                const v = this.#loadSlow(addr, 2, n);
                if (this.#fault !== 0) break trap;
                x[rd] = (v << 16) >> 16;
              }
            } else {
              break trap;
            }
            pc = (pc + 4) | 0;
            break;
          }
          case 8: {
            // STORE (0x23): every guest store to RAM writes the data, then marks its page (a plain byte store; see
            // shared/research/node-perf-probes.md part 5: any Atomics op here costs 8-10x).
            const addr = ((x[(inst >> 15) & 31] as number) + (((inst >> 25) << 5) | ((inst >> 7) & 31))) | 0;
            const v = x[(inst >> 20) & 31] as number;
            const o = addr ^ 0x80000000;
            const f3 = (inst >> 12) & 7;
            if (f3 === 2) {
              if (o >>> 0 < size && (o & 3) === 0) {
                i32[o >> 2] = v;
                if (track) dirty[o >> 12] = 1;
              } else {
                this.#storeSlow(addr, 4, v, n);
                if (this.#fault !== 0) break trap;
                end = n;
              }
            } else if (f3 === 0) {
              if (o >>> 0 < size) {
                u8[o] = v;
                if (track) dirty[o >> 12] = 1;
              } else {
                this.#storeSlow(addr, 1, v, n);
                if (this.#fault !== 0) break trap;
                end = n;
              }
            } else if (f3 === 1) {
              if (o >>> 0 < size && (o & 1) === 0) {
                u16[o >> 1] = v;
                if (track) dirty[o >> 12] = 1;
              } else {
                this.#storeSlow(addr, 2, v, n);
                if (this.#fault !== 0) break trap;
                end = n;
              }
            } else {
              break trap;
            }
            pc = (pc + 4) | 0;
            break;
          }
          case 24: {
            // BRANCH (0x63)
            const a = x[(inst >> 15) & 31] as number;
            const b = x[(inst >> 20) & 31] as number;
            let taken: boolean;
            switch ((inst >> 12) & 7) {
              case 0:
                taken = a === b;
                break;
              case 1:
                taken = a !== b;
                break;
              case 4:
                taken = a < b;
                break;
              case 5:
                taken = a >= b;
                break;
              case 6:
                taken = a >>> 0 < b >>> 0;
                break;
              case 7:
                taken = a >>> 0 >= b >>> 0;
                break;
              default:
                break trap;
            }
            if (taken) {
              const imm = ((inst >> 31) << 12) | ((inst & 0x80) << 4) | ((inst >>> 20) & 0x7e0) | ((inst >>> 7) & 0x1e);
              const t = (pc + imm) | 0;
              if ((t & 3) !== 0) {
                exc = Exception.InstructionMisaligned;
                tval = t;
                break trap;
              }
              pc = t;
            } else {
              pc = (pc + 4) | 0;
            }
            break;
          }
          case 13:
            // LUI (0x37)
            x[(inst >> 7) & 31] = inst & 0xfffff000;
            pc = (pc + 4) | 0;
            break;
          case 5:
            // AUIPC (0x17)
            x[(inst >> 7) & 31] = pc + (inst & 0xfffff000);
            pc = (pc + 4) | 0;
            break;
          case 27: {
            // JAL (0x6f)
            const imm = ((inst >> 31) << 20) | (inst & 0xff000) | ((inst >>> 9) & 0x800) | ((inst >>> 20) & 0x7fe);
            const t = (pc + imm) | 0;
            if ((t & 3) !== 0) {
              exc = Exception.InstructionMisaligned;
              tval = t;
              break trap;
            }
            x[(inst >> 7) & 31] = pc + 4;
            pc = t;
            break;
          }
          case 25: {
            // JALR (0x67)
            if ((inst & 0x7000) !== 0) break trap;
            const t = (((x[(inst >> 15) & 31] as number) + (inst >> 20)) & ~1) | 0;
            if ((t & 3) !== 0) {
              exc = Exception.InstructionMisaligned;
              tval = t;
              break trap;
            }
            x[(inst >> 7) & 31] = pc + 4;
            pc = t;
            break;
          }
          case 3: {
            // MISC-MEM (0x0f): FENCE is a no-op on one hart; FENCE.I too, since nothing caches decoded instructions.
            const f3 = (inst >> 12) & 7;
            if (f3 > 1) break trap;
            pc = (pc + 4) | 0;
            break;
          }
          case 11: {
            // AMO (RV32A, word only) (0x2f)
            if (((inst >> 12) & 7) !== 2) break trap;
            const rd = (inst >> 7) & 31;
            const addr = x[(inst >> 15) & 31] as number;
            const src = x[(inst >> 20) & 31] as number;
            const f5 = inst >>> 27;
            const o = addr ^ 0x80000000;
            const isLoad = f5 === 2;
            if (isLoad && ((inst >> 20) & 31) !== 0) break trap;
            if ((addr & 3) !== 0) {
              exc = isLoad ? Exception.LoadMisaligned : Exception.StoreMisaligned;
              tval = addr;
              break trap;
            }
            if (o >>> 0 >= size) {
              // AMOs are not supported on I/O regions (a PMA choice the spec allows).
              exc = isLoad ? Exception.LoadAccessFault : Exception.StoreAccessFault;
              tval = addr;
              break trap;
            }
            const w = o >> 2;
            const old = i32[w] as number;
            let nv: number;
            switch (f5) {
              case 0x02:
                this.reservationValid = 1;
                this.reservationAddr = addr;
                this.reservationValue = old;
                x[rd] = old;
                pc = (pc + 4) | 0;
                continue main;
              case 0x03: {
                const ok =
                  this.reservationValid === 1 && this.reservationAddr === addr && this.reservationValue === old;
                this.reservationValid = 0;
                if (ok) {
                  i32[w] = src;
                  if (track) dirty[o >> 12] = 1;
                }
                x[rd] = ok ? 0 : 1;
                pc = (pc + 4) | 0;
                continue main;
              }
              case 0x01:
                nv = src;
                break;
              case 0x00:
                nv = old + src;
                break;
              case 0x04:
                nv = old ^ src;
                break;
              case 0x0c:
                nv = old & src;
                break;
              case 0x08:
                nv = old | src;
                break;
              case 0x10:
                nv = Math.min(old, src);
                break;
              case 0x14:
                nv = Math.max(old, src);
                break;
              case 0x18:
                nv = old >>> 0 < src >>> 0 ? old : src;
                break;
              case 0x1c:
                nv = old >>> 0 > src >>> 0 ? old : src;
                break;
              default:
                break trap;
            }
            i32[w] = nv;
            if (track) dirty[o >> 12] = 1;
            x[rd] = old;
            pc = (pc + 4) | 0;
            break;
          }
          case 28: {
            // SYSTEM (0x73)
            const f3 = (inst >> 12) & 7;
            if (f3 === 0) {
              if (inst === 0x00000073) {
                exc = Exception.EcallFromM;
                tval = 0;
                break trap;
              }
              if (inst === 0x00100073) {
                exc = Exception.Breakpoint;
                tval = 0;
                break trap;
              }
              if (inst === 0x30200073) {
                // MRET: MIE <- MPIE, MPIE <- 1, MPP stays M (the only mode).
                const s = this.mstatus;
                this.mstatus = (s & ~MSTATUS_WRITABLE) | ((s & MSTATUS_MPIE) !== 0 ? MSTATUS_MIE : 0) | MSTATUS_MPIE;
                pc = this.mepc;
                end = n;
                break;
              }
              if (inst === 0x10500073) {
                // WFI: stall until an interrupt is pending; the machine decides (and may skip idle time).
                this.waitingForInterrupt = 1;
                pc = (pc + 4) | 0;
                end = n;
                break;
              }
              break trap;
            }
            if (f3 === 4) break trap;
            this.#inflight = n - 1;
            if (!this.#csrInstruction(inst, f3)) break trap;
            pc = (pc + 4) | 0;
            end = n;
            break;
          }
          default:
            break trap;
        }
      }

      x[0] = 0;
      this.pc = pc;
      this.cycles += n;
      this.instret += n;
      this.#inflight = 0;
      return n;
    }

    // Left the loop through `break trap`: an exception, which does not retire. Without a cause, it is an illegal
    // instruction (mtval = its bits, as QEMU 7.1+ does).
    let cause = exc;
    if (this.#fault !== 0) {
      cause = this.#fault - 1;
      tval = this.#faultValue;
      this.#fault = 0;
    } else if (cause < 0) {
      cause = Exception.IllegalInstruction;
      tval = (i32[(pc ^ 0x80000000) >> 2] as number) >>> 0;
    }
    x[0] = 0;
    this.pc = pc;
    this.cycles += n;
    this.instret += n - 1;
    this.#inflight = 0;
    this.#enterTrap(cause, false, tval);
    return n;
  }

  /**
   * Enters the trap handler: `mepc`, `mcause`, `mtval`, `mstatus` (MPIE <- MIE, MIE <- 0), `pc` <- `mtvec`.
   */
  #enterTrap(cause: number, isInterrupt: boolean, tval: number): void {
    this.mepc = this.pc;
    this.mcause = isInterrupt ? 0x8000_0000 | cause | 0 : cause;
    this.mtval = tval | 0;
    const s = this.mstatus;
    this.mstatus = (s & ~MSTATUS_WRITABLE) | ((s & MSTATUS_MIE) !== 0 ? MSTATUS_MPIE : 0);
    const base = this.mtvec & ~3;
    this.pc = isInterrupt && (this.mtvec & 3) === 1 ? (base + 4 * cause) | 0 : base;
  }

  /** Records an exception for the hot loop to take. */
  #raise(cause: number, value: number): void {
    this.#fault = cause + 1;
    this.#faultValue = value | 0;
  }

  /** Reads one byte at a physical address for a split access, or -1 on a fault. */
  #readByte(addr: number): number {
    const o = (addr ^ 0x80000000) >>> 0;
    if (o < this.#ramSize) return this.#u8[o] as number;
    return this.#bus.read(addr >>> 0, 1);
  }

  /** Loads outside the fast path: MMIO, misaligned, or faulting. Returns the raw (zero-extended) value. */
  #loadSlow(addr: number, width: number, steps: number): number {
    this.#inflight = steps - 1;
    const o = (addr ^ 0x80000000) >>> 0;
    if (o >= this.#ramSize && (addr & (width - 1)) === 0) {
      const v = this.#bus.read(addr >>> 0, width);
      if (v < 0) this.#raise(Exception.LoadAccessFault, addr);
      return v | 0;
    }
    // Misaligned: split into bytes, little-endian, as QEMU's TCG does.
    let v = 0;
    for (let i = 0; i < width; i++) {
      const b = this.#readByte((addr + i) | 0);
      if (b < 0) {
        this.#raise(Exception.LoadAccessFault, addr);
        return 0;
      }
      v |= (b & 0xff) << (8 * i);
    }
    return v;
  }

  /** Stores outside the fast path: MMIO, misaligned, or faulting. */
  #storeSlow(addr: number, width: number, value: number, steps: number): void {
    this.#inflight = steps - 1;
    const o = (addr ^ 0x80000000) >>> 0;
    const size = this.#ramSize;
    if (o >= size && (addr & (width - 1)) === 0) {
      const mask = width === 4 ? -1 : (1 << (8 * width)) - 1;
      if (!this.#bus.write(addr >>> 0, width, (value & mask) >>> 0)) this.#raise(Exception.StoreAccessFault, addr);
      return;
    }
    // Misaligned: check every byte first, so a faulting store writes nothing.
    for (let i = 0; i < width; i++) {
      const bo = ((addr + i) ^ 0x80000000) >>> 0;
      if (bo >= size && !this.#bus.probe((addr + i) >>> 0, 1)) {
        this.#raise(Exception.StoreAccessFault, addr);
        return;
      }
    }
    for (let i = 0; i < width; i++) {
      const a = (addr + i) | 0;
      const b = (value >>> (8 * i)) & 0xff;
      const bo = (a ^ 0x80000000) >>> 0;
      if (bo < size) {
        this.#u8[bo] = b;
        if (this.#trackDirty) this.#dirty[bo >>> 12] = 1;
      } else {
        this.#bus.write(a >>> 0, 1, b);
      }
    }
  }

  /** Cycles at the instruction being executed (counters read inside `execute`). */
  #nowCycles(): number {
    return this.cycles + this.#inflight;
  }

  /**
   * The current virtual cycle count: `cycles` outside {@link Cpu.execute}; inside it (from an MMIO access), the
   * count at the instruction being executed.
   */
  now(): number {
    return this.cycles + this.#inflight;
  }

  /**
   * Carries out CSRRW/CSRRS/CSRRC and their immediate forms.
   *
   * @returns false for an illegal instruction (unknown CSR, or a write to a read-only one).
   */
  #csrInstruction(inst: number, f3: number): boolean {
    const csr = inst >>> 20;
    const rs1 = (inst >> 15) & 31;
    const rd = (inst >> 7) & 31;
    const op = f3 & 3;
    const src = f3 >= 5 ? rs1 : (this.x[rs1] as number);
    const writes = op === 1 || rs1 !== 0;
    if (writes && csr >>> 10 === 3) return false;
    const old = this.readCsr(csr);
    if (old === undefined) return false;
    if (writes) {
      const nv = op === 1 ? src : op === 2 ? old | src : old & ~src;
      this.writeCsr(csr, nv | 0);
    }
    this.x[rd] = old;
    return true;
  }

  /**
   * Reads a CSR as the guest sees it.
   *
   * @param csr CSR number.
   * @returns The value (int32 view), or `undefined` when the CSR does not exist.
   */
  readCsr(csr: number): number | undefined {
    switch (csr) {
      case Csr.mstatus:
        return this.mstatus;
      case Csr.misa:
        return MISA_VALUE | 0;
      case Csr.mie:
        return this.mie;
      case Csr.mip:
        return this.mip;
      case Csr.mtvec:
        return this.mtvec;
      case Csr.mscratch:
        return this.mscratch;
      case Csr.mepc:
        return this.mepc;
      case Csr.mcause:
        return this.mcause;
      case Csr.mtval:
        return this.mtval;
      case Csr.mstatush:
      case Csr.mcountinhibit:
      case Csr.mvendorid:
      case Csr.marchid:
      case Csr.mimpid:
      case Csr.mhartid:
      case Csr.mconfigptr:
        return ID_ZERO;
      case Csr.mcycle:
      case Csr.cycle:
        return add64Lo(this.#nowCycles(), this.mcycleOffsetLo);
      case Csr.mcycleh:
      case Csr.cycleh:
        return add64Hi(this.#nowCycles(), this.mcycleOffsetLo, this.mcycleOffsetHi);
      case Csr.minstret:
      case Csr.instret:
        return add64Lo(this.instret + this.#inflight, this.minstretOffsetLo);
      case Csr.minstreth:
      case Csr.instreth:
        return add64Hi(this.instret + this.#inflight, this.minstretOffsetLo, this.minstretOffsetHi);
      case Csr.time:
        return Number(this.readTime(this.#nowCycles()) & 0xffff_ffffn) | 0;
      case Csr.timeh:
        return Number(this.readTime(this.#nowCycles()) >> 32n) | 0;
      default:
        // mhpmcounter3-31(h), hpmcounter3-31(h) and mhpmevent3-31 are hard-wired to zero.
        if ((csr >= 0xb03 && csr <= 0xb1f) || (csr >= 0xb83 && csr <= 0xb9f)) return 0;
        if ((csr >= 0xc03 && csr <= 0xc1f) || (csr >= 0xc83 && csr <= 0xc9f)) return 0;
        if (csr >= 0x323 && csr <= 0x33f) return 0;
        return undefined;
    }
  }

  /**
   * Writes a CSR as the guest does (WARL fields keep only legal values; read-only CSRs are the caller's check).
   *
   * @param csr CSR number (must exist: see {@link Cpu.readCsr}).
   * @param value The value (int32 or uint32 view).
   */
  writeCsr(csr: number, value: number): void {
    const v = value | 0;
    switch (csr) {
      case Csr.mstatus:
        this.mstatus = (v & MSTATUS_WRITABLE) | MSTATUS_MPP;
        break;
      case Csr.mie:
        this.mie = v & MIE_WRITABLE;
        break;
      case Csr.mtvec:
        // Modes 2 and 3 are reserved: the write is ignored, as QEMU does.
        if ((v & 3) < 2) this.mtvec = v;
        break;
      case Csr.mscratch:
        this.mscratch = v;
        break;
      case Csr.mepc:
        this.mepc = v & ~3;
        break;
      case Csr.mcause:
        this.mcause = v;
        break;
      case Csr.mtval:
        this.mtval = v;
        break;
      case Csr.mcycle:
      case Csr.mcycleh:
      case Csr.minstret:
      case Csr.minstreth: {
        const isCycle = csr === Csr.mcycle || csr === Csr.mcycleh;
        const base = isCycle ? this.#nowCycles() : this.instret + this.#inflight;
        // The write lands at the end of this instruction, whose own step is counted after it: subtract it.
        const cur = isCycle
          ? join64(add64Lo(base, this.mcycleOffsetLo), add64Hi(base, this.mcycleOffsetLo, this.mcycleOffsetHi))
          : join64(add64Lo(base, this.minstretOffsetLo), add64Hi(base, this.minstretOffsetLo, this.minstretOffsetHi));
        const hi = csr === Csr.mcycleh || csr === Csr.minstreth;
        const want = hi ? (cur & 0xffff_ffffn) | (BigInt(v >>> 0) << 32n) : (cur & ~0xffff_ffffn) | BigInt(v >>> 0);
        const off = (want - BigInt(base + 1)) & MASK64;
        const lo = Number(off & 0xffff_ffffn) | 0;
        const h = Number(off >> 32n) | 0;
        if (isCycle) {
          this.mcycleOffsetLo = lo;
          this.mcycleOffsetHi = h;
        } else {
          this.minstretOffsetLo = lo;
          this.minstretOffsetHi = h;
        }
        break;
      }
      default:
        // misa (WARL, fixed), mip (no software-writable bits in M-only), mstatush, mcountinhibit and the
        // hard-wired-zero counters ignore writes.
        break;
    }
  }
}

/** High 32 bits of the unsigned 64-bit product of two 32-bit values (int32 result). */
function mulhu(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
}

/** Low word of `count + (offHi:offLo)` (int32 view). `count` is an integer below 2^53. */
function add64Lo(count: number, offLo: number): number {
  return ((count % TWO32) + (offLo >>> 0)) | 0;
}

/** High word of `count + (offHi:offLo)` (int32 view). */
function add64Hi(count: number, offLo: number, offHi: number): number {
  const lo = (count % TWO32) + (offLo >>> 0);
  return (Math.floor(count / TWO32) + (offHi >>> 0) + (lo >= TWO32 ? 1 : 0)) | 0;
}

function join64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
