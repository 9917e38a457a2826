/**
 * The inspector's stream walker: one synchronous pass over a whole QEMU (or Ferry) migration stream that checks
 * its framing and reports what it finds to a visitor.
 *
 * Non-RAM device sections have no length on the wire, so they are delimited the way analyze-migration.py does it:
 * with the stream's own vmdesc trailer (found first, from the end), or, without one, with a built-in description
 * for a few fixed-layout devices ({@link KNOWN_DEVICES}). The `ram` section is parsed record by record. Iterative
 * `block` and `dirty-bitmap` sections and `PACKAGED` commands cannot be delimited and are reported as unsupported.
 *
 * @module
 */

import { MigrationError } from "../errors.js";
import { KNOWN_RAM_FLAGS, RAM_SECTION_NAME, RamFlag } from "../ram/ram-flags.js";
import { decodeConfiguration, type StreamConfig } from "../savevm/config.js";
import { FILE_MAGIC, FILE_VERSION, SectionType } from "../savevm/format.js";
import { ByteReader } from "../wire/byte-reader.js";
import { Cursor, DEFAULT_WINDOW_BYTES } from "./cursor.js";
import { KNOWN_DEVICES, type KnownDevice } from "./known-devices.js";
import type { RandomAccessSource } from "./source.js";
import { findTrailer, type JsonObject, MAX_VMDESC_BYTES, type VmdescTrailer } from "./trailer.js";
import { type AnalyzeObject, decodeVmsd } from "./vmsd-decode.js";

/** The most RAM blocks a block list may name. */
export const MAX_RAM_BLOCKS = 4096;
/** The most section records kept in a summary (later sections are counted, not listed). */
export const MAX_SECTION_RECORDS = 100_000;
/**
 * RAM the walker tracks per page: up to max(this, stream size) pages (64 Mi pages = 256 GiB of guest RAM; a real
 * stream sends every page at least once, as a ZERO record of 9+ bytes, so it is always larger than its page count).
 */
export const MIN_TRACKED_PAGES = 64 * 1024 * 1024;
/** The largest command payload skipped. */
export const MAX_COMMAND_BYTES = 65535;

/** One top-level section as framed in the stream. */
export interface SectionRecord {
  /** `start`, `part`, `end` or `full`. */
  readonly type: "start" | "part" | "end" | "full";
  readonly sectionId: number;
  readonly idstr: string;
  readonly instanceId: number;
  readonly version: number;
  /** Offset of the type byte. */
  readonly offset: number;
  /** Offset of the first body byte. */
  readonly bodyOffset: number;
  /** Body bytes (excluding the footer). */
  bodySize: number;
}

/** A RAM block from the stream's block list, with page counts filled in by the walk. */
export interface RamBlockInfo {
  readonly idstr: string;
  /** used_length in bytes. */
  readonly length: number;
  /** Index in the block list. */
  readonly index: number;
  /** ZERO records seen (all passes). */
  zeroRecords: number;
  /** PAGE records seen (all passes). */
  pageRecords: number;
  /** Per page: 0 never sent, 1 last sent as ZERO, 2 last sent as PAGE. */
  readonly lastKind: Uint8Array;
}

/** What a walk found. */
export interface StreamSummary {
  readonly size: number;
  config: StreamConfig | undefined;
  pageSize: number;
  readonly sections: SectionRecord[];
  sectionCount: number;
  /** Device sections (non-RAM) in stream order: idstr, instance, section id. */
  readonly devices: { idstr: string; instanceId: number; sectionId: number; version: number; size: number }[];
  blocks: RamBlockInfo[];
  /** Offset of the QEMU_VM_EOF byte. */
  eofOffset: number;
  /** The vmdesc trailer, if any. */
  trailer: VmdescTrailer | undefined;
  /** Offset of the last RAM EOS record word (where the rewriter inserts pages never sent). */
  lastRamEos: number;
  /** Commands seen: number and offset. */
  readonly commands: { cmd: number; offset: number }[];
  /** Non-fatal findings. */
  readonly warnings: string[];
}

