/**
 * `--extract-ram DIR`: each RAM block written to `DIR/<idstr>` as a file of the block's length, sparse where pages
 * are zero. The final content of each page is the last record sent for it (QEMU resends dirtied pages).
 *
 * @module
 */

import { closeSync, ftruncateSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { MigrationError } from "../errors.js";
import type { RamBlockInfo, RamVisitor } from "./walk.js";

/** Staging buffer for runs of consecutive pages: 4 MiB, one `write` per run. */
const STAGE_BYTES = 4 * 1024 * 1024;
/** Zero gaps up to this size inside a run of pages are written as zeros rather than left as holes. */
const MAX_GAP_BYTES = 64 * 1024;

/**
 * Maps a block idstr to a safe relative path: analyze-migration.py writes `./<idstr>` (so `/rom@etc/acpi/tables`
 * becomes `rom@etc/acpi/tables`); empty, `.` and `..` segments are replaced so a hostile name cannot escape DIR.
 */
export function blockFileName(idstr: string): string {
  const segs = idstr
    .split("/")
    .filter((x) => x !== "")
    .map((x) => (x === "." || x === ".." ? x.replace(/\./g, "_") : x.replace(/\0/g, "_")));
  return segs.length === 0 ? "_" : segs.join("/");
}

/** Writes RAM blocks to files during a walk. Call {@link RamExtractor.finish} after the walk. */
export class RamExtractor implements RamVisitor {
  readonly #dir: string;
  #fds: number[] = [];
  #blocks: readonly RamBlockInfo[] = [];
  /** Per block: which pages hold written data (so a later ZERO record must write zeros). */
  #written: Uint8Array[] = [];
  readonly #stage = new Uint8Array(STAGE_BYTES);
  #stageLen = 0;
  #stageBlock = -1;
  #stageAt = 0;
  readonly #pageSize: number;
  readonly #zero: Uint8Array;
  /** Files written: block idstr and path. */
  readonly files: { idstr: string; path: string; length: number }[] = [];

  /**
   * @param dir The output directory (created).
   * @param pageSize The stream's page size.
   */
  constructor(dir: string, pageSize: number) {
    this.#dir = resolve(dir);
    this.#pageSize = pageSize;
    this.#zero = new Uint8Array(pageSize);
    mkdirSync(this.#dir, { recursive: true });
  }

  onBlocks(blocks: readonly RamBlockInfo[]): void {
    this.#flush();
    for (const fd of this.#fds) closeSync(fd);
    this.#fds = [];
    this.#written = [];
    this.files.length = 0;
    this.#blocks = blocks;
    for (const b of blocks) {
      const path = join(this.#dir, blockFileName(b.idstr));
      if (!path.startsWith(this.#dir + sep)) {
        throw new MigrationError("BAD_RAM_RECORD", `Cannot extract block "${b.idstr}": unsafe name`, {
          path: ["ram", b.idstr],
        });
      }
      mkdirSync(join(path, ".."), { recursive: true });
      const fd = openSync(path, "w");
      ftruncateSync(fd, b.length);
      this.#fds.push(fd);
      this.#written.push(new Uint8Array(b.lastKind.length));
      this.files.push({ idstr: b.idstr, path, length: b.length });
    }
  }

  onPage(block: RamBlockInfo, page: number, isPage: boolean, data: Uint8Array, index: number): void {
    const ps = this.#pageSize;
    const written = this.#written[block.index] as Uint8Array;
    if (!isPage) {
      if (written[page] === 0 && index === 0) return; // still a hole: sparse
      this.#flush();
      const fill = index === 0 ? this.#zero : new Uint8Array(ps).fill(index);
      writeSync(this.#fds[block.index] as number, fill, 0, ps, page * ps);
      written[page] = index === 0 ? 0 : 1;
      return;
    }
    written[page] = 1;
    const at = page * ps;
    const end = this.#stageAt + this.#stageLen;
    if (
      this.#stageBlock === block.index &&
      at > end &&
      at - end <= MAX_GAP_BYTES &&
      this.#stageLen + (at - end) + ps <= STAGE_BYTES &&
      this.#holes(written, end, at)
    ) {
      // A short run of holes: write its zeros with the run instead of splitting the write (sparse at 64 KiB).
      this.#stage.fill(0, this.#stageLen, this.#stageLen + (at - end));
      this.#stageLen += at - end;
    }
    if (
      this.#stageBlock !== block.index ||
      this.#stageAt + this.#stageLen !== at ||
      this.#stageLen + ps > STAGE_BYTES
    ) {
      this.#flush();
      this.#stageBlock = block.index;
      this.#stageAt = at;
    }
    this.#stage.set(data.subarray(index, index + ps), this.#stageLen);
    this.#stageLen += ps;
  }

  /** Whether every page in [from, to) is still a hole (never written with data). */
  #holes(written: Uint8Array, from: number, to: number): boolean {
    for (let p = from / this.#pageSize; p < to / this.#pageSize; p++) if (written[p] !== 0) return false;
    return true;
  }

  #flush(): void {
    if (this.#stageLen === 0) return;
    const fd = this.#fds[this.#stageBlock] as number;
    let done = 0;
    while (done < this.#stageLen) done += writeSync(fd, this.#stage, done, this.#stageLen - done, this.#stageAt + done);
    this.#stageLen = 0;
  }

  /** Flushes and closes the files. */
  finish(): void {
    this.#flush();
    for (const fd of this.#fds) closeSync(fd);
    this.#fds = [];
    void this.#blocks;
  }
}
