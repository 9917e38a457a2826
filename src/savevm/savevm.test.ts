import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { qemuTimerHandlers } from "../../test/support/qemu-timer.js";
import { isMigrationError } from "../errors.js";
import { ByteReader } from "../wire/byte-reader.js";
import { ByteWriter, MemorySink } from "../wire/byte-writer.js";
import type { MachineConfig } from "./config.js";
import { parseUuid } from "./config.js";
import { GLOBAL_STATE_ID, globalStateHandlers } from "./global-state.js";
import type { IterativeDevice } from "./handlers.js";
import { Registry, type StateHandlers } from "./registry.js";
import { StreamLoader, type StreamLoaderOptions } from "./stream-loader.js";
import { StreamSaver } from "./stream-saver.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/[\s|]/g, ""), "hex"));
const ascii = (s: string): string => Buffer.from(s, "latin1").toString("hex");

/** An iterative device with no RAM blocks: QEMU's `ram` under `-M none`. */
function emptyRam(log: string[] = []): IterativeDevice {
  return {
    idstr: "ram",
    version: 4,
    async saveSetup(w) {
      w.u64n(0x04).u64n(0x10);
    },
    pendingEstimate: () => 0,
    pendingExact: () => 0,
    async saveLiveIterate(w) {
      w.u64n(0x10);
      return true;
    },
    async saveComplete(w) {
      w.u64n(0x10);
    },
    saveCleanup() {},
    loadSetup() {},
    async loadState(r, version, section) {
      log.push(`${section} v${version}`);
      await r.decode((r) => {
        for (;;) {
          const word = r.u64n();
          if (word === 0x10) return;
          if (word !== 0x04) throw new Error(`unexpected ${word}`);
        }
      });
    },
    loadCleanup() {},
  };
}

/** Builds the registry of QEMU 7.2's `-M none` machine, with the same section ids (0 timer, 2 ram, 4 globalstate). */
function noneMachine(runState = "running") {
  const timer = { ticks: 0n, clock: 0n };
  const loaded: string[] = [];
  const log: string[] = [];
  const registry = new Registry();
  registry.registerState({ idstr: "timer", version: 2 }, qemuTimerHandlers(timer));
  registry.registerState({ idstr: "cpu_common", version: 1 }, { ...qemuTimerHandlers(timer), needed: () => false });
  registry.registerIterative(emptyRam(log));
  registry.registerState(
    { idstr: "dirty-bitmap-placeholder", version: 1 },
    { ...qemuTimerHandlers(timer), needed: () => false },
  );
  registry.registerState(
    GLOBAL_STATE_ID,
    globalStateHandlers({ runState: () => runState, onLoad: (s) => loaded.push(s) }),
  );
  return { registry, timer, loaded, log, config: { machineType: "none" } satisfies MachineConfig };
}

async function save(registry: Registry, config: MachineConfig, iterations = 0): Promise<Uint8Array> {
  const sink = new MemorySink();
  const w = new ByteWriter(sink);
  const s = new StreamSaver(w, registry, config);
  s.writeHeader();
  await s.setup();
  for (let i = 0; i < iterations; i++) await s.iterate(undefined, Number.POSITIVE_INFINITY);
  await s.complete();
  await w.flush();
  return sink.bytes();
}

function reader(bytes: Uint8Array, chunk = 0): ByteReader {
  if (chunk === 0) return ByteReader.fromBytes(bytes);
  let i = 0;
  return new ByteReader({
    read: () => {
      if (i >= bytes.length) return Promise.resolve(null);
      const c = bytes.slice(i, i + chunk);
      i += chunk;
      return Promise.resolve(c);
    },
  });
}

function load(bytes: Uint8Array, registry: Registry, config: MachineConfig, opts: Partial<StreamLoaderOptions> = {}) {
  return new StreamLoader(reader(bytes), registry, config, opts).load();
}

const VMDESC_B =
  '{"page_size": 4096, "devices": [{"name": "timer", "instance_id": 0, "vmsd_name": "timer", "version": 2, ' +
  '"fields": [{"name": "cpu_ticks_offset", "type": "int64", "size": 8}, {"name": "unused", "type": "unused_buffer", ' +
  '"size": 8}, {"name": "cpu_clock_offset", "type": "int64", "size": 8}]}, {"name": "globalstate", "instance_id": 0, ' +
  '"vmsd_name": "globalstate", "version": 1, "fields": [{"name": "size", "type": "uint32", "size": 4}, ' +
  '{"name": "runstate", "type": "buffer", "size": 100}]}]}';

