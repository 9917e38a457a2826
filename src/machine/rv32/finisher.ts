/**
 * The SiFive test finisher ("sifive,test0"): the guest powers the machine off, or resets it, with one store.
 *
 * A 16- or 32-bit store to offset 0: low half 0x5555 = power off, pass; 0x3333 = power off, fail with the exit code
 * in the high half; 0x7777 = reset. Other values are ignored; reads return 0; byte accesses fault (QEMU's device
 * accepts 2- and 4-byte accesses only). QEMU: `hw/misc/sifive_test.c`.
 *
 * @module
 */

import type { MmioDevice } from "./bus.js";

/** Status codes written to the finisher. QEMU: `FINISHER_*` in `include/hw/misc/sifive_test.h`. */
export const FinisherCode = {
  /** QEMU: `FINISHER_FAIL`. */
  Fail: 0x3333,
  /** QEMU: `FINISHER_PASS`. */
  Pass: 0x5555,
  /** QEMU: `FINISHER_RESET`. */
  Reset: 0x7777,
} as const;

/** The finisher's migratable state: whether the guest powered the machine off, and with which exit code. */
export interface FinisherState {
  /** 1 once the guest wrote pass or fail; the machine runs no more instructions. */
  poweredOff: number;
  /** The exit status: 0 for pass, else the fail code (high half of the write; QEMU exits with it, so 0 too). */
  exitCode: number;
}

/** The SiFive test finisher. */
export class Finisher implements MmioDevice {
  /** See {@link FinisherState.poweredOff}. */
  poweredOff = 0;
  /** See {@link FinisherState.exitCode}. */
  exitCode = 0;
  /** Set by a reset request; the machine clears it when it resets. */
  resetRequested = false;

  accepts(offset: number, size: number): boolean {
    return size >= 2 && offset < 0x1000;
  }

  read(offset: number, size: number): number {
    return this.accepts(offset, size) ? 0 : -1;
  }

  write(offset: number, size: number, value: number): boolean {
    if (!this.accepts(offset, size)) return false;
    if (offset !== 0) return true;
    const status = value & 0xffff;
    if (status === FinisherCode.Pass) {
      this.poweredOff = 1;
      this.exitCode = 0;
    } else if (status === FinisherCode.Fail) {
      this.poweredOff = 1;
      this.exitCode = (value >>> 16) & 0xffff;
    } else if (status === FinisherCode.Reset) {
      this.resetRequested = true;
    }
    return true;
  }

  /** Returns the state as a plain object. */
  getState(): FinisherState {
    return { poweredOff: this.poweredOff, exitCode: this.exitCode };
  }

  /** Loads a state (validated by the caller). */
  setState(s: FinisherState): void {
    this.poweredOff = s.poweredOff;
    this.exitCode = s.exitCode;
    this.resetRequested = false;
  }

  /** Powers back on. */
  reset(): void {
    this.poweredOff = 0;
    this.exitCode = 0;
    this.resetRequested = false;
  }
}
