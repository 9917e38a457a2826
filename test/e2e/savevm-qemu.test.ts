/**
 * Interoperability of whole streams with a real QEMU (Debian's qemu-system-x86, QEMU 7.2), `-M pc -m 64`:
 *
 * - a stream QEMU writes (`migrate "exec:cat > FILE"`, a paused guest with a pattern file loaded at 0x200000)
 *   loads through Ferry's StreamLoader and real RamDevice; the device sections Ferry has no model of are skipped
 *   by entries that read exactly the sizes QEMU's own vmdesc trailer gives (found from the end of the file, as
 *   `scripts/analyze-migration.py` does);
 * - a stream Ferry writes for blocks of QEMU's names and sizes (header, configuration `pc-i440fx-7.2`, START/END of
 *   `ram`, `globalstate`, EOF, vmdesc) is accepted by QEMU's loader (`-incoming "exec:cat FILE"`), and QMP
 *   `pmemsave` shows Ferry's bytes in guest memory.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { QmpClient } from "../../src/qmp/index.js";
import { RamBlock } from "../../src/ram/ram-block.js";
import { RamDevice } from "../../src/ram/ram-device.js";
import {
  GLOBAL_STATE_ID,
  GlobalState,
  type LoadedSection,
  loadVm,
  type MachineConfig,
  Registry,
  registerDevice,
  StreamSaver,
  saveVm,
} from "../../src/savevm/index.js";
import { connect, listen } from "../../src/transport/index.js";
import * as vm from "../../src/vmstate/index.js";
import { ByteReader } from "../../src/wire/byte-reader.js";
import { ByteWriter, MemorySink } from "../../src/wire/byte-writer.js";
import { skipUnless } from "../support/system.js";

const skip = skipUnless("qemu-system-x86_64", "qemu-system-x86");

const PAGE = 4096;
/** The canonical machine type QEMU 7.2 reports for the alias `pc` and writes into the configuration section. */
const MACHINE_TYPE = "pc-i440fx-7.2";
/** The RAM blocks of `-M pc -m 64 -nodefaults`, in QEMU's START order. */
const QEMU_BLOCKS: readonly [string, number][] = [
  ["pc.ram", 64 << 20],
  ["/rom@etc/acpi/tables", 0x20000],
  ["pc.bios", 0x40000],
  ["pc.rom", 0x20000],
  ["/rom@etc/table-loader", 0x1000],
  ["/rom@etc/acpi/rsdp", 0x1000],
];
const PATTERN_ADDR = 0x200000;

/** Deterministic bytes (xorshift32). */
function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

interface Qemu {
  readonly process: ChildProcess;
  readonly qmp: QmpClient;
  readonly stderr: () => string;
}

const started: ChildProcess[] = [];

