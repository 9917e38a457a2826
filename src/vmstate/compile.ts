/**
 * Compiles a description at one version into closures, once, cached in a `WeakMap`.
 *
 * A {@link LevelPlan} holds, for every field on the wire at that version, a saver, a decoder, an applier and
 * (where needed) a checker, built per field kind with the field's key, sizes and count lookups captured, so the
 * walkers never look at the description per byte. Nested structs are compiled at their own version; subsections
 * lazily, at the version their header carries.
 *
 * These closures are the reference codec and the fallback of the generated one (`_jit.ts`), which the walkers use
 * for each level's field loops while the JIT is on; the generated loops call back into these closures for the
 * field kinds they do not inline.
 *
 * @module
 */

import { isMigrationError, MigrationError } from "../errors.js";
import type { ByteReader } from "../wire/byte-reader.js";
import { badValue, runHook, runPredicate, show, streamError, withSeg } from "./_errors.js";
import { initialOf } from "./_init.js";
import { applyBytes } from "./_jit.js";
import type { CountInfo, DLevel, FieldPlan, LevelPlan, SubPlan, VdInfo } from "./_plan.js";
import type { SaveBuffer } from "./_save-buffer.js";
import { applyLevel, checkLevel, decodeLevel, materialize, saveLevel } from "./_walk.js";
import type { FieldEntry, LevelDesc } from "./device.js";
import type { AnyField, ScalarKind } from "./fields.js";
import type { Loose, LooseMut, TestFn } from "./infer.js";

const U64_MAX = 0xffffffffffffffffn;
const I64_MIN = -0x8000000000000000n;
const I64_MAX = 0x7fffffffffffffffn;

/** QEMU's marker for a NULL slot in an array of pointers (`VMS_NULLPTR_MARKER`, `'0'`). */
export const NULLPTR_MARKER = 0x30;

function isObj(v: unknown): v is LooseMut {
  return typeof v === "object" && v !== null;
}

// ------------------------------------------------------------------------------------------------- element codecs

/** How one element (or a single-element field) is written, read and applied. */
interface Elem {
  /** vmdesc type of the leaf element. */
  readonly type: string;
  readonly put: (sb: SaveBuffer, v: unknown) => void;
  readonly get: (r: ByteReader, cur: unknown) => unknown;
  /** Whether `get` uses the current element. */
  readonly needsCur: boolean;
  /** Returns the value to store for decoded `d` given the current element; `undefined`: store `d` as is. */
  readonly applyElem: ((cur: unknown, d: unknown) => unknown) | undefined;
  readonly check: ((cur: unknown, d: unknown) => void) | undefined;
  readonly view: ((d: unknown, cur: unknown) => unknown) | undefined;
  /** For struct/optional leaves: the nested plan. */
  readonly nested: LevelPlan | undefined;
  /** Array dimensions from here down (`[]` for a leaf). */
  readonly dims: readonly number[];
  /** The innermost element. */
  readonly leaf: Elem;
  /** Whether vmdesc may describe all leaves by the first (QEMU `vmsd_can_compress`, without the field's test). */
  readonly compressible: boolean;
}

const SCALAR_TYPE: Record<ScalarKind, string> = {
  bool: "bool",
  u8: "uint8",
  u16: "uint16",
  u32: "uint32",
  u64: "uint64",
  i8: "int8",
  i16: "int16",
  i32: "int32",
  i64: "int64",
  f64: "uint64",
  timer: "timer",
};

const EQUAL_TYPE: Partial<Record<ScalarKind, string>> = {
  u8: "uint8 equal",
  u16: "uint16 equal",
  u32: "uint32 equal",
  i32: "int32 equal",
  u64: "int64 equal",
};

type Put = (sb: SaveBuffer, v: unknown) => void;
type Get = (r: ByteReader) => unknown;

