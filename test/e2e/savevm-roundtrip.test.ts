/**
 * End-to-end snapshots: a machine of synthetic VMState devices (scalars, buffers, a counted array, an array of
 * structs, a subsection), a legacy handler, `globalstate` and RAM blocks holding random, zero and never-written
 * pages, saved with `saveVm` and loaded with `loadVm` through every transport (memory, file with offset, tcp, unix,
 * exec); then the loader's framing and RAM checks on truncated and crafted whole streams (spec part 8).
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { isMigrationError, type MigrationError } from "../../src/errors.js";
import { xorshift32 } from "../../src/machine/xorshift.js";
import { RamBlock } from "../../src/ram/ram-block.js";
import { RamDevice } from "../../src/ram/ram-device.js";
import {
  GLOBAL_STATE_ID,
  GlobalState,
  type LoadedSection,
  type LoadResult,
  type LoadVmOptions,
  loadVm,
  type MachineConfig,
  Registry,
  registerDevice,
  saveVm,
} from "../../src/savevm/index.js";
import { type Channel, connect, createChannelPair, listen } from "../../src/transport/index.js";
import * as vm from "../../src/vmstate/index.js";
import { MemorySink } from "../../src/wire/byte-writer.js";

const PAGE = 4096;
const CONFIG: MachineConfig = { machineType: "ferry-e2e-1.0" };

// ---------------------------------------------------------------------------------------------------------------
// The synthetic machine

const uart = vm.device("ferry-uart", {
  version: 3,
  minVersion: 2,
  fields: {
    ier: vm.u8(),
    lcr: vm.u8(),
    divider: vm.u16(),
    scratch: vm.u32(),
    ticks: vm.u64(),
    skew: vm.i32(),
    enabled: vm.bool(),
    fifo: vm.buffer(16),
    count: vm.u8(),
    queue: vm.varray(vm.u16(), "count", { max: 8 }),
    timers: vm.array(vm.struct({ deadline: vm.i64(), armed: vm.bool() }), 2),
  },
  subsections: {
    timeout: {
      name: "ferry-uart/timeout",
      version: 1,
      fields: { timeoutNs: vm.u64() },
      needed: (s) => s.timeout.timeoutNs !== 0n,
    },
  },
});

interface ClockState {
  ticks: bigint;
  name: string;
}

/** A legacy (open-coded) handler: be64 ticks, counted name. */
const clock = vm.legacy("ferry-clock", {
  version: 2,
  minVersion: 1,
  save(w, s: ClockState) {
    w.u64(s.ticks).str(s.name);
  },
  load: (r) => ({ ticks: r.u64(), name: r.str() }),
  apply(s, d: ClockState) {
    s.ticks = d.ticks;
    s.name = d.name;
  },
});

type UartState = vm.Infer<typeof uart>;

interface Machine {
  readonly registry: Registry;
  readonly config: MachineConfig;
  readonly uarts: UartState[];
  readonly clock: ClockState;
  readonly blocks: RamBlock[];
  readonly ram: RamDevice;
  readonly globalState: GlobalState;
  runState: string;
}

/** A machine with two UARTs (one with its subsection needed), a clock, globalstate and RAM blocks of `sizes`. */
function makeMachine(sizes: readonly number[] = [2 << 20, 256 << 10]): Machine {
  const registry = new Registry();
  const blocks = sizes.map((s, i) => new RamBlock(i === 0 ? "pc.ram" : `extra${i}`, s));
  const ram = new RamDevice(blocks);
  registry.registerIterative(ram);
  const uarts = [vm.initialState(uart), vm.initialState(uart)];
  registerDevice(registry, uart, uarts[0] as UartState, { idstr: "0000:00:03.0/ferry-uart" });
  registerDevice(registry, uart, uarts[1] as UartState, { idstr: "0000:00:03.0/ferry-uart" });
  const clk: ClockState = { ticks: 0n, name: "" };
  registerDevice(registry, clock, clk);
  const m: Machine = {
    registry,
    config: CONFIG,
    uarts,
    clock: clk,
    blocks,
    ram,
    globalState: new GlobalState(() => m.runState),
    runState: "paused",
  };
  registry.registerState(GLOBAL_STATE_ID, m.globalState.handlers());
  return m;
}

