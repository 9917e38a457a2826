/**
 * A small declarative schema for QMP command arguments, checked before a handler runs, with QEMU's messages.
 *
 * Schemas are frozen plain data with a phantom output type, so a handler's argument type is inferred from its
 * schema (`Infer<typeof schema>`). The checker walks arguments in schema order like QEMU's QObject input
 * visitor (`qapi/qobject-input-visitor.c`, `qapi/qapi-visit-core.c`) and reports the first problem with QEMU 7.2's
 * wording, verified against a real qemu-system-x86_64 7.2:
 *
 * | problem | message |
 * | --- | --- |
 * | required member absent | `Parameter 'capabilities[0].state' is missing` |
 * | member nobody declared (after all members) | `Parameter 'x' is unexpected` |
 * | wrong JSON type | `Invalid parameter type for 'uri', expected: string` (integer, number, boolean, object, array, StrOrNull) |
 * | unsigned member not a non-negative integer | `Parameter 'downtime-limit' expects uint64` |
 * | unsigned member over its C width | `Parameter 'multifd-channels' expects uint8_t` (bare member name) |
 * | enum value unknown | `Parameter 'capability' does not accept value 'nope'` (bare member name; `'null'` for list items) |
 *
 * Deviations: integral floats such as `1.0` are accepted as integers (QEMU's lexer keeps them floats and rejects
 * them); negative values for unsigned members are rejected (QEMU wraps them); `uint64`/`size` values above
 * 2^53 - 1 are clamped to 2^53 - 1 so handlers always get exact numbers; `int` members are limited to safe
 * integers.
 *
 * @example
 * ```ts
 * import * as q from "./schema.js";
 * const migrateArgs = q.object({ uri: q.str(), detach: q.optional(q.bool()) });
 * type MigrateArgs = q.Infer<typeof migrateArgs>; // { uri: string; detach?: boolean }
 * ```
 *
 * @module
 */

import { QmpError } from "./qmp-error.js";

/** The base of every schema: a `kind` discriminator and a phantom output type. */
export interface SchemaBase<T> {
  /** What the schema checks. */
  readonly kind: string;
  /** Set by {@link optional}: the member may be absent. */
  readonly optional?: boolean;
  /** Phantom: the type a checked value has. Never set at runtime. */
  readonly "~out"?: T;
}

/** The type a value checked by schema `S` has. */
export type Infer<S> = S extends { readonly "~out"?: infer T } ? T : never;

/** A string. */
export interface StrSchema extends SchemaBase<string> {
  readonly kind: "str";
}
/** A signed integer (QAPI `int`), limited to safe integers and to `[min, max]`. */
export interface IntSchema extends SchemaBase<number> {
  readonly kind: "int";
  readonly min: number;
  readonly max: number;
}
/** QAPI's unsigned integer types. */
export type UintType = "uint8" | "uint16" | "uint32" | "uint64" | "size";
/** An unsigned integer of a QAPI width. */
export interface UintSchema extends SchemaBase<number> {
  readonly kind: "uint";
  readonly type: UintType;
}
/** A number (QAPI `number`). */
export interface NumberSchema extends SchemaBase<number> {
  readonly kind: "number";
}
/** A boolean. */
export interface BoolSchema extends SchemaBase<boolean> {
  readonly kind: "bool";
}
/** One of a set of strings (a QAPI enum). */
export interface EnumSchema<V extends string = string> extends SchemaBase<V> {
  readonly kind: "enum";
  readonly values: readonly V[];
}
/** A string or `null` (QAPI's `StrOrNull` alternate). */
export interface StrOrNullSchema extends SchemaBase<string | null> {
  readonly kind: "strOrNull";
}
/** Any JSON value, unchecked (use sparingly: the handler must check it). */
export interface AnySchema extends SchemaBase<unknown> {
  readonly kind: "any";
}
/** An array of items. */
export interface ArraySchema<I extends Schema = Schema> extends SchemaBase<Infer<I>[]> {
  readonly kind: "array";
  readonly items: I;
}
/** The members of an object schema. */
export type Fields = { readonly [name: string]: Schema };
type OptionalKeys<F extends Fields> = {
  [K in keyof F]: F[K] extends { readonly optional: true } ? K : never;
}[keyof F];
type RequiredKeys<F extends Fields> = Exclude<keyof F, OptionalKeys<F>>;
type Prettify<T> = { [K in keyof T]: T[K] } & {};
/** The checked type of an object with members `F`: optional members become `?:` keys. */
export type ObjectOutput<F extends Fields> = Prettify<
  { [K in RequiredKeys<F>]: Infer<F[K]> } & { [K in OptionalKeys<F>]?: Infer<F[K]> }