// Integer range checks use the int32 conversions: `(v & 0xff) !== v` is also true for non-numbers, NaN and
// fractions, so one comparison validates type and range.
const PUT: Record<ScalarKind, Put> = {
  bool(sb, v) {
    if (typeof v !== "boolean") throw badValue("bool", v, "is not a boolean");
    sb.ensure(1);
    sb.buf[sb.pos++] = v ? 1 : 0;
  },
  u8(sb, v) {
    if (((v as number) & 0xff) !== v) throw badValue("u8", v);
    sb.ensure(1);
    sb.buf[sb.pos++] = v as number;
  },
  u16(sb, v) {
    if (((v as number) & 0xffff) !== v) throw badValue("u16", v);
    sb.ensure(2);
    sb.view.setUint16(sb.pos, v as number);
    sb.pos += 2;
  },
  u32(sb, v) {
    if ((v as number) >>> 0 !== v) throw badValue("u32", v);
    sb.ensure(4);
    sb.view.setUint32(sb.pos, v as number);
    sb.pos += 4;
  },
  u64(sb, v) {
    if (typeof v !== "bigint" || v < 0n || v > U64_MAX) throw badValue("u64", v);
    sb.ensure(8);
    sb.view.setBigUint64(sb.pos, v);
    sb.pos += 8;
  },
  i8(sb, v) {
    if (((v as number) << 24) >> 24 !== v) throw badValue("i8", v);
    sb.ensure(1);
    sb.view.setInt8(sb.pos++, v as number);
  },
  i16(sb, v) {
    if (((v as number) << 16) >> 16 !== v) throw badValue("i16", v);
    sb.ensure(2);
    sb.view.setInt16(sb.pos, v as number);
    sb.pos += 2;
  },
  i32(sb, v) {
    if (((v as number) | 0) !== v) throw badValue("i32", v);
    sb.ensure(4);
    sb.view.setInt32(sb.pos, v as number);
    sb.pos += 4;
  },
  i64(sb, v) {
    if (typeof v !== "bigint" || v < I64_MIN || v > I64_MAX) throw badValue("i64", v);
    sb.ensure(8);
    sb.view.setBigInt64(sb.pos, v);
    sb.pos += 8;
  },
  f64(sb, v) {
    if (typeof v !== "number") throw badValue("f64", v, "is not a number");
    sb.ensure(8);
    sb.view.setFloat64(sb.pos, v);
    sb.pos += 8;
  },
  timer(sb, v) {
    if (typeof v !== "bigint" || v < I64_MIN || v > I64_MAX) throw badValue("timer", v);
    sb.ensure(8);
    sb.view.setBigInt64(sb.pos, v);
    sb.pos += 8;
  },
};

const GET: Record<ScalarKind, Get> = {
  bool: (r) => r.u8() !== 0,
  u8: (r) => r.u8(),
  u16: (r) => r.u16(),
  u32: (r) => r.u32(),
  u64: (r) => r.u64(),
  i8: (r) => r.i8(),
  i16: (r) => r.i16(),
  i32: (r) => r.i32(),
  i64: (r) => r.i64(),
  f64: (r) => r.f64(),
  timer: (r) => r.i64(),
};

function scalarElem(kind: ScalarKind): Elem {
  const e: Elem = {
    type: SCALAR_TYPE[kind],
    put: PUT[kind],
    get: GET[kind],
    needsCur: false,
    applyElem: undefined,
    check: undefined,
    view: undefined,
    nested: undefined,
    dims: [],
    get leaf() {
      return e;
    },
    compressible: true,
  };
  return e;
}

function bufferElem(size: number): Elem {
  const e: Elem = {
    type: "buffer",
    put(sb, v) {
      if (!(v instanceof Uint8Array) || v.length !== size) throw badValue("buffer", v, `is not a Uint8Array(${size})`);
      sb.bytes(v);
    },
    get: (r) => r.bytes(size),
    needsCur: false,
    applyElem: applyBytes,
    check: undefined,
    view: undefined,
    nested: undefined,
    dims: [],
    get leaf() {
      return e;
    },
    compressible: true,
  };
  return e;
}

function nestedCheck(np: LevelPlan): boolean {
  return np.hasChecks || np.desc.subs.length > 0;
}

function structElem(np: LevelPlan): Elem {
  const put: Put = (sb, v) => {
    if (!isObj(v)) throw badValue("struct", v, "is not an object");
    saveLevel(sb, np, v, v);
  };
  const get = (r: ByteReader, cur: unknown): unknown => {
    const c = isObj(cur) ? cur : np.proto;
    return decodeLevel(r, np, c, c);
  };
  const applyElem = (cur: unknown, d: unknown): unknown => {
    const t = isObj(cur) ? cur : np.init();
    applyLevel(d as DLevel, t, t);
    return t;
  };
  const check = nestedCheck(np)
    ? (cur: unknown, d: unknown): void => {
        const c = isObj(cur) ? cur : np.proto;
        checkLevel(d as DLevel, c, c);
      }
    : undefined;
  const e: Elem = {
    type: "struct",
    put,
    get,
    needsCur: true,
    applyElem,
    check,
    view: (d, cur) => materialize(d as DLevel, cur),
    nested: np,
    dims: [],
    get leaf() {
      return e;
    },
    compressible: np.desc.compressible,
  };
  return e;
}

