import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isMigrationError, type MigrationError } from "../errors.js";
import { ByteReader } from "../wire/byte-reader.js";
import { encodeBytes } from "../wire/byte-writer.js";
import { ascii, chunked, hex, load, save, unhex } from "./_util.test.js";
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

// ----------------------------------------------------------------------------------------------------- versions

void suite("versions", () => {
  const dev = vm.device("dev", {
    version: 4,
    minVersion: 2,
    fields: { a: vm.u8(), b: vm.u16({ since: 3 }), c: vm.u8({ since: 4 }) },
  });

  test("the saver always uses the current version: every field is written", () => {
    assert.equal(hex(save(dev, { a: 1, b: 2, c: 3 })), "01000203");
  });

  test("an older stream has only the fields up to its version; the others keep their value", () => {
    const t = { a: 0, b: 0x99, c: 0x77 };
    load(dev, t, unhex("05"), 2);
    assert.deepEqual(t, { a: 5, b: 0x99, c: 0x77 });
    load(dev, t, unhex("06 0007"), 3);
    assert.deepEqual(t, { a: 6, b: 7, c: 0x77 });
  });

  test("stream versions outside [minVersion, version] fail before reading", () => {
    const t = vm.initialState(dev);
    const tooNew = fails(() => load(dev, t, unhex("01000203"), 5), "VERSION_TOO_NEW");
    assert.deepEqual(tooNew.path, ["dev"]);
    assert.equal(tooNew.offset, 0);
    fails(() => load(dev, t, unhex("01"), 1), "VERSION_TOO_OLD");
  });

  test("minVersion defaults to version", () => {
    const d = vm.device("strict", { version: 2, fields: { a: vm.u8() } });
    assert.equal(d.minVersion, 2);
    fails(() => load(d, { a: 0 }, unhex("01"), 1), "VERSION_TOO_OLD");
  });

  test("a test predicate decides alone, with the stream version on load", () => {
    const seen: number[] = [];
    const d = vm.device("t", {
      version: 2,
      minVersion: 1,
      fields: {
        flag: vm.u8(),
        x: vm.u32({
          since: 2,
          test: (s, v) => {
            seen.push(v);
            return s.flag !== 0;
          },
        }),
      },
    });
    assert.equal(hex(save(d, { flag: 0, x: 5 })), "00");
    assert.equal(hex(save(d, { flag: 1, x: 5 })), "0100000005");
    const t = { flag: 0, x: 0 };
    load(d, t, unhex("0100000009"), 1); // test true at version 1 even though since is 2
    assert.deepEqual(t, { flag: 1, x: 9 });
    assert.deepEqual(seen, [2, 2, 1]);
  });

  test("subsection versions are checked against the subsection's range", () => {
    const d = vm.device("p", {
      version: 1,
      fields: { a: vm.u8() },
      subsections: { s: { name: "p/s", version: 2, minVersion: 2, fields: { b: vm.u8() } } },
    });
    const t = vm.initialState(d);
    const e = fails(() => load(d, t, unhex(`01 05 03 ${ascii("p/s")} 00000003 07`), 1), "VERSION_TOO_NEW");
    assert.deepEqual(e.path, ["p", "s"]);
    assert.equal(e.offset, 1);
    fails(() => load(d, t, unhex(`01 05 03 ${ascii("p/s")} 00000001 07`), 1), "VERSION_TOO_OLD");
    load(d, t, unhex(`01 05 03 ${ascii("p/s")} 00000002 07`), 1);
    assert.equal(t.s.b, 7);
  });
});

// -------------------------------------------------------------------------------------------------- subsections

const par = vm.device("par", {
  version: 1,
  fields: { a: vm.u8() },
  subsections: {
    one: { name: "par/one", version: 1, fields: { x: vm.u8() }, needed: (s) => s.one.x !== 0 },
    two: { name: "par/two", version: 1, fields: { y: vm.u16() }, needed: (s) => s.two.y !== 0 },
    deep: { name: "par/two/deep", version: 1, parent: "two", fields: { z: vm.u8() }, needed: (s) => s.deep.z !== 0 },
  },
});
const ONE = `05 07 ${ascii("par/one")} 00000001 11`;
const TWO = `05 07 ${ascii("par/two")} 00000001 0022`;
const DEEP = `05 0c ${ascii("par/two/deep")} 00000001 33`;