/** Receives RAM records during a walk. Views are valid only during the call. */
export interface RamVisitor {
  /** The block list was read (called once per MEM_SIZE record). */
  onBlocks?(blocks: readonly RamBlockInfo[]): void;
  /**
   * A ZERO or PAGE record.
   *
   * @param block The block.
   * @param page Page index in the block.
   * @param isPage True for PAGE, false for ZERO.
   * @param data For PAGE: the window buffer; the page is at `data[index … index+pageSize)`. For ZERO: unused.
   * @param index For PAGE: the page's index in `data`; for ZERO: the fill byte.
   * @param recordStart Stream offset of the record word.
   * @param dataOffset Stream offset of the page data (PAGE) or of the fill byte (ZERO).
   */
  onPage?(
    block: RamBlockInfo,
    page: number,
    isPage: boolean,
    data: Uint8Array,
    index: number,
    recordStart: number,
    dataOffset: number,
  ): void;
}

/** Options of {@link walkStream}. */
export interface WalkOptions {
  /** Use this trailer instead of finding it (null: ignore the stream's trailer). */
  readonly trailer?: VmdescTrailer | null;
  /** Descriptions for devices without a vmdesc entry (default {@link KNOWN_DEVICES}). */
  readonly knownDevices?: ReadonlyMap<string, KnownDevice>;
  /** Called with each decoded device section. */
  readonly onDevice?: (s: SectionRecord, value: AnalyzeObject) => void;
  /** Called with each section header (before its body). */
  readonly onSection?: (s: SectionRecord) => void;
  /** RAM record visitor. */
  readonly ram?: RamVisitor;
  /** Progress callback: stream offset, total size. */
  readonly onProgress?: (offset: number, size: number) => void;
}

const TYPE_NAMES: Record<number, SectionRecord["type"]> = { 1: "start", 2: "part", 3: "end", 4: "full" };