/** Gives the machine distinctive state: random pages, written-but-zero pages, never-written pages. */
function fillMachine(m: Machine, seed: number): void {
  const next = xorshift32(seed);
  for (const b of m.blocks) {
    const words = new Uint32Array(b.buffer, b.byteOffset, b.size >>> 2);
    for (let p = 0; p < b.pages; p++) {
      const kind = p % 5;
      if (kind === 3 || kind === 4) continue; // never written
      if (kind === 2) {
        b.write(p * PAGE, new Uint8Array(PAGE)); // written, all zero
        continue;
      }
      for (let i = p * 1024; i < p * 1024 + 1024; i++) words[i] = next();
      b.markDirty(p * PAGE, PAGE);
    }
  }
  m.uarts.forEach((u, i) => {
    u.ier = 0x0f;
    u.lcr = 0x80 + i;
    u.divider = 0x1234 + seed;
    u.scratch = next();
    u.ticks = BigInt(seed) * 0x1_0000_0001n + BigInt(i);
    u.skew = -1000 - i;
    u.enabled = i === 0;
    u.fifo = new Uint8Array(16).map((_, k) => (k * 7 + seed + i) & 0xff);
    u.queue = [1, 2, 3, 0xfffe].slice(0, 2 + i);
    u.count = u.queue.length;
    u.timers = [
      { deadline: -5n, armed: true },
      { deadline: 1n << 40n, armed: false },
    ];
    u.timeout.timeoutNs = i === 0 ? 123_456_789n : 0n;
  });
  m.clock.ticks = 0xdead_beef_cafen + BigInt(seed);
  m.clock.name = `clock-${seed}`;
  m.runState = "running";
}

/** Everything observable of a machine: device states and a SHA-256 per RAM block. */
function snapshot(m: Machine): unknown {
  return {
    uarts: structuredClone(m.uarts),
    clock: { ...m.clock },
    ram: m.blocks.map((b) => `${b.idstr}:${createHash("sha256").update(b.bytes).digest("hex")}`),
  };
}

/** The loaded machine's view: its state plus the run state globalstate delivered. */
function loadedSnapshot(m: Machine): unknown {
  return { ...(snapshot(m) as object), runState: m.globalState.received };
}

function expectedSnapshot(m: Machine): unknown {
  return { ...(snapshot(m) as object), runState: m.runState };
}

async function saveToBytes(m: Machine): Promise<Uint8Array> {
  const sink = new MemorySink();
  await saveVm(m, { write: (c) => sink.write(c), end: async () => {} });
  return sink.bytes().slice();
}

/** A read-only channel over bytes, in chunks of `chunk` bytes. */
function source(bytes: Uint8Array, chunk = 64 * 1024): Pick<Channel, "read"> {
  let at = 0;
  return {
    async read() {
      if (at >= bytes.length) return null;
      const c = bytes.slice(at, at + chunk);
      at += c.length;
      return c;
    },
  };
}