void suite("subsections", () => {
  test("sent in declaration order, nested ones inside their parent", () => {
    const b = save(par, { a: 1, one: { x: 0x11 }, two: { y: 0x22 }, deep: { z: 0x33 } });
    assert.equal(hex(b), hex(unhex(`01 ${ONE} ${TWO} ${DEEP}`)));
  });

  test("missing subsections are fine and keep the destination's values", () => {
    const t = { a: 0, one: { x: 5 }, two: { y: 6 }, deep: { z: 7 } };
    load(par, t, unhex("09"), 1);
    assert.deepEqual(t, { a: 9, one: { x: 5 }, two: { y: 6 }, deep: { z: 7 } });
  });

  test("out of order subsections load (QEMU looks each one up)", () => {
    const t = vm.initialState(par);
    load(par, t, unhex(`01 ${TWO} ${ONE}`), 1);
    assert.deepEqual(t, { a: 1, one: { x: 0x11 }, two: { y: 0x22 }, deep: { z: 0 } });
  });

  test("an unknown subsection that matches the parent's prefix fails the load", () => {
    const t = vm.initialState(par);
    const before = structuredClone(t);
    const e = fails(() => load(par, t, unhex(`01 05 09 ${ascii("par/three")} 00000001 00`), 1), "SUBSECTION_MISMATCH");
    assert.match(e.message, /par\/three/);
    assert.deepEqual(e.path, ["par"]);
    assert.equal(e.offset, 1);
    assert.deepEqual(t, before);
  });

  test("a name that does not start with the parent's name ends the loop without error", () => {
    const t = vm.initialState(par);
    const bytes = unhex(`01 ${ONE} 05 07 ${ascii("other/x")} 00000001`);
    const end = load(par, t, bytes, 1);
    assert.equal(t.one.x, 0x11);
    assert.equal(end, unhex(`01 ${ONE}`).length);
  });

  test("a name not longer than the parent's name ends the loop (QEMU's length rule)", () => {
    const t = vm.initialState(par);
    const end = load(par, t, unhex(`01 05 03 ${ascii("par")} 00000001`), 1);
    assert.equal(end, 1);
  });

  test("a byte other than 0x05 after the fields ends the loop (e.g. a section footer)", () => {
    const t = vm.initialState(par);
    assert.equal(load(par, t, unhex("01 7e 00000004"), 1), 1);
  });

  test("a subsection sent twice fails", () => {
    fails(() => load(par, vm.initialState(par), unhex(`01 ${ONE} ${ONE}`), 1), "SUBSECTION_MISMATCH");
  });

  test("a nested subsection is only found inside its parent", () => {
    const t = vm.initialState(par);
    load(par, t, unhex(`01 ${TWO} ${DEEP}`), 1);
    assert.equal(t.deep.z, 0x33);
    // At the top level, "par/two/deep" starts with "par" but is not a direct subsection: unknown.
    fails(() => load(par, vm.initialState(par), unhex(`01 ${DEEP}`), 1), "SUBSECTION_MISMATCH");
  });

  test("pckbd_outport (no slash) is found: the prefix rule is the parent's name only", () => {
    const kbd = vm.device("pckbd", {
      version: 3,
      fields: { a: vm.u8() },
      subsections: { outport: { name: "pckbd_outport", version: 1, fields: { outport: vm.u8() } } },
    });
    const t = vm.initialState(kbd);
    load(kbd, t, unhex(`00 05 0d ${ascii("pckbd_outport")} 00000001 cf`), 3);
    assert.equal(t.outport.outport, 0xcf);
  });
});

// -------------------------------------------------------------------------------------------------------- hooks