>;
/** An object with declared members; other keys are rejected. */
export interface ObjectSchema<F extends Fields = Fields> extends SchemaBase<ObjectOutput<F>> {
  readonly kind: "object";
  readonly fields: F;
}

/** Any schema. */
export type Schema =
  | StrSchema
  | IntSchema
  | UintSchema
  | NumberSchema
  | BoolSchema
  | EnumSchema
  | StrOrNullSchema
  | AnySchema
  | ArraySchema<Schema>
  | ObjectSchema<Fields>;

/** A string. */
export function str(): StrSchema {
  return Object.freeze({ kind: "str" });
}

/**
 * A signed integer; `min`/`max` default to the safe-integer range.
 *
 * @param range Optional bounds; a value outside gets "Parameter 'x' expects a value between MIN and MAX".
 */
export function int(range: { readonly min?: number; readonly max?: number } = {}): IntSchema {
  return Object.freeze({
    kind: "int",
    min: range.min ?? Number.MIN_SAFE_INTEGER,
    max: range.max ?? Number.MAX_SAFE_INTEGER,
  });
}

/**
 * An unsigned integer of a QAPI width.
 *
 * @param type `uint8`, `uint16`, `uint32`, `uint64` or `size` (default `uint64`).
 */
export function uint(type: UintType = "uint64"): UintSchema {
  return Object.freeze({ kind: "uint", type });
}

/** A number; integers and floats alike. */
export function number(): NumberSchema {
  return Object.freeze({ kind: "number" });
}

/** A boolean. */
export function bool(): BoolSchema {
  return Object.freeze({ kind: "bool" });
}

/**
 * One of a fixed set of strings.
 *
 * @param values The accepted values.
 */
export function enumOf<const V extends string>(values: readonly V[]): EnumSchema<V> {
  return Object.freeze({ kind: "enum", values: Object.freeze([...values]) });
}

/** A string or `null` (QAPI `StrOrNull`). */
export function strOrNull(): StrOrNullSchema {
  return Object.freeze({ kind: "strOrNull" });
}

/** Any JSON value, passed through unchecked. */
export function any(): AnySchema {
  return Object.freeze({ kind: "any" });
}

/**
 * An array.
 *
 * @param items The schema of every item.
 */
export function array<I extends Schema>(items: I): ArraySchema<I> {
  return Object.freeze({ kind: "array", items });
}

/**
 * An object with exactly these members (in this order: the order errors are found in).
 *
 * @param fields The members; wrap optional ones in {@link optional}.
 */
export function object<const F extends Fields>(fields: F): ObjectSchema<F> {
  return Object.freeze({ kind: "object", fields: Object.freeze({ ...fields }) });
}

/**
 * Marks an object member optional.
 *
 * @param schema The member's schema.
 */
export function optional<S extends Schema>(schema: S): S & { readonly optional: true } {
  return Object.freeze({ ...schema, optional: true as const });
}

/** The empty argument object: commands without arguments. */
// biome-ignore lint/complexity/noBannedTypes: an object schema with no members is exactly `{}`
export const NO_ARGS: ObjectSchema<{}> = object({});

/** Where the checker is: QEMU's "full name" and the bare member name (`null` for list items). */
interface Where {
  readonly full: string;
  readonly bare: string | null;
}