function key(idstr: string, instance: number): string {
  return `${idstr}\u0000${instance}`;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * Walks a whole stream.
 *
 * @param src The stream.
 * @param options Trailer, known devices, visitors.
 * @returns The summary.
 * @throws MigrationError at the first problem, with code, path (section, field) and offset.
 */
export function walkStream(src: RandomAccessSource, options: WalkOptions = {}): StreamSummary {
  const trailer = options.trailer === undefined ? findTrailer(src) : (options.trailer ?? undefined);
  const known = options.knownDevices ?? KNOWN_DEVICES;
  const descs = new Map<string, JsonObject>();
  if (trailer !== undefined) {
    for (const d of trailer.desc.devices as JsonObject[]) descs.set(key(d.name as string, d.instance_id as number), d);
  }
  const pageSize = trailer === undefined ? 4096 : (trailer.desc.page_size as number);
  const mask = pageSize - 1;
  const s: StreamSummary = {
    size: src.size,
    config: undefined,
    pageSize,
    sections: [],
    sectionCount: 0,
    devices: [],
    blocks: [],
    eofOffset: -1,
    trailer,
    lastRamEos: -1,
    commands: [],
    warnings: [],
  };
  const c = new Cursor(src, Math.min(DEFAULT_WINDOW_BYTES, Math.max(1 << 16, src.size)));
  const progress = options.onProgress;
  if (progress !== undefined) c.onRefill = (off) => progress(off, src.size);
  const ram = options.ram;
  const onPage = ram?.onPage;

  const magicAt = c.offset;
  if (c.remaining < 8) {
    throw new MigrationError("TRUNCATED", `Cannot read the stream header: only ${c.remaining} bytes`, { offset: 0 });
  }
  const magic = c.u32();
  if (magic !== FILE_MAGIC) {
    throw new MigrationError("BAD_MAGIC", `Cannot read stream: magic is ${hex(magic)}, expected ${hex(FILE_MAGIC)}`, {
      offset: magicAt,
    });
  }
  const version = c.u32();
  if (version !== FILE_VERSION) {
    throw new MigrationError("UNSUPPORTED_VERSION", `Cannot read stream: file version ${version} is not 3`, {
      offset: 4,
    });
  }

  const open = new Map<number, SectionRecord>();
  const blocksByName = new Map<string, RamBlockInfo>();
  let lastBlock: RamBlockInfo | undefined;
  let footers: boolean | undefined;
  let ignoreShared = false;
  let first = true;
  /** The idstr of the section being read, for error paths. */
  let curSection: string | undefined;

  let curAddr = -1;
  const ramSection = (sec: SectionRecord): void => {
    curAddr = -1;
    try {
      ramRecords(sec);
    } catch (e) {
      // Cursor errors know only the offset: name the section and the page being read.
      if (e instanceof MigrationError && (e.path === undefined || e.path.length === 0)) {
        const where = curAddr >= 0 && lastBlock !== undefined ? [`${lastBlock.idstr}@${hex(curAddr)}`] : [];
        throw e.withContext([RAM_SECTION_NAME, ...where]);
      }
      throw e;
    }
  };

  const ramRecords = (sec: SectionRecord): void => {
    const path = [RAM_SECTION_NAME];
    for (;;) {
      const recordStart = c.offset;
      c.ensure(8);
      const view = c.view;
      const hi = view.getUint32(c.index);
      const lo = view.getUint32(c.index + 4);
      c.advance(8);
      const flags = lo & mask;
      const addr = hi * 4294967296 + (lo - flags);
      if ((flags & ~KNOWN_RAM_FLAGS) !== 0) {
        throw new MigrationError("BAD_RAM_RECORD", `Cannot read RAM record: unknown flags ${hex(flags)}`, {
          path,
          offset: recordStart,
        });
      }
      const kind = flags & ~RamFlag.Continue;
      if (kind === RamFlag.Zero || kind === RamFlag.Page) {
        let block: RamBlockInfo | undefined;
        if ((flags & RamFlag.Continue) !== 0) {
          block = lastBlock;
          if (block === undefined) {
            throw new MigrationError("BAD_RAM_RECORD", "Cannot read RAM record: CONTINUE with no previous block", {
              path,
              offset: recordStart,
            });
          }
        } else {
          const name = c.str();
          block = blocksByName.get(name);
          if (block === undefined) {
            throw new MigrationError("BAD_RAM_RECORD", `Cannot read RAM record: unknown block "${name}"`, {
              path: [...path, name],
              offset: recordStart,
            });
          }
          lastBlock = block;
        }
        if (addr + pageSize > block.length) {
          throw new MigrationError(
            "BAD_RAM_RECORD",
            `Cannot read RAM record: page ${hex(addr)} is outside block "${block.idstr}" of ${hex(block.length)} bytes`,
            { path: [...path, `${block.idstr}@${hex(addr)}`], offset: recordStart },
          );
        }
        curAddr = addr;
        const page = addr / pageSize;
        if (kind === RamFlag.Zero) {
          const at = c.offset;
          const fill = c.u8();
          block.zeroRecords++;
          block.lastKind[page] = 1;
          if (onPage !== undefined) onPage.call(ram, block, page, false, c.buffer, fill, recordStart, at);
        } else {
          c.ensure(pageSize);
          const at = c.offset;
          block.pageRecords++;
          block.lastKind[page] = 2;
          if (onPage !== undefined) onPage.call(ram, block, page, true, c.buffer, c.index, recordStart, at);
          c.advance(pageSize);
        }
        curAddr = -1;
      } else if (kind === RamFlag.Eos) {
        if ((flags & RamFlag.Continue) !== 0 || addr !== 0) {
          throw new MigrationError("BAD_RAM_RECORD", `Cannot read RAM record: malformed EOS word`, {
            path,
            offset: recordStart,
          });
        }
        s.lastRamEos = recordStart;
        return;
      } else if (kind === RamFlag.MemSize) {
        if ((flags & RamFlag.Continue) !== 0 || sec.type !== "start") {
          throw new MigrationError("BAD_RAM_RECORD", `Cannot read RAM record: block list outside a START section`, {
            path,
            offset: recordStart,
          });
        }
        readBlockList(addr, recordStart);
      } else if (kind === RamFlag.MultifdFlush) {
        // post-7.2 multifd sync point: no payload.
      } else {
        const what =
          kind === RamFlag.Xbzrle
            ? "XBZRLE pages are not supported"
            : kind === RamFlag.CompressPage
              ? "compressed pages are not supported"
              : kind === RamFlag.Hook
                ? "RDMA hook records are not supported"
                : `unknown combination of flags ${hex(flags)}`;
        throw new MigrationError("BAD_RAM_RECORD", `Cannot read RAM record: ${what}`, { path, offset: recordStart });
      }
    }
  };

  const readBlockList = (total: number, at: number): void => {
    // Per-page tracking costs one byte per page (eight in diff): never more than the stream could justify.
    const maxPages = Math.max(MIN_TRACKED_PAGES, src.size);
    if (total / pageSize > maxPages) {
      throw new MigrationError(
        "LIMIT_EXCEEDED",
        `Cannot read RAM block list: ${hex(total)} bytes of RAM is over the limit of ${maxPages} pages for a stream of ${src.size} bytes`,
        { path: [RAM_SECTION_NAME], offset: at },
      );
    }
    let sum = 0;
    const blocks: RamBlockInfo[] = [];
    while (sum < total) {
      const entryAt = c.offset;
      if (blocks.length >= MAX_RAM_BLOCKS) {
        throw new MigrationError("LIMIT_EXCEEDED", `Cannot read RAM block list: over ${MAX_RAM_BLOCKS} blocks`, {
          path: [RAM_SECTION_NAME],
          offset: entryAt,
        });
      }
      const idstr = c.str();
      if (idstr.length === 0) {
        throw new MigrationError("BAD_RAM_RECORD", "Cannot read RAM block list: empty block name", {
          path: [RAM_SECTION_NAME],
          offset: entryAt,
        });
      }
      const length = c.u64n();
      if (c.lastHi >= 0x200000 || length % pageSize !== 0 || length > total - sum) {
        throw new MigrationError(
          "BAD_RAM_RECORD",
          `Cannot read RAM block list: block "${idstr}" length ${hex(length)} is not page aligned or over the total ${hex(total)}`,
          { path: [RAM_SECTION_NAME, idstr], offset: entryAt },
        );
      }
      if (ignoreShared) c.u64n();
      if (blocksByName.has(idstr) && blocks.some((b) => b.idstr === idstr)) {
        throw new MigrationError("BAD_RAM_RECORD", `Cannot read RAM block list: block "${idstr}" appears twice`, {
          path: [RAM_SECTION_NAME, idstr],
          offset: entryAt,
        });
      }
      const b: RamBlockInfo = {
        idstr,
        length,
        index: blocks.length,
        zeroRecords: 0,
        pageRecords: 0,
        lastKind: new Uint8Array(length / pageSize),
      };
      blocks.push(b);
      blocksByName.set(idstr, b);
      sum += length;
    }
    s.blocks = blocks;
    ram?.onBlocks?.(blocks);
  };

  const footer = (sec: SectionRecord): void => {
    sec.bodySize = c.offset - sec.bodyOffset;
    const at = c.offset;
    const next = c.peekU8();
    if (footers === undefined) footers = next === SectionType.Footer;
    if (!footers) return;
    if (next !== SectionType.Footer) {
      throw new MigrationError(
        "BAD_FOOTER",
        `Cannot read section "${sec.idstr}" (id ${sec.sectionId}): expected a footer at offset ${at}, found ${next < 0 ? "end of stream" : `byte ${hex(next)}`}` +
          (sec.idstr === RAM_SECTION_NAME ? "" : " (the section's bytes do not match its vmdesc sizes)"),
        { path: [sec.idstr], offset: at },
      );
    }
    c.advance(1);
    const id = c.u32();
    if (id !== sec.sectionId) {
      throw new MigrationError(
        "BAD_FOOTER",
        `Cannot read section "${sec.idstr}": footer names section ${id}, expected ${sec.sectionId}`,
        { path: [sec.idstr], offset: at },
      );
    }
  };

  const record = (sec: SectionRecord): void => {
    s.sectionCount++;
    if (s.sections.length < MAX_SECTION_RECORDS) s.sections.push(sec);
    options.onSection?.(sec);
  };

  for (;;) {
    const at = c.offset;
    if (c.remaining < 1) {
      throw new MigrationError("TRUNCATED", "Cannot read stream: it ends before QEMU_VM_EOF", { offset: at });
    }
    const t = c.u8();
    curSection = undefined;
    const wasFirst = first;
    first = false;
    try {
      if (t === SectionType.Eof) {
        s.eofOffset = at;
        break;
      }
      if (t === SectionType.Configuration) {
        if (!wasFirst) {
          throw new MigrationError("BAD_STREAM", "Cannot read stream: configuration section after other sections", {
            path: ["configuration"],
            offset: at,
          });
        }
        const window = Math.min(c.remaining, 1 << 16);
        const r = ByteReader.fromBytes(c.bytes(window), c.offset - window);
        s.config = decodeConfiguration(r);
        c.seek(r.offset);
        ignoreShared = s.config.capabilities?.includes("x-ignore-shared") ?? false;
        continue;
      }
      if (t === SectionType.Start || t === SectionType.Full) {
        const sectionId = c.u32();
        const idstr = c.str();
        const instanceId = c.u32();
        const ver = c.u32();
        curSection = idstr;
        const sec: SectionRecord = {
          type: TYPE_NAMES[t] as SectionRecord["type"],
          sectionId,
          idstr,
          instanceId,
          version: ver,
          offset: at,
          bodyOffset: c.offset,
          bodySize: 0,
        };
        record(sec);
        if (idstr === RAM_SECTION_NAME && instanceId === 0) {
          if (ver !== 4) {
            throw new MigrationError("VERSION_TOO_NEW", `Cannot read section "ram": version ${ver} is not 4`, {
              path: [idstr],
              offset: at,
            });
          }
          if (t === SectionType.Start) open.set(sectionId, sec);
          ramSection(sec);
        } else if (idstr === "block" || idstr === "dirty-bitmap") {
          throw new MigrationError(
            "BAD_STREAM",
            `Cannot read section "${idstr}": block migration and dirty-bitmap sections are not supported by the inspector`,
            { path: [idstr], offset: at },
          );
        } else if (t === SectionType.Start) {
          throw new MigrationError(
            "BAD_STREAM",
            `Cannot read section "${idstr}": iterative sections other than "ram" cannot be delimited`,
            { path: [idstr], offset: at },
          );
        } else {
          const desc = descs.get(key(idstr, instanceId)) ?? (trailer === undefined ? known.get(idstr) : undefined);
          if (desc === undefined) {
            throw new MigrationError(
              "UNKNOWN_SECTION",
              trailer === undefined
                ? `Cannot read section "${idstr}" instance ${instanceId}: the stream has no vmdesc trailer (is it truncated?) and the device's layout is not known`
                : `Cannot read section "${idstr}" instance ${instanceId}: the vmdesc does not describe it`,
              { path: [idstr], offset: at },
            );
          }
          if (typeof desc.version === "number" && desc.version !== ver) {
            s.warnings.push(`section "${idstr}" has version ${ver} but its vmdesc says ${desc.version}`);
          }
          const value = decodeVmsd(c, desc, [idstr], { values: 0, section: idstr });
          s.devices.push({ idstr, instanceId, sectionId, version: ver, size: c.offset - sec.bodyOffset });
          options.onDevice?.(sec, value);
        }
        footer(sec);
        continue;
      }
      if (t === SectionType.Part || t === SectionType.End) {
        const sectionId = c.u32();
        const st = open.get(sectionId);
        if (st === undefined) {
          throw new MigrationError(
            "BAD_STREAM",
            `Cannot read ${t === SectionType.Part ? "PART" : "END"} section ${sectionId}: no open START section has that id`,
            { offset: at },
          );
        }
        curSection = st.idstr;
        const sec: SectionRecord = {
          ...st,
          type: TYPE_NAMES[t] as SectionRecord["type"],
          offset: at,
          bodyOffset: c.offset,
          bodySize: 0,
        };
        record(sec);
        if (t === SectionType.End) open.delete(sectionId);
        ramSection(sec);
        footer(sec);
        continue;
      }
      if (t === SectionType.Command) {
        const cmd = c.u16();
        const len = c.u16();
        if (cmd === 7) {
          throw new MigrationError("BAD_COMMAND", "Cannot read command PACKAGED: postcopy packages are not supported", {
            offset: at,
          });
        }
        if (cmd === 0 || cmd > 11) {
          throw new MigrationError("BAD_COMMAND", `Cannot read command ${cmd}: unknown command`, { offset: at });
        }
        c.skip(Math.min(len, MAX_COMMAND_BYTES));
        s.commands.push({ cmd, offset: at });
        continue;
      }
      if (t === SectionType.Footer) {
        throw new MigrationError("BAD_FOOTER", "Cannot read stream: section footer outside a section", { offset: at });
      }
      throw new MigrationError("BAD_SECTION_TYPE", `Cannot read stream: unknown section type ${hex(t)}`, {
        offset: at,
      });
    } catch (e) {
      if (e instanceof MigrationError) {
        const noPath = e.path === undefined || e.path.length === 0;
        if (noPath && curSection !== undefined) throw e.withContext([curSection], at);
        if (e.offset === undefined) throw e.withContext([], at);
      }
      throw e;
    }
  }

  // After EOF: nothing, or the vmdesc trailer and nothing more.
  if (c.remaining > 0) {
    const at = c.offset;
    const t = c.u8();
    if (t !== SectionType.VmDescription) {
      throw new MigrationError("BAD_STREAM", `Cannot read stream: byte ${hex(t)} after QEMU_VM_EOF is not a vmdesc`, {
        path: ["vmdesc"],
        offset: at,
      });
    }
    const len = c.u32();
    if (len > MAX_VMDESC_BYTES) {
      throw new MigrationError("LIMIT_EXCEEDED", `Cannot read vmdesc: ${len} bytes is over ${MAX_VMDESC_BYTES}`, {
        path: ["vmdesc"],
        offset: at,
      });
    }
    if (len > c.remaining) {
      throw new MigrationError("TRUNCATED", `Cannot read vmdesc: ${len} bytes announced, ${c.remaining} left`, {
        path: ["vmdesc"],
        offset: at,
      });
    }
    c.skip(len);
    if (c.remaining > 0) {
      throw new MigrationError("BAD_STREAM", `Cannot read stream: ${c.remaining} bytes after the vmdesc trailer`, {
        path: ["vmdesc"],
        offset: c.offset,
      });
    }
    if (trailer === undefined && options.trailer === undefined) {
      throw new MigrationError("BAD_STREAM", "Cannot read vmdesc: its JSON does not start where QEMU's does", {
        path: ["vmdesc"],
        offset: at,
      });
    }
    if (trailer !== undefined && trailer.offset !== at) {
      throw new MigrationError(
        "BAD_STREAM",
        `Cannot read vmdesc: found at ${at} but the trailer search found ${trailer.offset}`,
        { path: ["vmdesc"], offset: at },
      );
    }
  } else if (trailer !== undefined && options.trailer === undefined) {
    throw new MigrationError(
      "BAD_STREAM",
      "Cannot read stream: the vmdesc trailer found at the end is inside the stream",
      {
        path: ["vmdesc"],
        offset: trailer.offset,
      },
    );
  }
  for (const [id, sec] of open) s.warnings.push(`RAM section ${id} ("${sec.idstr}") was started but never ended`);
  return s;
}