function hooked(log: string[], fail?: string) {
  const h = (name: string) => (_s: unknown, v?: number) => {
    log.push(v === undefined ? name : `${name}(${v})`);
    if (name === fail) throw new Error(`${name} broke`);
  };
  const inner = vm.device("inner", {
    version: 1,
    fields: { q: vm.u8() },
    preSave: h("inner.preSave"),
    postSave: h("inner.postSave"),
    preLoad: h("inner.preLoad"),
    postLoad: h("inner.postLoad"),
  });
  return vm.device("hk", {
    version: 2,
    minVersion: 1,
    fields: { a: vm.u8(), st: vm.struct(inner), b: vm.u8() },
    subsections: {
      s1: {
        name: "hk/s1",
        version: 1,
        fields: { x: vm.u8() },
        needed: (s) => {
          log.push("s1.needed");
          return s.s1.x !== 0;
        },
        preSave: h("s1.preSave"),
        postSave: h("s1.postSave"),
        preLoad: h("s1.preLoad"),
        postLoad: h("s1.postLoad"),
      },
      s2: {
        name: "hk/s2",
        version: 1,
        fields: { y: vm.u8() },
        needed: (s) => s.s2.y !== 0,
        preLoad: h("s2.preLoad"),
        postLoad: h("s2.postLoad"),
      },
    },
    preSave: h("preSave"),
    postSave: h("postSave"),
    preLoad: h("preLoad"),
    postLoad: h("postLoad"),
  });
}

void suite("hooks", () => {
  const state = () => ({ a: 1, st: { q: 2 }, b: 3, s1: { x: 4 }, s2: { y: 0 } });

  test("save order: preSave, fields (nested hooks inside), subsections with their hooks, postSave", () => {
    const log: string[] = [];
    save(hooked(log), state());
    assert.deepEqual(log, [
      "preSave(2)",
      "inner.preSave(1)",
      "inner.postSave(1)",
      "s1.needed",
      "s1.preSave(1)",
      "s1.postSave(1)",
      "postSave(2)",
    ]);
  });

  test("load order: preLoad, nested hooks in the field loop, present subsections only, outer postLoad last", () => {
    const log: string[] = [];
    const dev = hooked(log);
    const bytes = save(dev, state());
    log.length = 0;
    const t = vm.initialState(dev);
    load(dev, t, bytes, 2);
    assert.deepEqual(log, [
      "preLoad(2)",
      "inner.preLoad(1)",
      "inner.postLoad(1)",
      "s1.preLoad(1)",
      "s1.postLoad(1)",
      "postLoad(2)",
    ]);
    assert.deepEqual(t, state());
  });

  test("postLoad gets the stream's version", () => {
    const log: string[] = [];
    const dev = hooked(log);
    const t = vm.initialState(dev);
    load(dev, t, unhex("01 02 03"), 1);
    assert.deepEqual(log, ["preLoad(1)", "inner.preLoad(1)", "inner.postLoad(1)", "postLoad(1)"]);
  });

  test("a failing preSave stops the save: no postSave, nothing written", () => {
    const log: string[] = [];
    const dev = hooked(log, "preSave");
    let bytes: Uint8Array = new Uint8Array(1);
    const e = fails(() => {
      bytes = encodeBytes((w) => {
        vm.saveDevice(w, dev, state());
      });
    }, "HOOK_FAILED");
    assert.deepEqual(log, ["preSave(2)"]);
    assert.match(e.message, /"hk".*preSave.*preSave broke/);
    assert.deepEqual(e.path, ["hk"]);
    assert.equal(bytes.length, 1);
  });

  test("postSave runs even when a field fails after preSave succeeded", () => {
    const log: string[] = [];
    const dev = hooked(log);
    const e = fails(() => save(dev, { ...state(), b: 300 }), "FIELD_OUT_OF_RANGE");
    assert.deepEqual(e.path, ["hk", "b"]);
    assert.deepEqual(log, ["preSave(2)", "inner.preSave(1)", "inner.postSave(1)", "postSave(2)"]);
  });

  test("postSave runs even when a subsection fails; the subsection's own postSave too", () => {
    const log: string[] = [];
    const dev = hooked(log, "s1.preSave");
    const e = fails(() => save(dev, state()), "HOOK_FAILED");
    assert.deepEqual(e.path, ["hk", "s1"]);
    assert.deepEqual(log.slice(-3), ["s1.needed", "s1.preSave(1)", "postSave(2)"]);
  });

  test("a hook that returns an Error fails like one that throws", () => {
    const dev = vm.device("ret", { version: 1, fields: { a: vm.u8() }, postLoad: () => new Error("nope") });
    const e = fails(() => load(dev, { a: 0 }, unhex("01"), 1), "HOOK_FAILED");
    assert.match(e.message, /"ret".*postLoad.*nope/);
    assert.ok(e.cause instanceof Error);
  });

  test("subsection hooks see the whole device state", () => {
    let seen: unknown;
    const dev = vm.device("w", {
      version: 1,
      fields: { a: vm.u8() },
      subsections: {
        s: {
          name: "w/s",
          version: 1,
          fields: { b: vm.u8() },
          postLoad: (st) => {
            seen = st;
          },
        },
      },
    });
    const t = vm.initialState(dev);
    load(dev, t, unhex(`01 05 03 ${ascii("w/s")} 00000001 02`), 1);
    assert.equal(seen, t);
  });
});

