import assert from "node:assert/strict";
import { suite, test } from "node:test";
import fc from "fast-check";
import { isMigrationError, type MigrationError } from "../errors.js";
import { ByteReader } from "../wire/byte-reader.js";
import { ascii, chunked, hex, IDE_BYTES, ideDest, ideDrive, ideState, load, save, unhex } from "./_util.test.js";
import * as vm from "./index.js";

function fails(fn: () => unknown, code: string): MigrationError {
  try {
    fn();
  } catch (e) {
    assert.ok(isMigrationError(e), `not a MigrationError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

const capped = vm.device("capped", {
  version: 1,
  fields: {
    n: vm.u32(),
    v: vm.varray(vm.u16(), "n", { max: 4 }),
    len: vm.i32(),
    buf: vm.vbuffer("len", { max: 8 }),
    bits: vm.u16(),
    bm: vm.bitmap("bits", { max: 128 }),
    l: vm.list({ x: vm.u8() }, { max: 2 }),
  },
});

void suite("hostile: caps", () => {
  test("a varray count over its max fails with LIMIT_EXCEEDED before allocating", () => {
    const e = fails(() => load(capped, vm.initialState(capped), unhex("ffffffff"), 1), "LIMIT_EXCEEDED");
    assert.deepEqual(e.path, ["capped", "v"]);
    assert.equal(e.offset, 4);
    fails(() => load(capped, vm.initialState(capped), unhex("00000005"), 1), "LIMIT_EXCEEDED");
  });

  test("a vbuffer size over its max, and a negative one, fail", () => {
    fails(() => load(capped, vm.initialState(capped), unhex("00000000 00000009"), 1), "LIMIT_EXCEEDED");
    const e = fails(() => load(capped, vm.initialState(capped), unhex("00000000 ffffffff"), 1), "FIELD_OUT_OF_RANGE");
    assert.deepEqual(e.path, ["capped", "buf"]);
  });

  test("a bitmap bit count over its max fails", () => {
    fails(() => load(capped, vm.initialState(capped), unhex("00000000 00000000 0081"), 1), "LIMIT_EXCEEDED");
  });

  test("a list longer than its max, and a bad list marker, fail", () => {
    const head = "00000000 00000000 0000";
    fails(() => load(capped, vm.initialState(capped), unhex(`${head} 01 01 01 02 01 03 00`), 1), "LIMIT_EXCEEDED");
    const e = fails(() => load(capped, vm.initialState(capped), unhex(`${head} 02 01 00`), 1), "BAD_STREAM");
    assert.equal(e.offset, 10);
  });

  test("a NULL slot must hold the 0x30 marker", () => {
    const d = vm.device("ptrs", { version: 1, fields: { p: vm.array(vm.optional(vm.struct({ x: vm.u8() })), 2) } });
    const t = vm.initialState(d);
    assert.deepEqual(t.p, [null, null]);
    load(d, t, unhex("30 30"), 1);
    const e = fails(() => load(d, t, unhex("30 31"), 1), "BAD_STREAM");
    assert.deepEqual(e.path, ["ptrs", "p", 1]);
  });

  test("save refuses values that do not fit, naming the field", () => {
    const s = vm.initialState(capped);
    s.n = 5;
    s.v = [1, 2, 3, 4, 5];
    assert.deepEqual(fails(() => save(capped, s), "FIELD_OUT_OF_RANGE").path, ["capped", "v"]);
    s.n = 1;
    s.v = [0x10000];
    assert.deepEqual(fails(() => save(capped, s), "FIELD_OUT_OF_RANGE").path, ["capped", "v", 0]);
    s.v = [1, 2];
    assert.deepEqual(fails(() => save(capped, s), "FIELD_OUT_OF_RANGE").path, ["capped", "v"]);
  });
});

void suite("hostile: truncation", () => {
  const full = unhex(IDE_BYTES);

  test("truncated at every offset: TRUNCATED with a field path and offset, state untouched", () => {
    for (let k = 0; k < full.length; k++) {
      const t = ideDest();
      const before = structuredClone(t);
      if (k === 28) {
        // The stream ends right after the main fields: a missing subsection is fine.
        load(ideDrive, t, full.subarray(0, k), 3);
        continue;
      }
      const e = fails(() => load(ideDrive, t, full.subarray(0, k), 3), "TRUNCATED");
      assert.equal(e.path?.[0], "ide_drive", `at ${k}`);
      // Inside a subsection header before its name is complete, only the device can be named.
      const inHeader = k > 28 && k < 28 + 2 + 19;
      if (!inHeader) assert.ok((e.path?.length ?? 0) >= 2, `no field in the path at ${k}: ${String(e)}`);
      assert.ok(e.offset !== undefined && e.offset <= k, `offset ${e.offset} at ${k}`);
      assert.deepEqual(t, before);
    }
  });

  test("the path names the io_buffer element where the stream ends", () => {
    const cut = full.length - 4 * 4 - 1 - (20 - 17); // 17 bytes of io_buffer survive
    const t = vm.initialState(ideDrive);
    t.pio_state.io_buffer_total_len = 20;
    const e = fails(() => load(ideDrive, t, full.subarray(0, cut), 3), "TRUNCATED");
    assert.deepEqual(e.path, ["ide_drive", "pio_state", "io_buffer", 17]);
    assert.equal(e.offset, cut);
    assert.equal(String(e).includes("ide_drive/pio_state/io_buffer[17]"), true);
  });

  test("truncated async streams fail with the same path, never hang", async () => {
    for (const k of [0, 1, 5, 30, 40, 62, full.length - 1]) {
      const t = vm.initialState(ideDrive);
      t.pio_state.io_buffer_total_len = 20;
      const r = new ByteReader(chunked(full.subarray(0, k), [1, 3]));
      await assert.rejects(vm.loadDeviceAsync(r, ideDrive, t, 3), (e: unknown) => {
        assert.ok(isMigrationError(e, "TRUNCATED"));
        assert.equal(e.path?.[0], "ide_drive");
        return true;
      });
    }
  });
});

void suite("hostile: subsection names", () => {
  const dev = vm.device("dev", {
    version: 1,
    fields: { a: vm.u8() },
    subsections: { s: { name: "dev/s", version: 1, fields: { b: vm.u8() } } },
  });

  test("a 255-byte name that matches the prefix but is unknown fails cleanly", () => {
    const name = `dev/${"x".repeat(251)}`;
    const e = fails(
      () => load(dev, vm.initialState(dev), unhex(`01 05 ff ${ascii(name)} 00000001 00`), 1),
      "SUBSECTION_MISMATCH",
    );
    assert.ok(e.message.length < 400);
  });

  test("a 255-byte name that does not match the prefix ends the loop", () => {
    const name = "y".repeat(255);
    assert.equal(load(dev, vm.initialState(dev), unhex(`01 05 ff ${ascii(name)}`), 1), 1);
  });

  test("a subsection header cut short is TRUNCATED", () => {
    fails(() => load(dev, vm.initialState(dev), unhex(`01 05 05 ${ascii("dev/")}`), 1), "TRUNCATED");
  });
});

void suite("hostile: random byte flips", () => {
  test("flipped streams load to a valid state or fail with a MigrationError", () => {
    const full = unhex(IDE_BYTES);
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat(full.length - 1), v: fc.integer({ min: 0, max: 255 }) }), {
          minLength: 1,
          maxLength: 4,
        }),
        (flips) => {
          const b = full.slice();
          for (const f of flips) b[f.at] = f.v;
          const t = ideDest();
          try {
            load(ideDrive, t, b, 3);
          } catch (e) {
            assert.ok(isMigrationError(e), `not a MigrationError: ${String(e)}`);
            return;
          }
          // A different but valid state: it saves again.
          save(ideDrive, t);
        },
      ),
      { numRuns: 400 },
    );
  });

  test("the same holds for a device with every variable-length kind", () => {
    const s = vm.initialState(capped);
    Object.assign(s, { n: 2, v: [1, 2], len: 3, buf: new Uint8Array([1, 2, 3]), bits: 70 });
    s.bm = new Uint32Array(4);
    s.l = [{ x: 1 }];
    const full = save(capped, s);
    assert.equal(hex(full).length, full.length * 2);
    fc.assert(
      fc.property(fc.nat(full.length - 1), fc.integer({ min: 0, max: 255 }), (at, v) => {
        const b = full.slice();
        b[at] = v;
        const t = vm.initialState(capped);
        try {
          load(capped, t, b, 1);
        } catch (e) {
          assert.ok(isMigrationError(e), String(e));
          return;
        }
        save(capped, t);
      }),
      { numRuns: 400 },
    );
  });
});

void suite("hostile: state pollution", () => {
  test("a subsection name from the wire never becomes a property key", () => {
    const dev = vm.device("p", { version: 1, fields: { a: vm.u8() } });
    const t = vm.initialState(dev);
    fails(() => load(dev, t, unhex(`01 05 0b ${ascii("p__proto__x")} 00000001`), 1), "SUBSECTION_MISMATCH");
    assert.deepEqual(Object.keys(t), ["a"]);
    assert.equal(Object.getPrototypeOf(t), Object.prototype);
  });

  test("ideState round-trips (sanity for the fixtures above)", () => {
    const t = vm.initialState(ideDrive);
    t.pio_state.io_buffer_total_len = 20;
    load(ideDrive, t, save(ideDrive, ideState()), 3);
    assert.deepEqual(t, ideState());
  });
});