function optionalElem(s: Elem): Elem {
  const e: Elem = {
    type: "struct",
    put(sb, v) {
      if (v === null) {
        sb.ensure(1);
        sb.buf[sb.pos++] = NULLPTR_MARKER;
      } else s.put(sb, v);
    },
    get(r, cur) {
      if (cur !== null && cur !== undefined) return s.get(r, cur);
      const at = r.offset;
      const b = r.u8();
      if (b !== NULLPTR_MARKER) {
        throw streamError(
          "BAD_STREAM",
          `Cannot load an empty slot: expected the NULL marker 0x30, found 0x${b.toString(16).padStart(2, "0")}`,
          at,
        );
      }
      return null;
    },
    needsCur: true,
    applyElem: (cur, d) => (d === null ? null : (s.applyElem as (c: unknown, d: unknown) => unknown)(cur, d)),
    check: s.check === undefined ? undefined : (cur, d) => (d === null ? undefined : s.check?.(cur, d)),
    view: (d, cur) => (d === null ? null : materialize(d as DLevel, cur)),
    nested: s.nested,
    dims: [],
    get leaf() {
      return e;
    },
    compressible: s.compressible,
  };
  return e;
}

function applyArray(cur: unknown, d: unknown[], e: Elem): unknown[] {
  const f = e.applyElem;
  if (f === undefined) return d;
  const a: unknown[] = Array.isArray(cur) ? cur : [];
  for (let i = 0; i < d.length; i++) {
    try {
      a[i] = f(a[i], d[i]);
    } catch (err) {
      throw withSeg(err, i);
    }
  }
  a.length = d.length;
  return a;
}

function checkArray(cur: unknown, d: unknown[], e: Elem): void {
  const f = e.check as (c: unknown, d: unknown) => void;
  const c = Array.isArray(cur) ? cur : [];
  for (let i = 0; i < d.length; i++) {
    try {
      f(c[i], d[i]);
    } catch (err) {
      throw withSeg(err, i);
    }
  }
}

function viewArray(d: unknown[], cur: unknown, e: Elem): unknown[] {
  const f = e.view as (d: unknown, c: unknown) => unknown;
  const c = Array.isArray(cur) ? cur : [];
  return d.map((x, i) => f(x, c[i]));
}

function putArray(sb: SaveBuffer, a: unknown, n: number, e: Elem, what: string): void {
  if (!Array.isArray(a) || a.length !== n) throw badValue(what, a, `is not an array of ${n} elements`);
  const put = e.put;
  let i = 0;
  try {
    for (; i < n; i++) put(sb, a[i]);
  } catch (err) {
    throw withSeg(err, i);
  }
}

function getArray(r: ByteReader, n: number, e: Elem, cur: unknown): unknown[] {
  const out = new Array<unknown>(n);
  const get = e.get;
  let i = 0;
  try {
    if (e.needsCur) {
      const c = Array.isArray(cur) ? cur : [];
      for (; i < n; i++) out[i] = get(r, c[i]);
    } else {
      for (; i < n; i++) out[i] = get(r, undefined);
    }
  } catch (err) {
    throw withSeg(err, i);
  }
  return out;
}

function arrayElem(inner: Elem, n: number): Elem {
  const e: Elem = {
    type: inner.type,
    put: (sb, v) => putArray(sb, v, n, inner, "array"),
    get: (r, cur) => getArray(r, n, inner, cur),
    needsCur: inner.needsCur,
    applyElem: (cur, d) => applyArray(cur, d as unknown[], inner),
    check: inner.check === undefined ? undefined : (cur, d) => checkArray(cur, d as unknown[], inner),
    view: inner.view === undefined ? undefined : (d, cur) => viewArray(d as unknown[], cur, inner),
    nested: inner.nested,
    dims: [n, ...inner.dims],
    leaf: inner.leaf,
    compressible: inner.compressible,
  };
  return e;
}

