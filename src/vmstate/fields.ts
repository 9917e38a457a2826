/**
 * Field factories: the words of the description language.
 *
 * Each factory returns a frozen plain object (`{kind, since?, …}`) with a phantom `"~out"` type that
 * {@link Infer} reads. Factories only check their own arguments (throwing `TypeError`/`RangeError`); rules that
 * involve siblings (count fields exist and come earlier, `since` ≤ version) are checked by `device()`.
 *
 * @module
 */

import type {
  CountField,
  DescriptionBase,
  Field,
  HookResult,
  Infer,
  LengthRef,
  Loose,
  LooseMut,
  NoState,
  Shape,
  StateOf,
  TestFn,
} from "./infer.js";

/** Options every wire field accepts. */
export interface FieldOptions {
  /** QEMU `_V` macros: on the wire only for stream versions ≥ `since`. Default 0. */
  readonly since?: number;
  /**
   * QEMU `_TEST` macros: on the wire only when `test(state, versionId)` is true. When given, it decides alone
   * (`since` is then ignored, as in QEMU's `vmstate_field_exists`).
   */
  readonly test?: TestFn;
  /** The field's name in vmdesc JSON when it differs from its key (QEMU names are usually snake_case). */
  readonly name?: string;
}

/** Options of scalar fields. */
export interface ScalarOptions extends FieldOptions {
  /**
   * QEMU `VMSTATE_*_EQUAL`: the loaded value must equal the destination's current value, else the load fails
   * with `FIELD_MISMATCH` (a configuration check). Allowed on `u8`, `u16`, `u32`, `i32` and `u64`, the kinds
   * QEMU has an equal info for.
   */
  readonly equal?: boolean;
}

/** The scalar kinds and the TypeScript type of each. */
export interface ScalarTypes {
  bool: boolean;
  u8: number;
  u16: number;
  u32: number;
  u64: bigint;
  i8: number;
  i16: number;
  i32: number;
  i64: bigint;
  f64: number;
  timer: bigint;
}

/** A scalar kind name. */
export type ScalarKind = keyof ScalarTypes;

/** Fields common properties (run-time view). */
interface Common {
  readonly test?: TestFn;
  readonly name?: string;
}

/** A scalar field. */
export interface ScalarField<K extends ScalarKind = ScalarKind> extends Field<ScalarTypes[K]>, Common {
  readonly kind: K;
  readonly equal?: boolean;
}

/** A fixed-size byte buffer. QEMU: `VMSTATE_BUFFER`. */
export interface BufferField extends Field<Uint8Array>, Common {
  readonly kind: "buffer";
  readonly size: number;
}

/** `size` zero bytes on save, skipped on load. QEMU: `VMSTATE_UNUSED`. */
export interface UnusedField extends Field<never>, NoState, Common {
  readonly kind: "unused";
  readonly size: number;
}

/** A bitmap of `lengthFrom` bits sent as big-endian 64-bit words. QEMU: `VMSTATE_BITMAP`. */
export interface BitmapField<K extends string = string> extends Field<Uint32Array>, LengthRef<K>, Common {
  readonly kind: "bitmap";
  readonly max: number;
}

/** A byte buffer whose length comes from a sibling. QEMU: `VMSTATE_VBUFFER*`. */
export interface VBufferField<K extends string = string> extends Field<Uint8Array>, LengthRef<K>, Common {
  readonly kind: "vbuffer";
  readonly max: number;
  readonly multiply: number;
}

/** A fixed-length array. QEMU: `VMSTATE_ARRAY`, `_2DARRAY` (nest two arrays), `VMSTATE_STRUCT_ARRAY`. */
export interface ArrayField<F extends Field = Field> extends Field<Infer<F>[]>, Common {
  readonly kind: "array";
  readonly elem: F;
  readonly length: number;
}

/** A variable-length array whose count comes from a sibling. QEMU: `VMSTATE_VARRAY_*`, `VMSTATE_STRUCT_VARRAY_*`. */
export interface VarrayField<F extends Field = Field, K extends string = string>
  extends Field<Infer<F>[]>,
    LengthRef<K>,
    Common {
  readonly kind: "varray";
  readonly elem: F;
  readonly max: number;
}

/** A nested struct with its own description and version. QEMU: `VMSTATE_STRUCT`. */
export interface StructField<T = unknown> extends Field<T>, Common {
  readonly kind: "struct";
  readonly of: DescriptionBase | Shape;
}

