/**
 * The core-local interruptor (SiFive CLINT layout, one hart): `msip` at +0, `mtimecmp` at +0x4000, `mtime` at
 * +0xBFF8, 32-bit accesses only (QEMU 7.2 models it as ACLINT MSWI + MTIMER with 4-byte minimum accesses).
 *
 * Time is virtual and deterministic: `mtime = floor(cycles / cyclesPerTick) + offset` (mod 2^64), where `cycles` is
 * the hart's virtual cycle count (instructions, plus idle time skipped in `wfi`) and `offset` is what guest writes to
 * `mtime` set. With the default `cyclesPerTick` of 10, the 10 MHz timebase matches a 100 MHz virtual CPU. Time
 * does not advance while the vCPU is stopped or throttled, as QEMU's `QEMU_CLOCK_VIRTUAL` (icount-like).
 *
 * `mtimecmp` resets to 0, as in QEMU 7.2, so MTIP is pending from reset until the guest programs the timer.
 *
 * QEMU: `hw/intc/riscv_aclint.c`.
 *
 * @module
 */

import type { MmioDevice } from "./bus.js";
import { MIP_MSIP, MIP_MTIP } from "./csr.js";

const MASK64 = 0xffff_ffff_ffff_ffffn;
const MASK32 = 0xffff_ffffn;

/** Offset of hart 0's `msip`. */
const MSIP = 0x0;
/** Offset of hart 0's `mtimecmp`. */
const MTIMECMP = 0x4000;
/** Offset of `mtime`. */
const MTIME = 0xbff8;

/** The CLINT's migratable state. 64-bit values are split into uint32 halves. */
export interface ClintState {
  /** Hart 0's `msip` bit (0 or 1). */
  msip: number;
  /** `mtimecmp`, low word. */
  mtimecmpLo: number;
  /** `mtimecmp`, high word. */
  mtimecmpHi: number;
  /** `mtime - floor(cycles / cyclesPerTick)` (mod 2^64), low word. QEMU: `time_delta`. */
  mtimeOffsetLo: number;
  /** High word of the `mtime` offset. */
  mtimeOffsetHi: number;
}

/** The CLINT of one hart. */
export class Clint implements MmioDevice {
  /** Hart 0's `msip` (0 or 1). */
  msip = 0;
  #mtimecmp = 0n;
  #offset = 0n;
  /** Cycle count at which MTIP becomes pending (≤ now: pending; Infinity: never). */
  #deadline = 0;
  readonly #cyclesPerTick: number;
  readonly #now: () => number;

  /**
   * @param now Returns the hart's current virtual cycle count.
   * @param cyclesPerTick Virtual cycles per `mtime` tick (a positive integer).
   */
  constructor(now: () => number, cyclesPerTick: number) {
    if (!Number.isInteger(cyclesPerTick) || cyclesPerTick < 1 || cyclesPerTick > 1_000_000) {
      throw new RangeError(`Cannot create a CLINT: cyclesPerTick ${cyclesPerTick} is not an integer in [1, 1000000]`);
    }
    this.#now = now;
    this.#cyclesPerTick = cyclesPerTick;
    this.#recompute();
  }

  /** Virtual cycles per `mtime` tick. */
  get cyclesPerTick(): number {
    return this.#cyclesPerTick;
  }

  /** `mtime` at a given cycle count. */
  mtimeAt(cycles: number): bigint {
    return (BigInt(Math.floor(cycles / this.#cyclesPerTick)) + this.#offset) & MASK64;
  }

  /** The cycle count at which MTIP becomes pending: ≤ the current count when pending, Infinity when never. */
  get deadline(): number {
    return this.#deadline;
  }

  /** The `mip` bits the CLINT drives (MSIP, MTIP) at a given cycle count. */
  mipAt(cycles: number): number {
    return (this.msip !== 0 ? MIP_MSIP : 0) | (cycles >= this.#deadline ? MIP_MTIP : 0);
  }

  /** Recomputes the MTIP deadline after `mtimecmp` or the `mtime` offset changed. */
  #recompute(): void {
    const cycles = this.#now();
    const ticks = Math.floor(cycles / this.#cyclesPerTick);
    const mtime = (BigInt(ticks) + this.#offset) & MASK64;
    if (mtime >= this.#mtimecmp) {
      this.#deadline = 0;
      return;
    }
    const at = (ticks + Number(this.#mtimecmp - mtime)) * this.#cyclesPerTick;
    this.#deadline = at <= Number.MAX_SAFE_INTEGER ? at : Number.POSITIVE_INFINITY;
  }

  accepts(offset: number, size: number): boolean {
    return size === 4 && offset < 0x10000;
  }

  read(offset: number, size: number): number {
    if (size !== 4) return -1;
    switch (offset) {
      case MSIP:
        return this.msip;
      case MTIMECMP:
        return Number(this.#mtimecmp & MASK32);
      case MTIMECMP + 4:
        return Number(this.#mtimecmp >> 32n);
      case MTIME:
        return Number(this.mtimeAt(this.#now()) & MASK32);
      case MTIME + 4:
        return Number(this.mtimeAt(this.#now()) >> 32n);
      default:
        return 0;
    }
  }

  write(offset: number, size: number, value: number): boolean {
    if (size !== 4) return false;
    const v = BigInt(value >>> 0);
    switch (offset) {
      case MSIP:
        this.msip = value & 1;
        break;
      case MTIMECMP:
        this.#mtimecmp = (this.#mtimecmp & ~MASK32) | v;
        this.#recompute();
        break;
      case MTIMECMP + 4:
        this.#mtimecmp = (this.#mtimecmp & MASK32) | (v << 32n);
        this.#recompute();
        break;
      case MTIME:
      case MTIME + 4: {
        const cycles = this.#now();
        const cur = this.mtimeAt(cycles);
        const want = offset === MTIME ? (cur & ~MASK32) | v : (cur & MASK32) | (v << 32n);
        this.#offset = (want - BigInt(Math.floor(cycles / this.#cyclesPerTick))) & MASK64;
        this.#recompute();
        break;
      }
      default:
        break;
    }
    return true;
  }

  /** Returns the state as a plain object. */
  getState(): ClintState {
    return {
      msip: this.msip,
      mtimecmpLo: Number(this.#mtimecmp & MASK32),
      mtimecmpHi: Number(this.#mtimecmp >> 32n),
      mtimeOffsetLo: Number(this.#offset & MASK32),
      mtimeOffsetHi: Number(this.#offset >> 32n),
    };
  }

  /** Loads a state (validated by the caller). Call after the hart's cycle count is restored. */
  setState(s: ClintState): void {
    this.msip = s.msip & 1;
    this.#mtimecmp = (BigInt(s.mtimecmpHi >>> 0) << 32n) | BigInt(s.mtimecmpLo >>> 0);
    this.#offset = (BigInt(s.mtimeOffsetHi >>> 0) << 32n) | BigInt(s.mtimeOffsetLo >>> 0);
    this.#recompute();
  }

  /** Resets: `msip` 0, `mtimecmp` 0, `mtime` offset 0 (call after the hart's cycle count is reset). */
  reset(): void {
    this.msip = 0;
    this.#mtimecmp = 0n;
    this.#offset = 0n;
    this.#recompute();
  }
}