const UINT_MAX: Readonly<Record<UintType, bigint>> = {
  uint8: 0xffn,
  uint16: 0xffffn,
  uint32: 0xffff_ffffn,
  uint64: 0xffff_ffff_ffff_ffffn,
  size: 0xffff_ffff_ffff_ffffn,
};
const C_TYPE: Readonly<Record<UintType, string>> = {
  uint8: "uint8_t",
  uint16: "uint16_t",
  uint32: "uint32_t",
  uint64: "uint64",
  size: "uint64",
};

function generic(desc: string): QmpError {
  return new QmpError("GenericError", desc);
}

function typeError(where: Where, expected: string): QmpError {
  return generic(`Invalid parameter type for '${where.full}', expected: ${expected}`);
}

function isPlainObject(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Checks command arguments against an object schema and returns a fresh, plain object holding only declared
 * members (the input may be a prototype-less parse result; the output never carries unexpected keys).
 *
 * @param schema The command's argument schema.
 * @param args The `arguments` member of the request (an object), or `undefined` when absent.
 * @returns The checked arguments.
 * @throws {QmpError} `GenericError` with QEMU's message for the first problem.
 */
export function checkArguments<F extends Fields>(schema: ObjectSchema<F>, args: unknown): ObjectOutput<F> {
  return checkObjectMembers(schema, args ?? {}, "") as ObjectOutput<F>;
}

function checkObjectMembers(schema: ObjectSchema, value: unknown, prefix: string): Record<string, unknown> {
  if (!isPlainObject(value)) throw typeError({ full: prefix === "" ? "<anonymous>" : prefix, bare: null }, "object");
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(schema.fields)) {
    const field = schema.fields[name] as Schema;
    const where: Where = { full: prefix === "" ? name : `${prefix}.${name}`, bare: name };
    if (!Object.hasOwn(value, name)) {
      if (field.optional === true) continue;
      throw generic(`Parameter '${where.full}' is missing`);
    }
    out[name] = checkValue(field, value[name], where);
  }
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(schema.fields, key)) {
      throw generic(`Parameter '${prefix === "" ? key : `${prefix}.${key}`}' is unexpected`);
    }
  }
  return out;
}

function checkValue(schema: Schema, value: unknown, where: Where): unknown {
  switch (schema.kind) {
    case "str":
      if (typeof value !== "string") throw typeError(where, "string");
      return value;
    case "strOrNull":
      if (value !== null && typeof value !== "string") throw typeError(where, "StrOrNull");
      return value;
    case "bool":
      if (typeof value !== "boolean") throw typeError(where, "boolean");
      return value;
    case "number":
      if (typeof value === "bigint") return Number(value);
      if (typeof value !== "number") throw typeError(where, "number");
      return value;
    case "int": {
      let n: number;
      if (typeof value === "bigint") {
        n =
          value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)
            ? Number.NaN
            : Number(value);
      } else if (typeof value === "number" && Number.isInteger(value)) {
        n = value;
      } else {
        throw typeError(where, "integer");
      }
      if (!(n >= schema.min && n <= schema.max)) {
        throw generic(`Parameter '${where.full}' expects a value between ${schema.min} and ${schema.max}`);
      }
      return n;
    }
    case "uint": {
      let big: bigint;
      if (typeof value === "bigint") big = value;
      else if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value < 2 ** 64) {
        big = BigInt(value);
      } else {
        throw generic(`Parameter '${where.full}' expects uint64`);
      }
      if (big < 0n || big > UINT_MAX.uint64) throw generic(`Parameter '${where.full}' expects uint64`);
      if (big > UINT_MAX[schema.type])
        throw generic(`Parameter '${where.bare ?? "null"}' expects ${C_TYPE[schema.type]}`);
      return big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    }
    case "enum":
      if (typeof value !== "string") throw typeError(where, "string");
      if (!schema.values.includes(value)) {
        throw generic(`Parameter '${where.bare ?? "null"}' does not accept value '${value}'`);
      }
      return value;
    case "any":
      return value;
    case "array": {
      if (!Array.isArray(value)) throw typeError(where, "array");
      return value.map((item, i) => checkValue(schema.items, item, { full: `${where.full}[${i}]`, bare: null }));
    }
    case "object":
      return checkObjectMembers(schema, value, where.full);
  }
}