// --------------------------------------------------------------------------------------------- equal / validate

void suite("equal and validate", () => {
  const dev = vm.device("cfg", {
    version: 1,
    fields: {
      queues: vm.u32({ equal: true }),
      n: vm.u8(),
      ok: vm.validate((s) => s.n <= 4),
      mac: vm.u64({ equal: true }),
    },
  });

  test("equal fields pass when the values match and are not written", () => {
    const t = { queues: 4, n: 0, mac: 7n };
    load(dev, t, unhex("00000004 02 0000000000000007"), 1);
    assert.deepEqual(t, { queues: 4, n: 2, mac: 7n });
  });

  test("an equal mismatch fails with FIELD_MISMATCH naming the field, state untouched, no hooks", () => {
    const t = { queues: 2, n: 0, mac: 7n };
    const e = fails(() => load(dev, t, unhex("00000004 02 0000000000000007"), 1), "FIELD_MISMATCH");
    assert.deepEqual(e.path, ["cfg", "queues"]);
    assert.equal(e.offset, 0);
    assert.deepEqual(t, { queues: 2, n: 0, mac: 7n });
    const e2 = fails(
      () => load(dev, { queues: 4, n: 0, mac: 8n }, unhex("00000004 02 0000000000000007"), 1),
      "FIELD_MISMATCH",
    );
    assert.equal(e2.offset, 5);
  });

  test("validate sees the decoded values; false fails the load before anything is written", () => {
    let hooks = 0;
    const d2 = vm.device("cfg2", {
      version: 1,
      fields: { n: vm.u8(), ok: vm.validate((s) => s.n <= 4), after: vm.u8() },
      preLoad: () => {
        hooks++;
      },
    });
    const t = { n: 1, after: 1 };
    const e = fails(() => load(d2, t, unhex("05 09"), 1), "VALIDATION_FAILED");
    assert.deepEqual(e.path, ["cfg2", "ok"]);
    assert.equal(e.offset, 1);
    assert.deepEqual(t, { n: 1, after: 1 });
    assert.equal(hooks, 0);
    load(d2, t, unhex("03 09"), 1);
    assert.deepEqual(t, { n: 3, after: 9 });
  });

  test("validate also runs on save", () => {
    fails(() => save(dev, { queues: 1, n: 9, mac: 0n }), "VALIDATION_FAILED");
  });
});

// ------------------------------------------------------------------------------------------- compat (v1 ⇄ v2)

/** Frozen fixture: the widget as version 1 shipped it. Never edit. */
const widgetV1 = vm.device("widget", { version: 1, fields: { a: vm.u32(), b: vm.u16() } });

