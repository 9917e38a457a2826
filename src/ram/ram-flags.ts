/**
 * RAM record flags and page geometry of QEMU's iterative `ram` section.
 *
 * Every RAM record starts with one big-endian u64: the page offset inside its block with the flags below in the
 * low {@link TARGET_PAGE_BITS} bits. QEMU: `RAM_SAVE_FLAG_*` in `migration/ram.c`, `RAM_SAVE_FLAG_HOOK` in
 * `migration/qemu-file.h` (7.2).
 *
 * @module
 */

/**
 * The flag bits of a RAM record word. Members carry QEMU's names in their TSDoc so the code greps against
 * `migration/ram.c`.
 */
export const RamFlag = {
  /** QEMU: `RAM_SAVE_FLAG_FULL`. Obsolete since 2009, never sent; a loader rejects it. */
  Full: 0x001,
  /** QEMU: `RAM_SAVE_FLAG_ZERO` (once `COMPRESS`). The page is filled with one byte (always 0 when sent). */
  Zero: 0x002,
  /** QEMU: `RAM_SAVE_FLAG_MEM_SIZE`. The block list follows; the offset part is the total RAM size. */
  MemSize: 0x004,
  /** QEMU: `RAM_SAVE_FLAG_PAGE`. One raw target page follows. */
  Page: 0x008,
  /** QEMU: `RAM_SAVE_FLAG_EOS`. End of this section's RAM data. */
  Eos: 0x010,
  /** QEMU: `RAM_SAVE_FLAG_CONTINUE`. Same block as the last one named on this stream; the name is omitted. */
  Continue: 0x020,
  /** QEMU: `RAM_SAVE_FLAG_XBZRLE`. A delta-encoded page follows (not supported by Ferry yet). */
  Xbzrle: 0x040,
  /** QEMU: `RAM_SAVE_FLAG_HOOK`. RDMA control hook (never on sockets or files; not supported). */
  Hook: 0x080,
  /** QEMU: `RAM_SAVE_FLAG_COMPRESS_PAGE`. A zlib-compressed page (legacy `compress`; not supported). */
  CompressPage: 0x100,
  /** QEMU: `RAM_SAVE_FLAG_MULTIFD_FLUSH` (8.0+). A multifd sync point (not supported). */
  MultifdFlush: 0x200,
} as const;

/** One of the {@link RamFlag} values. */
export type RamFlag = (typeof RamFlag)[keyof typeof RamFlag];

/** Log2 of the target page size. QEMU: `TARGET_PAGE_BITS` (x86, arm, riscv: 12). */
export const TARGET_PAGE_BITS = 12;

/** The target page size in bytes. QEMU: `TARGET_PAGE_SIZE`. */
export const TARGET_PAGE_SIZE = 4096;

/** The low bits of a record word that hold flags. QEMU: `~TARGET_PAGE_MASK`. */
export const RAM_FLAGS_MASK = TARGET_PAGE_SIZE - 1;

/** Every flag bit QEMU has ever defined; any other bit in a record word is unknown. */
export const KNOWN_RAM_FLAGS = 0x3ff;

/** The section idstr of the RAM device. QEMU: `register_savevm_live("ram", 0, 4, ...)`. */
export const RAM_SECTION_NAME = "ram";

/** The version of the RAM section. QEMU: `ram_load` rejects anything but 4. */
export const RAM_SECTION_VERSION = 4;

/** The largest block idstr in bytes (a counted string). QEMU: `RAMBlock.idstr[256]` incl. the NUL. */
export const MAX_IDSTR_BYTES = 255;
