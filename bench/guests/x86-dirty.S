# x86-dirty: the `dirty` workload (QEMU's migration-test a-b-bootblock, written anew) as a 512-byte x86 boot sector
# for QEMU's `pc` machine, so QEMU 7.2 can run the same workload as Ferry's rv32 guests/dirty.elf.
#
# 16-bit entry at 0x7c00 -> A20 on (port 0x92) -> 32-bit protected mode (flat 4 GiB code and data) -> 'A' on COM1
# -> forever: increment the first byte of every 4 KiB page in [1 MiB, 100 MiB), then print 'B' on COM1.
#
# `delay` (a little-endian u32 at byte offset 0x1f8 of the sector) is a spin count run after every page: 0 (as
# built) runs flat out; bench/compare.ts patches it to slow the guest down to a chosen dirty rate.
#
# Build: sh bench/guests/build.sh  (GNU as --32 + ld -m elf_i386 --oformat binary)

        .code16
        .text
        .globl _start
_start:
        cli
        cld
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    $0x7c00, %sp

        # A20 through the "fast A20" port (QEMU's pc has it).
        inb     $0x92, %al
        orb     $0x02, %al
        andb    $0xfe, %al
        outb    %al, $0x92

        lgdtl   gdt_desc
        movl    %cr0, %eax
        orl     $1, %eax
        movl    %eax, %cr0
        ljmpl   $0x08, $pm32

        .code32
pm32:
        movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %fs
        movw    %ax, %gs
        movw    %ax, %ss
        movl    $0x7c00, %esp

        movw    $0x3f8, %dx
        movb    $'A', %al
        outb    %al, %dx

pass:
        movl    $0x100000, %ebx
page:
        incb    (%ebx)
        movl    delay, %ecx
        jecxz   next
spin:
        decl    %ecx
        jnz     spin
next:
        addl    $0x1000, %ebx
        cmpl    $0x6400000, %ebx
        jb      page
        movb    $'B', %al
        outb    %al, %dx
        jmp     pass

        .p2align 3
gdt:
        .quad   0
        .quad   0x00cf9a000000ffff      # 0x08: code, base 0, limit 4 GiB, 32-bit
        .quad   0x00cf92000000ffff      # 0x10: data, base 0, limit 4 GiB
gdt_desc:
        .word   gdt_desc - gdt - 1
        .long   gdt

        .org    0x1f8
delay:
        .long   0
        .org    0x1fe
        .byte   0x55, 0xaa
