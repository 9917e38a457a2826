/**
 * A RAM block: one named, fixed-size region of guest memory in a shared `WebAssembly.Memory`, with its dirty map.
 *
 * QEMU: `RAMBlock` (`idstr`, `used_length`, `host`, the dirty log). Guest RAM lives in a shared wasm memory
 * (node-perf-probes recommendation 2): its `.buffer` is a `SharedArrayBuffer`, so the vCPU worker stores into the
 * very same bytes, and wasm `memory.fill`/`memory.copy` run 10× faster on it than typed-array `fill`.
 *
 * @module
 */

import { DirtyMap, type DirtyMapBuffers } from "./dirty-bitmap.js";
import { MAX_IDSTR_BYTES, TARGET_PAGE_SIZE } from "./ram-flags.js";
import { type PageOps, pageOpsFor, type WasmMemory, wasmApi } from "./zero-page.js";

/** Size of one wasm page. */
const WASM_PAGE = 65536;
/** A shared wasm memory (memory32) holds at most 65536 wasm pages = 4 GiB. */
const MAX_MEMORY_BYTES = 65536 * WASM_PAGE;

/** Options of {@link RamBlock}. */
export interface RamBlockOptions {
  /**
   * An existing shared memory to place the block in, e.g. one memory holding all of a machine's RAM blocks for a
   * wasm vCPU. Default: a new shared memory of exactly the block's size (rounded up to 64 KiB).
   */
  readonly memory: WasmMemory;
  /** Byte offset of the block inside `memory`; a multiple of 4096. Default 0. */
  readonly byteOffset: number;
  /**
   * Existing shared tracking storage to attach to (what {@link RamBlock.fromShared} passes). Default: fresh
   * SharedArrayBuffers.
   */
  readonly tracking: DirtyMapBuffers;
  /**
   * Bytes to set aside after the block, in a memory the block creates (not with `memory`), for migration I/O:
   * {@link RamBlock.ioMemory}. A multiple of 4096; default 0.
   */
  readonly ioMemoryBytes: number;
}

/**
 * What a machine sets aside after its main RAM block for migration I/O ({@link RamBlockOptions} `ioMemoryBytes`):
 * 8 MiB, room for a writer's staging buffers (8 of 1 MiB) or a socket's receive ring (32 slots of 256 KiB).
 * Untouched, it costs address space only.
 */
export const DEFAULT_IO_MEMORY_BYTES = 8 * 1024 * 1024;

/**
 * Everything needed to rebuild a {@link RamBlock} view in another thread. All members survive `postMessage`
 * (shared memories and SharedArrayBuffers are shared, not copied).
 */
export interface RamBlockDescriptor {
  /** The block's idstr. */
  readonly idstr: string;
  /** The block's size in bytes (QEMU: `used_length`). */
  readonly size: number;
  /** The shared memory holding the block. */
  readonly memory: WasmMemory;
  /** Byte offset of the block inside the memory. */
  readonly byteOffset: number;
  /** The dirty byte map (one byte per page). */
  readonly dirty: SharedArrayBuffer;
  /** The ever-written bitmap (one bit per page). */
  readonly everWritten: SharedArrayBuffer;
}

const textEncoder = new TextEncoder();

/**
 * Creates a fixed-size shared WebAssembly memory of at least `byteLength` bytes (rounded up to 64 KiB), e.g. to
 * hold several RAM blocks for one wasm vCPU (place each with {@link RamBlockOptions}), or blocks plus a receive
 * ring that a transport reads into, so the loader can move pages with wasm `memory.copy`
 * (node-perf-probes recommendation 5).
 *
 * @param byteLength Bytes needed, at most 4 GiB.
 * @returns The memory; its `buffer` is a SharedArrayBuffer.
 * @throws RangeError when the size is out of range; TypeError when WebAssembly is unavailable.
 */
export function createSharedMemory(byteLength: number): WasmMemory {
  if (!(Number.isSafeInteger(byteLength) && byteLength > 0 && byteLength <= MAX_MEMORY_BYTES)) {
    throw new RangeError(`Cannot create shared memory: ${byteLength} bytes is not in (0, 4 GiB]`);
  }
  if (wasmApi === undefined) throw new TypeError("Cannot create shared memory: WebAssembly is unavailable");
  const pages = Math.ceil(byteLength / WASM_PAGE);
  return new wasmApi.Memory({ initial: pages, maximum: pages, shared: true });
}

