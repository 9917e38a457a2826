/**
 * The destination side of the `ram` section: validates every record against the local blocks, then writes guest
 * RAM.
 *
 * QEMU: `ram_load` / `ram_load_precopy`, `ram_block_from_stream`, `ram_handle_compressed` in `migration/ram.c`,
 * hardened per spec part 8 (RAM): unknown flags and record kinds, CONTINUE without a named block, unknown blocks,
 * offsets outside the block, list lengths that do not sum to the total, blocks of another size, a missing EOS.
 *
 * Decoding runs in batches under {@link ByteReader.tryDecode}: a batch handles every record the buffered bytes
 * hold and awaits only when a record is incomplete, never per page. Each record is fully read and checked before
 * it touches guest RAM, and a batch starts a second record only when a whole record of the largest kind is
 * buffered, so an underflow can only rewind the batch's first record, which has not been applied yet.
 *
 * @module
 */

import { ErrorCodes, isMigrationError, MigrationError } from "../errors.js";
import type { LiveSectionType } from "../savevm/handlers.js";
import { type ByteReader, decodeText, NEED_MORE } from "../wire/byte-reader.js";
import { PageCopier } from "./_page-copy.js";
import type { RamBlock } from "./ram-block.js";
import {
  KNOWN_RAM_FLAGS,
  MAX_IDSTR_BYTES,
  RAM_FLAGS_MASK,
  RAM_SECTION_NAME,
  RAM_SECTION_VERSION,
  RamFlag,
  TARGET_PAGE_SIZE,
} from "./ram-flags.js";

/** Bytes of the largest page record: header, counted name of 255 bytes, one page. */
const MAX_PAGE_RECORD_BYTES = 8 + 1 + MAX_IDSTR_BYTES + TARGET_PAGE_SIZE;
const TWO_POW_32 = 2 ** 32;
/** Batch results. */
const BATCH_MORE = 0;
const BATCH_EOS = 1;

/** Record kinds the format defines but Ferry does not accept. */
const UNSUPPORTED: ReadonlyMap<number, string> = new Map([
  [RamFlag.Xbzrle, "XBZRLE"],
  [RamFlag.CompressPage, "COMPRESS_PAGE"],
  [RamFlag.MultifdFlush, "MULTIFD_FLUSH"],
  [RamFlag.Hook, "HOOK"],
]);

/** Destination-side counters. */
export interface RamLoadStats {
  /** PAGE records applied. */
  normal: number;
  /** ZERO records applied (including skipped ones). */
  duplicate: number;
  /** ZERO records that targeted a never-written page and needed no write. */
  zeroSkipped: number;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function bad(message: string, offset: number, where?: string): MigrationError {
  const path = where === undefined ? [RAM_SECTION_NAME] : [RAM_SECTION_NAME, where];
  return new MigrationError(ErrorCodes.BAD_RAM_RECORD, message, { path, offset });
}

/**
 * Loads `ram` sections into a list of blocks (the destination's own configuration).
 */
export class RamLoader {
  readonly #blocks: readonly RamBlock[];
  readonly #byName = new Map<string, number>();
  /** Index of the last block named on the stream, or -1 (QEMU: the static `block` of `ram_block_from_stream`). */
  #last = -1;
  /** Whether a block list (MEM_SIZE) has been accepted. */
  #listed = false;
  #section: LiveSectionType = "part";
  #sawMemSize = false;
  readonly #stats: RamLoadStats = { normal: 0, duplicate: 0, zeroSkipped: 0 };
  /** Copies received pages into guest RAM (wasm `memory.copy` when the chunk lies in the block's memory). */
  readonly #pages = new PageCopier();
  /** The batch decoder, bound once (no closure per batch). */
  readonly #decodeBatch = (r: ByteReader): number => this.#batch(r);

