import assert from "node:assert/strict";
import { suite, test } from "node:test";
import fc from "fast-check";
import { ByteReader } from "../wire/byte-reader.js";
import { chunked, hex, load, save, saveWithVmdesc, unhex } from "./_util.test.js";
import * as vm from "./index.js";

type Kind = "bool" | "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "f64" | "timer";
const KINDS: Kind[] = ["bool", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f64", "timer"];

function field(k: Kind): vm.Field {
  switch (k) {
    case "bool":
      return vm.bool();
    case "u8":
      return vm.u8();
    case "u16":
      return vm.u16();
    case "u32":
      return vm.u32();
    case "u64":
      return vm.u64();
    case "i8":
      return vm.i8();
    case "i16":
      return vm.i16();
    case "i32":
      return vm.i32();
    case "i64":
      return vm.i64();
    case "f64":
      return vm.f64();
    case "timer":
      return vm.timer();
  }
}

function value(k: Kind): fc.Arbitrary<unknown> {
  switch (k) {
    case "bool":
      return fc.boolean();
    case "u8":
      return fc.integer({ min: 0, max: 0xff });
    case "u16":
      return fc.integer({ min: 0, max: 0xffff });
    case "u32":
      return fc.integer({ min: 0, max: 0xffffffff });
    case "u64":
      return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    case "i8":
      return fc.integer({ min: -0x80, max: 0x7f });
    case "i16":
      return fc.integer({ min: -0x8000, max: 0x7fff });
    case "i32":
      return fc.integer({ min: -0x80000000, max: 0x7fffffff });
    case "i64":
    case "timer":
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case "f64":
      return fc.double({ noNaN: true });
  }
}

/** One generated field: its entries in the shape and an arbitrary for its state values. */
interface Gen {
  readonly fields: [string, vm.Field][];
  readonly values: fc.Arbitrary<[string, unknown][]>;
}

const pt = vm.device("pt", { version: 2, fields: { x: vm.u8(), y: vm.i16() } });
const ptValue = fc.record({ x: value("u8"), y: value("i16") }, { noNullPrototype: true });

function gen(i: number): fc.Arbitrary<Gen> {
  const k = fc.constantFrom(...KINDS);
  const name = `f${i}`;
  const one = (f: vm.Field, v: fc.Arbitrary<unknown>): Gen => ({
    fields: [[name, f]],
    values: v.map((x) => [[name, x]]),
  });
  return fc.oneof(
    k.map((kind) => one(field(kind), value(kind))),
    fc
      .tuple(k, fc.integer({ min: 0, max: 4 }))
      .map(([kind, n]) => one(vm.array(field(kind), n), fc.array(value(kind), { minLength: n, maxLength: n }))),
    fc.tuple(k, fc.constantFrom("u8", "u16", "u32", "i32") as fc.Arbitrary<"u8" | "u16" | "u32" | "i32">).map(
      ([kind, ck]): Gen => ({
        fields: [
          [`${name}n`, field(ck)],
          [name, vm.varray(field(kind), `${name}n`, { max: 5 })],
        ],
        values: fc.array(value(kind), { maxLength: 5 }).map((a) => [
          [`${name}n`, a.length],
          [name, a],
        ]),
      }),
    ),
    fc.integer({ min: 0, max: 8 }).map((n) => one(vm.buffer(n), fc.uint8Array({ minLength: n, maxLength: n }))),
    fc.integer({ min: 0, max: 4 }).map((n): Gen => ({ fields: [[name, vm.unused(n)]], values: fc.constant([]) })),
    fc.constant(
      one(
        vm.struct({ a: vm.u16(), b: vm.bool() }),
        fc.record({ a: value("u16"), b: fc.boolean() }, { noNullPrototype: true }),
      ),
    ),
    fc.constant(one(vm.array(vm.struct(pt), 2), fc.array(ptValue, { minLength: 2, maxLength: 2 }))),
    fc.constant(one(vm.list(pt, { max: 3 }), fc.array(ptValue, { maxLength: 3 }))),
    fc.constant<Gen>({
      fields: [
        [`${name}n`, vm.i32()],
        [name, vm.bitmap(`${name}n`, { max: 200 })],
      ],
      values: fc.integer({ min: 0, max: 200 }).chain((bits) =>
        fc.uint32Array({ minLength: 2 * Math.ceil(bits / 64), maxLength: 2 * Math.ceil(bits / 64) }).map((w) => [
          [`${name}n`, bits],
          [name, w],
        ]),
      ),
    }),
    fc.constant<Gen>({
      fields: [
        [`${name}n`, vm.u32()],
        [name, vm.vbuffer(`${name}n`, { max: 12, multiply: 3 })],
      ],
      values: fc.integer({ min: 0, max: 4 }).chain((n) =>
        fc.uint8Array({ minLength: 3 * n, maxLength: 3 * n }).map((b) => [
          [`${name}n`, n],
          [name, b],
        ]),
      ),
    }),
  );
}

interface Case {
  readonly dev: vm.Device;
  readonly state: Record<string, unknown>;
}

const cases: fc.Arbitrary<Case> = fc
  .tuple(fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), fc.boolean(), fc.boolean())
  .chain(([seeds, withSub, sendSub]) =>
    fc.tuple(...seeds.map((_, i) => gen(i))).chain((gens) => {
      const fields = Object.fromEntries(gens.flatMap((g) => g.fields));
      const dev = vm.device("rnd", {
        version: 1,
        fields: fields as vm.Shape,
        ...(withSub
          ? {
              subsections: {
                sub: {
                  name: "rnd/sub",
                  version: 3,
                  fields: { on: vm.bool(), v: vm.u32(), w: vm.array(vm.u8(), 3) },
                  needed: (s: vm.Loose) => s.sub.on,
                },
              },
            }
          : {}),
      }) as vm.Device;
      const sub = fc.record(
        { on: fc.constant(sendSub), v: value("u32"), w: fc.array(value("u8"), { minLength: 3, maxLength: 3 }) },
        { noNullPrototype: true },
      );
      return fc.tuple(fc.tuple(...gens.map((g) => g.values)), sub).map(([vals, s]) => {
        const state: Record<string, unknown> = Object.fromEntries(vals.flat());
        if (withSub) state.sub = sendSub ? s : { on: false, v: 0, w: [0, 0, 0] };
        return { dev, state };
      });
    }),
  );