/**
 * One RAM block. The vCPU (in any thread) writes `bytes[addr] = v` and then `dirty[addr >>> 12] = 1`, where `addr`
 * is the offset inside the block; see `dirty-bitmap.ts` for the full contract.
 *
 * @example
 * ```ts
 * const ram = new RamBlock("pc.ram", 64 * 1024 * 1024);
 * worker.postMessage(ram.share());                  // in the worker: RamBlock.fromShared(msg)
 * ram.write(0x7c00, bootSector);                    // a host-side write marks its pages dirty
 * ```
 */
export class RamBlock {
  /** The block's name on the wire (QEMU: `RAMBlock.idstr`), at most 255 UTF-8 bytes. */
  readonly idstr: string;
  /** The idstr as the bytes sent on the wire. */
  readonly idstrBytes: Uint8Array;
  /** Size in bytes, a multiple of 4096 (QEMU: `used_length`; blocks are not resizable here). */
  readonly size: number;
  /** Number of 4 KiB pages. */
  readonly pages: number;
  /** The shared wasm memory holding the block. */
  readonly memory: WasmMemory;
  /** The memory's SharedArrayBuffer. */
  readonly buffer: SharedArrayBuffer;
  /** Byte offset of the block inside {@link RamBlock.buffer}. */
  readonly byteOffset: number;
  /** The block's bytes: `bytes[0]` is block offset 0. */
  readonly bytes: Uint8Array;
  /** The dirty byte map: the vCPU stores `dirty[offset >>> 12] = 1` after writing at block offset `offset`. */
  readonly dirty: Uint8Array;
  /** The dirty map and ever-written bitmap, with the collector. */
  readonly dirtyMap: DirtyMap;
  /**
   * The bytes set aside after the block in its memory ({@link RamBlockOptions} `ioMemoryBytes`), or
   * `undefined`. The guest never addresses them. A source stages its outgoing records there and a destination's
   * socket reads into them, so the RAM saver and loader move each page with one wasm `memory.copy` within the
   * block's own memory (node-perf-probes recommendation 5).
   */
  readonly ioMemory: Uint8Array | undefined;
  #ops: PageOps | undefined;

  /**
   * @param idstr The block name (QEMU examples: `pc.ram`, `pc.bios`, `/rom@etc/acpi/tables`).
   * @param size Size in bytes: a positive multiple of 4096, at most 4 GiB.
   * @param options Where to place it; see {@link RamBlockOptions}.
   * @throws TypeError for a bad idstr or a memory that is not shared; RangeError for a bad size or offset.
   */
  constructor(idstr: string, size: number, options: Partial<RamBlockOptions> = {}) {
    this.idstrBytes = checkIdstr(idstr);
    if (!(Number.isSafeInteger(size) && size > 0 && size % TARGET_PAGE_SIZE === 0 && size <= MAX_MEMORY_BYTES)) {
      throw new RangeError(`Cannot create RAM block "${idstr}": size ${size} is not a multiple of 4096 in (0, 4 GiB]`);
    }
    const byteOffset = options.byteOffset ?? 0;
    const ringBytes = options.ioMemoryBytes ?? 0;
    let memory = options.memory;
    if (!(Number.isSafeInteger(ringBytes) && ringBytes >= 0 && ringBytes % TARGET_PAGE_SIZE === 0)) {
      throw new RangeError(`Cannot create RAM block "${idstr}": ioMemoryBytes ${ringBytes} is not a multiple of 4096`);
    }
    if (memory === undefined) {
      if (byteOffset !== 0) throw new RangeError(`Cannot create RAM block "${idstr}": byteOffset needs a memory`);
      memory = createSharedMemory(size + ringBytes);
    } else if (ringBytes !== 0) {
      throw new RangeError(`Cannot create RAM block "${idstr}": ioMemoryBytes needs a memory the block creates`);
    }
    const buffer = memory.buffer;
    if (!(buffer instanceof SharedArrayBuffer)) {
      throw new TypeError(`Cannot create RAM block "${idstr}": the memory is not shared`);
    }
    if (!(Number.isSafeInteger(byteOffset) && byteOffset >= 0 && byteOffset % TARGET_PAGE_SIZE === 0)) {
      throw new RangeError(`Cannot create RAM block "${idstr}": byteOffset ${byteOffset} is not a multiple of 4096`);
    }
    if (byteOffset + size > buffer.byteLength) {
      throw new RangeError(
        `Cannot create RAM block "${idstr}": ${byteOffset}+${size} is beyond the memory's ${buffer.byteLength} bytes`,
      );
    }
    this.idstr = idstr;
    this.size = size;
    this.pages = size / TARGET_PAGE_SIZE;
    this.memory = memory;
    this.buffer = buffer;
    this.byteOffset = byteOffset;
    this.bytes = new Uint8Array(buffer, byteOffset, size);
    this.ioMemory = ringBytes === 0 ? undefined : new Uint8Array(buffer, size, ringBytes);
    this.dirtyMap = new DirtyMap(this.pages, options.tracking);
    this.dirty = this.dirtyMap.dirty;
    this.#ops = undefined;
  }