/** Today's widget: a field added in version 2, and a subsection behind a machine-type compat switch. */
const widgetV2 = vm.device("widget", {
  version: 2,
  minVersion: 1,
  fields: { a: vm.u32(), b: vm.u16(), c: vm.u8({ since: 2 }), x_send_extra: vm.local(vm.bool()) },
  subsections: {
    extra: {
      name: "widget/extra",
      version: 1,
      fields: { e: vm.u8() },
      needed: (s) => s.x_send_extra && s.extra.e !== 0,
    },
  },
  postLoad: (s, v) => {
    if (v < 2) s.c = 0x42; // what version 1 implied
  },
});

/** Version 1 layout with the same compat-switched subsection (how QEMU adds state without a version bump). */
const widgetV1b = vm.device("widget", {
  version: 1,
  fields: { a: vm.u32(), b: vm.u16(), x_send_extra: vm.local(vm.bool()) },
  subsections: {
    extra: {
      name: "widget/extra",
      version: 1,
      fields: { e: vm.u8() },
      needed: (s) => s.x_send_extra && s.extra.e !== 0,
    },
  },
});

void suite("compat: frozen v1 fixture and the current description", () => {
  test("a v1 stream loads into v2; postLoad sees version 1", () => {
    const bytes = save(widgetV1, { a: 1, b: 2 });
    const t = vm.initialState(widgetV2);
    load(widgetV2, t, bytes, 1);
    assert.deepEqual(t, { a: 1, b: 2, c: 0x42, x_send_extra: false, extra: { e: 0 } });
  });

  test("a v2 stream cannot go back to v1 (versions only go forward)", () => {
    const bytes = save(widgetV2, { a: 1, b: 2, c: 3, x_send_extra: false, extra: { e: 0 } });
    fails(() => load(widgetV1, vm.initialState(widgetV1), bytes, 2), "VERSION_TOO_NEW");
  });

  test("with the compat switch off, the subsection is not sent and v1 loads the stream", () => {
    const s = { a: 1, b: 2, x_send_extra: false, extra: { e: 5 } };
    const t = vm.initialState(widgetV1);
    load(widgetV1, t, save(widgetV1b, s), 1);
    assert.deepEqual(t, { a: 1, b: 2 });
  });

  test("with the switch on, the old side rejects the unknown subsection", () => {
    const s = { a: 1, b: 2, x_send_extra: true, extra: { e: 5 } };
    const bytes = save(widgetV1b, s);
    fails(() => load(widgetV1, vm.initialState(widgetV1), bytes, 1), "SUBSECTION_MISMATCH");
    const t = vm.initialState(widgetV1b);
    load(widgetV1b, t, bytes, 1);
    assert.equal(t.extra.e, 5);
  });
});

// ------------------------------------------------------------------------------------------------ two-phase API

