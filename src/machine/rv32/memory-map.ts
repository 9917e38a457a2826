/**
 * The physical memory map of `ferry-rv32`: the parts of QEMU's RISC-V `virt` machine (7.2) that it implements, at
 * the same addresses, so one guest ELF runs unchanged on both.
 *
 * QEMU: `virt_memmap[]` in `hw/riscv/virt.c`.
 *
 * @module
 */

/** Base address of guest RAM. QEMU: `VIRT_DRAM`. */
export const RAM_BASE = 0x8000_0000;
/** Default RAM size: 128 MiB, QEMU's default `-m` for `virt`. */
export const DEFAULT_RAM_SIZE = 128 * 1024 * 1024;
/** The guest page size the dirty map tracks (4 KiB). */
export const PAGE_SIZE = 4096;
/** Log2 of {@link PAGE_SIZE}. */
export const PAGE_SHIFT = 12;

/** SiFive test finisher ("sifive,test0"). QEMU: `VIRT_TEST`. */
export const FINISHER_BASE = 0x0010_0000;
/** Size of the finisher's MMIO window. */
export const FINISHER_SIZE = 0x1000;
/** Core-local interruptor (SiFive CLINT layout; QEMU 7.2 models it as ACLINT MSWI + MTIMER). QEMU: `VIRT_CLINT`. */
export const CLINT_BASE = 0x0200_0000;
/** Size of the CLINT's MMIO window. */
export const CLINT_SIZE = 0x1_0000;
/** NS16550A UART. QEMU: `VIRT_UART0`. */
export const UART_BASE = 0x1000_0000;
/** Size of the UART's MMIO window. */
export const UART_SIZE = 0x100;

/** The CLINT timebase: 10 MHz, as QEMU's `virt` (`RISCV_ACLINT_DEFAULT_TIMEBASE_FREQ`). */
export const TIMEBASE_HZ = 10_000_000;