  /**
   * Rebuilds a block view from a {@link RamBlockDescriptor} posted by another thread: same memory, same dirty map,
   * same ever-written bitmap. Nothing is copied.
   *
   * @example
   * ```ts
   * // vCPU worker
   * parentPort.on("message", (d: RamBlockDescriptor) => {
   *   const ram = RamBlock.fromShared(d);
   *   const { bytes, dirty } = ram;
   *   bytes[addr] = value;
   *   dirty[addr >>> 12] = 1; // after the data store
   * });
   * ```
   */
  static fromShared(d: RamBlockDescriptor): RamBlock {
    return new RamBlock(d.idstr, d.size, {
      memory: d.memory,
      byteOffset: d.byteOffset,
      tracking: { dirty: d.dirty, everWritten: d.everWritten },
    });
  }

  /** The descriptor to post to another thread; see {@link RamBlock.fromShared}. */
  share(): RamBlockDescriptor {
    const b = this.dirtyMap.buffers;
    return {
      idstr: this.idstr,
      size: this.size,
      memory: this.memory,
      byteOffset: this.byteOffset,
      dirty: b.dirty,
      everWritten: b.everWritten,
    };
  }

  /** The wasm page operations bound to this block's memory (made on first use in each thread). */
  get ops(): PageOps {
    this.#ops ??= pageOpsFor(this.memory);
    return this.#ops;
  }

  /** Marks the pages of a host-side write at block offset `offset` dirty. */
  markDirty(offset: number, length: number): void {
    this.dirtyMap.markDirty(offset, length);
  }

  /** Copies `data` into the block at `offset` and marks the pages dirty (data first, then the marks). */
  write(offset: number, data: Uint8Array): void {
    if (!(Number.isSafeInteger(offset) && offset >= 0 && offset + data.length <= this.size)) {
      throw new RangeError(`Cannot write to RAM block "${this.idstr}": ${offset}+${data.length} is outside it`);
    }
    this.bytes.set(data, offset);
    this.dirtyMap.markDirty(offset, data.length);
  }

  /**
   * Whether page `p` is all zero: true without reading when it was never written, else a wasm scan.
   */
  /**
   * Maps every never-written page now instead of at its first write (QEMU: `-mem-prealloc`): a fresh destination
   * otherwise pays one page fault per page (about 0.8 s per GiB here) in the middle of an incoming migration.
   * Never-written pages are zero, so they are touched by storing a zero: content and dirty tracking are unchanged.
   * Call it only while nothing else writes the block (before the vCPU starts or an incoming migration begins).
   *
   * @returns The number of pages touched.
   */
  prefault(): number {
    const b = this.bytes;
    const map = this.dirtyMap;
    let n = 0;
    for (let p = 0; p < this.pages; p++) {
      if (map.isNeverWritten(p)) {
        b[p * TARGET_PAGE_SIZE] = 0;
        n++;
      }
    }
    return n;
  }

  isPageZero(p: number): boolean {
    if (this.dirtyMap.isNeverWritten(p)) return true;
    return this.ops.isZero(this.byteOffset + p * TARGET_PAGE_SIZE, TARGET_PAGE_SIZE);
  }
}

function checkIdstr(idstr: string): Uint8Array {
  if (typeof idstr !== "string" || idstr.length === 0) {
    throw new TypeError("Cannot create RAM block: idstr must be a non-empty string");
  }
  const b = textEncoder.encode(idstr);
  if (b.length > MAX_IDSTR_BYTES) {
    throw new RangeError(`Cannot create RAM block "${idstr.slice(0, 32)}…": idstr is over ${MAX_IDSTR_BYTES} bytes`);
  }
  return b;
}
