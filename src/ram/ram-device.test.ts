import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { Worker } from "node:worker_threads";
import { type ErrorCode, isMigrationError } from "../errors.js";
import { xorshift32 } from "../machine/xorshift.js";
import type { LiveSectionType } from "../savevm/handlers.js";
import type { ByteSource } from "../transport/channel.js";
import { ByteReader } from "../wire/byte-reader.js";
import { ByteWriter, MemorySink } from "../wire/byte-writer.js";
import { RateLimiter } from "../wire/rate-limiter.js";
import { RamBlock } from "./ram-block.js";
import { RamDevice } from "./ram-device.js";

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

const PAGE = 4096;
const enc = new TextEncoder();

function hexOf(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Hex with spaces and `"text"` pieces (as in the spec) to bytes. */
function h(spec: string): string {
  let out = "";
  for (const tok of spec.match(/"[^"]*"|\S+/g) ?? []) {
    out += tok.startsWith('"') ? hexOf(enc.encode(tok.slice(1, -1))) : tok.toLowerCase();
  }
  return out;
}

function fillRandom(b: Uint8Array, next: () => number): void {
  const w = new Uint32Array(b.length >>> 2);
  for (let i = 0; i < w.length; i++) w[i] = next();
  b.set(new Uint8Array(w.buffer));
}

interface SectionMark {
  readonly type: LiveSectionType;
  readonly start: number;
  readonly end: number;
}

/** Captures RAM section payloads into one byte array, remembering where each section starts and ends. */
class Recorder {
  readonly sink = new MemorySink();
  readonly w = new ByteWriter(this.sink, { bufferSize: 64 * 1024 });
  readonly sections: SectionMark[] = [];

  async section(type: LiveSectionType, fn: (w: ByteWriter) => Promise<unknown>): Promise<Uint8Array> {
    const start = this.w.offset;
    await fn(this.w);
    this.sections.push({ type, start, end: this.w.offset });
    await this.w.flush();
    return this.sink.bytes().subarray(start, this.w.offset);
  }

  get bytes(): Uint8Array {
    return this.sink.bytes();
  }
}

/** A ByteSource that hands out `bytes` in chunks of the sizes `size()` returns. */
function chunked(bytes: Uint8Array, size: () => number): ByteSource {
  let off = 0;
  return {
    read: () => {
      if (off >= bytes.length) return Promise.resolve(null);
      const n = Math.max(1, Math.min(size(), bytes.length - off));
      const c = bytes.slice(off, off + n);
      off += n;
      return Promise.resolve(c);
    },
  };
}

async function loadAll(dev: RamDevice, r: ByteReader, sections: readonly SectionMark[]): Promise<void> {
  dev.loadSetup();
  for (const s of sections) {
    await dev.loadState(r, 4, s.type);
    assert.equal(r.offset, s.end, `section ${s.type} ended at ${r.offset}, expected ${s.end}`);
  }
}

async function expectError(
  p: Promise<unknown>,
  code: ErrorCode,
  expect: { path?: readonly (string | number)[]; offset?: number; message?: RegExp } = {},
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isMigrationError(e), `not a MigrationError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (expect.path !== undefined) assert.deepEqual(e.path, expect.path);
    if (expect.offset !== undefined) assert.equal(e.offset, expect.offset, e.message);
    if (expect.message !== undefined) assert.match(e.message, expect.message);
    return true;
  });
}

const NO_DEADLINE = Number.POSITIVE_INFINITY;

/** The small 2-block machine of the golden tests: pc.ram (3 pages) and vga (1 page). */
function smallMachine(): { dev: RamDevice; ram: RamBlock; vga: RamBlock } {
  const ram = new RamBlock("pc.ram", 3 * PAGE);
  const vga = new RamBlock("vga", PAGE);
  return { dev: new RamDevice([ram, vga]), ram, vga };
}

// ---------------------------------------------------------------------------------------------------------------

void suite("RamDevice: golden bytes", () => {
  test("saveSetup() writes the 7.2 block list of `pc-i440fx-7.2 -m 32` exactly as QEMU does [spec 4.2]", async () => {
    const blocks = [
      new RamBlock("pc.ram", 0x2000000),
      new RamBlock("/rom@etc/acpi/tables", 0x20000),
      new RamBlock("pc.bios", 0x40000),
      new RamBlock("pc.rom", 0x20000),
      new RamBlock("/rom@etc/table-loader", 0x1000),
      new RamBlock("/rom@etc/acpi/rsdp", 0x1000),
    ];
    const dev = new RamDevice(blocks, { batchPages: 3 });
    const rec = new Recorder();
    const start = await rec.section("start", (w) => dev.saveSetup(w));
    assert.equal(
      hexOf(start),
      h(`00 00 00 00 02 08 20 04
         06 "pc.ram" 0000000002000000  14 "/rom@etc/acpi/tables" 0000000000020000
         07 "pc.bios" 0000000000040000  06 "pc.rom" 0000000000020000
         15 "/rom@etc/table-loader" 0000000000001000  12 "/rom@etc/acpi/rsdp" 0000000000001000
         0000000000000010`),
    );
    // The first PART of the same (never-written) RAM starts like QEMU's [spec 4.3, verified].
    const part = await rec.section("part", (w) => dev.saveLiveIterate(w, undefined, Number.NEGATIVE_INFINITY));
    assert.equal(
      hexOf(part),
      h(`0000000000000002 06 "pc.ram" 00  0000000000001022 00  0000000000002022 00  0000000000000010`),
    );
    dev.saveCleanup();
  });

  test("START/PART/END of a 2-block RAM: ZERO vs PAGE, CONTINUE, CONTINUE across sections", async () => {
    const { dev, ram, vga } = smallMachine();
    const dataA = new Uint8Array(PAGE).fill(0x11);
    ram.write(PAGE, dataA); // pc.ram page 1: data
    ram.write(2 * PAGE, new Uint8Array(PAGE)); // pc.ram page 2: written, but zero
    const rec = new Recorder();

    const start = await rec.section("start", (w) => dev.saveSetup(w));
    assert.equal(
      hexOf(start),
      h(`0000000000004004  06 "pc.ram" 0000000000003000  03 "vga" 0000000000001000  0000000000000010`),
    );
    assert.equal(dev.stats.dirtySyncCount, 1);
    assert.equal(dev.pendingEstimate(), 4 * PAGE);

    const part1 = await rec.section("part", async (w) => {
      assert.equal(await dev.saveLiveIterate(w, undefined, NO_DEADLINE), true);
    });
    assert.equal(
      hexOf(part1),
      h(`0000000000000002 06 "pc.ram" 00
         0000000000001028 ${"11".repeat(PAGE)}
         0000000000002022 00
         0000000000000002 03 "vga" 00
         0000000000000010`),
    );
    assert.equal(dev.pendingEstimate(), 0);

    // Re-dirty pc.ram page 0 and vga page 0. The search resumes where it stopped (QEMU: last_seen_block), in
    // vga, which was also the last block named: CONTINUE across sections; then pc.ram must be named again.
    ram.write(0, new Uint8Array(PAGE).fill(0x22));
    vga.write(0, new Uint8Array(PAGE).fill(0x33));
    assert.equal(dev.pendingEstimate(), 0); // no sync yet
    assert.equal(dev.pendingExact(), 2 * PAGE);
    const part2 = await rec.section("part", (w) => dev.saveLiveIterate(w, undefined, NO_DEADLINE));
    assert.equal(
      hexOf(part2),
      h(`0000000000000028 ${"33".repeat(PAGE)}
         0000000000000008 06 "pc.ram" ${"22".repeat(PAGE)}
         0000000000000010`),
    );

    // pc.ram was the last block named: the END section continues it without a name.
    ram.write(0, new Uint8Array(PAGE).fill(0x44));
    const end = await rec.section("end", (w) => dev.saveComplete(w));
    assert.equal(hexOf(end), h(`0000000000000028 ${"44".repeat(PAGE)} 0000000000000010`));

    const s = dev.stats;
    assert.equal(s.duplicate, 3);
    assert.equal(s.normal, 4);
    assert.equal(s.normalBytes, 4 * PAGE);
    assert.equal(s.dirtySyncCount, 3);
    assert.equal(s.remaining, 0);
    assert.equal(s.total, 4 * PAGE);

    // And it loads back.
    const dst = smallMachine();
    await loadAll(dst.dev, ByteReader.fromBytes(rec.bytes), rec.sections);
    assert.deepEqual(dst.ram.bytes, ram.bytes);
    assert.deepEqual(dst.vga.bytes, vga.bytes);
    assert.deepEqual(dst.dev.loadStats, { normal: 4, duplicate: 3, zeroSkipped: 3 });
  });

  test("saveLiveIterate() stops at the rate limit and resumes where it stopped", async () => {
    const ram = new RamBlock("pc.ram", 64 * PAGE);
    for (let p = 0; p < 64; p++) ram.write(p * PAGE, new Uint8Array(PAGE).fill(p + 1));
    const dev = new RamDevice([ram], { batchPages: 8 });
    const rec = new Recorder();
    await rec.section("start", (w) => dev.saveSetup(w));
    let now = 0;
    const limiter = new RateLimiter(10 * 20 * 1024, () => now); // 20 KiB per 100 ms window: ~1 batch
    const passes: number[] = [];
    let done = false;
    while (!done) {
      const before = dev.pendingEstimate();
      await rec.section("part", async (w) => {
        done = await dev.saveLiveIterate(w, limiter, NO_DEADLINE);
      });
      passes.push((before - dev.pendingEstimate()) / PAGE);
      now += 100;
    }
    assert.ok(passes.length >= 4, `passes ${passes.join(",")}`);
    for (const n of passes.slice(0, -1)) assert.ok(n > 0 && n <= 16, `pass sent ${n} pages`);
    await rec.section("end", (w) => dev.saveComplete(w));
    const dst = new RamBlock("pc.ram", 64 * PAGE);
    await loadAll(new RamDevice([dst]), ByteReader.fromBytes(rec.bytes), rec.sections);
    assert.deepEqual(dst.bytes, ram.bytes);
  });

  test("saveLiveIterate() stops after one batch once the deadline has passed", async () => {
    const ram = new RamBlock("pc.ram", 64 * PAGE);
    const dev = new RamDevice([ram], { batchPages: 16 });
    const rec = new Recorder();
    await rec.section("start", (w) => dev.saveSetup(w));
    await rec.section("part", async (w) => {
      assert.equal(await dev.saveLiveIterate(w, undefined, 0), false);
    });
    assert.equal(dev.pendingEstimate(), 48 * PAGE);
  });
});

void suite("RamDevice: statistics and setup", () => {
  test("new RamDevice() rejects two blocks with the same idstr", () => {
    assert.throws(() => new RamDevice([new RamBlock("a", PAGE), new RamBlock("a", PAGE)]), TypeError);
  });

  test("saveLiveIterate() before saveSetup() is a programmer error", async () => {
    const { dev } = smallMachine();
    await assert.rejects(dev.saveLiveIterate(new ByteWriter(new MemorySink()), undefined, 0), TypeError);
  });

  test("stats report QEMU's dirty-pages-rate per >1 s sync period and pages-per-second per 100 ms window", async () => {
    let now = 0;
    const ram = new RamBlock("pc.ram", 256 * PAGE);
    const dev = new RamDevice([ram], { clock: () => now, batchPages: 64 });
    const rec = new Recorder();
    await rec.section("start", (w) => dev.saveSetup(w));
    // The saver reads the clock once after each batch: the first batch closes a 100 ms window of 64 pages.
    now = 100;
    await rec.section("part", (w) => dev.saveLiveIterate(w, undefined, NO_DEADLINE));
    assert.equal(dev.stats.pagesPerSecond, 640);
    assert.equal(dev.stats.normal + dev.stats.duplicate, 256);
    // 30 pages dirtied by 0.4 s: no rate yet (QEMU waits for a period of more than 1 s).
    ram.markDirty(0, 30 * PAGE);
    now = 400;
    assert.equal(dev.pendingExact(), 30 * PAGE);
    assert.equal(dev.stats.dirtyPagesRate, 0);
    // 30 more by 1.5 s: 60 pages / 1.5 s.
    ram.markDirty(100 * PAGE, 30 * PAGE);
    now = 1500;
    dev.pendingExact();
    const s = dev.stats;
    assert.equal(s.dirtyPagesRate, 40);
    assert.equal(s.lastSyncDirtyPages, 30);
    assert.equal(s.dirtySyncCount, 3);
    assert.equal(s.remaining, 60 * PAGE);
    assert.equal(s.pageSize, PAGE);
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** A source machine with random, zero-written and never-written pages, saved over several passes. */
async function savedMachine(seed: number): Promise<{ rec: Recorder; blocks: RamBlock[] }> {
  const next = xorshift32(seed);
  const blocks = [new RamBlock("pc.ram", 96 * PAGE), new RamBlock("pc.bios", 8 * PAGE), new RamBlock("vga", 16 * PAGE)];
  const page = new Uint8Array(PAGE);
  const scribble = (b: RamBlock) => {
    const p = next() % b.pages;
    const kind = next() % 3;
    if (kind === 0) page.fill(0);
    else if (kind === 1) fillRandom(page, next);
    else {
      page.fill(0);
      page[next() % PAGE] = (next() % 255) + 1;
    }
    b.write(p * PAGE, page);
  };
  for (let i = 0; i < 60; i++) scribble(blocks[next() % blocks.length] as RamBlock);
  const dev = new RamDevice(blocks, { batchPages: 7 });
  const rec = new Recorder();
  await rec.section("start", (w) => dev.saveSetup(w));
  let now = 0;
  const limiter = new RateLimiter(10 * 48 * 1024, () => now);
  for (let pass = 0; pass < 5; pass++) {
    await rec.section("part", (w) => dev.saveLiveIterate(w, limiter, NO_DEADLINE));
    now += 100;
    for (let i = 0; i < 15; i++) scribble(blocks[next() % blocks.length] as RamBlock);
    if (pass % 2 === 1) dev.pendingExact();
  }
  for (let i = 0; i < 10; i++) scribble(blocks[next() % blocks.length] as RamBlock);
  await rec.section("end", (w) => dev.saveComplete(w));
  dev.saveCleanup();
  return { rec, blocks };
}

function freshBlocks(src: readonly RamBlock[]): RamBlock[] {
  return src.map((b) => new RamBlock(b.idstr, b.size));
}

void suite("RamDevice: round trip", () => {
  test("random + zero + never-written pages load back byte-equal, and stay loadable again", async () => {
    const { rec, blocks } = await savedMachine(7);
    const dst = freshBlocks(blocks);
    const dev = new RamDevice(dst);
    await loadAll(dev, ByteReader.fromBytes(rec.bytes), rec.sections);
    for (let i = 0; i < blocks.length; i++) assert.deepEqual(dst[i]?.bytes, blocks[i]?.bytes);
    assert.ok(dev.loadStats.normal > 0 && dev.loadStats.duplicate > 0 && dev.loadStats.zeroSkipped > 0);

    // The destination migrates on: every loaded page counts as written, so nothing is lost.
    const rec2 = new Recorder();
    await rec2.section("start", (w) => dev.saveSetup(w));
    await rec2.section("end", (w) => dev.saveComplete(w));
    const dst2 = freshBlocks(blocks);
    await loadAll(new RamDevice(dst2), ByteReader.fromBytes(rec2.bytes), rec2.sections);
    for (let i = 0; i < blocks.length; i++) assert.deepEqual(dst2[i]?.bytes, blocks[i]?.bytes);
  });

  test("loading gives the same RAM for random chunk splits (chunk invariance)", async () => {
    const { rec, blocks } = await savedMachine(99);
    for (let seed = 1; seed <= 6; seed++) {
      const next = xorshift32(seed * 7919);
      const max = [3, 17, 300, 5000, 9000, 70000][seed - 1] as number;
      const dst = freshBlocks(blocks);
      const r = new ByteReader(chunked(rec.bytes, () => 1 + (next() % max)));
      await loadAll(new RamDevice(dst), r, rec.sections);
      assert.equal(await r.atEnd(), true);
      for (let i = 0; i < blocks.length; i++) assert.deepEqual(dst[i]?.bytes, blocks[i]?.bytes, `seed ${seed}`);
    }
  });

  test("loading a small stream fed 1 byte at a time gives the same RAM", async () => {
    const { dev, ram, vga } = smallMachine();
    ram.write(PAGE, new Uint8Array(PAGE).fill(7));
    vga.write(100, new Uint8Array([1, 2, 3]));
    const rec = new Recorder();
    await rec.section("start", (w) => dev.saveSetup(w));
    await rec.section("part", (w) => dev.saveLiveIterate(w, undefined, NO_DEADLINE));
    ram.write(0, new Uint8Array([9]));
    await rec.section("end", (w) => dev.saveComplete(w));
    const dst = smallMachine();
    await loadAll(dst.dev, new ByteReader(chunked(rec.bytes, () => 1)), rec.sections);
    assert.deepEqual(dst.ram.bytes, ram.bytes);
    assert.deepEqual(dst.vga.bytes, vga.bytes);
  });

  test("a ZERO record clears a destination page that holds data", async () => {
    const { dev } = smallMachine();
    const rec = new Recorder();
    await rec.section("start", (w) => dev.saveSetup(w));
    await rec.section("end", (w) => dev.saveComplete(w));
    const dst = smallMachine();
    dst.ram.write(PAGE + 10, new Uint8Array([1, 2, 3]));
    await loadAll(dst.dev, ByteReader.fromBytes(rec.bytes), rec.sections);
    assert.equal(dst.ram.isPageZero(1), true);
    assert.deepEqual(dst.dev.loadStats, { normal: 0, duplicate: 4, zeroSkipped: 3 });
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** Builds a stream: START (block list of the small machine) followed by `part` as one PART payload. */
const START = h(`0000000000004004 06 "pc.ram" 0000000000003000 03 "vga" 0000000000001000 0000000000000010`);
const START_LEN = START.length / 2;

function bytesOf(hex: string): Uint8Array {
  const b = new Uint8Array(hex.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return b;
}

async function loadParts(startHex: string, ...parts: string[]): Promise<void> {
  const { dev } = smallMachine();
  const r = new ByteReader(chunked(bytesOf(startHex + parts.join("")), () => 5));
  dev.loadSetup();
  await dev.loadState(r, 4, "start");
  for (let i = 0; i < parts.length; i++) await dev.loadState(r, 4, i === parts.length - 1 ? "end" : "part");
}

const EOS = "0000000000000010";
const FILL = "00".repeat(PAGE);

void suite("RamDevice: hostile streams (spec part 8, RAM)", () => {
  test("loadState() rejects versions other than 4", async () => {
    const { dev } = smallMachine();
    await expectError(dev.loadState(ByteReader.fromBytes(bytesOf(START)), 5, "start"), "VERSION_TOO_NEW", {
      path: ["ram"],
    });
    await expectError(dev.loadState(ByteReader.fromBytes(bytesOf(START)), 3, "start"), "VERSION_TOO_OLD");
  });

  test("loadState() accepts a valid stream (control for the cases below)", async () => {
    await loadParts(START, h(`0000000000002008 06 "pc.ram" ${FILL} 0000000000000022 00 ${EOS}`));
  });

  const cases: {
    name: string;
    part: string;
    offset: number;
    path?: string[];
    message: RegExp;
  }[] = [
    { name: "unknown flag bit 0x400", part: `0000000000000402 06 "pc.ram" 00`, offset: 0, message: /unknown/ },
    { name: "obsolete FULL flag", part: `0000000000000003 06 "pc.ram" 00`, offset: 0, message: /obsolete/ },
    {
      name: "XBZRLE record",
      part: `0000000000000040 06 "pc.ram" 01 0000`,
      offset: 0,
      message: /XBZRLE.*not supported/,
    },
    { name: "COMPRESS_PAGE record", part: `0000000000000100 06 "pc.ram"`, offset: 0, message: /COMPRESS_PAGE/ },
    { name: "MULTIFD_FLUSH record", part: `0000000000000200`, offset: 0, message: /MULTIFD_FLUSH/ },
    { name: "HOOK record", part: `0000000000000080`, offset: 0, message: /HOOK/ },
    { name: "ZERO|PAGE", part: `000000000000000a 06 "pc.ram" 00`, offset: 0, message: /combination/ },
    { name: "ZERO|EOS", part: `0000000000000012`, offset: 0, message: /combination/ },
    { name: "MEM_SIZE in a PART", part: `0000000000004004`, offset: 0, message: /MEM_SIZE/ },
    { name: "EOS with an offset", part: `0000000000001010`, offset: 0, message: /EOS/ },
    { name: "EOS with CONTINUE", part: `0000000000000030`, offset: 0, message: /EOS/ },
    {
      name: "CONTINUE before any named block",
      part: `0000000000001022 00`,
      offset: 0,
      message: /CONTINUE/,
    },
    {
      name: "unknown block",
      part: `0000000000000002 04 "nope" 00`,
      offset: 0,
      path: ["ram", "nope@0x0"],
      message: /"nope" is unknown/,
    },
    {
      name: "offset at the end of the block",
      part: `0000000000000002 03 "vga" 00 0000000000001022 00`,
      offset: 13,
      path: ["ram", "vga@0x1000"],
      message: /outside block "vga"/,
    },
    {
      name: "offset beyond 2^53",
      part: `ffffffffffff0008 06 "pc.ram"`,
      offset: 0,
      path: ["ram", "pc.ram@0xffffffffffff0000"],
      message: /outside/,
    },
    {
      name: "non-zero fill byte",
      part: `0000000000000002 06 "pc.ram" 00 0000000000001022 07`,
      offset: 16,
      path: ["ram", "pc.ram@0x1000"],
      message: /fill byte 0x7/,
    },
  ];
  for (const c of cases) {
    test(`loadState() rejects ${c.name} with BAD_RAM_RECORD at the record's offset`, async () => {
      await expectError(loadParts(START, h(c.part) + EOS), "BAD_RAM_RECORD", {
        offset: START_LEN + c.offset,
        path: c.path ?? ["ram"],
        message: c.message,
      });
    });
  }

  test("loadState() checks a record before writing guest RAM", async () => {
    const { dev, ram } = smallMachine();
    const stream = bytesOf(START + h(`0000000000001008 06 "pc.ram" ${"ff".repeat(PAGE)} 0000000000003028`) + FILL);
    dev.loadSetup();
    const r = ByteReader.fromBytes(stream);
    await dev.loadState(r, 4, "start");
    await expectError(dev.loadState(r, 4, "part"), "BAD_RAM_RECORD", { path: ["ram", "pc.ram@0x3000"] });
    assert.equal(ram.bytes[0x1000], 0xff); // the valid record before it was applied
    assert.equal(ram.dirtyMap.isNeverWritten(2), true);
  });

  const listCases: { name: string; list: string; offset: number; path?: string[]; message: RegExp }[] = [
    {
      name: "a total above the sum of all blocks",
      list: `0000000000005004 06 "pc.ram" 0000000000003000 03 "vga" 0000000000001000`,
      offset: 35,
      message: /more than the 2 local blocks/,
    },
    {
      name: "lengths that overshoot the total",
      list: `0000000000002004 06 "pc.ram" 0000000000003000`,
      offset: 8,
      path: ["ram", "pc.ram"],
      message: /more than the total/,
    },
    {
      name: "a total that leaves a local block out",
      list: `0000000000003004 06 "pc.ram" 0000000000003000`,
      offset: 0,
      message: /"vga" is missing/,
    },
    {
      name: "an unknown block",
      list: `0000000000004004 06 "pc.rom" 0000000000003000`,
      offset: 8,
      path: ["ram", "pc.rom"],
      message: /unknown/,
    },
    {
      name: "a block of another length",
      list: `0000000000004004 06 "pc.ram" 0000000000002000 03 "vga" 0000000000002000`,
      offset: 8,
      path: ["ram", "pc.ram"],
      message: /resizing/,
    },
    {
      name: "a block listed twice",
      list: `0000000000007004 06 "pc.ram" 0000000000003000 06 "pc.ram" 0000000000003000`,
      offset: 23,
      path: ["ram", "pc.ram"],
      message: /twice/,
    },
    {
      name: "MEM_SIZE with CONTINUE",
      list: `0000000000004024 06 "pc.ram" 0000000000003000 03 "vga" 0000000000001000`,
      offset: 0,
      message: /MEM_SIZE combined/,
    },
    {
      name: "a second MEM_SIZE",
      list: `0000000000004004 06 "pc.ram" 0000000000003000 03 "vga" 0000000000001000 0000000000004004`,
      offset: 35,
      message: /only allowed once/,
    },
    { name: "no MEM_SIZE at all", list: ``, offset: 0, message: /ends before the block list/ },
    { name: "a page record in START", list: `0000000000000002 03 "vga" 00`, offset: 0, message: /no block list/ },
  ];
  for (const c of listCases) {
    test(`loadState(START) rejects ${c.name}`, async () => {
      const { dev } = smallMachine();
      const r = ByteReader.fromBytes(bytesOf(h(c.list) + EOS));
      await expectError(dev.loadState(r, 4, "start"), "BAD_RAM_RECORD", {
        offset: c.offset,
        path: c.path ?? ["ram"],
        message: c.message,
      });
    });
  }

  test("loadState(PART) rejects page records before any block list", async () => {
    const { dev } = smallMachine();
    const r = ByteReader.fromBytes(bytesOf(h(`0000000000000002 03 "vga" 00`) + EOS));
    await expectError(dev.loadState(r, 4, "part"), "BAD_RAM_RECORD", { offset: 0, message: /no block list/ });
  });

  test("loadState() fails when a section has no EOS but runs into the next section's bytes", async () => {
    // The footer (7e 00000002) and a PART header after a record, with no EOS in between.
    await assert.rejects(
      loadParts(START, h(`0000000000000002 03 "vga" 00 7e00000002 02 00000002`) + EOS),
      (e: unknown) => isMigrationError(e, "BAD_RAM_RECORD") || isMigrationError(e, "TRUNCATED"),
    );
    await expectError(loadParts(START, h(`0000000000000002 03 "vga" 00`)), "TRUNCATED", { path: ["ram"] });
  });
});