function elemOf(f: AnyField, nested: LevelDesc | undefined): Elem {
  switch (f.kind) {
    case "buffer":
      return bufferElem(f.size);
    case "struct":
      return structElem(compile(nested as LevelDesc, (nested as LevelDesc).version));
    case "optional":
      return optionalElem(structElem(compile(nested as LevelDesc, (nested as LevelDesc).version)));
    case "array":
      return arrayElem(elemOf(f.elem as AnyField, nested), f.length);
    case "bool":
    case "u8":
    case "u16":
    case "u32":
    case "u64":
    case "i8":
    case "i16":
    case "i32":
    case "i64":
    case "f64":
    case "timer":
      return scalarElem(f.kind);
    default:
      throw new TypeError(`Cannot compile: a ${f.kind} field cannot be an array element`);
  }
}

// ---------------------------------------------------------------------------------------------------------- counts

interface Counter extends CountInfo {
  /** The count for a load, from the decoded sibling (or the current state); checked against `max`. */
  load(r: ByteReader, vals: unknown[], cur: Loose): number;
  /** The count for a save, from the state; checked against `max`. */
  save(obj: Loose): number;
}

/**
 * Builds the count lookup of a field with `lengthFrom`. QEMU semantics: a negative `i32` count is 0 elements.
 * `multiply` scales vbuffer sizes; `negativeFails` makes negative sizes an error (vbuffer, bitmap).
 */
function counter(
  level: LevelDesc,
  active: ReadonlyMap<string, number>,
  e: FieldEntry,
  ref: string,
  max: number,
  multiply: number,
  negativeFails: boolean,
): Counter {
  const refEntry = level.entries.find((x) => x.key === ref) as FieldEntry;
  const rf = refEntry.field;
  const refKind = rf.kind === "local" ? (rf.of as AnyField).kind : rf.kind;
  const idx = active.get(ref) ?? -1;
  const what = `"${e.key}"`;
  const norm = (raw: unknown, op: "load" | "save", offset: number | undefined): number => {
    if (typeof raw !== "number" || !Number.isSafeInteger(raw)) {
      throw new MigrationError("FIELD_OUT_OF_RANGE", `Cannot ${op} ${what}: its length "${ref}" is ${show(raw)}`, {
        offset,
      });
    }
    if (raw < 0) {
      if (refKind === "i32" && !negativeFails) return 0;
      throw new MigrationError("FIELD_OUT_OF_RANGE", `Cannot ${op} ${what}: its length "${ref}" is negative (${raw})`, {
        offset,
      });
    }
    const n = raw * multiply;
    if (n > max) {
      const mult = multiply === 1 ? "" : ` × ${multiply}`;
      throw new MigrationError(
        op === "load" ? "LIMIT_EXCEEDED" : "FIELD_OUT_OF_RANGE",
        `Cannot ${op} ${what}: its length "${ref}" = ${raw}${mult} is over the maximum ${max}`,
        { offset },
      );
    }
    return n;
  };
  return {
    ref,
    idx,
    norm,
    load(r, vals, cur) {
      const v = idx >= 0 ? vals[idx] : undefined;
      return norm(v !== undefined ? v : cur[ref], "load", r.offset);
    },
    save(obj) {
      return norm(obj[ref], "save", undefined);
    },
  };
}

// ---------------------------------------------------------------------------------------------------- field plans

const noop = (): void => {};
const present = (): unknown => true;

function scalarSave(kind: ScalarKind, key: string): (sb: SaveBuffer, obj: Loose) => void {
  // Specialized per kind so the common path is one closure with the write inlined.
  switch (kind) {
    case "u8":
      return (sb, obj) => {
        const v = obj[key];
        if ((v & 0xff) !== v) throw badValue("u8", v);
        sb.ensure(1);
        sb.buf[sb.pos++] = v;
      };
    case "u16":
      return (sb, obj) => {
        const v = obj[key];
        if ((v & 0xffff) !== v) throw badValue("u16", v);
        sb.ensure(2);
        sb.view.setUint16(sb.pos, v);
        sb.pos += 2;
      };
    case "u32":
      return (sb, obj) => {
        const v = obj[key];
        if (v >>> 0 !== v) throw badValue("u32", v);
        sb.ensure(4);
        sb.view.setUint32(sb.pos, v);
        sb.pos += 4;
      };
    case "i32":
      return (sb, obj) => {
        const v = obj[key];
        if ((v | 0) !== v) throw badValue("i32", v);
        sb.ensure(4);
        sb.view.setInt32(sb.pos, v);
        sb.pos += 4;
      };
    case "bool":
      return (sb, obj) => {
        const v = obj[key];
        if (typeof v !== "boolean") throw badValue("bool", v, "is not a boolean");
        sb.ensure(1);
        sb.buf[sb.pos++] = v ? 1 : 0;
      };
    case "u64":
      return (sb, obj) => {
        const v = obj[key];
        if (typeof v !== "bigint" || v < 0n || v > U64_MAX) throw badValue("u64", v);
        sb.ensure(8);
        sb.view.setBigUint64(sb.pos, v);
        sb.pos += 8;
      };
    default: {
      const put = PUT[kind];
      return (sb, obj) => put(sb, obj[key]);
    }
  }
}

