/*
 * dirty: QEMU's migration-test workload (tests/migration/i386/a-b-bootblock.S) for ferry-rv32 and QEMU's virt.
 *
 * The region is every 4 KiB page from RAM base + 1 MiB to RAM base + 100 MiB, or to the end of RAM when RAM is
 * smaller; the RAM size comes from the device tree passed in a1 (128 MiB if there is none). The guest zeroes the
 * first byte of every page in the region, writes 'A' to the UART, then forever increments the first byte of each
 * page in order and writes 'B' after each full pass. So the region always satisfies checkDirtyInvariant().
 */
#include "rt.h"

#define MiB (1024u * 1024u)
#define PAGE 4096u

int main(u32 hart, void *dtb) {
  (void)hart;
  u32 ram = dtb_ram_size(dtb, 128 * MiB);
  u32 start = RAM_BASE + 1 * MiB;
  u32 end = RAM_BASE + (ram < 100 * MiB ? ram : 100 * MiB);
  for (u32 p = start; p < end; p += PAGE) *(volatile u8 *)p = 0;
  putc('A');
  for (;;) {
    for (u32 p = start; p < end; p += PAGE) *(volatile u8 *)p += 1;
    putc('B');
  }
}