  /**
   * @param blocks The destination's blocks; names must be unique.
   */
  constructor(blocks: readonly RamBlock[]) {
    this.#blocks = blocks;
    blocks.forEach((b, i) => {
      if (this.#byName.has(b.idstr))
        throw new TypeError(`Cannot create RAM loader: block "${b.idstr}" is listed twice`);
      this.#byName.set(b.idstr, i);
    });
  }

  /** A snapshot of the counters. */
  get stats(): RamLoadStats {
    return { ...this.#stats };
  }

  /** Resets per-stream state. QEMU: `ram_load_setup`. */
  setup(): void {
    this.#last = -1;
    this.#listed = false;
    this.#sawMemSize = false;
    this.#stats.normal = 0;
    this.#stats.duplicate = 0;
    this.#stats.zeroSkipped = 0;
  }

  /** Drops per-stream state. QEMU: `ram_load_cleanup`. */
  cleanup(): void {
    this.#last = -1;
    this.#listed = false;
  }

  /**
   * Reads one section payload, up to and including its EOS record.
   *
   * @throws MigrationError `VERSION_TOO_NEW`/`VERSION_TOO_OLD` for a version other than 4, `BAD_RAM_RECORD` for a
   *   record that fails a check (path `["ram", "<block>@0x<offset>"]`, offset of the record), `TRUNCATED` when the
   *   stream ends inside the section.
   */
  async load(r: ByteReader, versionId: number, section: LiveSectionType): Promise<void> {
    if (versionId !== RAM_SECTION_VERSION) {
      const newer = versionId > RAM_SECTION_VERSION;
      throw new MigrationError(
        newer ? ErrorCodes.VERSION_TOO_NEW : ErrorCodes.VERSION_TOO_OLD,
        `Cannot load section "ram": stream version ${versionId} is ${newer ? "newer" : "older"} than supported version ${RAM_SECTION_VERSION}`,
        { path: [RAM_SECTION_NAME], offset: r.offset },
      );
    }
    this.#section = section;
    this.#sawMemSize = false;
    for (;;) {
      let res: number | typeof NEED_MORE;
      try {
        res = r.tryDecode(this.#decodeBatch);
      } catch (e) {
        if (isMigrationError(e) && (e.path === undefined || e.path.length === 0))
          throw e.withContext([RAM_SECTION_NAME]);
        throw e;
      }
      if (res === BATCH_EOS) return;
      // More records follow; when the last one was incomplete, wait for bytes. At end of stream `more()` is
      // false and the re-run raises TRUNCATED at the exact offset, so this never spins.
      if (res === NEED_MORE) await r.more();
    }
  }

  /** Decodes and applies records while whole records are buffered. */
  #batch(r: ByteReader): number {
    let first = true;
    for (;;) {
      if (!first && r.available < MAX_PAGE_RECORD_BYTES) return BATCH_MORE;
      first = false;
      const start = r.offset;
      const hi = r.u32();
      const lo = r.u32();
      const flags = lo & RAM_FLAGS_MASK;
      const addr = hi * TWO_POW_32 + (lo - flags);
      const kind = flags & ~RamFlag.Continue;
      if (kind === RamFlag.Zero || kind === RamFlag.Page) {
        this.#page(r, start, addr, flags, kind);
        continue;
      }
      if ((flags & ~KNOWN_RAM_FLAGS) !== 0 || (flags & RamFlag.Full) !== 0) {
        throw bad(`Cannot load RAM record: flags ${hex(flags)} include unknown or obsolete bits`, start);
      }
      const unsupported = UNSUPPORTED.get(kind) ?? ((kind & RamFlag.Hook) !== 0 ? "HOOK" : undefined);
      if (unsupported !== undefined) {
        throw bad(`Cannot load RAM record: ${unsupported} records are not supported (flags ${hex(flags)})`, start);
      }
      if (kind === RamFlag.Eos) {
        if (flags !== RamFlag.Eos || addr !== 0) {
          throw bad(`Cannot load RAM record: EOS carries offset ${hex(addr)} and flags ${hex(flags)}`, start);
        }
        if (this.#section === "start" && !this.#sawMemSize) {
          throw bad("Cannot load RAM START section: it ends before the block list (MEM_SIZE)", start);
        }
        return BATCH_EOS;
      }
      if (kind === RamFlag.MemSize) {
        this.#memSize(r, start, addr, flags);
        continue;
      }
      throw bad(`Cannot load RAM record: unknown combination of flags ${hex(flags)}`, start);
    }
  }

  /** A ZERO or PAGE record; the 8-byte header is already read. */
  #page(r: ByteReader, start: number, addr: number, flags: number, kind: number): void {
    if (!this.#listed) {
      throw bad(`Cannot load RAM page ${hex(addr)}: no block list (START section) was received before it`, start);
    }
    if (this.#section === "start") {
      throw bad(`Cannot load RAM page ${hex(addr)}: page records are not allowed in the START section`, start);
    }
    let bi: number;
    if ((flags & RamFlag.Continue) !== 0) {
      bi = this.#last;
      if (bi < 0) throw bad(`Cannot load RAM page ${hex(addr)}: CONTINUE set but no block was named before`, start);
    } else {
      const len = r.u8();
      const name = decodeText(r.bytes(len));
      const found = this.#byName.get(name);
      if (found === undefined) {
        throw bad(`Cannot load RAM page: block "${name}" is unknown`, start, `${name}@${hex(addr)}`);
      }
      bi = found;
    }
    const block = this.#blocks[bi] as RamBlock;
    if (addr + TARGET_PAGE_SIZE > block.size) {
      throw bad(
        `Cannot load RAM page: offset ${hex(addr)} is outside block "${block.idstr}" of ${hex(block.size)} bytes`,
        start,
        `${block.idstr}@${hex(addr)}`,
      );
    }
    const page = addr / TARGET_PAGE_SIZE;
    const map = block.dirtyMap;
    if (kind === RamFlag.Zero) {
      const fill = r.u8();
      if (fill !== 0) {
        throw bad(`Cannot load RAM zero page: fill byte ${hex(fill)} is not 0`, start, `${block.idstr}@${hex(addr)}`);
      }
      // Everything is read and checked: apply. A never-written page is already zero; writing it would fault
      // the memory in for nothing (probe 1b/2).
      this.#stats.duplicate++;
      if (map.isNeverWritten(page)) {
        this.#stats.zeroSkipped++;
      } else {
        block.ops.fill(block.byteOffset + addr, TARGET_PAGE_SIZE, 0);
        map.markPage(page);
        map.everWritten.set(page);
      }
    } else {
      // All-or-nothing: an underflow is raised before any byte is copied. Within one received chunk the page is
      // copied from where it lies (no view made); across chunks, from a fresh (aligned) copy.
      const at = r.take(TARGET_PAGE_SIZE);
      if (at >= 0) this.#pages.toBlock(block, addr, r.chunk, at);
      else this.#pages.toBlock(block, addr, r.view(TARGET_PAGE_SIZE), 0);
      this.#stats.normal++;
      // Loaded pages count as written, so this machine can migrate them again later.
      map.markPage(page);
      map.everWritten.set(page);
    }
    this.#last = bi;
  }

  /** The MEM_SIZE block list; `total` is the record's offset part. */
  #memSize(r: ByteReader, start: number, total: number, flags: number): void {
    if (this.#section !== "start" || this.#sawMemSize) {
      throw bad("Cannot load RAM block list: MEM_SIZE is only allowed once, at the start of the START section", start);
    }
    if (flags !== RamFlag.MemSize) {
      throw bad(`Cannot load RAM block list: MEM_SIZE combined with other flags (${hex(flags)})`, start);
    }
    const blocks = this.#blocks;
    const seen = new Uint8Array(blocks.length);
    let sum = 0;
    let count = 0;
    while (sum < total) {
      const entry = r.offset;
      if (count === blocks.length) {
        throw bad(
          `Cannot load RAM block list: it names more than the ${blocks.length} local blocks before reaching total ${hex(total)}`,
          entry,
        );
      }
      const len = r.u8();
      const name = decodeText(r.bytes(len));
      const hi = r.u32();
      const lo = r.u32();
      const bi = this.#byName.get(name);
      if (bi === undefined) throw bad(`Cannot load RAM block list: block "${name}" is unknown`, entry, name);
      if (seen[bi] !== 0) throw bad(`Cannot load RAM block list: block "${name}" is listed twice`, entry, name);
      const block = blocks[bi] as RamBlock;
      const length = hi * TWO_POW_32 + lo;
      if (length !== block.size) {
        throw bad(
          `Cannot load RAM block list: block "${name}" has length ${hex(length)} but the local block has ${hex(block.size)} (resizing is not supported)`,
          entry,
          name,
        );
      }
      seen[bi] = 1;
      sum += length;
      count++;
      if (sum > total) {
        throw bad(`Cannot load RAM block list: lengths add up to more than the total ${hex(total)}`, entry, name);
      }
    }
    if (count !== blocks.length) {
      const missing = blocks.find((_, i) => seen[i] === 0) as RamBlock;
      throw bad(`Cannot load RAM block list: local block "${missing.idstr}" is missing from the stream`, start);
    }
    this.#listed = true;
    this.#sawMemSize = true;
  }
}