interface Ctx {
  readonly level: LevelDesc;
  readonly version: number;
  readonly active: ReadonlyMap<string, number>;
}

/** The base of every field plan. */
function basePlan(e: FieldEntry) {
  const f = e.field as AnyField & { readonly test?: TestFn };
  const k = f.kind;
  return {
    key: e.key,
    entry: e,
    stateful: k !== "unused" && k !== "validate" && k !== "tmp",
    test: f.test,
    check: undefined,
    view: undefined,
    equal: false,
    validate: undefined,
    count: undefined as Counter | undefined,
  };
}

function vdOf(
  e: FieldEntry,
  type: string,
  compressible: boolean,
  count: (obj: Loose) => number,
  elemAt: (obj: Loose, i: number) => unknown,
  putElem: (sb: SaveBuffer, v: unknown) => void,
  nested: LevelPlan | undefined,
  inline: "list" | "tmp" | undefined = undefined,
  tmpOf: ((obj: Loose) => LooseMut) | undefined = undefined,
): VdInfo {
  const hasTest = (e.field as { readonly test?: TestFn }).test !== undefined;
  return { type, compressible: compressible && !hasTest, count, elemAt, putElem, nested, inline, tmpOf };
}

const one = (): number => 1;

function fieldPlan(ctx: Ctx, e: FieldEntry): FieldPlan {
  const f = e.field;
  const key = e.key;
  const base = basePlan(e);
  switch (f.kind) {
    case "bool":
    case "u8":
    case "u16":
    case "u32":
    case "u64":
    case "i8":
    case "i16":
    case "i32":
    case "i64":
    case "f64":
    case "timer": {
      const equal = f.equal === true;
      const type = equal ? (EQUAL_TYPE[f.kind] as string) : SCALAR_TYPE[f.kind];
      return {
        ...base,
        save: scalarSave(f.kind, key),
        decode: GET[f.kind],
        apply: equal
          ? noop
          : (obj, v) => {
              obj[key] = v;
            },
        equal,
        vd: vdOf(e, type, true, one, (o) => o[key], PUT[f.kind], undefined),
      };
    }
    case "buffer": {
      const el = bufferElem(f.size);
      return {
        ...base,
        save: (sb, obj) => el.put(sb, obj[key]),
        decode: (r) => r.bytes(f.size),
        apply: (obj, v) => {
          obj[key] = applyBytes(obj[key], v);
        },
        vd: vdOf(e, "buffer", true, one, (o) => o[key], el.put, undefined),
      };
    }
    case "unused": {
      const size = f.size;
      const put = (sb: SaveBuffer): void => sb.zeros(size);
      return {
        ...base,
        save: put,
        decode: (r) => {
          r.skip(size);
          return true;
        },
        apply: noop,
        vd: vdOf(e, "unused_buffer", true, one, () => undefined, put, undefined),
      };
    }
    case "vbuffer": {
      const c = counter(ctx.level, ctx.active, e, f.lengthFrom, f.max, f.multiply, true);
      const save = (sb: SaveBuffer, obj: Loose): void => {
        const n = c.save(obj);
        const v = obj[key];
        if (!(v instanceof Uint8Array) || v.length !== n) {
          throw badValue("vbuffer", v, `is not a Uint8Array(${n}) ("${f.lengthFrom}" says ${n})`);
        }
        sb.bytes(v);
      };
      return {
        ...base,
        count: c,
        save,
        decode: (r, vals, cur) => r.bytes(c.load(r, vals, cur)),
        apply: (obj, v) => {
          obj[key] = applyBytes(obj[key], v);
        },
        vd: vdOf(e, "buffer", true, one, (o) => o, save as (sb: SaveBuffer, v: unknown) => void, undefined),
      };
    }
    case "bitmap": {
      const c = counter(ctx.level, ctx.active, e, f.lengthFrom, f.max, 1, true);
      const save = (sb: SaveBuffer, obj: Loose): void => {
        const words = Math.ceil(c.save(obj) / 64);
        const v = obj[key];
        if (!(v instanceof Uint32Array) || v.length !== 2 * words) {
          throw badValue("bitmap", v, `is not a Uint32Array(${2 * words}) for ${obj[f.lengthFrom]} bits`);
        }
        sb.ensure(8 * words);
        const dv = sb.view;
        let p = sb.pos;
        for (let w = 0; w < words; w++) {
          dv.setUint32(p, v[2 * w + 1] as number);
          dv.setUint32(p + 4, v[2 * w] as number);
          p += 8;
        }
        sb.pos = p;
      };
      return {
        ...base,
        count: c,
        save,
        decode: (r, vals, cur) => {
          const words = Math.ceil(c.load(r, vals, cur) / 64);
          const out = new Uint32Array(2 * words);
          for (let w = 0; w < words; w++) {
            out[2 * w + 1] = r.u32();
            out[2 * w] = r.u32();
          }
          return out;
        },
        apply: (obj, v) => {
          const cur = obj[key];
          const d = v as Uint32Array;
          if (cur instanceof Uint32Array && cur.length === d.length) cur.set(d);
          else obj[key] = d;
        },
        vd: vdOf(e, "bitmap", true, one, (o) => o, save as (sb: SaveBuffer, v: unknown) => void, undefined),
      };
    }
    case "array":
    case "varray":
      return arrayPlan(ctx, e, base);
    case "struct": {
      const el = elemOf(f, e.nested);
      return {
        ...base,
        save: (sb, obj) => el.put(sb, obj[key]),
        decode: (r, _vals, cur) => el.get(r, cur[key]),
        apply: (obj, v) => {
          obj[key] = (el.applyElem as (c: unknown, d: unknown) => unknown)(obj[key], v);
        },
        check: el.check,
        view: el.view,
        vd: vdOf(e, "struct", el.compressible, one, (o) => o[key], el.put, el.nested),
      };
    }
    case "list":
      return listPlan(e, base, f.max, f.listType);
    case "tmp":
      return tmpPlan(e, base);
    case "validate": {
      const check = f.check;
      const version = ctx.version;
      return {
        ...base,
        save: (_sb, obj) => {
          if (!runPredicate(check, obj, version, "save", key, "validate", undefined)) {
            throw new MigrationError(
              "VALIDATION_FAILED",
              `Cannot save "${ctx.level.name}": validation "${e.vmdescName}" failed`,
            );
          }
        },
        decode: present,
        apply: noop,
        validate: check,
        vd: undefined,
      };
    }
    default:
      throw new TypeError(`Cannot compile field "${key}": kind ${f.kind} is not a wire field`);
  }
}

