/**
 * The generated codec's own representations, checked against the closure path: buffers decoded as spans of the
 * received chunk (applied, validated, seen by predicates, applied with the JIT switched off in between), and runs
 * read straight from the current chunk when a run straddles chunks.
 *
 * @module
 */

import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { ByteReader } from "../wire/byte-reader.js";
import { ByteWriter } from "../wire/byte-writer.js";
import { bothPaths, chunked, hex, load, outcome, save, unhex } from "./_util.test.js";
import * as vm from "./index.js";

void suite("generated codec: buffers", () => {
  const sizes = [1, 3, 4, 7, 32, 257];
  for (const n of sizes) {
    test(`a buffer(${n}) is copied into the current one, or replaces one of another length`, () => {
      const dev = vm.device(`b${n}`, { version: 1, fields: { a: vm.u8(), buf: vm.buffer(n), z: vm.u16() } });
      const bytes = new Uint8Array(n).map((_, i) => (i * 37 + 1) & 0xff);
      const state = { a: 9, buf: bytes, z: 0x1234 };
      const saved = save(dev, state);
      const [x, y] = bothPaths(() => {
        const t = vm.initialState(dev);
        const keep = t.buf;
        load(dev, t, saved, 1);
        const odd = { a: 0, buf: new Uint8Array(n + 1), z: 0 };
        load(dev, odd, saved, 1);
        return { t, same: t.buf === keep, odd, oddLen: odd.buf.length };
      });
      assert.deepEqual(x, y);
      assert.deepEqual(x.t, state);
      assert.equal(x.same, true);
      assert.equal(x.oddLen, n);
      // The loaded buffer is a copy, not a view of the stream.
      saved.fill(0);
      assert.deepEqual(x.t.buf, bytes);
      assert.deepEqual(x.odd.buf, bytes);
    });
  }

  test("validate and test predicates, and a struct's view, see the decoded buffer as a Uint8Array", () => {
    const seen: string[] = [];
    const inner = vm.device("in", { version: 1, fields: { buf: vm.buffer(3), k: vm.u8() } });
    const dev = vm.device("pv", {
      version: 1,
      fields: {
        st: vm.struct(inner),
        ok: vm.validate((s) => {
          seen.push(`validate ${s.st.buf instanceof Uint8Array} ${[...s.st.buf]}`);
          return s.st.buf[0] === 1;
        }),
        own: vm.buffer(2),
        more: vm.u8({
          test: (s) => {
            seen.push(`test ${s.own instanceof Uint8Array} ${[...s.own]} ${[...s.st.buf]}`);
            return s.own[1] === 4;
          },
        }),
      },
    });
    const [x, y] = bothPaths(() => {
      seen.length = 0;
      const t = vm.initialState(dev);
      const r = outcome(() => load(dev, t, unhex("010203 05 0304 06"), 1));
      const bad = vm.initialState(dev);
      const e = outcome(() => load(dev, bad, unhex("090203 05 0304 06"), 1));
      return { r, t, e, bad, seen: [...seen] };
    });
    assert.deepEqual(x, y);
    assert.deepEqual(x.t, { st: { buf: Uint8Array.from([1, 2, 3]), k: 5 }, own: Uint8Array.from([3, 4]), more: 6 });
    assert.equal((x.e as { code: string }).code, "VALIDATION_FAILED");
    assert.deepEqual(x.bad, vm.initialState(dev));
    assert.ok(x.seen.includes("validate true 1,2,3"));
    assert.ok(x.seen.includes("test true 3,4 1,2,3"));
  });

  test("decoded with the JIT on, applied with it off (and the other way round)", () => {
    const dev = vm.device("sw", {
      version: 1,
      fields: { a: vm.u32(), buf: vm.buffer(6), st: vm.struct({ b: vm.buffer(2) }) },
    });
    const bytes = unhex("00000007 010203040506 0809");
    const want = { a: 7, buf: Uint8Array.from([1, 2, 3, 4, 5, 6]), st: { b: Uint8Array.from([8, 9]) } };
    const was = vm.vmstateJit();
    try {
      for (const [first, second] of [
        [true, false],
        [false, true],
      ]) {
        vm.setVmstateJit(first as boolean);
        const t = vm.initialState(dev);
        const d = vm.decodeDevice(ByteReader.fromBytes(bytes), dev, t, 1);
        vm.setVmstateJit(second as boolean);
        vm.applyDevice(dev, t, d);
        assert.deepEqual(t, want);
      }
    } finally {
      vm.setVmstateJit(was);
    }
  });
});