/** Rejects when `p` takes longer than `ms`: a load must never hang. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms (hang)`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function loadBytes(bytes: Uint8Array, options: Partial<LoadVmOptions> = {}, chunk?: number) {
  const m = makeMachine();
  const result = await within(loadVm(m, source(bytes, chunk), options), 10_000, "loadVm");
  return { m, result };
}

async function expectLoadError(
  bytes: Uint8Array,
  code: string,
  check: (e: MigrationError) => void = () => {},
  chunk?: number,
): Promise<void> {
  await assert.rejects(loadBytes(bytes, {}, chunk), (e: unknown) => {
    assert.ok(isMigrationError(e), String(e));
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    check(e);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------------

void suite("saveVm/loadVm round trips through every transport", () => {
  let dir: string;
  let src: Machine;
  let before1: unknown;
  let golden: Uint8Array;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "ferry-savevm-e2e-"));
    src = makeMachine();
    fillMachine(src, 7);
    before1 = expectedSnapshot(src);
    golden = await saveToBytes(src);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("saveVm() never modifies the source and writes the same bytes twice", async () => {
    assert.deepEqual(expectedSnapshot(src), before1);
    const again = await saveToBytes(src);
    assert.deepEqual(expectedSnapshot(src), before1);
    assert.ok(Buffer.from(again).equals(Buffer.from(golden)), "a second snapshot differs from the first");
  });

  test("the stream has QEMU's shape: header, START/END ram, FULL sections in registry order, EOF, vmdesc", async () => {
    const seen: LoadedSection[] = [];
    const { result } = await loadBytes(golden, { onSection: (s) => seen.push(s), validateVmdesc: true });
    assert.deepEqual(
      seen.map((s) => `${s.type} ${s.idstr}#${s.instanceId}`),
      [
        "start ram#0",
        "end ram#0",
        "full 0000:00:03.0/ferry-uart#0",
        "full 0000:00:03.0/ferry-uart#1",
        "full ferry-clock#0",
        "full globalstate#0",
      ],
    );
    // ram was registered first, yet its section id is not 0 (QEMU would route its END to `timer`; see registry.ts).
    assert.deepEqual(
      seen.map((s) => s.sectionId),
      [1, 1, 2, 3, 4, 5],
    );
    assert.equal(result.config?.machineType, CONFIG.machineType);
    assert.equal(result.bytes, golden.length);
    assert.deepEqual(result.warnings, []);
    const desc = result.vmdesc as { page_size: number; devices: { name: string; vmsd_name?: string }[] };
    assert.equal(desc.page_size, PAGE);
    assert.deepEqual(
      desc.devices.map((d) => d.name),
      ["0000:00:03.0/ferry-uart", "0000:00:03.0/ferry-uart", "ferry-clock", "globalstate"],
    );
    // The subsection was sent for uart 0 only.
    const text = Buffer.from(golden).toString("latin1");
    assert.equal(text.split("ferry-uart/timeout").length - 1, 1 + 1, "once on the wire, once in the vmdesc");
  });

  const roundTrip = async (write: (m: Machine) => Promise<unknown>, read: (m: Machine) => Promise<LoadResult>) => {
    const dst = makeMachine();
    const [, result] = await within(Promise.all([write(src), read(dst)]), 20_000, "round trip");
    assert.deepEqual(loadedSnapshot(dst), before1);
    assert.deepEqual(expectedSnapshot(src), before1, "the source changed");
    assert.equal(result.bytes, golden.length);
    return dst;
  };

  test("memory: a channel pair, save and load concurrently", async () => {
    const [a, b] = createChannelPair({ highWaterMark: 64 * 1024 });
    await roundTrip(
      (m) => saveVm(m, a),
      (m) => loadVm(m, b),
    );
  });

  test("file: with offset=N, the bytes before N are kept", async () => {
    const path = join(dir, "vm.img");
    const preamble = new Uint8Array(12_345).fill(0xa5);
    writeFileSync(path, preamble);
    const uri = `file:${path},offset=${preamble.length}`;
    await roundTrip(
      async (m) => {
        const n = await saveVm(m, await connect(uri));
        assert.equal(n, golden.length);
      },
      async (m) => {
        // The destination opens the file once the source has finished writing it.
        while (readFileSync(path).length < preamble.length + golden.length) await new Promise((r) => setTimeout(r, 5));
        return loadVm(m, await (await listen(uri)).accept());
      },
    );
    const file = readFileSync(path);
    assert.ok(file.subarray(0, preamble.length).equals(Buffer.from(preamble)), "the preamble was overwritten");
    assert.ok(file.subarray(preamble.length).equals(Buffer.from(golden)), "the file holds other bytes");
  });

  for (const kind of ["tcp", "unix"] as const) {
    test(`${kind}: listen, connect, save and load concurrently`, async () => {
      const listener = await listen(kind === "tcp" ? "tcp:127.0.0.1:0" : `unix:${join(dir, "mig.sock")}`);
      try {
        await roundTrip(
          async (m) => saveVm(m, await connect(listener.uri)),
          async (m) => {
            const ch = await listener.accept({ timeoutMs: 10_000 });
            try {
              return await loadVm(m, ch);
            } finally {
              await ch.close();
            }
          },
        );
      } finally {
        await listener.close();
      }
    });
  }

  test("exec: `exec:cat > FILE` then `exec:cat FILE`", async () => {
    const path = join(dir, "vm.exec");
    await saveVm(src, await connect(`exec:cat > '${path}'`));
    assert.deepEqual(expectedSnapshot(src), before1);
    assert.ok(readFileSync(path).equals(Buffer.from(golden)));
    const dst = makeMachine();
    const ch = await (await listen(`exec:cat '${path}'`)).accept();
    await within(loadVm(dst, ch), 10_000, "exec load");
    await ch.close();
    assert.deepEqual(loadedSnapshot(dst), before1);
  });

  test("a loaded machine saves the same stream again (loaded pages count as written)", async () => {
    const { m } = await loadBytes(golden);
    m.runState = "running";
    const again = await saveToBytes(m);
    assert.ok(Buffer.from(again).equals(Buffer.from(golden)));
  });
});

// ---------------------------------------------------------------------------------------------------------------

void suite("loadVm on truncated streams", () => {
  let golden: Uint8Array;
  let sections: LoadedSection[];
  let headerEnd: number;

  before(async () => {
    const m = makeMachine();
    fillMachine(m, 3);
    golden = await saveToBytes(m);
    sections = [];
    await loadBytes(golden, { onSection: (s) => sections.push(s) });
    headerEnd = (sections[0] as LoadedSection).offset;
  });

  test("cut at every section boundary: TRUNCATED at exactly the cut, for any chunking", async () => {
    const eof = sections.at(-1) as LoadedSection;
    const cuts = [0, 8, headerEnd, ...sections.map((s) => s.offset + s.length)];
    assert.equal(cuts.at(-1), eof.offset + eof.length);
    for (const cut of cuts) {
      for (const chunk of [1 << 20, 1000]) {
        await expectLoadError(
          golden.subarray(0, cut),
          "TRUNCATED",
          (e) => assert.equal(e.offset, cut, `cut ${cut}: ${e.message}`),
          chunk,
        );
      }
    }
    // Right after EOF the stream is complete (the vmdesc is optional, as in QEMU), and so is the whole stream.
    const { result } = await loadBytes(golden.subarray(0, eof.offset + eof.length + 1));
    assert.equal(result.vmdescLength, undefined);
    // Inside the vmdesc trailer.
    for (const cut of [eof.offset + eof.length + 2, eof.offset + eof.length + 5, golden.length - 1]) {
      await expectLoadError(golden.subarray(0, cut), "TRUNCATED", (e) => assert.ok((e.offset ?? -1) <= cut));
    }
  });

  test("cut inside section headers, footers and device data: TRUNCATED naming the section", async () => {
    for (const s of sections) {
      const end = s.offset + s.length;
      for (const cut of [s.offset + 1, s.offset + 5, s.offset + 9, end - 5, end - 1]) {
        await expectLoadError(golden.subarray(0, cut), "TRUNCATED", (e) => {
          assert.ok(e.offset !== undefined && e.offset >= s.offset && e.offset <= cut, `cut ${cut}: ${e.offset}`);
        });
      }
    }
  });

  test("cut inside page data at several offsets: TRUNCATED in ram, RAM before it applied, no hang", async () => {
    const end = sections.find((s) => s.type === "end") as LoadedSection;
    // Find the data of the first random page of pc.ram (page 0) and of a page in the middle of it.
    const m = makeMachine();
    fillMachine(m, 3);
    const pcRam = m.blocks[0] as RamBlock;
    const starts: number[] = [];
    for (const p of [0, 5, 250]) {
      const at = Buffer.from(golden).indexOf(Buffer.from(pcRam.bytes.slice(p * PAGE, p * PAGE + 64)));
      assert.ok(at > end.offset && at < end.offset + end.length, `page ${p} data not found in the END section`);
      starts.push(at);
    }
    for (const start of starts) {
      for (const k of [0, 1, 7, 8, 2048, PAGE - 1]) {
        const cut = start + k;
        for (const chunk of [1 << 20, 1000]) {
          await expectLoadError(
            golden.subarray(0, cut),
            "TRUNCATED",
            (e) => {
              assert.deepEqual(e.path?.[0], "ram", e.message);
              assert.ok(e.offset !== undefined && e.offset >= end.offset && e.offset <= cut, `${cut}: ${e.offset}`);
            },
            chunk,
          );
        }
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** Splices streams: the golden stream with `insert` at `at` and `remove` bytes dropped there. */
function splice(bytes: Uint8Array, at: number, remove: number, insert: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(bytes.length - remove + insert.length);
  out.set(bytes.subarray(0, at));
  out.set(insert, at);
  out.set(bytes.subarray(at + remove), at + insert.length);
  return out;
}