/** Spawns `qemu-system-x86_64 -M pc -m 64 -nodefaults -display none -S` plus `extra`, with QMP on a Unix socket. */
function spawnQemu(dir: string, name: string, extra: readonly string[]) {
  const sock = join(dir, `${name}.qmp`);
  const child = spawn(
    "qemu-system-x86_64",
    [
      "-M",
      "pc",
      "-m",
      "64",
      "-nodefaults",
      "-display",
      "none",
      "-S",
      "-qmp",
      `unix:${sock},server=on,wait=off`,
      ...extra,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  started.push(child);
  let err = "";
  child.stderr?.setEncoding("utf8").on("data", (s: string) => {
    err += s;
  });
  return { process: child, sock, stderr: () => err };
}

/** Spawns QEMU and connects to its QMP socket. */
async function startQemu(dir: string, name: string, extra: readonly string[]): Promise<Qemu> {
  const { process: child, sock, stderr } = spawnQemu(dir, name, extra);
  const deadline = Date.now() + 10_000;
  while (!existsSync(sock)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      throw new Error(`QEMU (${name}) did not create its QMP socket: ${stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const qmp = await QmpClient.connect(`unix:${sock}`, { timeoutMs: 5000, commandTimeoutMs: 5000 });
  return { process: child, qmp, stderr };
}

/** Polls query-migrate until `completed` (or `failed`), for at most `ms`. */
async function waitMigration(q: Qemu, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (q.process.exitCode !== null) throw new Error(`QEMU exited (${q.process.exitCode}): ${q.stderr()}`);
    const info = await q.qmp.execute("query-migrate");
    if (info.status === "completed" || info.status === "failed") return info.status;
    if (Date.now() > deadline) throw new Error(`migration still ${String(info.status)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stopQemu(q: Qemu): Promise<void> {
  await q.qmp.execute("quit").catch(() => {});
  await q.qmp.close().catch(() => {});
  const exited = new Promise((r) => (q.process.exitCode !== null ? r(null) : q.process.once("exit", r)));
  const timer = setTimeout(() => q.process.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------------------------
// QEMU's vmdesc trailer

interface VmdescVmsd {
  readonly name?: string;
  readonly vmsd_name?: string;
  readonly instance_id?: number;
  readonly version?: number;
  readonly size?: number;
  readonly fields?: readonly { readonly name: string; readonly size: number; readonly array_len?: number }[];
  readonly subsections?: readonly VmdescVmsd[];
}

/**
 * Finds the vmdesc JSON as `scripts/analyze-migration.py` does: the last NUL byte, the first `{` after it, and a
 * check that `06 be32 length` precedes it.
 */
function readVmdesc(file: Uint8Array): { offset: number; devices: VmdescVmsd[]; pageSize: number } {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.length);
  const nul = buf.lastIndexOf(0);
  const json = buf.indexOf("{", nul);
  assert.ok(nul > 0 && json > 5, "no vmdesc found at the end of the stream");
  const markerAt = json - 5;
  assert.equal(buf[markerAt], 0x06, "the vmdesc is not preceded by QEMU_VM_VMDESCRIPTION");
  const len = buf.readUInt32BE(markerAt + 1);
  assert.equal(json + len, buf.length, "the vmdesc length does not reach the end of the stream");
  const desc = JSON.parse(buf.subarray(json, json + len).toString("utf8")) as {
    page_size: number;
    devices: VmdescVmsd[];
  };
  return { offset: markerAt, devices: desc.devices, pageSize: desc.page_size };
}

/**
 * Bytes a device's section data takes, from its vmdesc entry: legacy sections give `size`; a VMState description is
 * the sum of its fields' sizes (a compressed array counts `array_len` elements) plus, per subsection, the subsection
 * header (`05`, counted name, be32 version) and its own data.
 */
function vmsdBytes(d: VmdescVmsd): number {
  if (d.size !== undefined && d.vmsd_name === undefined) return d.size;
  let n = 0;
  for (const f of d.fields ?? []) n += f.size * (f.array_len ?? 1);
  for (const s of d.subsections ?? []) n += 1 + 1 + Buffer.byteLength(s.vmsd_name ?? "") + 4 + vmsdBytes(s);
  return n;
}

/** Reads the START section's block list straight from the stream (spec 4.2), to compare with the expectation. */
function readBlockList(file: Uint8Array): { machineType: string; blocks: [string, number][] } {
  const r = ByteReader.fromBytes(file);
  assert.equal(r.u32(), 0x5145564d);
  assert.equal(r.u32(), 3);
  assert.equal(r.u8(), 0x07);
  const machineType = new TextDecoder().decode(r.bytes(r.u32()));
  assert.equal(r.u8(), 0x01, "the first section is not a START");
  r.u32();
  assert.equal(r.str(), "ram");
  assert.equal(r.u32(), 0);
  assert.equal(r.u32(), 4);
  const word = r.u64n();
  assert.equal(word & 0xfff, 0x04, "no MEM_SIZE record");
  const total = word - 0x04;
  const blocks: [string, number][] = [];
  let sum = 0;
  while (sum < total) {
    const name = r.str();
    const len = r.u64n();
    blocks.push([name, len]);
    sum += len;
  }
  assert.equal(sum, total);
  return { machineType, blocks };
}

// ---------------------------------------------------------------------------------------------------------------

/** QEMU 7.2's header, configuration and `ram` START for `-M pc -m 64` (see test/fixtures/README.md). */
const QEMU_START = new Uint8Array(
  Buffer.from(
    readFileSync(new URL("../fixtures/qemu-7.2-pc-m64-start.hex", import.meta.url), "utf8").replace(/\s/g, ""),
    "hex",
  ),
);

void suite("Ferry's stream start for QEMU's blocks (golden, no QEMU needed)", () => {
  test("header, configuration pc-i440fx-7.2 and the ram START equal QEMU 7.2's bytes", async () => {
    const registry = new Registry();
    // QEMU's section ids: timer 0, another handler 1, ram 2; two entries that are never sent stand in for them.
    const never = { save: () => undefined, decode: () => undefined, apply() {}, needed: () => false };
    registry.registerState({ idstr: "timer", version: 2 }, never);
    registry.registerState({ idstr: "cpu_common", version: 1 }, never);
    registry.registerIterative(new RamDevice(QEMU_BLOCKS.map(([name, size]) => new RamBlock(name, size))));
    const sink = new MemorySink();
    const w = new ByteWriter(sink);
    const saver = new StreamSaver(w, registry, { machineType: MACHINE_TYPE });
    try {
      saver.writeHeader();
      await saver.setup();
      await w.flush();
    } finally {
      saver.cleanup();
    }
    assert.equal(Buffer.from(sink.bytes()).toString("hex"), Buffer.from(QEMU_START).toString("hex"));
  });
});

void suite("whole-stream interop with qemu-system-x86_64 -M pc", { skip }, () => {
  let dir: string;
  let qemuStream: Uint8Array;
  let patternBytes: Uint8Array;
  let reportedMachine: string | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "ferry-savevm-qemu-"));
    // A pattern file of a few pages, loaded by QEMU's generic loader at 0x200000 before the guest runs.
    patternBytes = pattern(3 * PAGE + 100, 0x5eed);
    const patternFile = join(dir, "pattern.bin");
    writeFileSync(patternFile, patternBytes);
    const q = await startQemu(dir, "source", [
      "-device",
      `loader,file=${patternFile},addr=0x${PATTERN_ADDR.toString(16)}`,
    ]);
    try {
      const machines = await q.qmp.execute<{ name: string; alias?: string }[]>("query-machines");
      reportedMachine = machines.find((m) => m.alias === "pc")?.name;
      const out = join(dir, "qemu.mig");
      await q.qmp.execute("migrate", { uri: `exec:cat > ${out}` });
      assert.equal(await waitMigration(q, 20_000), "completed");
      qemuStream = new Uint8Array(readFileSync(out));
    } finally {
      await stopQemu(q);
    }
  });

  after(async () => {
    for (const p of started) {
      if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) {
        process.kill(p.pid, "SIGKILL");
        await new Promise((r) => p.once("exit", r));
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("QEMU names `pc` pc-i440fx-7.2 and lists the six RAM blocks of -m 64 in its START section", () => {
    assert.equal(reportedMachine, MACHINE_TYPE);
    const { machineType, blocks } = readBlockList(qemuStream);
    assert.equal(machineType, MACHINE_TYPE);
    assert.deepEqual(blocks, QEMU_BLOCKS);
    // The golden fixture is what this QEMU writes.
    assert.deepEqual(qemuStream.subarray(0, QEMU_START.length), QEMU_START);
  });

  test("Ferry's RamDevice loads QEMU's RAM records; device sections are skipped by their vmdesc sizes", async () => {
    const { devices, pageSize, offset: vmdescAt } = readVmdesc(qemuStream);
    assert.equal(pageSize, PAGE);
    const registry = new Registry();
    const blocks = QEMU_BLOCKS.map(([name, size]) => new RamBlock(name, size));
    const ram = new RamDevice(blocks);
    registry.registerIterative(ram);
    const skipped = new Map<string, Uint8Array>();
    for (const d of devices) {
      const idstr = d.name as string;
      const instanceId = d.instance_id ?? 0;
      const size = vmsdBytes(d);
      if (idstr === "globalstate") continue; // Ferry's own entry below
      const key = `${idstr}#${instanceId}`;
      const skipper = vm.legacy(idstr, {
        version: d.version ?? 0xffff_ffff,
        minVersion: 0,
        save() {
          throw new Error("not saved");
        },
        load: (r) => r.bytes(size).slice(),
        apply(_s: object, data: Uint8Array) {
          skipped.set(key, data);
        },
      });
      registerDevice(registry, skipper, {}, { idstr, instanceId });
    }
    const gs = new GlobalState(() => "prelaunch");
    registry.registerState(GLOBAL_STATE_ID, gs.handlers());
    const config: MachineConfig = { machineType: MACHINE_TYPE };
    const sections: LoadedSection[] = [];
    const result = await loadVm({ registry, config }, bytesSource(qemuStream), {
      onSection: (s) => sections.push(s),
    });

    // Every section came through: START/END (maybe PARTs) of ram, then one FULL per vmdesc device.
    assert.equal(result.bytes, qemuStream.length);
    assert.equal(result.vmdescLength, qemuStream.length - vmdescAt - 5);
    assert.equal(sections[0]?.type, "start");
    assert.equal(sections.filter((s) => s.idstr === "ram").at(-1)?.type, "end");
    const full = sections.filter((s) => s.type === "full").map((s) => `${s.idstr}#${s.instanceId}`);
    assert.deepEqual(
      full,
      devices.map((d) => `${d.name}#${d.instance_id ?? 0}`),
    );
    assert.ok(full.includes("timer#0") && full.includes("0000:00:01.3/piix4_pm#0") && full.includes("globalstate#0"));
    assert.equal(gs.received, "prelaunch");
    // Each skipper read exactly its vmdesc size (the footer check after it passed); timer is 7.2's 24 bytes.
    assert.equal(skipped.size, devices.length - 1);
    assert.equal(skipped.get("timer#0")?.length, 24);

    // RAM: the pattern at its address in pc.ram; the rest of that area zero; the counters add up.
    const pcRam = blocks[0] as RamBlock;
    assert.deepEqual(pcRam.bytes.slice(PATTERN_ADDR, PATTERN_ADDR + patternBytes.length), patternBytes);
    assert.ok(pcRam.bytes.subarray(PATTERN_ADDR + patternBytes.length, PATTERN_ADDR + 4 * PAGE).every((b) => b === 0));
    const stats = ram.loadStats;
    assert.ok(stats.normal >= 4, `only ${stats.normal} PAGE records`);
    assert.ok(stats.normal + stats.duplicate >= blocks.reduce((n, b) => n + b.pages, 0));
    // pc.bios holds SeaBIOS as QEMU loaded it (Debian's seabios package), mapped below 4 GiB.
    const bios = (blocks[2] as RamBlock).bytes;
    const seabios = "/usr/share/seabios/bios-256k.bin";
    if (existsSync(seabios) && statSync(seabios).size === bios.length) {
      assert.equal(
        createHash("sha256").update(bios).digest("hex"),
        createHash("sha256").update(readFileSync(seabios)).digest("hex"),
      );
    }
  });

  test("QEMU 7.2 loads a stream Ferry wrote: pmemsave shows Ferry's pages in guest RAM", async () => {
    const registry = new Registry();
    const blocks = QEMU_BLOCKS.map(([name, size]) => new RamBlock(name, size));
    registry.registerIterative(new RamDevice(blocks));
    registry.registerState(GLOBAL_STATE_ID, new GlobalState(() => "paused").handlers());
    const pcRam = blocks[0] as RamBlock;
    const mine = pattern(3 * PAGE, 0xfe77);
    pcRam.write(PATTERN_ADDR, mine);
    const lastPage = pattern(PAGE, 0x1a57);
    pcRam.write(pcRam.size - PAGE, lastPage);
    const file = join(dir, "ferry.mig");
    const written = await saveVm({ registry, config: { machineType: MACHINE_TYPE } }, await connect(`file:${file}`));
    assert.equal(statSync(file).size, written);
    // Ferry itself reads back what it wrote (the same stream that goes to QEMU).
    const check = new Registry();
    const checkBlocks = QEMU_BLOCKS.map(([name, size]) => new RamBlock(name, size));
    check.registerIterative(new RamDevice(checkBlocks));
    check.registerState(GLOBAL_STATE_ID, new GlobalState(() => "paused").handlers());
    await loadVm(
      { registry: check, config: { machineType: MACHINE_TYPE } },
      await (await listen(`file:${file}`)).accept(),
    );
    assert.deepEqual((checkBlocks[0] as RamBlock).bytes.slice(PATTERN_ADDR, PATTERN_ADDR + mine.length), mine);

    const q = await startQemu(dir, "destination", ["-incoming", `exec:cat ${file}`]);
    try {
      assert.equal(await waitMigration(q, 20_000), "completed", q.stderr());
      assert.equal(q.process.exitCode, null, "QEMU exited after the load");
      const status = await q.qmp.execute("query-status");
      assert.equal(status.status, "paused");
      const out = join(dir, "pmem.bin");
      await q.qmp.execute("pmemsave", { val: PATTERN_ADDR, size: mine.length, filename: out });
      assert.deepEqual(new Uint8Array(readFileSync(out)), mine);
      const outLast = join(dir, "pmem-last.bin");
      await q.qmp.execute("pmemsave", { val: pcRam.size - PAGE, size: PAGE, filename: outLast });
      assert.deepEqual(new Uint8Array(readFileSync(outLast)), lastPage);
      assert.doesNotMatch(q.stderr(), /error|fail/i);
    } finally {
      await stopQemu(q);
    }
  });

  test("QEMU 7.2 routes a PART/END with section id 0 to `timer`: why Ferry's iterative entries never get id 0", async () => {
    const registry = new Registry();
    registry.registerIterative(new RamDevice(QEMU_BLOCKS.map(([name, size]) => new RamBlock(name, size))));
    registry.registerState(GLOBAL_STATE_ID, new GlobalState(() => "paused").handlers());
    assert.equal(registry.iterative[0]?.sectionId, 1, "ram was registered first but must not get section id 0");
    const file = join(dir, "ferry-id0.mig");
    await saveVm({ registry, config: { machineType: MACHINE_TYPE } }, await connect(`file:${file}`));
    const bytes = Buffer.from(readFileSync(file));
    // Rewrite ram's section id 1 -> 0 in the START and END headers and footers.
    const sections: LoadedSection[] = [];
    const check = new Registry();
    check.registerIterative(new RamDevice(QEMU_BLOCKS.map(([name, size]) => new RamBlock(name, size))));
    check.registerState(GLOBAL_STATE_ID, new GlobalState(() => "paused").handlers());
    await loadVm({ registry: check, config: { machineType: MACHINE_TYPE } }, bytesSource(bytes), {
      onSection: (x) => sections.push(x),
    });
    for (const x of sections.filter((x) => x.idstr === "ram")) {
      assert.equal(bytes.readUInt32BE(x.offset + 1), 1);
      bytes.writeUInt32BE(0, x.offset + 1);
      assert.equal(bytes[x.offset + x.length - 5], 0x7e);
      bytes.writeUInt32BE(0, x.offset + x.length - 4);
    }
    const file0 = join(dir, "ferry-id0-rewritten.mig");
    writeFileSync(file0, bytes);
    // A destination exits when its load fails (QMP is not needed to see that).
    const q = spawnQemu(dir, "destination-id0", ["-incoming", `exec:cat ${file0}`]);
    assert.equal(await exitCode(q.process, 10_000), 1, "QEMU accepted the stream");
    assert.match(q.stderr(), /error while loading state section id 0\(timer\)/);
  });
});

/** Waits for a process to exit, for at most `ms`; returns its exit code. */
async function exitCode(p: ChildProcess, ms: number): Promise<number | null> {
  if (p.exitCode !== null) return p.exitCode;
  const timer = setTimeout(() => p.kill("SIGKILL"), ms);
  await new Promise((r) => p.once("exit", r));
  clearTimeout(timer);
  return p.exitCode;
}

/** A one-chunk source over bytes. */
function bytesSource(bytes: Uint8Array): { read(): Promise<Uint8Array | null> } {
  let done = false;
  return {
    async read() {
      if (done) return null;
      done = true;
      return bytes;
    },
  };
}
