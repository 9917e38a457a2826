/*
 * Start-up code for Ferry's rv32 guests (machine mode, one hart).
 *
 * Entered at the ELF entry point with a0 = hart id and a1 = the device tree's address, as QEMU's virt machine's
 * reset vector passes them (`-bios none -kernel guest.elf`) and as Ferry's loader sets them. Sets up gp and sp,
 * clears .bss, points mtvec at a handler that reports any unexpected trap, then calls main(hartid, dtb).
 * When main returns, the machine powers off through the SiFive test finisher with main's result.
 */
  .file "crt0.S"
  .section .text.init, "ax"
  .globl _start
_start:
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la sp, __stack_top
  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
  sw zero, 0(t0)
  addi t0, t0, 4
  j 1b
2:
  la t0, unexpected_trap_entry
  csrw mtvec, t0
  call main
  call finish
3:
  j 3b

  .text
  .align 4
  .globl unexpected_trap_entry
unexpected_trap_entry:
  la sp, __stack_top
  csrr a0, mcause
  csrr a1, mepc
  csrr a2, mtval
  call unexpected_trap
4:
  j 4b