void suite("savevm stream format", () => {
  test("worked example A: the smallest stream QEMU 7.2 accepts, byte for byte", async () => {
    const bytes = await save(new Registry(), { machineType: "none" });
    const json = '{"page_size": 4096, "devices": []}';
    assert.equal(
      hex(bytes),
      `5145564d00000003070000000400${ascii("none").slice(0)}`.replace("0000000400", "00000004") +
        `0006${json.length.toString(16).padStart(8, "0")}${ascii(json)}`,
    );
    assert.equal(bytes.length, 57);
    const result = await load(bytes, new Registry(), { machineType: "none" });
    assert.equal(result.sections, 0);
    assert.equal(result.vmdescLength, 34);
  });

  test("worked example B: QEMU 7.2's -M none source stream, byte for byte up to the vmdesc", async () => {
    const m = noneMachine();
    const bytes = await save(m.registry, m.config);
    const expectedHead =
      "5145564d 00000003 07 00000004 6e6f6e65" +
      `01 00000002 03${ascii("ram")} 00000000 00000004` +
      "0000000000000004 0000000000000010 7e 00000002" +
      "03 00000002 0000000000000010 7e 00000002" +
      `04 00000000 05${ascii("timer")} 00000000 00000002` +
      "0000000000000000 0000000000000000 0000000000000000 7e 00000000" +
      `04 00000004 0b${ascii("globalstate")} 00000000 00000001` +
      `00000008 ${ascii("running")}${"00".repeat(93)} 7e 00000004` +
      "00";
    const head = unhex(expectedHead);
    assert.equal(hex(bytes.subarray(0, head.length)), hex(head));
    assert.equal(head.length, 0x100, "EOF is at offset 0xff as in the capture");
    assert.equal(bytes[0x100], 0x06);
    const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0x101);
    assert.equal(len, 0x1e6, "the vmdesc has the captured length 486");
    assert.equal(Buffer.from(bytes.subarray(0x105)).toString("latin1"), VMDESC_B);
  });

  test("example B loads back: sections dispatched, globalstate received, vmdesc skipped", async () => {
    const src = noneMachine("paused");
    src.timer.ticks = -5n;
    src.timer.clock = 123456789n;
    const bytes = await save(src.registry, src.config, 2);
    for (const chunk of [0, 1, 7, 4096]) {
      const dst = noneMachine();
      const result = await new StreamLoader(reader(bytes, chunk), dst.registry, dst.config).load();
      assert.deepEqual(dst.timer, { ticks: -5n, clock: 123456789n });
      assert.deepEqual(dst.loaded, ["paused"]);
      assert.deepEqual(dst.log, ["start v4", "part v4", "part v4", "end v4"]);
      assert.equal(result.sections, 6);
      assert.equal(result.bytes, bytes.length);
    }
  });

  test("the vmdesc is parsed and checked when asked", async () => {
    const m = noneMachine();
    const bytes = await save(m.registry, m.config);
    const result = await load(bytes, noneMachine().registry, m.config, { validateVmdesc: true });
    assert.equal((result.vmdesc as { devices: unknown[] }).devices.length, 2);
  });

  test("configuration with capabilities and UUID matches QEMU 7.2's bytes", async () => {
    const config: MachineConfig = {
      machineType: "none",
      capabilities: ["x-ignore-shared"],
      uuid: parseUuid("11111111-2222-3333-4444-555555555555"),
      validateUuid: true,
    };
    const bytes = await save(new Registry(), config);
    const expected =
      `5145564d00000003 07 00000004 6e6f6e65 05 1a ${ascii("configuration/capabilities")} 00000001 00000001 0f` +
      `${ascii("x-ignore-shared")} 05 12 ${ascii("configuration/uuid")} 00000001 11111111222233334444555555555555 00`;
    assert.equal(hex(bytes.subarray(0, unhex(expected).length)), hex(unhex(expected)));
    await load(bytes, new Registry(), config);
    await assert.rejects(
      load(bytes, new Registry(), { ...config, uuid: parseUuid("11111111-2222-3333-4444-555555555556") }),
      (e) => isMigrationError(e, "CONFIG_MISMATCH") && /UUID/.test(e.message),
    );
    await assert.rejects(
      load(bytes, new Registry(), { machineType: "none" }),
      (e) => isMigrationError(e, "CONFIG_MISMATCH") && /x-ignore-shared/.test(e.message),
    );
  });

  test("target page bits above the minimum are sent and checked", async () => {
    const bytes = await save(new Registry(), { machineType: "m", pageBits: 14 });
    await load(bytes, new Registry(), { machineType: "m", pageBits: 14 });
    await assert.rejects(load(bytes, new Registry(), { machineType: "m" }), (e) =>
      isMigrationError(e, "CONFIG_MISMATCH"),
    );
  });

  test("machine types compare exactly, with a table of compatible types", async () => {
    const bytes = await save(new Registry(), { machineType: "ferry-rv32-1.0" });
    await assert.rejects(
      load(bytes, new Registry(), { machineType: "ferry-rv32-1.0-extra" }),
      (e) => isMigrationError(e, "CONFIG_MISMATCH") && e.offset === 8,
    );
    await assert.rejects(load(bytes, new Registry(), { machineType: "ferry-rv32-1" }), (e) =>
      isMigrationError(e, "CONFIG_MISMATCH"),
    );
    await load(bytes, new Registry(), { machineType: "ferry-rv32-1.1", compatibleMachineTypes: ["ferry-rv32-1.0"] });
  });
});

