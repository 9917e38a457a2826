/* exit: powers off with "pass" at once. The CPU benchmark times QEMU's start-up and shutdown with it. */
#include "rt.h"

int main(u32 hart, void *dtb) {
  (void)hart;
  (void)dtb;
  return 0;
}
