/**
 * Constants of QEMU's whole-stream format (QEMU: `migration/savevm.c`, `migration/savevm.h`).
 *
 * @module
 */

/** `QEMU_VM_FILE_MAGIC`: "QEVM". */
export const FILE_MAGIC = 0x5145564d;
/** `QEMU_VM_FILE_VERSION`: the only stream version QEMU 7.2 and later write and accept. */
export const FILE_VERSION = 3;
/** `QEMU_VM_FILE_VERSION_COMPAT`: obsolete, rejected. */
export const FILE_VERSION_COMPAT = 2;

/** Top-level section type bytes. */
export const SectionType = {
  /** `QEMU_VM_EOF`: end of the device stream. */
  Eof: 0x00,
  /** `QEMU_VM_SECTION_START`: first section of an iterative device. */
  Start: 0x01,
  /** `QEMU_VM_SECTION_PART`: a middle section of an iterative device. */
  Part: 0x02,
  /** `QEMU_VM_SECTION_END`: last section of an iterative device. */
  End: 0x03,
  /** `QEMU_VM_SECTION_FULL`: the whole state of a non-iterative device. */
  Full: 0x04,
  /** `QEMU_VM_SUBSECTION`: only inside VMState data. */
  Subsection: 0x05,
  /** `QEMU_VM_VMDESCRIPTION`: the JSON trailer after EOF. */
  VmDescription: 0x06,
  /** `QEMU_VM_CONFIGURATION`: right after the header. */
  Configuration: 0x07,
  /** `QEMU_VM_COMMAND`: a command (return path, postcopy). */
  Command: 0x08,
  /** `QEMU_VM_SECTION_FOOTER`: ends each START/PART/END/FULL section. */
  Footer: 0x7e,
} as const;
/** A top-level section type byte. */
export type SectionType = (typeof SectionType)[keyof typeof SectionType];

/** `QEMU_VM_COMMAND` command numbers (QEMU: `enum qemu_vm_cmd`). */
export const Command = {
  /** `MIG_CMD_OPEN_RETURN_PATH`: the destination opens the return path. */
  OpenReturnPath: 1,
  /** `MIG_CMD_PING`: be32 value; the destination answers PONG. */
  Ping: 2,
  /** `MIG_CMD_POSTCOPY_ADVISE`. */
  PostcopyAdvise: 3,
  /** `MIG_CMD_POSTCOPY_LISTEN`. */
  PostcopyListen: 4,
  /** `MIG_CMD_POSTCOPY_RUN`. */
  PostcopyRun: 5,
  /** `MIG_CMD_POSTCOPY_RAM_DISCARD`. */
  PostcopyRamDiscard: 6,
  /** `MIG_CMD_PACKAGED`. */
  Packaged: 7,
  /** `MIG_CMD_ENABLE_COLO`. */
  EnableColo: 8,
  /** `MIG_CMD_POSTCOPY_RESUME`. */
  PostcopyResume: 9,
  /** `MIG_CMD_RECV_BITMAP`. */
  RecvBitmap: 10,
} as const;
/** A command number. */
export type Command = (typeof Command)[keyof typeof Command];

/** `MIG_CMD_MAX` in QEMU 7.2: commands ≥ this are rejected. */
export const COMMAND_MAX = 11;

/** Fixed payload lengths of commands (-1 = variable). QEMU: `mig_cmd_args`. */
export const COMMAND_LENGTH: Readonly<Record<number, number>> = {
  1: 0,
  2: 4,
  3: -1,
  4: 0,
  5: 0,
  6: -1,
  7: 4,
  8: 0,
  9: 0,
  10: -1,
};

/** QEMU 7.2's default target page size on x86 and RISC-V: 4 KiB (`TARGET_PAGE_BITS` = 12). */
export const TARGET_PAGE_BITS = 12;