const be32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const counted = (s: string): number[] => [s.length, ...Buffer.from(s, "latin1")];
const EOS = [0, 0, 0, 0, 0, 0, 0, 0x10];

void suite("loadVm rejects crafted whole streams (spec part 8: framing and RAM, beyond the unit tests)", () => {
  let golden: Uint8Array;
  let sections: LoadedSection[];
  let ramStart: LoadedSection;
  let ramEnd: LoadedSection;
  let clockFull: LoadedSection;

  before(async () => {
    const m = makeMachine();
    fillMachine(m, 11);
    golden = await saveToBytes(m);
    sections = [];
    await loadBytes(golden, { onSection: (s) => sections.push(s) });
    ramStart = sections[0] as LoadedSection;
    ramEnd = sections[1] as LoadedSection;
    clockFull = sections.find((s) => s.idstr === "ferry-clock") as LoadedSection;
  });

  const ramPart = (sectionId: number, records: number[] = EOS) =>
    new Uint8Array([0x02, ...be32(sectionId), ...records, 0x7e, ...be32(sectionId)]);

  test("control: an extra empty PART between START and END loads", async () => {
    const at = ramStart.offset + ramStart.length;
    const { m } = await loadBytes(splice(golden, at, 0, ramPart(ramStart.sectionId)));
    assert.equal(m.globalState.received, "running");
  });

  test("(+) a PART after the section's END: UNKNOWN_SECTION at the PART", async () => {
    const at = ramEnd.offset + ramEnd.length;
    await expectLoadError(splice(golden, at, 0, ramPart(ramStart.sectionId)), "UNKNOWN_SECTION", (e) =>
      assert.equal(e.offset, at),
    );
  });

  test("(+) a second END: UNKNOWN_SECTION", async () => {
    const at = ramEnd.offset + ramEnd.length;
    const second = golden.slice(ramEnd.offset, ramEnd.offset + ramEnd.length);
    await expectLoadError(splice(golden, at, 0, second), "UNKNOWN_SECTION", (e) => assert.equal(e.offset, at));
  });

  test("(+) a second START of ram: BAD_STREAM", async () => {
    const at = ramStart.offset + ramStart.length;
    const again = golden.slice(ramStart.offset, at);
    await expectLoadError(splice(golden, at, 0, again), "BAD_STREAM", (e) => {
      assert.equal(e.offset, at);
      assert.deepEqual(e.path, ["ram"]);
    });
  });

  test("START for a non-iterative device and FULL for ram: BAD_STREAM", async () => {
    const start = golden.slice(clockFull.offset, clockFull.offset + clockFull.length);
    start[0] = 0x01;
    await expectLoadError(splice(golden, clockFull.offset, clockFull.length, start), "BAD_STREAM", (e) =>
      assert.match(e.message, /not iterative/),
    );
    const full = golden.slice(ramStart.offset, ramStart.offset + ramStart.length);
    full[0] = 0x04;
    await expectLoadError(splice(golden, ramStart.offset, ramStart.length, full), "BAD_STREAM", (e) =>
      assert.match(e.message, /FULL section for iterative/),
    );
  });

  test("a FULL section for an instance id this machine lacks: UNKNOWN_SECTION", async () => {
    const s = golden.slice(clockFull.offset, clockFull.offset + clockFull.length);
    // type, be32 id, counted idstr, then be32 instance id.
    const instAt = 1 + 4 + 1 + "ferry-clock".length;
    s.set(be32(1), instAt);
    await expectLoadError(splice(golden, clockFull.offset, clockFull.length, s), "UNKNOWN_SECTION", (e) => {
      assert.equal(e.offset, clockFull.offset);
      assert.deepEqual(e.path, ["ferry-clock"]);
    });
  });

  test("a legacy section whose version is below its minimum: VERSION_TOO_OLD", async () => {
    const s = golden.slice(clockFull.offset, clockFull.offset + clockFull.length);
    s.set(be32(0), 1 + 4 + 1 + "ferry-clock".length + 4);
    await expectLoadError(splice(golden, clockFull.offset, clockFull.length, s), "VERSION_TOO_OLD", (e) =>
      assert.equal(e.path?.[0], "ferry-clock"),
    );
  });

  test("(+) more sections than maxSections: LIMIT_EXCEEDED", async () => {
    await assert.rejects(loadBytes(golden, { maxSections: sections.length - 1 }), (e: unknown) =>
      isMigrationError(e, "LIMIT_EXCEEDED"),
    );
    await loadBytes(golden, { maxSections: sections.length });
  });

  test("(+) a section with no footer: BAD_FOOTER for ram's END", async () => {
    const footerAt = ramEnd.offset + ramEnd.length - 5;
    await expectLoadError(splice(golden, footerAt, 5), "BAD_FOOTER", (e) => {
      assert.equal(e.offset, footerAt);
      assert.deepEqual(e.path, ["ram"]);
    });
  });

  test("the machine type must match exactly (QEMU compares a prefix)", async () => {
    const at = 8 + 1 + 4;
    const name = golden.slice(at, at + CONFIG.machineType.length);
    name[name.length - 1] = "1".charCodeAt(0); // ferry-e2e-1.1
    await expectLoadError(splice(golden, at, name.length, name), "CONFIG_MISMATCH", (e) =>
      assert.match(e.message, /ferry-e2e-1\.1/),
    );
    // A prefix of the local name, which QEMU accepts.
    const shorter = new Uint8Array([...be32(9), ...Buffer.from("ferry-e2e")]);
    await expectLoadError(splice(golden, 9, 4 + CONFIG.machineType.length, shorter), "CONFIG_MISMATCH");
  });

  // RAM records inside a whole stream, in a PART between START and END.
  const ramCases: [string, number[], RegExp][] = [
    ["a page of a block not in the list", [0, 0, 0, 0, 0, 0, 0, 0x08, ...counted("pc.bios")], /"pc.bios" is unknown/],
    ["CONTINUE as the first record", [0, 0, 0, 0, 0, 0, 0x10, 0x22, 0], /CONTINUE/],
    ["an offset past the block", [0, 0, 0, 0, 0, 0x20, 0, 0x02, ...counted("pc.ram"), 0], /outside block/],
    ["a zero page with fill 0xff", [0, 0, 0, 0, 0, 0, 0, 0x02, ...counted("pc.ram"), 0xff], /fill byte/],
    ["an XBZRLE record", [0, 0, 0, 0, 0, 0, 0, 0x40, ...counted("pc.ram"), 1, 0, 0], /XBZRLE/],
    ["flags outside the page mask's known bits", [0, 0, 0, 0, 0, 0, 0x08, 0x02], /unknown/],
  ];
  for (const [name, records, message] of ramCases) {
    test(`RAM: ${name} fails with BAD_RAM_RECORD at the record's offset`, async () => {
      const at = ramStart.offset + ramStart.length;
      const part = ramPart(ramStart.sectionId, [...records, ...EOS]);
      await expectLoadError(splice(golden, at, 0, part), "BAD_RAM_RECORD", (e) => {
        assert.equal(e.offset, at + 5, e.message);
        assert.equal(e.path?.[0], "ram");
        assert.match(e.message, message);
      });
    });
  }

  test("RAM: a PART without EOS that runs into the END section fails, never hangs", async () => {
    const at = ramStart.offset + ramStart.length;
    const part = new Uint8Array([0x02, ...be32(ramStart.sectionId), 0x7e, ...be32(ramStart.sectionId)]);
    await assert.rejects(loadBytes(splice(golden, at, 0, part)), (e: unknown) => {
      assert.ok(isMigrationError(e), String(e));
      assert.ok(e.code === "BAD_RAM_RECORD" || e.code === "TRUNCATED", e.message);
      return true;
    });
  });

  test("RAM: the whole golden stream with random bytes flipped never hangs and fails cleanly or loads", async () => {
    const next = xorshift32(99);
    for (let i = 0; i < 200; i++) {
      const b = golden.slice();
      const at = next() % (clockFull.offset + clockFull.length);
      b[at] = (b[at] as number) ^ (1 << (next() % 8));
      try {
        await loadBytes(b, {}, 1 + (next() % 70_000));
      } catch (e) {
        assert.ok(isMigrationError(e), `flip at ${at}: ${String(e)}`);
      }
    }
  });
});
