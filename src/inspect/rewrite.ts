/**
 * `rewrite`: parse a stream and write it back, optionally with RAM pages patched.
 *
 * Everything not edited is copied byte for byte from the input, so a rewrite with no edits is byte-identical.
 * The patch rule (QEMU resends a page every time it is dirtied, and the destination keeps the last copy):
 * - a patched page's **last** record is edited; earlier records of it are left alone (they are overwritten on
 *   the destination by the last one);
 * - if that last record is a PAGE, its 4 KiB payload is replaced in place (same stream length);
 * - if it is a ZERO record, it becomes a PAGE record (same offset word with ZERO replaced by PAGE, same block
 *   name or CONTINUE, the page instead of the fill byte): the stream grows by page size - 1 bytes;
 * - if the page was never sent, a PAGE record naming its block is inserted before the last RAM EOS of the
 *   stream; its base content is zeros.
 * A patch that covers part of a page is laid over the page's content from that last record.
 *
 * @module
 */

import { closeSync, openSync, writeSync } from "node:fs";
import { MigrationError } from "../errors.js";
import { RamFlag } from "../ram/ram-flags.js";
import { asciiOrUtf8 } from "../wire/byte-writer.js";
import { readExact } from "./cursor.js";
import type { RandomAccessSource } from "./source.js";
import { type RamBlockInfo, type StreamSummary, type WalkOptions, walkStream } from "./walk.js";

/** One RAM patch: bytes to put at `offset` in block `block`. */
export interface RamPatch {
  readonly block: string;
  readonly offset: number;
  readonly data: Uint8Array;
}

/** The result of {@link rewriteSource}. */
export interface RewriteResult {
  /** Bytes written. */
  readonly bytes: number;
  /** Pages patched, with how: `page` (payload replaced), `zero` (ZERO record became PAGE), `inserted`. */
  readonly pages: readonly { block: string; offset: number; how: "page" | "zero" | "inserted" }[];
  readonly summary: StreamSummary;
}

interface Last {
  isPage: boolean;
  recordStart: number;
  dataOffset: number;
  fill: number;
}

interface Edit {
  at: number;
  remove: number;
  insert: Uint8Array[];
}

const COPY_BYTES = 8 * 1024 * 1024;
/** A cell to sleep on with `Atomics.wait` while a pipe drains. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * Parses `src` (failing on any malformed item) and writes it to `out` with `patches` applied.
 *
 * @param src The input stream.
 * @param out An output path, or a file descriptor.
 * @param patches RAM patches, applied in order.
 * @param options Known devices and progress.
 * @returns What was written.
 * @throws MigrationError for a malformed input; RangeError for a patch naming an unknown block or out of range.
 */
