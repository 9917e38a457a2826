/* Ferry rv32 guest runtime; see rt.h. */
#include "rt.h"

#define REG8(addr) (*(volatile u8 *)(addr))
#define REG32(addr) (*(volatile u32 *)(addr))

#define UART_THR 0
#define UART_RBR 0
#define UART_LSR 5
#define LSR_DR 0x01
#define LSR_THRE 0x20

void putc(int c) {
  while ((REG8(UART_BASE + UART_LSR) & LSR_THRE) == 0) {
  }
  REG8(UART_BASE + UART_THR) = (u8)c;
}

void puts(const char *s) {
  while (*s) putc(*s++);
}

void put_hex32(u32 v) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 28; i >= 0; i -= 4) putc(digits[(v >> i) & 15]);
}

void put_dec(u32 v) {
  char buf[12];
  int n = 0;
  do {
    /* Division by 10 through the M extension's divu. */
    buf[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) putc(buf[--n]);
}

int getc_nonblock(void) {
  if ((REG8(UART_BASE + UART_LSR) & LSR_DR) == 0) return -1;
  return REG8(UART_BASE + UART_RBR);
}

void finish(int code) {
  /* SiFive test finisher: 0x5555 = pass, (code << 16) | 0x3333 = fail with code. */
  REG32(FINISHER_BASE) = code == 0 ? 0x5555u : (((u32)code << 16) | 0x3333u);
  for (;;) {
  }
}

void unexpected_trap(u32 mcause, u32 mepc, u32 mtval) {
  puts("\nunexpected trap: mcause=");
  put_hex32(mcause);
  puts(" mepc=");
  put_hex32(mepc);
  puts(" mtval=");
  put_hex32(mtval);
  putc('\n');
  finish(1);
}

static u32 be32(const u8 *p) {
  return ((u32)p[0] << 24) | ((u32)p[1] << 16) | ((u32)p[2] << 8) | (u32)p[3];
}

static int name_is_memory(const char *s) {
  const char *m = "memory";
  while (*m) {
    if (*s++ != *m++) return 0;
  }
  return *s == 0 || *s == '@';
}

static int str_eq(const char *a, const char *b) {
  while (*a && *a == *b) {
    a++;
    b++;
  }
  return *a == *b;
}

/*
 * Reads the size of RAM from the device tree that QEMU's virt machine (and Ferry's loader) passes in a1: the
 * first /memory node's "reg" (two address cells, two size cells; only the low size word counts on rv32).
 * Returns `fallback` when the blob is missing or malformed.
 */
u32 dtb_ram_size(const void *dtb, u32 fallback) {
  const u8 *b = (const u8 *)dtb;
  if (b == 0 || be32(b) != 0xd00dfeedu) return fallback;
  u32 total = be32(b + 4);
  u32 off_struct = be32(b + 8);
  u32 off_strings = be32(b + 12);
  if (off_struct >= total || off_strings >= total) return fallback;
  const u8 *p = b + off_struct;
  const u8 *end = b + total;
  int depth = 0;
  int in_memory = 0;
  while (p + 4 <= end) {
    u32 tok = be32(p);
    p += 4;
    if (tok == 1) { /* FDT_BEGIN_NODE */
      const char *name = (const char *)p;
      depth++;
      if (depth == 2 && name_is_memory(name)) in_memory = 1;
      while (p < end && *p) p++;
      p = (const u8 *)(((usize)p + 4) & ~3u);
    } else if (tok == 2) { /* FDT_END_NODE */
      if (depth == 2) in_memory = 0;
      depth--;
    } else if (tok == 3) { /* FDT_PROP */
      u32 len = be32(p);
      u32 nameoff = be32(p + 4);
      const u8 *val = p + 8;
      if (in_memory && str_eq((const char *)(b + off_strings + nameoff), "reg") && len >= 16) return be32(val + 12);
      p = (const u8 *)(((usize)val + len + 3) & ~3u);
    } else if (tok == 4) { /* FDT_NOP */
    } else {
      break; /* FDT_END or junk */
    }
  }
  return fallback;
}

u64 mtime_read(void) {
  volatile u32 *mtime = (volatile u32 *)(CLINT_BASE + 0xbff8);
  u32 hi, lo;
  do {
    hi = mtime[1];
    lo = mtime[0];
  } while (hi != mtime[1]);
  return ((u64)hi << 32) | lo;
}

void mtimecmp_write(u64 v) {
  volatile u32 *cmp = (volatile u32 *)(CLINT_BASE + 0x4000);
  /* Write high first with all ones so no spurious interrupt fires between the two halves. */
  cmp[1] = 0xffffffffu;
  cmp[0] = (u32)v;
  cmp[1] = (u32)(v >> 32);
}

void *memset(void *d, int c, usize n) {
  u8 *p = (u8 *)d;
  while (n--) *p++ = (u8)c;
  return d;
}

void *memcpy(void *d, const void *s, usize n) {
  u8 *p = (u8 *)d;
  const u8 *q = (const u8 *)s;
  while (n--) *p++ = *q++;
  return d;
}
