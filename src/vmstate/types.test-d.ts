/**
 * Type tests, checked by `tsc --noEmit` (not run): inference of state types from descriptions, and compile errors
 * for descriptions that break the rules.
 */

import * as vm from "./index.js";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<_T extends true>(): void {}

const pt = vm.device("pt", { version: 1, fields: { x: vm.u8(), y: vm.i16() } });

const dev = vm.device("dev", {
  version: 2,
  minVersion: 1,
  fields: {
    flag: vm.bool(),
    a: vm.u8(),
    big: vm.u64({ since: 2 }),
    neg: vm.i64(),
    when: vm.timer(),
    ratio: vm.f64(),
    mac: vm.buffer(6),
    pad: vm.unused(4),
    regs: vm.array(vm.u32(), 8),
    grid: vm.array(vm.array(vm.u8(), 2), 3),
    n: vm.u16(),
    ring: vm.varray(vm.u32(), "n", { max: 64 }),
    len: vm.i32(),
    blob: vm.vbuffer("len", { max: 256 }),
    bits: vm.u32(),
    dirty: vm.bitmap("bits", { max: 1024 }),
    phy: vm.struct({ ctrl: vm.u16(), status: vm.u16() }),
    pts: vm.array(vm.struct(pt), 2),
    slots: vm.array(vm.optional(vm.struct(pt)), 4),
    queue: vm.list(pt, { max: 8 }),
    ok: vm.validate((s) => s.n <= 64),
    total: vm.local(vm.i32()),
    buf: vm.varray(vm.u8(), "total", { max: 4096 }),
    tmp: vm.withTmp(vm.device("tmp", { version: 0, fields: { both: vm.u32() } }), {
      toTmp: (p) => ({ both: p.a }),
      fromTmp: (p, t) => {
        p.a = t.both & 0xff;
      },
    }),
  },
  subsections: {
    tso: {
      name: "dev/tso",
      version: 1,
      fields: { props: vm.u8(), payloadLen: vm.u32() },
      needed: (s) => s.tso.props !== 0 && s.flag,
    },
    deep: { name: "dev/tso/deep", version: 1, parent: "tso", fields: { z: vm.u8() } },
  },
  postLoad(s, versionId) {
    if (versionId < 2) s.big = 0n;
  },
});

type DevState = vm.Infer<typeof dev>;
type Flat<T> = { [K in keyof T]: T[K] };
assertType<
  Equal<
    Flat<DevState>,
    {
      flag: boolean;
      a: number;
      big: bigint;
      neg: bigint;
      when: bigint;
      ratio: number;
      mac: Uint8Array;
      regs: number[];
      grid: number[][];
      n: number;
      ring: number[];
      len: number;
      blob: Uint8Array;
      bits: number;
      dirty: Uint32Array;
      phy: { ctrl: number; status: number };
      pts: { x: number; y: number }[];
      slots: ({ x: number; y: number } | null)[];
      queue: { x: number; y: number }[];
      total: number;
      buf: number[];
      tso: { props: number; payloadLen: number };
      deep: { z: number };
    }
  >
>();
assertType<
  Equal<
    ReturnType<
      typeof vm.initialState<
        typeof dev extends vm.Device<infer S, infer _> ? S : never,
        typeof dev extends vm.Device<infer _, infer U> ? U : never
      >
    >,
    DevState
  >
>();

// A misspelled count field does not compile.
vm.device("bad1", {
  version: 1,
  fields: {
    count: vm.u32(),
    // @ts-expect-error "cuont" is not a field
    items: vm.varray(vm.u32(), "cuont", { max: 4 }),
  },
});

// A non-numeric count field does not compile.
vm.device("bad2", {
  version: 1,
  fields: {
    count: vm.bool(),
    // @ts-expect-error a bool cannot be a count
    items: vm.varray(vm.u32(), "count", { max: 4 }),
  },
});

// Nor does a u64 or f64 one (QEMU counts are u8, u16, u32 or i32).
vm.device("bad3", {
  version: 1,
  fields: {
    count: vm.u64(),
    // @ts-expect-error a u64 cannot be a count
    items: vm.vbuffer("count", { max: 4 }),
  },
});

// needed() reading a missing field does not compile.
vm.device("bad4", {
  version: 1,
  fields: { a: vm.u8() },
  subsections: {
    s: {
      name: "bad4/s",
      version: 1,
      fields: { b: vm.u8() },
      // @ts-expect-error "nope" is not in the state
      needed: (s) => s.nope !== 0,
    },
  },
});

// A subsection's parent must be another subsection's key.
vm.device("bad5", {
  version: 1,
  fields: { a: vm.u8() },
  subsections: {
    // @ts-expect-error "missing" is not a subsection
    s: { name: "bad5/s", version: 1, parent: "missing", fields: {} },
  },
});

// Hooks see the inferred state.
vm.device("hooks", {
  version: 1,
  fields: { a: vm.u8() },
  preSave(s) {
    // @ts-expect-error a is a number
    s.a = "x";
  },
});

// Legacy handlers carry their state type.
const clock = vm.legacy("clock", {
  version: 1,
  save: (w, s: { ticks: bigint }) => {
    w.u64(s.ticks);
  },
  load: (r) => r.u64(),
  apply: (s, t) => {
    s.ticks = t;
  },
});
assertType<Equal<vm.Infer<typeof clock>, { ticks: bigint }>>();
type D = Flat<DevState>;
assertType<Equal<vm.Infer<typeof pt>, { x: number; y: number }>>();
assertType<Equal<D["slots"], ({ x: number; y: number } | null)[]>>();
assertType<Equal<D["phy"], { ctrl: number; status: number }>>();
assertType<Equal<D["tso"], { props: number; payloadLen: number }>>();
assertType<Equal<D["grid"], number[][]>>();
assertType<Equal<D["flag"], boolean>>();
assertType<Equal<D["big"], bigint>>();
assertType<Equal<D["dirty"], Uint32Array>>();
assertType<Equal<D["mac"], Uint8Array>>();