void suite("StreamLoader rejects hostile streams", () => {
  const none: MachineConfig = { machineType: "none" };
  const cases: [string, string, string, number | undefined][] = [
    ["bad magic", "5145564e00000003", "BAD_MAGIC", 0],
    ["obsolete version 2", "5145564d00000002", "UNSUPPORTED_VERSION", 4],
    ["version 4", "5145564d00000004", "UNSUPPORTED_VERSION", 4],
    ["configuration missing", "5145564d0000000300", "CONFIG_MISMATCH", 8],
    ["huge machine-type length", "5145564d0000000307ffffffff", "LIMIT_EXCEEDED", 9],
    [
      "unknown configuration subsection",
      `5145564d000000030700000004${ascii("none")}0510${ascii("configuration/xy")}`,
      "SUBSECTION_MISMATCH",
      17,
    ],
    ["unknown section type", `5145564d000000030700000004${ascii("none")}09`, "BAD_SECTION_TYPE", 17],
    ["a subsection byte at top level", `5145564d000000030700000004${ascii("none")}0500`, "BAD_SECTION_TYPE", 17],
    [
      "unknown section",
      `5145564d000000030700000004${ascii("none")}04000000000374737400000000 00000001`,
      "UNKNOWN_SECTION",
      17,
    ],
    ["PART without START", `5145564d000000030700000004${ascii("none")}0200000002`, "UNKNOWN_SECTION", 17],
    ["END without START", `5145564d000000030700000004${ascii("none")}0300000000`, "UNKNOWN_SECTION", 17],
    ["command 0", `5145564d000000030700000004${ascii("none")}0800000000`, "BAD_COMMAND", 17],
    [
      "command 11 (post-7.2 SWITCHOVER_START)",
      `5145564d000000030700000004${ascii("none")}08000b0000`,
      "BAD_COMMAND",
      17,
    ],
    ["PING with bad length", `5145564d000000030700000004${ascii("none")}080002000300000000`, "BAD_COMMAND", 17],
    ["PING with no handler", `5145564d000000030700000004${ascii("none")}08000200040000000100`, "BAD_COMMAND", 17],
    ["junk instead of the vmdesc", `5145564d000000030700000004${ascii("none")}0007`, "BAD_STREAM", 18],
    ["vmdesc over the cap", `5145564d000000030700000004${ascii("none")}0006ffffffff`, "LIMIT_EXCEEDED", 19],
    ["vmdesc truncated", `5145564d000000030700000004${ascii("none")}00060000001000`, "TRUNCATED", undefined],
    ["empty stream", "", "TRUNCATED", 0],
  ];
  for (const [name, stream, code, offset] of cases) {
    test(`${name} fails with ${code}`, async () => {
      await assert.rejects(load(unhex(stream), new Registry(), none), (e) => {
        assert.ok(isMigrationError(e), String(e));
        assert.equal(e.code, code, e.message);
        if (offset !== undefined) assert.equal(e.offset, offset, e.message);
        return true;
      });
    });
  }

  test("footer problems, versions and duplicates name the section", async () => {
    const m = noneMachine();
    const good = await save(m.registry, m.config);
    // timer FULL section starts at 0x49; its footer at 0x74.
    const flip = (at: number, v: number): Uint8Array => {
      const b = good.slice();
      b[at] = v;
      return b;
    };
    const expectErr = async (bytes: Uint8Array, code: string, offset: number, path: string) => {
      await assert.rejects(load(bytes, noneMachine().registry, m.config), (e) => {
        assert.ok(isMigrationError(e), String(e));
        assert.equal(e.code, code, e.message);
        assert.equal(e.offset, offset, e.message);
        assert.equal(e.path?.[0], path);
        return true;
      });
    };
    await expectErr(flip(0x74, 0x7d), "BAD_FOOTER", 0x74, "timer");
    await expectErr(flip(0x78, 0x01), "BAD_FOOTER", 0x74, "timer");
    await expectErr(flip(0x5b, 3), "VERSION_TOO_NEW", 0x49, "timer");
    // A second FULL section for timer: splice the timer section in twice.
    const timerSection = good.subarray(0x49, 0x79);
    const dup = new Uint8Array(good.length + timerSection.length);
    dup.set(good.subarray(0, 0x79));
    dup.set(timerSection, 0x79);
    dup.set(good.subarray(0x79), 0x79 + timerSection.length);
    await expectErr(dup, "BAD_STREAM", 0x79, "timer");
    // globalstate with an unknown run state.
    const bad = good.slice();
    bad.set(new TextEncoder().encode("flying!"), 0x96);
    await expectErr(bad, "FIELD_OUT_OF_RANGE", 0x96, "globalstate");
  });

  test("a stream truncated at every offset fails with TRUNCATED and never hangs", async () => {
    const m = noneMachine();
    const bytes = await save(m.registry, m.config);
    const eof = 0xff;
    for (let len = 0; len <= eof; len++) {
      await assert.rejects(load(bytes.subarray(0, len), noneMachine().registry, m.config), (e) => {
        assert.ok(isMigrationError(e, "TRUNCATED"), `${len}: ${String(e)}`);
        assert.ok(e.offset !== undefined && e.offset <= len, `${len}: offset ${e.offset}`);
        return true;
      });
    }
    // Ending right after EOF is fine (QEMU only logs the missing vmdesc).
    const r = await load(bytes.subarray(0, eof + 1), noneMachine().registry, m.config);
    assert.equal(r.vmdescLength, undefined);
  });

  test("commands reach the handler with their payload", async () => {
    const sink = new MemorySink();
    const w = new ByteWriter(sink);
    const s = new StreamSaver(w, new Registry(), none);
    s.writeHeader();
    s.openReturnPath();
    s.ping(1);
    await s.complete();
    await w.flush();
    const got: [number, string][] = [];
    await load(sink.bytes(), new Registry(), none, {
      onCommand: (cmd, payload) => {
        got.push([cmd, hex(payload)]);
      },
    });
    assert.deepEqual(got, [
      [1, ""],
      [2, "00000001"],
    ]);
  });
});

