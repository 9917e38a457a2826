/*
 * echo: the interactive guest. Enables the UART's FIFO, prints a banner, then echoes every byte it receives
 * (polling LSR.DR). On ^D (0x04) it prints "bye" and powers off with "pass".
 */
#include "rt.h"

int main(u32 hart, void *dtb) {
  (void)hart;
  (void)dtb;
  *(volatile u8 *)(UART_BASE + 2) = 0x07; /* FCR: enable and clear the FIFOs */
  puts("echo: type, ^D quits\n");
  for (;;) {
    int c = getc_nonblock();
    if (c < 0) continue;
    if (c == 4) break;
    putc(c);
  }
  puts("\nbye\n");
  return 0;
}