export function rewriteSource(
  src: RandomAccessSource,
  out: string | number,
  patches: readonly RamPatch[] = [],
  options: Pick<WalkOptions, "knownDevices" | "onProgress"> = {},
): RewriteResult {
  let pageSize = 4096;
  let blocks: readonly RamBlockInfo[] = [];
  /** Per block index: page -> last record (undefined until seen). */
  let touched = new Map<number, Map<number, Last | undefined>>();
  const resolve = (bs: readonly RamBlockInfo[]): void => {
    blocks = bs;
    touched = new Map();
    for (const p of patches) {
      const b = bs.find((x) => x.idstr === p.block);
      if (b === undefined) throw new RangeError(`Cannot patch RAM: the stream has no block "${p.block}"`);
      if (!Number.isSafeInteger(p.offset) || p.offset < 0 || p.offset + p.data.length > b.length) {
        throw new RangeError(
          `Cannot patch RAM: ${p.data.length} bytes at 0x${p.offset.toString(16)} do not fit block "${p.block}" of 0x${b.length.toString(16)} bytes`,
        );
      }
      let m = touched.get(b.index);
      if (m === undefined) {
        m = new Map();
        touched.set(b.index, m);
      }
      const first = Math.floor(p.offset / pageSize);
      const last = Math.floor((p.offset + Math.max(p.data.length, 1) - 1) / pageSize);
      for (let pg = first; pg <= last; pg++) if (!m.has(pg)) m.set(pg, undefined);
    }
  };
  const summary = walkStream(src, {
    ...options,
    ram: {
      onBlocks(bs) {
        resolve(bs);
      },
      onPage(block, page, isPage, _data, index, recordStart, dataOffset) {
        if (touched.size === 0) return;
        const m = touched.get(block.index);
        if (m === undefined || !m.has(page)) return;
        m.set(page, { isPage, recordStart, dataOffset, fill: isPage ? 0 : index });
      },
    },
  });
  pageSize = summary.pageSize;
  if (patches.length > 0 && blocks.length === 0) throw new RangeError("Cannot patch RAM: the stream has no RAM blocks");

  const edits: Edit[] = [];
  const done: RewriteResult["pages"][number][] = [];
  for (const [bi, pages] of touched) {
    const b = blocks[bi] as RamBlockInfo;
    for (const [page, last] of pages) {
      const base = page * pageSize;
      const image =
        last === undefined
          ? new Uint8Array(pageSize)
          : last.isPage
            ? readExact(src, last.dataOffset, pageSize)
            : new Uint8Array(pageSize).fill(last.fill);
      for (const p of patches) {
        if (p.block !== b.idstr) continue;
        const from = Math.max(p.offset, base);
        const to = Math.min(p.offset + p.data.length, base + pageSize);
        if (from < to) image.set(p.data.subarray(from - p.offset, to - p.offset), from - base);
      }
      if (last === undefined) {
        if (summary.lastRamEos < 0) throw new RangeError("Cannot patch RAM: the stream has no RAM EOS record");
        const name = asciiOrUtf8(b.idstr);
        const head = new Uint8Array(9 + name.length);
        const dv = new DataView(head.buffer);
        dv.setUint32(0, Math.floor(base / 2 ** 32));
        dv.setUint32(4, (base % 2 ** 32) + RamFlag.Page);
        head[8] = name.length;
        head.set(name, 9);
        edits.push({ at: summary.lastRamEos, remove: 0, insert: [head, image] });
        done.push({ block: b.idstr, offset: base, how: "inserted" });
      } else if (last.isPage) {
        edits.push({ at: last.dataOffset, remove: pageSize, insert: [image] });
        done.push({ block: b.idstr, offset: base, how: "page" });
      } else {
        const head = readExact(src, last.recordStart, last.dataOffset - last.recordStart);
        head[7] = ((head[7] as number) & ~RamFlag.Zero) | RamFlag.Page;
        edits.push({ at: last.recordStart, remove: last.dataOffset + 1 - last.recordStart, insert: [head, image] });
        done.push({ block: b.idstr, offset: base, how: "zero" });
      }
    }
  }
  edits.sort((x, y) => x.at - y.at);

  const fd = typeof out === "number" ? out : openSync(out, "w");
  let written = 0;
  const put = (b: Uint8Array): void => {
    let off = 0;
    while (off < b.length) {
      try {
        off += writeSync(fd, b, off, b.length - off);
      } catch (e) {
        // stdout may be a non-blocking pipe: wait a millisecond for the reader and retry.
        if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
        Atomics.wait(PAUSE, 0, 0, 1);
      }
    }
    written += b.length;
  };
  const buf = new Uint8Array(COPY_BYTES);
  const copy = (from: number, to: number): void => {
    let pos = from;
    while (pos < to) {
      const n = src.readAt(pos, buf, 0, Math.min(COPY_BYTES, to - pos));
      if (n === 0)
        throw new MigrationError("TRUNCATED", "Cannot rewrite: the input shrank while copying", { offset: pos });
      put(buf.subarray(0, n));
      pos += n;
    }
  };
  try {
    let pos = 0;
    for (const e of edits) {
      copy(pos, e.at);
      for (const part of e.insert) put(part);
      pos = e.at + e.remove;
    }
    copy(pos, src.size);
  } finally {
    if (typeof out !== "number") closeSync(fd);
  }
  return { bytes: written, pages: done, summary };
}

/**
 * Parses a `--set-ram` argument: `BLOCK:OFFSET=FILE` (OFFSET decimal or 0x-hex). The block name may contain
 * `:`; the last `:` before `=` separates it.
 *
 * @returns The block, offset and file path.
 * @throws TypeError on a malformed argument.
 */
export function parseSetRam(arg: string): { block: string; offset: number; file: string } {
  const eq = arg.indexOf("=");
  const colon = eq < 0 ? -1 : arg.lastIndexOf(":", eq);
  if (eq < 0 || colon <= 0) throw new TypeError(`Cannot parse --set-ram "${arg}": expected BLOCK:OFFSET=FILE`);
  const block = arg.slice(0, colon);
  const offText = arg.slice(colon + 1, eq);
  const offset = /^0x[0-9a-f]+$/i.test(offText)
    ? Number.parseInt(offText, 16)
    : /^\d+$/.test(offText)
      ? Number(offText)
      : NaN;
  if (!Number.isSafeInteger(offset)) throw new TypeError(`Cannot parse --set-ram "${arg}": bad offset "${offText}"`);
  const file = arg.slice(eq + 1);
  if (file === "") throw new TypeError(`Cannot parse --set-ram "${arg}": no file`);
  return { block, offset, file };
}
