/**
 * The physical address decoder for everything outside RAM: the SiFive test finisher, the CLINT and the UART.
 *
 * The CPU's hot loop handles RAM itself and calls the bus only for other addresses, so this path is not hot.
 * An access no device claims, or one a device rejects (a width it does not support), is an access fault.
 *
 * @module
 */

import { CLINT_BASE, CLINT_SIZE, FINISHER_BASE, FINISHER_SIZE, UART_BASE, UART_SIZE } from "./memory-map.js";

/** A memory-mapped device: register reads and writes by offset inside its window. */
export interface MmioDevice {
  /**
   * Reads a register.
   *
   * @param offset Byte offset inside the device's window, aligned to `size`.
   * @param size 1, 2 or 4.
   * @returns The value (zero-extended, ≥ 0), or -1 when the device rejects the access (an access fault).
   */
  read(offset: number, size: number): number;
  /**
   * Writes a register.
   *
   * @param offset Byte offset inside the device's window, aligned to `size`.
   * @param size 1, 2 or 4.
   * @param value The value, masked to `size` bytes.
   * @returns false when the device rejects the access (an access fault).
   */
  write(offset: number, size: number, value: number): boolean;
  /** Whether the device accepts an access of this size at this offset (no side effects). */
  accepts(offset: number, size: number): boolean;
}

/** The devices on the bus. */
export interface BusDevices {
  readonly finisher: MmioDevice;
  readonly clint: MmioDevice;
  readonly uart: MmioDevice;
}

/** Decodes physical addresses outside RAM to devices. */
export class Bus {
  readonly #finisher: MmioDevice;
  readonly #clint: MmioDevice;
  readonly #uart: MmioDevice;

  /** @param devices The devices at their `virt` addresses. */
  constructor(devices: BusDevices) {
    this.#finisher = devices.finisher;
    this.#clint = devices.clint;
    this.#uart = devices.uart;
  }

  #decode(addr: number): MmioDevice | undefined {
    if ((addr - UART_BASE) >>> 0 < UART_SIZE) return this.#uart;
    if ((addr - CLINT_BASE) >>> 0 < CLINT_SIZE) return this.#clint;
    if ((addr - FINISHER_BASE) >>> 0 < FINISHER_SIZE) return this.#finisher;
    return undefined;
  }

  #base(dev: MmioDevice): number {
    return dev === this.#uart ? UART_BASE : dev === this.#clint ? CLINT_BASE : FINISHER_BASE;
  }

  /**
   * Reads `size` bytes at physical address `addr` (uint32, aligned to `size`).
   *
   * @returns The value (≥ 0), or -1 for an access fault.
   */
  read(addr: number, size: number): number {
    const dev = this.#decode(addr);
    if (dev === undefined) return -1;
    return dev.read(addr - this.#base(dev), size);
  }

  /**
   * Writes `size` bytes at physical address `addr` (uint32, aligned to `size`).
   *
   * @returns false for an access fault.
   */
  write(addr: number, size: number, value: number): boolean {
    const dev = this.#decode(addr);
    if (dev === undefined) return false;
    return dev.write(addr - this.#base(dev), size, value);
  }

  /** Whether an access of `size` bytes at `addr` would be accepted (no side effects). */
  probe(addr: number, size: number): boolean {
    const dev = this.#decode(addr);
    return dev?.accepts(addr - this.#base(dev), size) === true;
  }
}
