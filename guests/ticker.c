/*
 * ticker: CLINT timer interrupts. Arms mtimecmp one interval (1 ms at 10 MHz) ahead, sleeps in wfi, and on each
 * machine timer interrupt (direct-mode mtvec handler) counts a tick and disarms the timer; main prints
 * "tick N" and re-arms. Powers off with "pass" after TICKS ticks. The output does not depend on timing.
 */
#include "rt.h"

#define TICKS 10
#define INTERVAL 10000u
#define MSTATUS_MIE 0x8u
#define MIE_MTIE 0x80u

static volatile u32 ticks;
static volatile u32 bad_cause;

extern void trap_entry(void);
__asm__(
    "  .text\n"
    "  .align 4\n"
    "trap_entry:\n"
    "  addi sp, sp, -64\n"
    "  sw ra, 0(sp)\n  sw t0, 4(sp)\n  sw t1, 8(sp)\n  sw t2, 12(sp)\n"
    "  sw a0, 16(sp)\n  sw a1, 20(sp)\n  sw a2, 24(sp)\n  sw a3, 28(sp)\n"
    "  sw a4, 32(sp)\n  sw a5, 36(sp)\n  sw a6, 40(sp)\n  sw a7, 44(sp)\n"
    "  sw t3, 48(sp)\n  sw t4, 52(sp)\n  sw t5, 56(sp)\n  sw t6, 60(sp)\n"
    "  csrr a0, mcause\n"
    "  call handle_trap\n"
    "  lw ra, 0(sp)\n  lw t0, 4(sp)\n  lw t1, 8(sp)\n  lw t2, 12(sp)\n"
    "  lw a0, 16(sp)\n  lw a1, 20(sp)\n  lw a2, 24(sp)\n  lw a3, 28(sp)\n"
    "  lw a4, 32(sp)\n  lw a5, 36(sp)\n  lw a6, 40(sp)\n  lw a7, 44(sp)\n"
    "  lw t3, 48(sp)\n  lw t4, 52(sp)\n  lw t5, 56(sp)\n  lw t6, 60(sp)\n"
    "  addi sp, sp, 64\n"
    "  mret\n");

void handle_trap(u32 mcause) {
  if (mcause == 0x80000007u) {
    mtimecmp_write(~0ull);
    ticks = ticks + 1;
  } else {
    bad_cause = mcause;
    mtimecmp_write(~0ull);
  }
}

int main(u32 hart, void *dtb) {
  (void)hart;
  (void)dtb;
  mtimecmp_write(~0ull);
  csr_write(mtvec, (u32)trap_entry);
  csr_set(mie, MIE_MTIE);
  puts("ticker: ");
  put_dec(TICKS);
  puts(" ticks\n");
  for (u32 seen = 0; seen < TICKS;) {
    mtimecmp_write(mtime_read() + INTERVAL);
    for (;;) {
      /* Check and sleep with interrupts masked: wfi still wakes on a pending interrupt, which is then taken. */
      csr_clear(mstatus, MSTATUS_MIE);
      if (ticks != seen || bad_cause != 0) break;
      __asm__ volatile("wfi");
      csr_set(mstatus, MSTATUS_MIE);
    }
    csr_set(mstatus, MSTATUS_MIE);
    if (bad_cause != 0) {
      puts("unexpected mcause ");
      put_hex32(bad_cause);
      putc('\n');
      return 1;
    }
    seen = ticks;
    puts("tick ");
    put_dec(seen);
    putc('\n');
  }
  puts("done\n");
  return 0;
}
