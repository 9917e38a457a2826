import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { hex, saveWithVmdesc } from "./_util.test.js";
import * as vm from "./index.js";

// Untyped entry point, to check the run-time rules that the types also enforce.
const define = vm.device as unknown as (name: string, def: unknown) => vm.AnyDevice;

void suite("device() validates and freezes", () => {
  const bad: [string, unknown, RegExp][] = [
    ["minVersion > version", { version: 1, minVersion: 2, fields: {} }, /minVersion 2 is greater than version 1/],
    ["since > version", { version: 1, fields: { a: vm.u8({ since: 2 }) } }, /since 2, greater than the version 1/],
    ["missing count field", { version: 1, fields: { v: vm.varray(vm.u8(), "n", { max: 1 }) } }, /not an earlier field/],
    [
      "count field after the array",
      { version: 1, fields: { v: vm.varray(vm.u8(), "n", { max: 1 }), n: vm.u8() } },
      /not an earlier field/,
    ],
    [
      "non-integer count field",
      { version: 1, fields: { n: vm.bool(), v: vm.varray(vm.u8(), "n", { max: 1 }) } },
      /a bool/,
    ],
    ["not a field", { version: 1, fields: { a: 5 } }, /is not a field/],
    [
      "subsection not prefixed",
      { version: 1, fields: {}, subsections: { s: { name: "other/s", version: 1, fields: {} } } },
      /must start with its parent's name "dev"/,
    ],
    [
      "subsection name equal to the parent's",
      { version: 1, fields: {}, subsections: { s: { name: "dev", version: 1, fields: {} } } },
      /and be longer/,
    ],
    [
      "duplicate subsection names",
      {
        version: 1,
        fields: {},
        subsections: { s: { name: "dev/s", version: 1, fields: {} }, t: { name: "dev/s", version: 1, fields: {} } },
      },
      /used twice/,
    ],
    [
      "subsection key equal to a field key",
      { version: 1, fields: { s: vm.u8() }, subsections: { s: { name: "dev/s", version: 1, fields: {} } } },
      /also a field name/,
    ],
    [
      "subsection name over 255 bytes",
      { version: 1, fields: {}, subsections: { s: { name: `dev/${"x".repeat(252)}`, version: 1, fields: {} } } },
      /over 255 bytes/,
    ],
    [
      "nested subsection not prefixed by its parent subsection",
      {
        version: 1,
        fields: {},
        subsections: {
          a: { name: "dev/a", version: 1, fields: {} },
          b: { name: "dev/b", parent: "a", version: 1, fields: {} },
        },
      },
      /start with its parent's name "dev\/a"/,
    ],
    ["hook not a function", { version: 1, fields: {}, postLoad: 3 }, /postLoad is not a function/],
    [
      "tmp with a since field",
      {
        version: 1,
        fields: {
          t: vm.withTmp(vm.device("t", { version: 1, minVersion: 0, fields: { a: vm.u8({ since: 1 }) } }), {
            toTmp: () => ({ a: 0 }),
            fromTmp: () => {},
          }),
        },
      },
      /QEMU's tmp load ignores/,
    ],
  ];
  for (const [what, def, re] of bad) {
    test(`rejects ${what}`, () => {
      assert.throws(
        () => define("dev", def),
        (e: unknown) => e instanceof TypeError && re.test(e.message),
      );
    });
  }

  test("factories check their own arguments", () => {
    assert.throws(() => vm.u8({ since: -1 }), TypeError);
    assert.throws(() => vm.i8({ equal: true } as vm.ScalarOptions), TypeError);
    assert.throws(() => vm.buffer(-1), RangeError);
    assert.throws(() => vm.varray(vm.u8(), "n", { max: -1 }), RangeError);
    assert.throws(() => vm.array(vm.varray(vm.u8(), "n", { max: 1 }), 2), TypeError);
    assert.throws(() => vm.array(vm.u8({ since: 1 }), 2), TypeError);
  });

  test("descriptions and fields are frozen", () => {
    const d = vm.device("dev", { version: 2, minVersion: 1, priority: 1, fields: { a: vm.u8() } });
    assert.ok(
      Object.isFrozen(d) && Object.isFrozen(d.def) && Object.isFrozen(d.def.fields) && Object.isFrozen(d.def.fields.a),
    );
    assert.deepEqual([d.name, d.version, d.minVersion, d.priority], ["dev", 2, 1, 1]);
  });

  test("initialState is complete and fresh each time", () => {
    const d = vm.device("init", {
      version: 1,
      fields: {
        b: vm.bool(),
        u: vm.u64(),
        t: vm.timer(),
        buf: vm.buffer(2),
        n: vm.u8(),
        v: vm.varray(vm.u8(), "n", { max: 2 }),
        arr: vm.array(vm.struct({ x: vm.u8() }), 2),
        o: vm.array(vm.optional(vm.struct({ y: vm.u8() })), 1),
        pad: vm.unused(3),
      },
      subsections: { s: { name: "init/s", version: 1, fields: { z: vm.i16() } } },
    });
    const a = vm.initialState(d);
    assert.deepEqual(a, {
      b: false,
      u: 0n,
      t: -1n,
      buf: new Uint8Array(2),
      n: 0,
      v: [],
      arr: [{ x: 0 }, { x: 0 }],
      o: [null],
      s: { z: 0 },
    });
    assert.notEqual(vm.initialState(d).buf, a.buf);
  });
});

