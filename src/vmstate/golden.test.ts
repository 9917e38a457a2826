import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { ascii, hex, IDE_BYTES, ideDrive, ideState, load, save, saveWithVmdesc, unhex } from "./_util.test.js";
import * as vm from "./index.js";

// ---------------------------------------------------------------------------------------------------------- pckbd

/** QEMU docs/devel/migration.rst's example: hw/input/pckbd.c `vmstate_kbd` as the docs show it. */
const kbdDoc = vm.device("pckbd", {
  version: 3,
  fields: { write_cmd: vm.u8(), status: vm.u8(), mode: vm.u8(), pending: vm.u8() },
});

/** QEMU 7.2 hw/input/pckbd.c: `vmstate_kbd` with its two subsections (note `pckbd_outport` has no slash). */
const kbd = vm.device("pckbd", {
  version: 3,
  fields: {
    write_cmd: vm.u8(),
    status: vm.u8(),
    mode: vm.u8(),
    pending_tmp: vm.u8(),
    extended_state: vm.local(vm.bool()),
  },
  subsections: {
    outport: {
      name: "pckbd_outport",
      version: 1,
      fields: { outport: vm.u8() },
      needed: (s) => s.outport.outport !== 0x0d,
    },
    extended: {
      name: "pckbd/extended_state",
      version: 0,
      fields: { migration_flags: vm.u32(), obsrc: vm.u32(), obdata: vm.u8(), cbdata: vm.u8() },
      needed: (s) => s.extended_state,
    },
  },
});

/** QEMU 7.2 `vmstate_kbd_isa`: the "pckbd" section is a struct wrapping `vmstate_kbd`. */
const kbdIsa = vm.device("pckbd", { version: 3, fields: { kbd: vm.struct(kbd) } });

function kbdState(): vm.Infer<typeof kbd> {
  const s = vm.initialState(kbd);
  Object.assign(s, { write_cmd: 0, status: 0x1d, mode: 0x03, pending_tmp: 0x01, extended_state: true });
  s.outport.outport = 0xcf;
  Object.assign(s.extended, { migration_flags: 1, obsrc: 2, obdata: 0xfa, cbdata: 0 });
  return s;
}

const KBD_BYTES = [
  "00 1d 03 01", // write_cmd, status, mode, pending_tmp
  `05 0d ${ascii("pckbd_outport")} 00000001 cf`, // subsection, len 13, name, version 1, outport
  `05 14 ${ascii("pckbd/extended_state")} 00000000`, // len 20, version 0
  "00000001 00000002 fa 00", // migration_flags, obsrc, obdata, cbdata
].join(" ");

const KBD_VMDESC =
  '{"vmsd_name": "pckbd", "version": 3, "fields": [' +
  '{"name": "write_cmd", "type": "uint8", "size": 1}, {"name": "status", "type": "uint8", "size": 1}, ' +
  '{"name": "mode", "type": "uint8", "size": 1}, {"name": "pending_tmp", "type": "uint8", "size": 1}], ' +
  '"subsections": [{"vmsd_name": "pckbd_outport", "version": 1, "fields": [{"name": "outport", "type": "uint8", "size": 1}]}, ' +
  '{"vmsd_name": "pckbd/extended_state", "version": 0, "fields": [{"name": "migration_flags", "type": "uint32", "size": 4}, ' +
  '{"name": "obsrc", "type": "uint32", "size": 4}, {"name": "obdata", "type": "uint8", "size": 1}, ' +
  '{"name": "cbdata", "type": "uint8", "size": 1}]}]}';