void suite("decodeDevice / applyDevice", () => {
  test("decode has no side effects and can be re-run by the reader", async () => {
    const dev = vm.device("tp", {
      version: 1,
      fields: { a: vm.u32(), n: vm.u8(), v: vm.varray(vm.u16(), "n", { max: 8 }) },
      postLoad: () => {
        applied++;
      },
    });
    let applied = 0;
    const bytes = save(dev, { a: 7, n: 3, v: [1, 2, 3] });
    const t = vm.initialState(dev);
    let runs = 0;
    // The subsection loop peeks one byte past the instance (as QEMU's does): give it a footer byte.
    const r = new ByteReader(chunked(unhex(`${hex(bytes)} 7e`), [1]));
    const decoded = await r.decode((rr) => {
      runs++;
      return vm.decodeDevice(rr, dev, t, 1);
    });
    assert.ok(runs > 1);
    assert.deepEqual(t, vm.initialState(dev));
    assert.equal(applied, 0);
    assert.equal(decoded.end, bytes.length);
    vm.applyDevice(dev, t, decoded);
    assert.deepEqual(t, { a: 7, n: 3, v: [1, 2, 3] });
    assert.equal(applied, 1);
  });

  test("loadDeviceAsync over 1-byte chunks", async () => {
    const bytes = unhex(`01 ${TWO} ${DEEP} 7e`);
    const t = vm.initialState(par);
    const r = new ByteReader(chunked(bytes, [1]));
    await vm.loadDeviceAsync(r, par, t, 1);
    assert.deepEqual(t, { a: 1, one: { x: 0 }, two: { y: 0x22 }, deep: { z: 0x33 } });
    assert.equal(r.offset, bytes.length - 1);
  });

  test("loadDeviceAsync accepts a stream that ends right after the instance", async () => {
    const t = vm.initialState(par);
    await vm.loadDeviceAsync(new ByteReader(chunked(unhex(`01 ${ONE}`), [2])), par, t, 1);
    assert.equal(t.one.x, 0x11);
  });

  test("applyDevice refuses a decoded value of another description", () => {
    const d = vm.decodeDevice(ByteReader.fromBytes(unhex("01")), par, vm.initialState(par), 1);
    assert.throws(() => vm.applyDevice(widgetV1, {}, d), TypeError);
  });

  test("structs are written in place (identity kept)", () => {
    const dev = vm.device("ip", { version: 1, fields: { st: vm.struct({ x: vm.u8() }), buf: vm.buffer(2) } });
    const t = vm.initialState(dev);
    const st = t.st;
    const buf = t.buf;
    load(dev, t, unhex("05 0102"), 1);
    assert.equal(t.st, st);
    assert.equal(t.buf, buf);
    assert.deepEqual([...buf], [1, 2]);
  });
});

// ------------------------------------------------------------------------------------------------------ legacy

void suite("legacy handlers", () => {
  const clock = vm.legacy("clock", {
    version: 2,
    minVersion: 1,
    priority: 3,
    save: (w, s: { ticks: bigint; hz: number }) => {
      w.u64(s.ticks).u32(s.hz);
    },
    load: (r, v) => ({ ticks: r.u64(), hz: v >= 2 ? r.u32() : 1000 }),
    apply: (s, d) => {
      s.ticks = d.ticks;
      s.hz = d.hz;
    },
  });

  test("metadata, save with vmdesc body, load", () => {
    assert.deepEqual(
      [clock.name, clock.version, clock.minVersion, clock.priority, vm.isLegacy(clock)],
      ["clock", 2, 1, 3, true],
    );
    let body: vm.VmdescLegacy | undefined;
    const bytes = encodeBytes((w) => {
      body = vm.saveLegacy(w, clock, { ticks: 5n, hz: 100 }, { vmdesc: true });
    });
    assert.equal(hex(bytes), "000000000000000500000064");
    assert.equal(vm.stringifyVmdesc(body), '{"size": 12, "fields": [{"name": "data", "size": 12, "type": "buffer"}]}');
    const t = { ticks: 0n, hz: 0 };
    vm.loadLegacy(ByteReader.fromBytes(bytes), clock, t, 2);
    assert.deepEqual(t, { ticks: 5n, hz: 100 });
    vm.loadLegacy(ByteReader.fromBytes(unhex("0000000000000009")), clock, t, 1);
    assert.deepEqual(t, { ticks: 9n, hz: 1000 });
    fails(() => vm.loadLegacy(ByteReader.fromBytes(bytes), clock, t, 3), "VERSION_TOO_NEW");
    const e = fails(() => vm.loadLegacy(ByteReader.fromBytes(unhex("00")), clock, t, 2), "TRUNCATED");
    assert.deepEqual(e.path, ["clock"]);
  });
});

void suite("sectionNeeded and priority", () => {
  test("top-level needed and priority are exposed", () => {
    const d = vm.device("gs", {
      version: 1,
      priority: vm.MigrationPriority.PciBus,
      fields: { a: vm.u8() },
      needed: (s) => s.a !== 0,
    });
    assert.equal(d.priority, 2);
    assert.equal(vm.sectionNeeded(d, { a: 0 }), false);
    assert.equal(vm.sectionNeeded(d, { a: 1 }), true);
  });
});