void suite("vmdesc details", () => {
  test("repeated names get [k] suffixes counted over the whole field list", () => {
    const d = vm.device("dup", {
      version: 1,
      fields: { p1: vm.unused(1), a: vm.u8({ name: "x" }), p2: vm.unused(2), b: vm.u8({ name: "x", since: 1 }) },
    });
    const { vmdesc } = saveWithVmdesc(d, { a: 1, b: 2 });
    assert.deepEqual(
      vmdesc.fields.map((f) => f.name),
      ["unused[0]", "x[0]", "unused[1]", "x[1]"],
    );
  });

  test("arrays whose elements cannot compress get one entry per element with index", () => {
    const withSub = vm.device("el", {
      version: 1,
      fields: { x: vm.u8() },
      subsections: { s: { name: "el/s", version: 1, fields: { y: vm.u8() }, needed: () => false } },
    });
    const d = vm.device("arr", {
      version: 1,
      fields: {
        e: vm.array(vm.struct(withSub), 2),
        t: vm.array(vm.u8(), 2, { test: () => true }),
        one: vm.array(vm.u8(), 1),
      },
    });
    const { bytes, vmdesc } = saveWithVmdesc(d, {
      e: [
        { x: 1, s: { y: 0 } },
        { x: 2, s: { y: 0 } },
      ],
      t: [3, 4],
      one: [5],
    });
    assert.equal(hex(bytes), "0102030405");
    const s = vm.stringifyVmdesc(vmdesc.fields);
    assert.ok(s.includes('{"name": "e", "index": 0, "type": "struct", "struct": {"vmsd_name": "el"'), s);
    assert.ok(s.includes('{"name": "e", "index": 1, "type": "struct"'), s);
    assert.ok(
      s.includes(
        '{"name": "t", "index": 0, "type": "uint8", "size": 1}, {"name": "t", "index": 1, "type": "uint8", "size": 1}',
      ),
      s,
    );
    assert.ok(s.includes('{"name": "one", "type": "uint8", "size": 1}'), s);
  });

  test("stringifyVmdesc formats like QEMU's JSON writer", () => {
    assert.equal(vm.stringifyVmdesc({ page_size: 4096, devices: [] }), '{"page_size": 4096, "devices": []}');
    assert.equal(
      vm.stringifyVmdesc({ a: {}, b: [1, 2n], c: true, d: null }),
      '{"a": {}, "b": [1, 2], "c": true, "d": null}',
    );
    assert.equal(
      vm.stringifyVmdesc('q"\\\b\f\n\r\t\u0001\u007f/é😀'),
      '"q\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u007F/\\u00E9\\uD83D\\uDE00"',
    );
    assert.equal(vm.stringifyVmdesc("\ud800x"), '"\\uFFFDx"');
    assert.equal(
      vm.stringifyVmdesc({ a: 1, "~inline": [{ b: 2 }, { b: 3 }], c: 4 }),
      '{"a": 1, "b": 2, "b": 3, "c": 4}',
    );
    assert.throws(() => vm.stringifyVmdesc(1.5), TypeError);
  });
});