type Base = ReturnType<typeof basePlan>;

function checkShape(a: unknown, dims: readonly number[], d: number): void {
  const n = dims[d] as number;
  if (!Array.isArray(a) || a.length !== n) throw badValue("array", a, `is not an array of ${n} elements`);
  if (d + 1 < dims.length) for (const x of a) checkShape(x, dims, d + 1);
}

function flatAt(a: unknown, dims: readonly number[], i: number): unknown {
  let x = a;
  let stride = 1;
  for (let d = 1; d < dims.length; d++) stride *= dims[d] as number;
  for (let d = 0; d < dims.length; d++) {
    const k = Math.floor(i / stride);
    x = (x as unknown[])[k];
    i -= k * stride;
    stride = d + 1 < dims.length ? stride / (dims[d + 1] as number) : 1;
  }
  return x;
}

function arrayPlan(ctx: Ctx, e: FieldEntry, base: Base): FieldPlan {
  const f = e.field as AnyField & { kind: "array" | "varray" };
  const key = e.key;
  const inner = elemOf(f.elem as AnyField, e.nested);
  const isU8 = inner.dims.length === 0 && (f.elem as AnyField).kind === "u8";
  const fixed = f.kind === "array" ? f.length : -1;
  const c = f.kind === "varray" ? counter(ctx.level, ctx.active, e, f.lengthFrom, f.max, 1, false) : undefined;
  const what = f.kind;
  const save =
    c === undefined
      ? (sb: SaveBuffer, obj: Loose): void => putArray(sb, obj[key], fixed, inner, what)
      : (sb: SaveBuffer, obj: Loose): void => putArray(sb, obj[key], c.save(obj), inner, what);
  const getN = (r: ByteReader, n: number, cur: Loose): unknown[] => {
    if (isU8) {
      // One bounds check and one view for the whole run of bytes.
      let b: Uint8Array;
      const at = r.offset;
      const left = r.available;
      try {
        b = r.bytes(n);
      } catch (err) {
        // Name the first missing element, as the per-element path would.
        if (!isMigrationError(err, "TRUNCATED") || left >= n) throw err;
        throw withSeg(new MigrationError(err.code, err.message, { offset: at + left, cause: err.cause }), left);
      }
      const out = new Array<number>(n);
      for (let i = 0; i < n; i++) out[i] = b[i] as number;
      return out;
    }
    return getArray(r, n, inner, inner.needsCur ? cur[key] : undefined);
  };
  const decode =
    c === undefined
      ? (r: ByteReader, _vals: unknown[], cur: Loose): unknown => getN(r, fixed, cur)
      : (r: ByteReader, vals: unknown[], cur: Loose): unknown => getN(r, c.load(r, vals, cur), cur);
  const dims = [fixed, ...inner.dims];
  const total = (n: number): number => {
    let t = n;
    for (const d of inner.dims) t *= d;
    return t;
  };
  const count =
    c === undefined
      ? (obj: Loose): number => {
          checkShape(obj[key], dims, 0);
          return total(fixed);
        }
      : (obj: Loose): number => {
          const n = c.save(obj);
          checkShape(obj[key], [n, ...inner.dims], 0);
          return total(n);
        };
  const elemAt = (obj: Loose, i: number): unknown => {
    const a = obj[key] as unknown[];
    return inner.dims.length === 0 ? a[i] : flatAt(a, [a.length, ...inner.dims], i);
  };
  return {
    ...base,
    count: c,
    save,
    decode,
    apply:
      inner.applyElem === undefined
        ? (obj, v) => {
            obj[key] = v;
          }
        : (obj, v) => {
            obj[key] = applyArray(obj[key], v as unknown[], inner);
          },
    check: inner.check === undefined ? undefined : (cur, v) => checkArray(cur, v as unknown[], inner),
    view: inner.view === undefined ? undefined : (v, cur) => viewArray(v as unknown[], cur, inner),
    vd: vdOf(e, inner.leaf.type, inner.leaf.compressible, count, elemAt, inner.leaf.put, inner.leaf.nested),
  };
}