/** An array slot that may be empty (a NULL pointer, one 0x30 byte). QEMU: `VMSTATE_ARRAY_OF_POINTER_TO_STRUCT`. */
export interface OptionalField<T = unknown> extends Field<T | null> {
  readonly kind: "optional";
  readonly of: StructField<T>;
}

/** A linked list of structs: `01` + element per item, `00` at the end. QEMU: `VMSTATE_QTAILQ_V`, `VMSTATE_QLIST_V`. */
export interface ListField<T = unknown> extends Field<T[]>, Common {
  readonly kind: "list";
  readonly of: DescriptionBase | Shape;
  readonly max: number;
  /** The vmdesc type: `qtailq` (default) or `qlist`. */
  readonly listType: "qtailq" | "qlist";
}

/** A predicate checked at its position on load, no bytes. QEMU: `VMSTATE_VALIDATE`. */
export interface ValidateField extends Field<never>, NoState {
  readonly kind: "validate";
  readonly check: TestFn;
  readonly name?: string;
}

/** A nested description run over a temporary object built from the parent. QEMU: `VMSTATE_WITH_TMP`. */
export interface TmpField<T = unknown> extends Field<never>, NoState, Common {
  readonly kind: "tmp";
  readonly of: DescriptionBase;
  readonly toTmp: (parent: Loose) => T;
  readonly fromTmp: (parent: LooseMut, tmp: T) => HookResult;
}

/** State that is never sent: a struct member the QEMU description does not list (e.g. a count set at realize). */
export interface LocalField<F extends Field = Field> extends Field<Infer<F>> {
  readonly kind: "local";
  readonly of: F;
}

/** Every field kind. */
export type AnyField =
  | ScalarField
  | BufferField
  | UnusedField
  | BitmapField
  | VBufferField
  | ArrayField
  | VarrayField
  | StructField
  | OptionalField
  | ListField
  | ValidateField
  | TmpField
  | LocalField;

/** The QEMU kinds that have an "equal" info. */
const EQUAL_KINDS: ReadonlySet<string> = new Set(["u8", "u16", "u32", "i32", "u64"]);

function checkOptions(what: string, o: FieldOptions | undefined): void {
  if (o === undefined) return;
  if (o.since !== undefined && !(Number.isSafeInteger(o.since) && o.since >= 0)) {
    throw new TypeError(`Cannot define ${what}: since ${String(o.since)} is not an integer ≥ 0`);
  }
  if (o.test !== undefined && typeof o.test !== "function") {
    throw new TypeError(`Cannot define ${what}: test is not a function`);
  }
  if (o.name !== undefined && (typeof o.name !== "string" || o.name === "")) {
    throw new TypeError(`Cannot define ${what}: name must be a non-empty string`);
  }
}

function checkCount(what: string, label: string, n: unknown, limit = 0x7fffffff): void {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0 || n > limit) {
    throw new RangeError(`Cannot define ${what}: ${label} ${String(n)} is not an integer in [0, ${limit}]`);
  }
}

/** Builds a frozen field: `props` plus the options that were given (no `undefined` values). */
function make<T>(props: Record<string, unknown>, o?: FieldOptions & { readonly equal?: boolean }): T {
  const f: Record<string, unknown> = { ...props };
  if (o !== undefined) {
    if (o.since !== undefined && o.since !== 0) f.since = o.since;
    if (o.test !== undefined) f.test = o.test;
    if (o.name !== undefined) f.name = o.name;
    if (o.equal === true) f.equal = true;
  }
  return Object.freeze(f) as T;
}

function scalar<K extends ScalarKind>(kind: K, o?: ScalarOptions): ScalarField<K> {
  checkOptions(kind, o);
  if (o?.equal === true && !EQUAL_KINDS.has(kind)) {
    throw new TypeError(`Cannot define ${kind}: QEMU has no "equal" check for ${kind} (use u8, u16, u32, i32 or u64)`);
  }
  return make<ScalarField<K>>({ kind }, o);
}

