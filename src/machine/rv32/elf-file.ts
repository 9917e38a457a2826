/**
 * Reading guest ELF files from disk (the only `node:fs` use of the machine's core).
 *
 * @module
 */

import { readFile } from "node:fs/promises";

/**
 * Reads a guest ELF file.
 *
 * @param path File path.
 * @returns The file's bytes, for `Machine.loadElf` or `VcpuWorker`'s `elf` option.
 */
export async function readElfFile(path: string | URL): Promise<Uint8Array> {
  const b = await readFile(path);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
