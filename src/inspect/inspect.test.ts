import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isMigrationError } from "../errors.js";
import { Cursor } from "./cursor.js";
import { blockFileName } from "./extract.js";
import { parseSetRam } from "./rewrite.js";
import { BytesSource } from "./source.js";
import { findTrailer, validateVmdesc } from "./trailer.js";
import { decodeVmsd, hexSpaced } from "./vmsd-decode.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function withTrailer(body: Uint8Array, json: string): Uint8Array {
  const j = enc(json);
  const out = new Uint8Array(body.length + 5 + j.length);
  out.set(body);
  out[body.length] = 0x06;
  new DataView(out.buffer).setUint32(body.length + 1, j.length);
  out.set(j, body.length + 5);
  return out;
}

void suite("Cursor", () => {
  test("Cursor reads big-endian across window refills and fails TRUNCATED at the end", () => {
    const bytes = new Uint8Array(100).map((_, i) => i);
    const c = new Cursor(new BytesSource(bytes), 7);
    c.skip(3);
    assert.equal(c.u32(), 0x03040506);
    assert.equal(c.u64n(), 0x0708090a * 2 ** 32 + 0x0b0c0d0e);
    assert.equal(c.offset, 15);
    c.skip(80);
    assert.throws(
      () => c.u64n(),
      (e) => isMigrationError(e, "TRUNCATED") && e.offset === 95,
    );
  });
});

void suite("decodeVmsd", () => {
  test("decodeVmsd() prints values as analyze-migration.py: hex ints, signed suffix, bools, lists, subsections", () => {
    const desc = {
      fields: [
        { name: "a", type: "uint16", size: 2 },
        { name: "b", type: "int32", size: 4 },
        { name: "f", type: "bool", size: 1 },
        { name: "arr", type: "uint8", size: 1, array_len: 3 },
        { name: "buf", type: "buffer", size: 2 },
        { name: "s", type: "struct", size: 1, struct: { fields: [{ name: "x", type: "uint8", size: 1 }] } },
      ],
      subsections: [{ vmsd_name: "dev/sub", version: 1, fields: [{ name: "y", type: "int8", size: 1 }] }],
    };
    const body = [0, 42, 0xff, 0xff, 0xff, 0xfe, 1, 1, 2, 3, 0xab, 0xcd, 9, 5, 7, ...enc("dev/sub"), 0, 0, 0, 1, 0x80];
    const c = new Cursor(new BytesSource(new Uint8Array(body)));
    const v = decodeVmsd(c, desc, ["dev"], { values: 0, section: "dev" });
    assert.deepEqual(JSON.parse(JSON.stringify(v)), {
      a: "0x002a",
      b: "0xfffffffe (-2)",
      f: true,
      arr: ["0x01", "0x02", "0x03"],
      buf: "ab cd",
      s: { x: "0x09" },
      "dev/sub": { y: "0x80 (-128)" },
    });
    assert.equal(c.offset, body.length);
    assert.equal(hexSpaced(new Uint8Array([])), "");
  });

  test("decodeVmsd() fails SUBSECTION_MISMATCH when a listed subsection is missing", () => {
    const desc = { fields: [], subsections: [{ vmsd_name: "d/s", fields: [] }] };
    const c = new Cursor(new BytesSource(new Uint8Array([0x7e])));
    assert.throws(
      () => decodeVmsd(c, desc, ["d"], { values: 0, section: "d" }),
      (e) => isMigrationError(e, "SUBSECTION_MISMATCH"),
    );
  });
});

void suite("findTrailer", () => {
  test("findTrailer() finds the vmdesc from the end and rejects malformed shapes", () => {
    const json = '{"page_size": 4096, "devices": [{"name": "t", "instance_id": 0, "fields": []}]}';
    const t = findTrailer(new BytesSource(withTrailer(new Uint8Array([1, 2, 0, 0]), json)));
    assert.equal(t?.offset, 4);
    assert.equal(t?.length, json.length);
    assert.equal(findTrailer(new BytesSource(new Uint8Array([0, 1, 2]))), undefined);
    assert.throws(
      () => findTrailer(new BytesSource(withTrailer(new Uint8Array([0]), '{"page_size": 4096}'))),
      (e) => isMigrationError(e, "BAD_STREAM"),
    );
    assert.throws(
      () => validateVmdesc({ page_size: 4096, devices: [{ name: "x", instance_id: 0, fields: [{ name: "a" }] }] }, 0),
      (e) => isMigrationError(e, "BAD_STREAM"),
    );
  });
});

void suite("helpers", () => {
  test("parseSetRam() and blockFileName() handle odd names safely", () => {
    assert.deepEqual(parseSetRam("pc.ram:0x100000=p.bin"), { block: "pc.ram", offset: 0x100000, file: "p.bin" });
    assert.deepEqual(parseSetRam("/rom@etc/acpi/rsdp:16=x"), { block: "/rom@etc/acpi/rsdp", offset: 16, file: "x" });
    assert.throws(() => parseSetRam("pc.ram:zz=x"), TypeError);
    assert.equal(blockFileName("/rom@etc/acpi/tables"), "rom@etc/acpi/tables");
    assert.equal(blockFileName(".."), "__");
    assert.equal(blockFileName("///"), "_");
  });
});