void suite("golden: pckbd", () => {
  test("the documented 4-field description writes its 4 bytes", () => {
    const s = { write_cmd: 0xd1, status: 0x1c, mode: 0x61, pending: 0x00 };
    assert.equal(hex(save(kbdDoc, s)), "d11c6100");
    const t = vm.initialState(kbdDoc);
    load(kbdDoc, t, unhex("d11c6100"), 3);
    assert.deepEqual(t, s);
  });

  test("vmstate_kbd with both subsections matches hand-computed bytes and vmdesc", () => {
    const { bytes, vmdesc } = saveWithVmdesc(kbd, kbdState());
    assert.equal(hex(bytes), hex(unhex(KBD_BYTES)));
    assert.equal(vm.stringifyVmdesc(vmdesc), KBD_VMDESC);
  });

  test("subsections whose needed() is false are not sent", () => {
    const s = kbdState();
    s.outport.outport = 0x0d;
    s.extended_state = false;
    assert.equal(hex(save(kbd, s)), "001d0301");
  });

  test("loading restores fields and both subsections", () => {
    const t = vm.initialState(kbd);
    const end = load(kbd, t, unhex(KBD_BYTES), 3);
    assert.equal(end, unhex(KBD_BYTES).length);
    const want = kbdState();
    want.extended_state = false; // local: never sent
    assert.deepEqual(t, want);
  });

  test("the ISA wrapper nests vmstate_kbd as a struct: same bytes, struct in vmdesc", () => {
    const { bytes, vmdesc } = saveWithVmdesc(kbdIsa, { kbd: kbdState() });
    assert.equal(hex(bytes), hex(unhex(KBD_BYTES)));
    assert.equal(
      vm.stringifyVmdesc(vmdesc),
      `{"vmsd_name": "pckbd", "version": 3, "fields": [{"name": "kbd", "type": "struct", "struct": ${KBD_VMDESC}, "size": ${bytes.length}}]}`,
    );
    const t = vm.initialState(kbdIsa);
    load(kbdIsa, t, bytes, 3);
    assert.equal(t.kbd.outport.outport, 0xcf);
    assert.equal(t.kbd.extended.obdata, 0xfa);
  });
});

// ------------------------------------------------------------------------------------------------------ ide_drive