void suite("Registry", () => {
  const h: StateHandlers = { save: () => undefined, decode: () => 0, apply() {} };
  test("assigns instance ids per idstr like QEMU's register-any", () => {
    const r = new Registry();
    assert.equal(r.registerState({ idstr: "dma", version: 1 }, h).instanceId, 0);
    assert.equal(r.registerState({ idstr: "dma", version: 1 }, h).instanceId, 1);
    assert.equal(r.registerState({ idstr: "pic", version: 1 }, h).instanceId, 0);
    assert.equal(r.registerState({ idstr: "dma", version: 1, instanceId: 7 }, h).instanceId, 7);
    assert.equal(r.registerState({ idstr: "dma", version: 1 }, h).instanceId, 8);
  });

  test("a duplicate explicit (idstr, instance) is an error at registration", () => {
    const r = new Registry();
    r.registerState({ idstr: "cpu", version: 1, instanceId: 0 }, h);
    assert.throws(() => r.registerState({ idstr: "cpu", version: 1, instanceId: 0 }, h), RangeError);
  });

  test("saves by priority (higher first), then registration order; section ids follow registration", () => {
    const r = new Registry();
    r.registerState({ idstr: "a", version: 1 }, h);
    r.registerState({ idstr: "b", version: 1, priority: 2 }, h);
    r.registerState({ idstr: "c", version: 1 }, h);
    r.registerState({ idstr: "d", version: 1, priority: 2 }, h);
    r.registerState({ idstr: "e", version: 1, priority: 1 }, h);
    assert.deepEqual(
      r.entries.map((e) => `${e.idstr}${e.sectionId}`),
      ["b1", "d3", "e4", "a0", "c2"],
    );
  });

  test("rejects empty and over-long idstrs", () => {
    const r = new Registry();
    assert.throws(() => r.registerState({ idstr: "", version: 1 }, h), RangeError);
    assert.throws(() => r.registerState({ idstr: "x".repeat(256), version: 1 }, h), RangeError);
  });
});
