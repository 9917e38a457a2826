/**
 * Types only: how a description's TypeScript state type is inferred from its fields.
 *
 * Every field carries a phantom `"~out"` property (never set at run time) that holds the type of its value in the
 * device state; {@link Infer} reads it back. Fields that hold no state (`unused`, `validate`, `withTmp`) carry the
 * `"~skip"` marker and are left out of {@link StateOf}. The state type has no optional keys: as in QEMU, where the C
 * struct always has every member, a field missing from an older stream keeps its current value.
 *
 * @module
 */

/** A field description: frozen plain data with a phantom output type. */
export interface Field<T = unknown> {
  /** What kind of field this is (`u32`, `varray`, `struct`, …). */
  readonly kind: string;
  /** QEMU: the `_V` macros' `version_id`. The field is on the wire only for versions ≥ `since` (default 0). */
  readonly since?: number;
  /** Phantom: the type of this field's value in the state. Never set at run time. */
  readonly "~out"?: T;
}

/** Marks a field that holds no state of its own (`unused`, `validate`, `withTmp`). */
export interface NoState {
  readonly "~skip": true;
}

/**
 * What every top-level description (a QEMU `VMStateDescription`) exposes, whatever its
 * state type: used where any description will do (nested structs, `withTmp`, the savevm registry).
 */
export interface DescriptionBase {
  /** Always `"device"` for VMState descriptions (legacy handlers say `"legacy"`). */
  readonly kind: "device";
  /** QEMU: `VMStateDescription.name`, the vmsd name. */
  readonly name: string;
  /** QEMU: `version_id`, the version this description saves with. */
  readonly version: number;
  /** QEMU: `minimum_version_id`, the oldest stream version it loads. */
  readonly minVersion: number;
  /** QEMU: `priority` (`MigrationPriority`); higher is saved first. Only top-level descriptions use it. */
  readonly priority: number;
}

/** An ordered record of named fields: one level of a description. */
export type Shape = { readonly [name: string]: Field };

/** The type a field, struct or device description stands for. */
export type Infer<X> = X extends { readonly "~out"?: infer T } ? T : never;

/** The keys of a shape that hold state. */
export type StateKey<S extends Shape> = { [K in keyof S]-?: S[K] extends NoState ? never : K }[keyof S];

/** The state object a shape stands for: one mutable property per stateful field, no optional keys. */
export type StateOf<S extends Shape> = { -readonly [K in StateKey<S>]: Infer<S[K]> };

/**
 * The kinds a count or size field may have. QEMU: `VMSTATE_VARRAY_UINT8` / `_UINT16` / `_UINT32` / `_INT32`.
 */
export type CountKind = "u8" | "u16" | "u32" | "i32";

/** A field usable as the count of a variable array, buffer or bitmap: an integer field of a {@link CountKind}. */
export type CountField =
  | (Field<number> & { readonly kind: CountKind })
  | (Field<number> & { readonly kind: "local"; readonly of: { readonly kind: CountKind } });

/** A field whose length comes from a sibling field named `lengthFrom`. */
export interface LengthRef<K extends string = string> {
  /** The name of an earlier sibling field that holds the length. */
  readonly lengthFrom: K;
}

/** The sibling a field takes its length from, or `never`. */
type RefOf<F> = F extends LengthRef<infer R> ? R : never;

/**
 * Maps every field whose `lengthFrom` names a missing or non-count sibling to `never`, so that
 * `fields: S & CheckRefs<S>` fails to compile for those fields (a misspelled count field, a `bool` count, …).
 */
export type CheckRefs<S extends Shape> = {
  [K in keyof S]: [RefOf<S[K]>] extends [never]
    ? S[K]
    : RefOf<S[K]> extends keyof S
      ? S[RefOf<S[K]>] extends CountField
        ? S[K]
        : never
      : never;
};

/**
 * The loosely typed view of the enclosing object that field-level predicates (`test`, `validate`) and `withTmp`
 * callbacks receive. Field factories cannot see their siblings' types, so values are `any` here; read them as the
 * types your description declares.
 */
// biome-ignore lint/suspicious/noExplicitAny: field-level callbacks cannot see their siblings' inferred types.
export type Loose = { readonly [key: string]: any };

/** The mutable counterpart of {@link Loose}, for `withTmp` callbacks that write the parent. */
// biome-ignore lint/suspicious/noExplicitAny: see Loose.
export type LooseMut = { [key: string]: any };

/**
 * A field presence test. QEMU: the `_TEST` macros' `field_exists(opaque, version_id)`. On save it sees the state
 * being saved and the description's version; on load it sees the destination's state with the fields decoded so
 * far laid over it, and the stream's version.
 */
export type TestFn = (state: Loose, versionId: number) => boolean;

/** Hooks may return an `Error` (or throw) to fail; either becomes `HOOK_FAILED`. */
// biome-ignore lint/suspicious/noConfusingVoidType: a hook that returns nothing succeeds.
export type HookResult = void | Error;