void suite("golden: ide_drive with pio_state", () => {
  test("save matches the hand-computed bytes", () => {
    assert.equal(hex(save(ideDrive, ideState())), hex(unhex(IDE_BYTES)));
  });

  test("vmdesc: the varray of uint8 is one entry with array_len; the test field is absent", () => {
    const { vmdesc } = saveWithVmdesc(ideDrive, ideState());
    const json = vm.stringifyVmdesc(vmdesc);
    assert.match(
      json,
      /^\{"vmsd_name": "ide_drive", "version": 3, "fields": \[\{"name": "mult_sectors", "type": "int32", "size": 4\}, \{"name": "identify_set", "type": "int32", "size": 4\}, \{"name": "feature"/,
    );
    assert.ok(!json.includes("identify_data"));
    assert.ok(
      json.endsWith(
        '"subsections": [{"vmsd_name": "ide_drive/pio_state", "version": 1, "fields": [{"name": "req_nb_sectors", "type": "int32", "size": 4}, ' +
          '{"name": "io_buffer", "array_len": 20, "type": "uint8", "size": 1}, {"name": "cur_io_buffer_offset", "type": "int32", "size": 4}, ' +
          '{"name": "cur_io_buffer_len", "type": "int32", "size": 4}, {"name": "end_transfer_fn_idx", "type": "uint8", "size": 1}, ' +
          '{"name": "elementary_transfer_size", "type": "int32", "size": 4}, {"name": "packet_transfer_size", "type": "int32", "size": 4}]}]}',
      ),
      json,
    );
  });

  test("load round-trips, the count coming from the destination's io_buffer_total_len", () => {
    const t = vm.initialState(ideDrive);
    t.pio_state.io_buffer_total_len = 20;
    load(ideDrive, t, unhex(IDE_BYTES), 3);
    assert.deepEqual(t, ideState());
  });

  test("a version 2 stream has no cdrom_changed: the destination keeps its value", () => {
    const v3 = unhex(IDE_BYTES);
    // Drop the last main field (offset 4+4+1+1+4+1+1+1+5+1+1+1+1+1 = 27) to make the v2 layout.
    const v2 = new Uint8Array(v3.length - 1);
    v2.set(v3.subarray(0, 27));
    v2.set(v3.subarray(28), 27);
    const t = vm.initialState(ideDrive);
    t.pio_state.io_buffer_total_len = 20;
    t.cdrom_changed = 7;
    load(ideDrive, t, v2, 2);
    assert.equal(t.cdrom_changed, 7);
    assert.equal(t.pio_state.cur_io_buffer_len, 16);
  });

  test("identify_data is sent when identify_set is non-zero", () => {
    const s = ideState();
    s.identify_set = 1;
    s.identify_data.fill(0x5a);
    const b = save(ideDrive, s);
    assert.equal(b.length, unhex(IDE_BYTES).length + 512);
    const t = vm.initialState(ideDrive);
    t.pio_state.io_buffer_total_len = 20;
    load(ideDrive, t, b, 3);
    assert.deepEqual(t.identify_data, s.identify_data);
  });
});

// ---------------------------------------------------------------------------------------------- every field kind

const pt = vm.device("pt", { version: 1, fields: { x: vm.u8() } });
const tmpDesc = vm.device("kinds_tmp", { version: 0, fields: { sum: vm.u16() } });

const kinds = vm.device("kinds", {
  version: 1,
  fields: {
    b: vm.bool(),
    a: vm.u8(),
    c: vm.u16(),
    d: vm.u32(),
    e: vm.u64(),
    f: vm.i8(),
    g: vm.i16(),
    h: vm.i32(),
    i: vm.i64(),
    j: vm.f64(),
    k: vm.timer(),
    l: vm.buffer(3),
    m: vm.unused(2),
    nbits: vm.i32(),
    bm: vm.bitmap("nbits", { max: 128 }),
    arr: vm.array(vm.u16(), 2),
    grid: vm.array(vm.array(vm.u8(), 2), 2),
    cnt8: vm.u8(),
    va8: vm.varray(vm.u32(), "cnt8", { max: 4 }),
    cnt16: vm.u16(),
    va16: vm.varray(vm.i8(), "cnt16", { max: 4 }),
    cnt32: vm.u32(),
    va32: vm.varray(vm.u8(), "cnt32", { max: 4 }),
    cnti: vm.i32(),
    vai: vm.varray(vm.u8(), "cnti", { max: 4 }),
    vlen: vm.u32(),
    vb: vm.vbuffer("vlen", { max: 16, multiply: 2 }),
    st: vm.struct({ x: vm.u8(), y: vm.u16() }),
    sa: vm.array(vm.struct(pt), 2),
    opt: vm.array(vm.optional(vm.struct(pt)), 2),
    lst: vm.list(pt, { max: 4 }),
    chk: vm.validate((s) => s.a === 0xab),
    tmpSum: vm.local(vm.u16()),
    tmp: vm.withTmp(tmpDesc, {
      toTmp: (p) => ({ sum: p.a + 1 }),
      fromTmp: (p, t) => {
        p.tmpSum = t.sum;
      },
    }),
    eqv: vm.u32({ equal: true }),
  },
});

function kindsState(): vm.Infer<typeof kinds> {
  return {
    b: true,
    a: 0xab,
    c: 0x1234,
    d: 0xdeadbeef,
    e: 0x0102030405060708n,
    f: -2,
    g: -2,
    h: -2,
    i: -2n,
    j: 1.5,
    k: -1n,
    l: new Uint8Array([1, 2, 3]),
    nbits: 70,
    bm: new Uint32Array([1, 0, 1 << 5, 0]), // bits 0 and 69
    arr: [1, 2],
    grid: [
      [1, 2],
      [3, 4],
    ],
    cnt8: 2,
    va8: [5, 6],
    cnt16: 1,
    va16: [-1],
    cnt32: 0,
    va32: [],
    cnti: -5,
    vai: [],
    vlen: 3,
    vb: new Uint8Array([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
    st: { x: 7, y: 8 },
    sa: [{ x: 1 }, { x: 2 }],
    opt: [null, { x: 9 }],
    lst: [{ x: 1 }, { x: 2 }],
    tmpSum: 0xac,
    eqv: 42,
  };
}

const KINDS_BYTES = [
  "01 ab 1234 deadbeef 0102030405060708", // bool, u8, u16, u32, u64
  "fe fffe fffffffe fffffffffffffffe", // i8, i16, i32, i64
  "3ff8000000000000 ffffffffffffffff", // f64 1.5 as its u64 pattern, timer not armed
  "010203 0000", // buffer(3), unused(2)
  "00000046 0000000000000001 0000000000000020", // nbits 70, bitmap: 2 be64 words (bit 0, bit 69)
  "0001 0002 01020304", // array(u16, 2), 2-D u8 array flattened row-major
  "02 00000005 00000006", // cnt8, varray of u32
  "0001 ff", // cnt16, varray of i8
  "00000000", // cnt32 = 0: no elements
  "fffffffb", // cnti = -5: a negative i32 count means no elements (QEMU)
  "00000003 aabbccddeeff", // vlen 3, vbuffer of 3 × 2 bytes
  "07 0008", // inline struct
  "01 02", // array of structs
  "30 09", // array of optional structs: NULL marker, then the struct
  "01 01 01 02 00", // list: 01 + element per item, 00 at the end
  "00ac", // withTmp: the temporary's u16
  "0000002a", // equal u32
].join(" ");

void suite("golden: every field kind", () => {
  test("save writes the hand-computed bytes", () => {
    assert.equal(hex(save(kinds, kindsState())), hex(unhex(KINDS_BYTES)));
  });

  test("load restores the state (equal field matching, optional slots as at the destination)", () => {
    const t = vm.initialState(kinds);
    t.eqv = 42;
    t.opt = [null, { x: 0 }];
    load(kinds, t, unhex(KINDS_BYTES), 1);
    assert.deepEqual(t, kindsState());
  });

  test("vmdesc entries for every kind", () => {
    const { vmdesc } = saveWithVmdesc(kinds, kindsState());
    const byName = new Map(vmdesc.fields.map((f) => [f.name, vm.stringifyVmdesc(f)]));
    assert.equal(byName.get("j"), '{"name": "j", "type": "uint64", "size": 8}');
    assert.equal(byName.get("k"), '{"name": "k", "type": "timer", "size": 8}');
    assert.equal(byName.get("unused"), '{"name": "unused", "type": "unused_buffer", "size": 2}');
    assert.equal(byName.get("bm"), '{"name": "bm", "type": "bitmap", "size": 16}');
    assert.equal(byName.get("arr"), '{"name": "arr", "array_len": 2, "type": "uint16", "size": 2}');
    assert.equal(byName.get("grid"), '{"name": "grid", "array_len": 4, "type": "uint8", "size": 1}');
    assert.equal(byName.get("va8"), '{"name": "va8", "array_len": 2, "type": "uint32", "size": 4}');
    assert.equal(byName.get("va16"), '{"name": "va16", "type": "int8", "size": 1}');
    assert.equal(byName.has("va32"), false);
    assert.equal(byName.has("vai"), false);
    assert.equal(byName.has("chk"), false);
    assert.equal(byName.get("vb"), '{"name": "vb", "type": "buffer", "size": 6}');
    assert.equal(
      byName.get("st"),
      '{"name": "st", "type": "struct", "struct": {"vmsd_name": "st", "version": 0, "fields": [{"name": "x", "type": "uint8", "size": 1}, {"name": "y", "type": "uint16", "size": 2}]}, "size": 3}',
    );
    assert.equal(
      byName.get("sa"),
      '{"name": "sa", "array_len": 2, "type": "struct", "struct": {"vmsd_name": "pt", "version": 1, "fields": [{"name": "x", "type": "uint8", "size": 1}]}, "size": 1}',
    );
    assert.equal(byName.get("opt"), '{"name": "opt", "array_len": 2, "type": "struct", "struct": {}, "size": 1}');
    const ptDesc = '"vmsd_name": "pt", "version": 1, "fields": [{"name": "x", "type": "uint8", "size": 1}]';
    assert.equal(byName.get("lst"), `{"name": "lst", "type": "qtailq", ${ptDesc}, ${ptDesc}, "size": 5}`);
    assert.equal(
      byName.get("tmp"),
      '{"name": "tmp", "type": "tmp", "vmsd_name": "kinds_tmp", "version": 0, "fields": [{"name": "sum", "type": "uint16", "size": 2}], "size": 2}',
    );
    assert.equal(byName.get("eqv"), '{"name": "eqv", "type": "uint32 equal", "size": 4}');
  });
});
