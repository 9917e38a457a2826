/* Ferry rv32 guest runtime: UART output, SiFive test finisher, CSR helpers, device tree memory size. */
#ifndef FERRY_GUEST_RT_H
#define FERRY_GUEST_RT_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned int usize;

#define RAM_BASE 0x80000000u
#define UART_BASE 0x10000000u
#define CLINT_BASE 0x02000000u
#define FINISHER_BASE 0x00100000u

#define csr_read(name) ({ u32 v_; __asm__ volatile("csrr %0, " #name : "=r"(v_)); v_; })
#define csr_write(name, v) __asm__ volatile("csrw " #name ", %0" ::"r"((u32)(v)))
#define csr_set(name, v) __asm__ volatile("csrs " #name ", %0" ::"r"((u32)(v)))
#define csr_clear(name, v) __asm__ volatile("csrc " #name ", %0" ::"r"((u32)(v)))

void putc(int c);
void puts(const char *s);
void put_hex32(u32 v);
void put_dec(u32 v);
int getc_nonblock(void);
void finish(int code) __attribute__((noreturn));
u32 dtb_ram_size(const void *dtb, u32 fallback);
u64 mtime_read(void);
void mtimecmp_write(u64 v);
void *memset(void *d, int c, usize n);
void *memcpy(void *d, const void *s, usize n);

#endif