/** A boolean: one byte, 0 or 1 on save; any non-zero byte loads as `true`. QEMU: `VMSTATE_BOOL`. */
export function bool(options?: FieldOptions): ScalarField<"bool"> {
  return scalar("bool", options);
}
/** An unsigned byte. QEMU: `VMSTATE_UINT8` (`uint8`; with `equal`, `VMSTATE_UINT8_EQUAL`). */
export function u8(options?: ScalarOptions): ScalarField<"u8"> {
  return scalar("u8", options);
}
/** A big-endian u16. QEMU: `VMSTATE_UINT16`. */
export function u16(options?: ScalarOptions): ScalarField<"u16"> {
  return scalar("u16", options);
}
/** A big-endian u32. QEMU: `VMSTATE_UINT32`. */
export function u32(options?: ScalarOptions): ScalarField<"u32"> {
  return scalar("u32", options);
}
/** A big-endian u64 as a bigint. QEMU: `VMSTATE_UINT64` (with `equal`: info `int64 equal`, QEMU's name). */
export function u64(options?: ScalarOptions): ScalarField<"u64"> {
  return scalar("u64", options);
}
/** A signed byte. QEMU: `VMSTATE_INT8`. */
export function i8(options?: FieldOptions): ScalarField<"i8"> {
  return scalar("i8", options);
}
/** A big-endian i16. QEMU: `VMSTATE_INT16`. */
export function i16(options?: FieldOptions): ScalarField<"i16"> {
  return scalar("i16", options);
}
/** A big-endian i32. QEMU: `VMSTATE_INT32` (with `equal`, `VMSTATE_INT32_EQUAL`). */
export function i32(options?: ScalarOptions): ScalarField<"i32"> {
  return scalar("i32", options);
}
/** A big-endian i64 as a bigint. QEMU: `VMSTATE_INT64`. */
export function i64(options?: FieldOptions): ScalarField<"i64"> {
  return scalar("i64", options);
}
/** A float64 sent as its u64 bit pattern (vmdesc type `uint64`, as QEMU ≥ 5.1 sends doubles). */
export function f64(options?: FieldOptions): ScalarField<"f64"> {
  return scalar("f64", options);
}
/**
 * A timer's absolute expiry time in ns as an i64 bigint; `-1n` (all ones on the wire) means not armed, and is the
 * initial value. QEMU: `VMSTATE_TIMER_PTR` (info `timer`).
 */
export function timer(options?: FieldOptions): ScalarField<"timer"> {
  return scalar("timer", options);
}

/** A fixed-size byte buffer (`Uint8Array` of exactly `size` bytes). QEMU: `VMSTATE_BUFFER`. */
export function buffer(size: number, options?: FieldOptions): BufferField {
  checkCount("buffer", "size", size);
  checkOptions("buffer", options);
  return make<BufferField>({ kind: "buffer", size }, options);
}

/**
 * `size` bytes of padding: zeros on save, skipped on load, no state. QEMU: `VMSTATE_UNUSED` (vmdesc name `unused`,
 * type `unused_buffer`).
 */
export function unused(size: number, options?: FieldOptions): UnusedField {
  checkCount("unused", "size", size);
  checkOptions("unused", options);
  return make<UnusedField>({ kind: "unused", size, "~skip": true }, options);
}

/** Options of fields whose length comes from the wire. */
export interface MaxOptions extends FieldOptions {
  /** The largest length accepted on load (and allowed on save). Required: every wire length is capped. */
  readonly max: number;
}

/**
 * A bitmap whose bit count is the sibling `lengthFrom`; the value is a `Uint32Array` of `2 * ceil(bits / 64)`
 * words, bit `i` in word `i >>> 5` at bit `i & 31`. On the wire: `ceil(bits / 64)` big-endian 64-bit words.
 * QEMU: `VMSTATE_BITMAP` (info `bitmap`).
 */
export function bitmap<const K extends string>(lengthFrom: K, options: MaxOptions): BitmapField<K> {
  if (typeof lengthFrom !== "string") throw new TypeError("Cannot define bitmap: lengthFrom must be a field name");
  checkCount("bitmap", "max", options?.max);
  checkOptions("bitmap", options);
  return make<BitmapField<K>>({ kind: "bitmap", lengthFrom, max: options.max }, options);
}

/** Options of {@link vbuffer}. */
export interface VBufferOptions extends MaxOptions {
  /** QEMU `VMS_MULTIPLY`: the length is the sibling's value times this. Default 1. `max` bounds the product. */
  readonly multiply?: number;
}

