/**
 * ELF32 loader for little-endian RISC-V executables: parses the program headers and copies every `PT_LOAD`
 * segment into guest RAM (zero-filling `p_memsz` beyond `p_filesz`), as QEMU's `load_elf` does with `p_paddr`.
 *
 * The file is untrusted input: every header field is bounds-checked against the file and against RAM before
 * anything is written, and a bad file fails with a {@link MigrationError} naming the field and its file offset.
 *
 * Platform-neutral: no `node:` imports (see `elf-file.ts` for reading from disk).
 *
 * @module
 */

import { MigrationError } from "../../errors.js";

/** `e_machine` of RISC-V. */
const EM_RISCV = 243;
/** `e_type` of an executable. */
const ET_EXEC = 2;
/** `p_type` of a loadable segment. */
const PT_LOAD = 1;
/** `e_flags` bit: the file uses compressed instructions. */
const EF_RISCV_RVC = 0x1;
/** `e_flags` bit: the file uses the RV32E base. */
const EF_RISCV_RVE = 0x8;
/** The most program headers a file may have. */
export const ELF_MAX_PHDRS = 64;

/** One loadable segment. */
export interface ElfSegment {
  /** Physical load address (`p_paddr`). */
  readonly addr: number;
  /** The bytes from the file (`p_filesz`); a view into the file's buffer. */
  readonly data: Uint8Array;
  /** Size in memory (`p_memsz` ≥ `data.length`); the rest is zero-filled. */
  readonly memSize: number;
}

/** A parsed ELF executable. */
export interface ElfImage {
  /** Entry point (`e_entry`). */
  readonly entry: number;
  /** The `PT_LOAD` segments, in file order. */
  readonly segments: readonly ElfSegment[];
}

function fail(message: string, path: (string | number)[], offset: number): MigrationError {
  return new MigrationError("BAD_STREAM", `Cannot load ELF file: ${message}`, { path: ["elf", ...path], offset });
}

/**
 * Parses an ELF32 little-endian RISC-V executable.
 *
 * @param file The whole file.
 * @returns The entry point and the loadable segments (views into `file`).
 * @throws MigrationError `BAD_STREAM` for a file that is not a valid rv32 executable.
 */
export function parseElf(file: Uint8Array): ElfImage {
  const len = file.byteLength;
  if (len < 52) throw fail(`the file is ${len} bytes, shorter than an ELF32 header (52)`, ["e_ident"], 0);
  if (file[0] !== 0x7f || file[1] !== 0x45 || file[2] !== 0x4c || file[3] !== 0x46) {
    throw fail("bad magic, expected 7f 45 4c 46", ["e_ident"], 0);
  }
  if (file[4] !== 1) throw fail(`EI_CLASS is ${file[4]}, expected 1 (32-bit)`, ["e_ident", "EI_CLASS"], 4);
  if (file[5] !== 1) throw fail(`EI_DATA is ${file[5]}, expected 1 (little-endian)`, ["e_ident", "EI_DATA"], 5);
  if (file[6] !== 1) throw fail(`EI_VERSION is ${file[6]}, expected 1`, ["e_ident", "EI_VERSION"], 6);
  const dv = new DataView(file.buffer, file.byteOffset, len);
  const type = dv.getUint16(16, true);
  if (type !== ET_EXEC) throw fail(`e_type is ${type}, expected 2 (executable)`, ["e_type"], 16);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_RISCV) throw fail(`e_machine is ${machine}, expected 243 (RISC-V)`, ["e_machine"], 18);
  const entry = dv.getUint32(24, true);
  const phoff = dv.getUint32(28, true);
  const flags = dv.getUint32(36, true);
  if (flags & EF_RISCV_RVC) {
    throw fail("the file uses compressed instructions (EF_RISCV_RVC); ferry-rv32 implements RV32IMA", ["e_flags"], 36);
  }
  if (flags & EF_RISCV_RVE)
    throw fail("the file is RV32E (EF_RISCV_RVE); ferry-rv32 implements RV32I", ["e_flags"], 36);
  const phentsize = dv.getUint16(42, true);
  const phnum = dv.getUint16(44, true);
  if (phnum === 0) throw fail("the file has no program headers", ["e_phnum"], 44);
  if (phnum > ELF_MAX_PHDRS) throw fail(`e_phnum is ${phnum}, more than ${ELF_MAX_PHDRS}`, ["e_phnum"], 44);
  if (phentsize !== 32) throw fail(`e_phentsize is ${phentsize}, expected 32`, ["e_phentsize"], 42);
  if (phoff + phnum * 32 > len) {
    throw fail(
      `program headers at ${phoff} (${phnum} x 32 bytes) run past the end of the file (${len})`,
      ["e_phoff"],
      28,
    );
  }
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * 32;
    if (dv.getUint32(at, true) !== PT_LOAD) continue;
    const offset = dv.getUint32(at + 4, true);
    const paddr = dv.getUint32(at + 12, true);
    const filesz = dv.getUint32(at + 16, true);
    const memsz = dv.getUint32(at + 20, true);
    if (offset + filesz > len) {
      throw fail(
        `segment data at ${offset} (${filesz} bytes) runs past the end of the file (${len})`,
        [`phdr[${i}]`],
        at,
      );
    }
    if (filesz > memsz) throw fail(`p_filesz ${filesz} is larger than p_memsz ${memsz}`, [`phdr[${i}]`], at);
    if (paddr + memsz > 0x1_0000_0000) {
      throw fail(`segment at 0x${paddr.toString(16)} (${memsz} bytes) wraps past 4 GiB`, [`phdr[${i}]`], at);
    }
    if (memsz === 0) continue;
    segments.push({ addr: paddr, data: file.subarray(offset, offset + filesz), memSize: memsz });
  }
  if (segments.length === 0) throw fail("the file has no non-empty PT_LOAD segment", ["phdr"], phoff);
  return { entry, segments };
}

/**
 * Checks that every segment and the entry point lie in RAM (`[ramBase, ramBase + ramSize)`).
 *
 * @throws MigrationError `FIELD_OUT_OF_RANGE` naming the segment.
 */
export function checkElfFits(image: ElfImage, ramBase: number, ramSize: number): void {
  const end = ramBase + ramSize;
  image.segments.forEach((s, i) => {
    if (s.addr < ramBase || s.addr + s.memSize > end) {
      throw new MigrationError(
        "FIELD_OUT_OF_RANGE",
        `Cannot load ELF file: segment ${i} at 0x${s.addr.toString(16)} (${s.memSize} bytes) is outside RAM ` +
          `[0x${ramBase.toString(16)}, 0x${end.toString(16)})`,
        { path: ["elf", `segment[${i}]`] },
      );
    }
  });
  if (image.entry < ramBase || image.entry >= end || (image.entry & 3) !== 0) {
    throw new MigrationError(
      "FIELD_OUT_OF_RANGE",
      `Cannot load ELF file: entry point 0x${image.entry.toString(16)} is not a 4-byte aligned address in RAM`,
      { path: ["elf", "e_entry"] },
    );
  }
}