// ---------------------------------------------------------------------------------------------------------------

void suite("RamDevice: truncation", () => {
  test("a stream cut at any byte fails with TRUNCATED and never hangs", async () => {
    const { dev, ram, vga } = smallMachine();
    ram.write(PAGE, new Uint8Array(PAGE).fill(5));
    vga.write(0, new Uint8Array(PAGE).fill(6));
    const rec = new Recorder();
    await rec.section("start", (w) => dev.saveSetup(w));
    await rec.section("part", (w) => dev.saveLiveIterate(w, undefined, NO_DEADLINE));
    ram.write(0, new Uint8Array([1]));
    await rec.section("end", (w) => dev.saveComplete(w));
    const full = rec.bytes;
    const dst = smallMachine();
    // Every cut: inside headers, names, page data, and at each section boundary (cut = start of a section).
    for (let cut = 0; cut < full.length; cut++) {
      const bytes = full.subarray(0, cut);
      const r = cut % 2 === 0 ? ByteReader.fromBytes(bytes) : new ByteReader(chunked(bytes, () => 1000));
      await assert.rejects(loadAll(dst.dev, r, rec.sections), (e: unknown) => {
        assert.ok(isMigrationError(e, "TRUNCATED"), `cut ${cut}: ${String(e)}`);
        assert.deepEqual(e.path, ["ram"]);
        assert.ok(e.offset !== undefined && e.offset <= cut, `cut ${cut}: offset ${e.offset}`);
        return true;
      });
    }
    assert.deepEqual(
      rec.sections.map((s) => s.type),
      ["start", "part", "end"],
    );
    // The uncut stream loads.
    await loadAll(dst.dev, new ByteReader(chunked(full, () => 1000)), rec.sections);
    assert.deepEqual(dst.ram.bytes, ram.bytes);
  });

  test("a stream cut at a section boundary fails with TRUNCATED on the next section", async () => {
    const { rec, blocks } = await savedMachine(3);
    const dst = new RamDevice(freshBlocks(blocks));
    for (const s of rec.sections.slice(0, -1)) {
      const r = new ByteReader(chunked(rec.bytes.subarray(0, s.end), () => 4096));
      await expectError(loadAll(dst, r, rec.sections), "TRUNCATED", { offset: s.end });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

/**
 * The vCPU stand-in of the race test: keeps incrementing a per-page counter (stored at three places in the page),
 * then marks the page, per the documented contract, until told to stop; then acknowledges.
 */
const RACE_WORKER = `
const { workerData } = require("node:worker_threads");
const { d, ctl, seed } = workerData;
const pages = d.size / 4096;
const words = new Uint32Array(d.memory.buffer, d.byteOffset, d.size / 4);
const dirty = new Uint8Array(d.dirty);
const c = new Int32Array(ctl);
let x = seed | 0;
let n = 0;
for (;;) {
  for (let k = 0; k < 4096; k++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const p = (x >>> 0) % pages;
    const base = p * 1024;
    const v = (words[base] + 1) >>> 0;
    words[base] = v;
    words[base + 1 + (v & 1021)] = v;
    words[base + 1023] = v;
    dirty[(base * 4) >>> 12] = 1;
  }
  n += 4096;
  Atomics.store(c, 2, n); // progress, once per 4096 stores
  if (Atomics.load(c, 0) !== 0) break;
}
Atomics.store(c, 1, 1);
`;

void suite("RamDevice: racing vCPU", () => {
  test("pages written during live passes arrive as they were when the vCPU stopped", async () => {
    const ram = new RamBlock("pc.ram", 2 * 1024 * 1024);
    const rom = new RamBlock("pc.rom", 64 * 1024);
    fillRandom(rom.bytes, xorshift32(5));
    rom.markDirty(0, rom.size);
    const dev = new RamDevice([ram, rom], { batchPages: 64 });
    const ctl = new SharedArrayBuffer(16);
    const c = new Int32Array(ctl);
    const worker = new Worker(RACE_WORKER, { eval: true, workerData: { d: ram.share(), ctl, seed: 0x2545f491 } });
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    // Wait until the vCPU runs, then keep doing passes until it has made real progress during them (bounded in
    // time: on a loaded machine the worker may get little CPU).
    while (Atomics.load(c, 2) === 0) await new Promise((r) => setTimeout(r, 1));
    const rec = new Recorder();
    await rec.section("start", (w) => dev.saveSetup(w));
    const progressAtStart = Atomics.load(c, 2);
    let resent = 0;
    const giveUp = performance.now() + 10_000;
    for (
      let pass = 0;
      pass < 8 || (Atomics.load(c, 2) - progressAtStart < 200_000 && performance.now() < giveUp);
      pass++
    ) {
      await rec.section("part", (w) => dev.saveLiveIterate(w, undefined, performance.now() + 4));
      resent += dev.pendingExact() > 0 ? 1 : 0;
      await new Promise((r) => setTimeout(r, 2));
    }
    const progressDuringPasses = Atomics.load(c, 2) - progressAtStart;
    Atomics.store(c, 0, 1);
    await exited;
    assert.equal(Atomics.load(c, 1), 1);
    const atStop = ram.bytes.slice();
    await rec.section("end", (w) => dev.saveComplete(w));

    const dst = freshBlocks([ram, rom]);
    await loadAll(new RamDevice(dst), ByteReader.fromBytes(rec.bytes), rec.sections);
    let bad = 0;
    const a = new Uint32Array(atStop.buffer);
    const b = new Uint32Array(dst[0]?.bytes.slice().buffer as ArrayBuffer);
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) bad++;
    assert.equal(bad, 0, `${bad} words differ from the source at stop time`);
    assert.deepEqual(dst[1]?.bytes, rom.bytes);
    assert.ok(progressDuringPasses >= 8192, `the vCPU barely ran during the passes (${progressDuringPasses} stores)`);
    assert.ok(resent >= 4, "the vCPU dirtied too little during the passes");
    assert.ok(dev.stats.normal > ram.pages, "no page was sent twice");
  });
});