/** A byte buffer of `lengthFrom` (× `multiply`) bytes. QEMU: `VMSTATE_VBUFFER`, `VMSTATE_VBUFFER_MULTIPLY`. */
export function vbuffer<const K extends string>(lengthFrom: K, options: VBufferOptions): VBufferField<K> {
  if (typeof lengthFrom !== "string") throw new TypeError("Cannot define vbuffer: lengthFrom must be a field name");
  checkCount("vbuffer", "max", options?.max);
  const multiply = options.multiply ?? 1;
  checkCount("vbuffer", "multiply", multiply);
  if (multiply === 0) throw new RangeError("Cannot define vbuffer: multiply must be ≥ 1");
  checkOptions("vbuffer", options);
  return make<VBufferField<K>>({ kind: "vbuffer", lengthFrom, max: options.max, multiply }, options);
}

/** The field kinds that may be array elements. @internal */
export const ELEMENT_KINDS: ReadonlySet<string> = new Set([
  "bool",
  "u8",
  "u16",
  "u32",
  "u64",
  "i8",
  "i16",
  "i32",
  "i64",
  "f64",
  "timer",
  "buffer",
  "array",
  "struct",
  "optional",
]);

function checkElem(what: string, elem: Field): void {
  if (typeof elem !== "object" || elem === null || !ELEMENT_KINDS.has(elem.kind)) {
    throw new TypeError(`Cannot define ${what}: a ${String(elem?.kind)} field cannot be an array element`);
  }
  const e = elem as Field & Common & { readonly equal?: boolean };
  if (e.since !== undefined || e.test !== undefined || e.name !== undefined || e.equal !== undefined) {
    throw new TypeError(`Cannot define ${what}: give since, test, name and equal to the array, not to its element`);
  }
}

/**
 * A fixed-length array of any element kind (`n` elements back to back). Nest two arrays for QEMU's 2-D arrays:
 * the wire is the same row-major flattening and vmdesc shows one array of `n1 * n2` elements.
 * QEMU: `VMSTATE_*_ARRAY`, `VMSTATE_*_2DARRAY`, `VMSTATE_STRUCT_ARRAY`.
 */
export function array<F extends Field>(elem: F, length: number, options?: FieldOptions): ArrayField<F> {
  checkElem("array", elem);
  checkCount("array", "length", length);
  checkOptions("array", options);
  return make<ArrayField<F>>({ kind: "array", elem, length }, options);
}

/**
 * A variable-length array whose element count is the sibling `lengthFrom` (a `u8`, `u16`, `u32` or `i32` field,
 * declared earlier). A negative `i32` count means no elements, as in QEMU. QEMU: `VMSTATE_VARRAY_UINT8`,
 * `_UINT16`, `_UINT32`, `_INT32`, `VMSTATE_STRUCT_VARRAY_*`.
 */
export function varray<F extends Field, const K extends string>(
  elem: F,
  lengthFrom: K,
  options: MaxOptions,
): VarrayField<F, K> {
  checkElem("varray", elem);
  if (typeof lengthFrom !== "string") throw new TypeError("Cannot define varray: lengthFrom must be a field name");
  checkCount("varray", "max", options?.max);
  checkOptions("varray", options);
  return make<VarrayField<F, K>>({ kind: "varray", elem, lengthFrom, max: options.max }, options);
}

/**
 * A nested struct, encoded with the nested description's own version. Pass a description made by `device()` (its
 * name and version go to vmdesc), or a plain shape of fields (vmsd name = the field's key, version 0).
 * QEMU: `VMSTATE_STRUCT`.
 */
export function struct<D extends DescriptionBase>(desc: D, options?: FieldOptions): StructField<Infer<D>>;
export function struct<const S extends Shape>(fields: S, options?: FieldOptions): StructField<StateOf<S>>;
export function struct(of: DescriptionBase | Shape, options?: FieldOptions): StructField {
  if (typeof of !== "object" || of === null) throw new TypeError("Cannot define struct: give a description or fields");
  checkOptions("struct", options);
  return make<StructField>({ kind: "struct", of }, options);
}

/**
 * An array slot that may hold `null` (QEMU's NULL pointer, one 0x30 byte on the wire); use as the element of
 * `array`/`varray`. As in QEMU, the destination's slot decides: a `null` slot expects the marker, any other slot
 * expects the struct. QEMU: `VMSTATE_ARRAY_OF_POINTER_TO_STRUCT`.
 */