function listPlan(e: FieldEntry, base: Base, max: number, listType: string): FieldPlan {
  const key = e.key;
  const np = compile(e.nested as LevelDesc, (e.nested as LevelDesc).version);
  const el = structElem(np);
  const save = (sb: SaveBuffer, obj: Loose): void => {
    const a = obj[key];
    if (!Array.isArray(a)) throw badValue("list", a, "is not an array");
    if (a.length > max) throw badValue("list", a, `has more than the maximum ${max} elements`);
    let i = 0;
    try {
      for (; i < a.length; i++) {
        sb.ensure(1);
        sb.buf[sb.pos++] = 1;
        el.put(sb, a[i]);
      }
    } catch (err) {
      throw withSeg(err, i);
    }
    sb.ensure(1);
    sb.buf[sb.pos++] = 0;
  };
  const decode = (r: ByteReader): unknown => {
    const out: DLevel[] = [];
    for (;;) {
      const at = r.offset;
      const m = r.u8();
      if (m === 0) return out;
      if (m !== 1) throw streamError("BAD_STREAM", `Cannot load list "${key}": bad marker 0x${m.toString(16)}`, at);
      if (out.length >= max) {
        throw streamError("LIMIT_EXCEEDED", `Cannot load list "${key}": more than the maximum ${max} elements`, at);
      }
      try {
        out.push(decodeLevel(r, np, np.proto, np.proto));
      } catch (err) {
        throw withSeg(err, out.length);
      }
    }
  };
  return {
    ...base,
    save,
    decode,
    apply: (obj, v) => {
      obj[key] = applyArray(undefined, v as unknown[], el);
    },
    check: el.check === undefined ? undefined : (_cur, v) => checkArray(undefined, v as unknown[], el),
    view: (v) => viewArray(v as unknown[], undefined, el),
    vd: vdOf(e, listType, true, one, (o) => o[key], save as (sb: SaveBuffer, v: unknown) => void, np, "list"),
  };
}

