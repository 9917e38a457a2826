/**
 * ram/: guest memory and the iterative `ram` section.
 *
 * RAM blocks live in shared `WebAssembly.Memory` objects so a vCPU worker can run on the same bytes; a per-page
 * dirty byte map (written by the vCPU with plain stores) and an ever-written bitmap track what must be sent; the
 * `ram` device writes and reads QEMU 7.2's RAM records (MEM_SIZE block list, ZERO, PAGE, CONTINUE, EOS) byte for
 * byte. Zero pages are found by a small hand-emitted WebAssembly SIMD module.
 *
 * Platform-neutral: this folder must not import `node:` modules (tests excepted), nor any layer above it; from
 * savevm/ it uses only the `IterativeDevice` types of `savevm/handlers.ts`.
 *
 * @example
 * ```ts
 * import { RamBlock, RamDevice } from "ferry/ram";
 * const pcRam = new RamBlock("pc.ram", 64 << 20);
 * vcpuWorker.postMessage(pcRam.share());   // worker: RamBlock.fromShared(d); bytes[a] = v; dirty[a >>> 12] = 1
 * const ram = new RamDevice([pcRam]);      // register with savevm as the iterative entry "ram"
 * ```
 *
 * @module
 */

export {
  type CollectResult,
  DirtyMap,
  type DirtyMapBuffers,
  PageBitmap,
  popcount32,
} from "./dirty-bitmap.js";
export {
  createSharedMemory,
  DEFAULT_IO_MEMORY_BYTES,
  RamBlock,
  type RamBlockDescriptor,
  type RamBlockOptions,
} from "./ram-block.js";
export { RamDevice, type RamDeviceOptions } from "./ram-device.js";
export {
  KNOWN_RAM_FLAGS,
  MAX_IDSTR_BYTES,
  RAM_FLAGS_MASK,
  RAM_SECTION_NAME,
  RAM_SECTION_VERSION,
  RamFlag,
  TARGET_PAGE_BITS,
  TARGET_PAGE_SIZE,
} from "./ram-flags.js";
export { RamLoader, type RamLoadStats } from "./ram-loader.js";
export { RamSaver, type RamSaverOptions, type RamStats } from "./ram-saver.js";
export {
  isZeroWords,
  type PageOps,
  type PageOpsKind,
  pageOpsFor,
  pageOpsModuleBytes,
  type WasmMemory,
} from "./zero-page.js";