export function optional<T>(of: StructField<T>): OptionalField<T> {
  if (of?.kind !== "struct") throw new TypeError("Cannot define optional: the slot must be a struct field");
  checkElem("optional", of);
  return make<OptionalField<T>>({ kind: "optional", of });
}

/** Options of {@link list}. */
export interface ListOptions extends MaxOptions {
  /** The vmdesc type: `qtailq` (default, `VMSTATE_QTAILQ_V`) or `qlist` (`VMSTATE_QLIST_V`). */
  readonly type?: "qtailq" | "qlist";
}

/**
 * A list of structs: for each element `01` then the element, then `00`. At most `max` elements load.
 * QEMU: `VMSTATE_QTAILQ_V`, `VMSTATE_QLIST_V`.
 */
export function list<D extends DescriptionBase>(elem: D, options: ListOptions): ListField<Infer<D>>;
export function list<const S extends Shape>(elem: S, options: ListOptions): ListField<StateOf<S>>;
export function list(of: DescriptionBase | Shape, options: ListOptions): ListField {
  if (typeof of !== "object" || of === null) throw new TypeError("Cannot define list: give a description or fields");
  checkCount("list", "max", options?.max);
  checkOptions("list", options);
  const listType = options.type ?? "qtailq";
  if (listType !== "qtailq" && listType !== "qlist") throw new TypeError(`Cannot define list: bad type "${listType}"`);
  return make<ListField>({ kind: "list", of, max: options.max, listType }, options);
}

/**
 * A check with no bytes: on load, `check(state, versionId)` must be true (it sees the fields decoded so far), else
 * the load fails with `VALIDATION_FAILED`; on save a false check fails with the same code. QEMU: `VMSTATE_VALIDATE`.
 */
export function validate(check: TestFn, options?: { readonly name?: string }): ValidateField {
  if (typeof check !== "function") throw new TypeError("Cannot define validate: check is not a function");
  checkOptions("validate", options);
  return make<ValidateField>({ kind: "validate", check, "~skip": true }, options);
}

/** The callbacks of {@link withTmp}. */
export interface TmpCallbacks<T> {
  /** Builds the temporary from the parent before saving (QEMU: the tmp vmsd's `pre_save`). */
  toTmp(parent: Loose): T;
  /** Writes the parent from the loaded temporary (QEMU: the tmp vmsd's `post_load`). */
  fromTmp(parent: LooseMut, tmp: T): HookResult;
}

/**
 * A nested description run over a temporary object built from the parent, for wire layouts that do not match the
 * in-memory shape; on the wire it is just the nested description's fields and subsections. As in QEMU, saving uses
 * the nested description's version and loading uses version 0, so the nested description must have
 * `minVersion: 0` and no `since` fields. QEMU: `VMSTATE_WITH_TMP` (vmdesc name `tmp`, type `tmp`).
 */
export function withTmp<D extends DescriptionBase>(
  tmp: D,
  callbacks: TmpCallbacks<Infer<D>>,
  options?: FieldOptions,
): TmpField<Infer<D>> {
  if (tmp?.kind !== "device") throw new TypeError("Cannot define withTmp: give a description made by device()");
  if (typeof callbacks?.toTmp !== "function" || typeof callbacks.fromTmp !== "function") {
    throw new TypeError("Cannot define withTmp: toTmp and fromTmp must be functions");
  }
  checkOptions("withTmp", options);
  return make<TmpField<Infer<D>>>(
    { kind: "tmp", of: tmp, toTmp: callbacks.toTmp, fromTmp: callbacks.fromTmp, "~skip": true },
    options,
  );
}

/**
 * State that is never sent: a member of the device that the QEMU description does not list but that other fields
 * use, such as `IDEState.io_buffer_total_len`, the count of `io_buffer`. Its value is whatever the state holds.
 */
export function local<F extends Field>(of: F): LocalField<F> {
  if (typeof of !== "object" || of === null || !ELEMENT_KINDS.has(of.kind)) {
    throw new TypeError(`Cannot define local: a ${String(of?.kind)} field cannot be local`);
  }
  return make<LocalField<F>>({ kind: "local", of });
}

/** Whether a field is a count kind (for run-time checks of `lengthFrom`). */
export function isCountField(f: Field): f is CountField {
  const k = f.kind === "local" ? (f as LocalField).of.kind : f.kind;
  return k === "u8" || k === "u16" || k === "u32" || k === "i32";
}