function tmpPlan(e: FieldEntry, base: Base): FieldPlan {
  const f = e.field as AnyField & { kind: "tmp" };
  const nested = e.nested as LevelDesc;
  const npSave = compile(nested, nested.version);
  // QEMU's get_tmp loads with the field's version_id, which VMSTATE_WITH_TMP leaves at 0.
  const npLoad = compile(nested, 0);
  const tmpOf = (obj: Loose): LooseMut => {
    let t: unknown;
    runHook(
      (p) => {
        t = f.toTmp(p);
      },
      obj,
      0,
      "save",
      nested.name,
      "toTmp",
      undefined,
    );
    if (!isObj(t)) throw badValue("tmp", t, "(what toTmp returned) is not an object");
    return t;
  };
  return {
    ...base,
    save: (sb, obj) => {
      const t = tmpOf(obj);
      saveLevel(sb, npSave, t, t);
    },
    decode: (r) => decodeLevel(r, npLoad, npLoad.proto, npLoad.proto),
    apply: (obj, v) => {
      const dl = v as DLevel;
      const t = npLoad.init();
      applyLevel(dl, t, t);
      runHook((p) => f.fromTmp(p as LooseMut, t), obj, 0, "load", nested.name, "fromTmp", dl.start);
    },
    check: nestedCheck(npLoad) ? (_cur, v) => checkLevel(v as DLevel, npLoad.proto, npLoad.proto) : undefined,
    vd: vdOf(e, "tmp", true, one, (o) => o, noop, npSave, "tmp", tmpOf),
  };
}

// ---------------------------------------------------------------------------------------------------- level plans

const cache = new WeakMap<LevelDesc, Map<number, LevelPlan>>();

/**
 * The compiled plan of a description at a version, built once and cached per (description, version). @internal
 */
export function compile(desc: LevelDesc, version: number): LevelPlan {
  // One-entry memo in front of the cache: a device saved or loaded many times in a row skips both lookups.
  const last = lastPlan;
  if (last !== undefined && last.desc === desc && last.version === version) return last;
  let byVersion = cache.get(desc);
  if (byVersion === undefined) {
    byVersion = new Map();
    cache.set(desc, byVersion);
  }
  const hit = byVersion.get(version);
  if (hit !== undefined) {
    lastPlan = hit;
    return hit;
  }
  const plan = build(desc, version);
  byVersion.set(version, plan);
  lastPlan = plan;
  return plan;
}

/** The last plan `compile` returned (it keeps that one description reachable until another is compiled). */
let lastPlan: LevelPlan | undefined;

function build(desc: LevelDesc, version: number): LevelPlan {
  const activeEntries = desc.entries.filter((e) => {
    if (!e.wire) return false;
    const f = e.field as AnyField & { readonly test?: TestFn };
    return f.test !== undefined || (f.since ?? 0) <= version;
  });
  const active = new Map<string, number>();
  activeEntries.forEach((e, i) => {
    active.set(e.key, i);
  });
  const ctx: Ctx = { level: desc, version, active };
  const fields = activeEntries.map((e) => fieldPlan(ctx, e));
  const subs: SubPlan[] = desc.subs.map((s) => {
    let current: LevelPlan | undefined;
    return {
      key: s.key,
      desc: s.desc,
      needed: s.needed,
      level: (v: number): LevelPlan => {
        if (v !== s.desc.version) return compile(s.desc, v);
        if (current === undefined) current = compile(s.desc, v);
        return current;
      },
    };
  });
  const proto = Object.freeze(initialOf(desc));
  return Object.freeze({
    desc,
    version,
    fields: Object.freeze(fields),
    subs: Object.freeze(subs),
    savers: Object.freeze(fields.map((f) => f.save)),
    decoders: Object.freeze(fields.map((f) => f.decode)),
    appliers: Object.freeze(fields.map((f) => f.apply)),
    hasTests: fields.some((f) => f.test !== undefined),
    needsOverlay: fields.some((f) => f.test !== undefined || f.validate !== undefined),
    hasOffsets: fields.some((f) => f.equal || f.validate !== undefined),
    hasChecks: fields.some((f) => f.equal || f.validate !== undefined || f.check !== undefined),
    hasValidate: fields.some((f) => f.validate !== undefined),
    init: () => initialOf(desc),
    proto,
    blank: fields.map(() => undefined),
    jit: { fns: undefined },
  });
}