void suite("properties", () => {
  test("load(save(x)) equals x for random descriptions and states", () => {
    fc.assert(
      fc.property(cases, ({ dev, state }) => {
        const bytes = save(dev, state);
        const t = vm.initialState(dev);
        load(dev, t, bytes, 1);
        assert.deepEqual(t, state);
      }),
      { numRuns: 300 },
    );
  });

  test("saving with vmdesc writes the same bytes, and every entry's size adds up", () => {
    fc.assert(
      fc.property(cases, ({ dev, state }) => {
        const plain = save(dev, state);
        const { bytes, vmdesc } = saveWithVmdesc(dev, state);
        assert.equal(hex(bytes), hex(plain));
        vm.stringifyVmdesc(vmdesc);
      }),
      { numRuns: 150 },
    );
  });

  test("decoding from random chunks (down to 1 byte) gives the same result", async () => {
    await fc.assert(
      fc.asyncProperty(
        cases,
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 5 }),
        async ({ dev, state }, sizes) => {
          const bytes = unhex(`${hex(save(dev, state))} 7e`);
          const whole = vm.initialState(dev);
          load(dev, whole, bytes, 1);
          const t = vm.initialState(dev);
          const r = new ByteReader(chunked(bytes, sizes));
          await vm.loadDeviceAsync(r, dev, t, 1);
          assert.deepEqual(t, whole);
          assert.equal(r.offset, bytes.length - 1);
        },
      ),
      { numRuns: 150 },
    );
  });
});