void suite("generated codec: located decoding", () => {
  const dev = vm.device("loc", {
    version: 1,
    fields: {
      a: vm.u32(),
      id: vm.u16({ equal: true }),
      arr: vm.array(vm.u8(), 3),
      n: vm.u8(),
      w: vm.varray(vm.i16(), "n", { max: 4 }),
      gap: vm.unused(2),
      buf: vm.buffer(6),
      f: vm.bool(),
    },
  });
  const bytes = unhex("fffffffe 0007 010203 02 fffe 0005 0000 0a0b0c0d0e0f 01");
  const want = {
    a: 0xfffffffe,
    id: 7,
    arr: [1, 2, 3],
    n: 2,
    w: [-2, 5],
    buf: Uint8Array.from([10, 11, 12, 13, 14, 15]),
    f: true,
  };

  test("decoded with the JIT on and applied with it off, and the other way round; applied twice", () => {
    const was = vm.vmstateJit();
    try {
      for (const [first, second] of [
        [true, false],
        [false, true],
        [true, true],
      ]) {
        vm.setVmstateJit(first as boolean);
        const t = { ...vm.initialState(dev), id: 7 };
        const d = vm.decodeDevice(ByteReader.fromBytes(bytes), dev, t, 1);
        vm.setVmstateJit(second as boolean);
        vm.applyDevice(dev, t, d);
        assert.deepEqual(t, want);
        const u = { ...vm.initialState(dev), id: 7 };
        vm.applyDevice(dev, u, d);
        assert.deepEqual(u, want);
      }
    } finally {
      vm.setVmstateJit(was);
    }
  });

  test("an equal field that differs fails before anything is written; truncation names the field", () => {
    const [x, y] = bothPaths(() => {
      const t = { ...vm.initialState(dev), id: 8 };
      const e = outcome(() => load(dev, t, bytes, 1));
      const cut = vm.initialState(dev);
      const e2 = outcome(() => load(dev, cut, bytes.subarray(0, 8), 1));
      return { e, t, e2, cut };
    });
    assert.deepEqual(x, y);
    assert.equal((x.e as { code: string }).code, "FIELD_MISMATCH");
    assert.deepEqual(x.t, { ...vm.initialState(dev), id: 8 });
    assert.deepEqual((x.e2 as { path: unknown }).path, ["loc", "arr", 2]);
    assert.deepEqual(x.cut, vm.initialState(dev));
  });
});

void suite("generated codec: short arrays (unrolled on save)", () => {
  test("a bad element is reported with its index and offset, as on the closure path", () => {
    const dev = vm.device("ae", {
      version: 1,
      fields: { a: vm.u8(), arr: vm.array(vm.u16(), 4), bs: vm.array(vm.bool(), 3) },
    });
    const cases = [
      [{ a: 1, arr: [1, 2, 70000, 4], bs: [true, false, true] }, ["ae", "arr", 2], 5],
      [{ a: 1, arr: [1, 2, 7, 4], bs: [true, 0, true] }, ["ae", "bs", 1], 10],
    ] as const;
    for (const [state, path, offset] of cases) {
      const [x, y] = bothPaths(() => outcome(() => save(dev, state)));
      assert.deepEqual(x, y);
      assert.deepEqual((x as { path: unknown }).path, path);
      assert.equal((x as { offset: unknown }).offset, offset);
    }
    const [x, y] = bothPaths(() => hex(save(dev, { a: 1, arr: [1, 2, 0xffff, 4], bs: [true, false, true] })));
    assert.equal(x, y);
    assert.equal(x, "01 0001 0002 ffff 0004 01 00 01".replaceAll(" ", ""));
  });
});

void suite("generated codec: runs across chunks", () => {
  test("every split of a device with runs, a counted array and a subsection decodes the same", async () => {
    const dev = vm.device("rc", {
      version: 1,
      fields: {
        a: vm.u32(),
        b: vm.u64(),
        c: vm.array(vm.u16(), 3),
        n: vm.u8(),
        w: vm.varray(vm.u16(), "n", { max: 8 }),
        buf: vm.buffer(5),
        t: vm.i32(),
      },
      subsections: { x: { name: "rc/x", version: 1, fields: { y: vm.u32(), g: vm.buffer(2) }, needed: () => true } },
    });
    const state = {
      a: 0xdeadbeef,
      b: 0x0102030405060708n,
      c: [1, 2, 0xffff],
      n: 3,
      w: [7, 8, 9],
      buf: Uint8Array.from([5, 4, 3, 2, 1]),
      t: -2,
      x: { y: 42, g: Uint8Array.from([0xaa, 0xbb]) },
    };
    const bytes = unhex(`${hex(save(dev, state))} 7e 00 00 00 00`);
    for (let cut = 1; cut < bytes.length; cut++) {
      for (const jit of [true, false]) {
        const was = vm.vmstateJit();
        vm.setVmstateJit(jit);
        try {
          const t = vm.initialState(dev);
          const r = new ByteReader(chunked(bytes, [cut, bytes.length]));
          await vm.loadDeviceAsync(r, dev, t, 1);
          assert.deepEqual(t, state, `cut at ${cut}, jit ${jit}`);
          assert.equal(r.offset, bytes.length - 5);
        } finally {
          vm.setVmstateJit(was);
        }
      }
    }
  });
});

void suite("staging buffer", () => {
  test("saves of the same size reuse the staged view only while no writer kept it", async () => {
    const dev = vm.device("sz", { version: 1, fields: { a: vm.u32(), buf: vm.buffer(120) } });
    const got: Uint8Array[] = [];
    // A small writer buffer: the 124-byte payload is handed to the sink as a view (kept), not copied.
    const w = new ByteWriter(
      {
        write: (c: Uint8Array) => {
          got.push(c);
          return Promise.resolve();
        },
      },
      { bufferSize: 64, passThroughThreshold: 32 },
    );
    for (let i = 0; i < 4; i++) vm.saveDevice(w, dev, { a: i, buf: new Uint8Array(120).fill(i + 1) });
    await w.flush();
    const all = Uint8Array.from(got.flatMap((c) => [...c]));
    assert.equal(all.length, 4 * 124);
    for (let i = 0; i < 4; i++) {
      const rec = all.subarray(i * 124, (i + 1) * 124);
      assert.equal(new DataView(rec.buffer, rec.byteOffset).getUint32(0), i);
      assert.ok(rec.subarray(4).every((b) => b === i + 1));
    }
    // A writer that copies: the same bytes.
    const saved = [0, 1, 2, 3].map((i) => hex(save(dev, { a: i, buf: new Uint8Array(120).fill(i + 1) })));
    assert.equal(saved.join(""), hex(all));
  });
});
