/**
 * `device()`: a top-level description (QEMU's `VMStateDescription`) with its subsections and hooks.
 *
 * A description is validated when it is defined (versions ordered, `since` ≤ version, count fields exist, are
 * integers and come earlier, subsection names unique and prefixed by their parent's name) and then frozen. The
 * internal normalized form ({@link LevelDesc}) is what `compile.ts` turns into closures.
 *
 * @module
 */

import { asciiOrUtf8 } from "../wire/byte-writer.js";
import { type AnyField, ELEMENT_KINDS, isCountField } from "./fields.js";
import type { CheckRefs, DescriptionBase, HookResult, Shape, StateOf } from "./infer.js";

/** QEMU 7.2's `MigrationPriority` values (higher is saved first; the values never appear on the wire). */
export const MigrationPriority = {
  /** `MIG_PRI_DEFAULT` */
  Default: 0,
  /** `MIG_PRI_IOMMU`: must happen before PCI devices. */
  Iommu: 1,
  /** `MIG_PRI_PCI_BUS`: must happen before IOMMU. */
  PciBus: 2,
  /** `MIG_PRI_VIRTIO_MEM`: must happen before IOMMU. */
  VirtioMem: 3,
  /** `MIG_PRI_GICV3_ITS`: must happen before PCI devices. */
  Gicv3Its: 4,
  /** `MIG_PRI_GICV3`: must happen before the ITS. */
  Gicv3: 5,
  /** `MIG_PRI_MAX` */
  Max: 6,
} as const;

/** The subsections of a device: local key → their fields. */
export type SubShapes = { readonly [key: string]: Shape };

/**
 * A device's whole state: its fields, plus one object per subsection (keyed by the subsection's local key, nested
 * subsections included, all at the top level).
 */
export type DeviceState<S extends Shape, Sub extends SubShapes> = Flatten<
  StateOf<S> & { -readonly [K in keyof Sub]: StateOf<Sub[K]> }
>;

/** One flat object type (hovers and type equality see plain properties, not an intersection). */
type Flatten<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Save and load hooks, QEMU's `pre_save`/`post_save`/`pre_load`/`post_load`. Each may throw or return an `Error`
 * to fail with `HOOK_FAILED`. Hooks of a subsection receive the whole device state, as QEMU passes the same opaque.
 */
export interface Hooks<Root> {
  /** Before the fields are saved. A failure aborts the save; `postSave` is then not called. */
  preSave?(state: Root): HookResult;
  /** After the fields and subsections were saved, even when saving them failed (not when `preSave` failed). */
  postSave?(state: Root): HookResult;
  /** Before the loaded values are written (only for subsections present in the stream). */
  preLoad?(state: Root): HookResult;
  /** After the values and all subsections were written, with the stream's version. */
  postLoad?(state: Root, versionId: number): HookResult;
}

/** A subsection: a named, versioned group of fields sent only when `needed`. QEMU: `VMStateDescription.subsections`. */
export interface SubsectionDef<F extends Shape, Root, P extends string = string> extends Hooks<Root> {
  /**
   * The wire name, by convention `parent/child` (e.g. `ide_drive/pio_state`). It must start with the parent's
   * name and be longer: QEMU's loader stops looking for subsections at the first name that does not.
   */
  readonly name: string;
  /** QEMU: `version_id` of the subsection. */
  readonly version: number;
  /** QEMU: `minimum_version_id`. Default: `version`. */
  readonly minVersion?: number;
  /** The local key of the subsection this one is nested in (its name must then start with that one's name). */
  readonly parent?: P;
  /** The fields; their state is `state[key]`. */
  readonly fields: F & CheckRefs<F>;
  /** Whether to send the subsection; sees the whole device state. Default: always. */
  needed?(state: Root): boolean;
}

/** The definition passed to {@link device}. */
export interface DeviceDef<S extends Shape, Sub extends SubShapes> extends Hooks<DeviceState<S, Sub>> {
  /** QEMU: `version_id`, the version this description saves with. */
  readonly version: number;
  /**
   * QEMU: `minimum_version_id`, the oldest stream version it loads. Default: `version` (QEMU defaults to 0; Ferry
   * makes accepting older streams an explicit choice).
   */
  readonly minVersion?: number;
  /** QEMU: `priority`; higher is saved first. Default 0 ({@link MigrationPriority}.Default). */
  readonly priority?: number;
  /** The fields, in wire order. */
  readonly fields: S & CheckRefs<S>;
  /** The subsections, in wire order; nested ones name their `parent`. */
  readonly subsections?: {
    readonly [K in keyof Sub]: SubsectionDef<Sub[K], DeviceState<S, Sub>, Exclude<keyof Sub & string, K>>;
  };
  /**
   * QEMU: the top-level `needed`: when false the savevm layer sends no section for this instance. Not consulted
   * by `saveDevice` itself; see {@link sectionNeeded}.
   */
  needed?(state: DeviceState<S, Sub>): boolean;
}

/** A device description: what `device()` returns. */
export interface Device<S extends Shape = Shape, Sub extends SubShapes = SubShapes> extends DescriptionBase {
  /** The validated, frozen definition. */
  readonly def: DeviceDef<S, Sub>;
  /** Phantom: the device's state type, read by `Infer`. */
  readonly "~out"?: DeviceState<S, Sub>;
}

/** Any device description, whatever its state type. */
export type AnyDevice = DescriptionBase;

// ---------------------------------------------------------------------------------------------------------------
// Normalized form (internal to vmstate/)

/** A hook as stored internally. */
export type AnyHook = (state: object, versionId: number) => HookResult;

/** One field of a level, normalized. @internal */
export interface FieldEntry {
  /** The key in the state object. */
  readonly key: string;
  readonly field: AnyField;
  /** The vmdesc name, with QEMU's `[k]` suffix when the name repeats in the level. */
  readonly vmdescName: string;
  /** The description of the struct inside (struct, list, tmp, arrays of structs), if any. */
  readonly nested: LevelDesc | undefined;
  /** Whether this field is on the wire at all (`local` is not). */
  readonly wire: boolean;
}

/** A subsection, normalized. @internal */
export interface SubEntry {
  /** The key in the device state. */
  readonly key: string;
  readonly desc: LevelDesc;
  readonly needed: ((state: object) => boolean) | undefined;
}

/** One VMSD (device, nested struct, subsection or tmp), normalized for compilation. @internal */
export interface LevelDesc {
  /** The vmsd name. */
  readonly name: string;
  /** The vmsd name as UTF-8 bytes (for the subsection prefix rule). */
  readonly nameBytes: Uint8Array;
  readonly version: number;
  readonly minVersion: number;
  readonly entries: readonly FieldEntry[];
  /** Direct subsections, in declaration order. */
  readonly subs: readonly SubEntry[];
  /** All subsections at any depth (device levels only). */
  readonly allSubs: readonly SubEntry[];
  readonly preSave: AnyHook | undefined;
  readonly postSave: AnyHook | undefined;
  readonly preLoad: AnyHook | undefined;
  readonly postLoad: AnyHook | undefined;
  /** Whether this is a subsection (its hooks get the device root; its state is `root[key]`). */
  readonly isSubsection: boolean;
  /** Whether every field compresses in vmdesc and there are no subsections (QEMU `vmsd_can_compress`). */
  readonly compressible: boolean;
}

const levels = new WeakMap<object, LevelDesc>();

/**
 * The normalized form of a description made by {@link device}. @internal
 *
 * @throws TypeError when `dev` was not made by `device()`.
 */
export function levelOf(dev: DescriptionBase): LevelDesc {
  // One-entry memo in front of the WeakMap: a device saved or loaded many times in a row skips the lookup.
  if (dev === lastDev && lastLevel !== undefined) return lastLevel;
  const l = levels.get(dev);
  if (l === undefined) throw new TypeError(`Cannot use "${String(dev?.name)}": it was not made by vm.device()`);
  lastDev = dev;
  lastLevel = l;
  return l;
}

/** The last description `levelOf` resolved (kept reachable until another one is resolved). */
let lastDev: DescriptionBase | undefined;
let lastLevel: LevelDesc | undefined;

/** Every field kind: the element kinds, and those that only stand as fields of a level. */
const FIELD_KINDS: ReadonlySet<string> = new Set([
  ...ELEMENT_KINDS,
  "unused",
  "bitmap",
  "vbuffer",
  "varray",
  "list",
  "validate",
  "tmp",
  "local",
]);

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;
}

function fail(where: string, what: string): never {
  throw new TypeError(`Cannot define ${where}: ${what}`);
}

function checkVersions(where: string, version: unknown, minVersion: unknown): [number, number] {
  if (!isInt(version, 0, 0x7fffffff)) fail(where, `version ${String(version)} is not an integer ≥ 0`);
  const min = minVersion ?? version;
  if (!isInt(min, 0, 0x7fffffff)) fail(where, `minVersion ${String(min)} is not an integer ≥ 0`);
  if (min > version) fail(where, `minVersion ${min} is greater than version ${version}`);
  return [version, min];
}

function checkHook(where: string, name: string, h: unknown): AnyHook | undefined {
  if (h === undefined) return undefined;
  if (typeof h !== "function") fail(where, `${name} is not a function`);
  return h as AnyHook;
}

/** Whether a field (and, for structs, its nested fields) compresses in vmdesc (QEMU `vmsd_can_compress`). */
function fieldCompressible(f: AnyField, nested: LevelDesc | undefined): boolean {
  if ("test" in f && f.test !== undefined) return false;
  if (f.kind === "validate") return false;
  if (nested !== undefined && isStructLike(f)) return nested.compressible;
  return true;
}

/** Struct, or an array (of arrays) of structs / optional structs: QEMU's `VMS_STRUCT` flag. */
function isStructLike(f: AnyField): boolean {
  let k: AnyField = f;
  while (k.kind === "array" || k.kind === "varray") k = k.elem as AnyField;
  return k.kind === "struct" || k.kind === "optional";
}

const shapeLevels = new WeakMap<object, Map<string, LevelDesc>>();

/** Resolves the nested description of a struct/list/tmp `of` (a device or an inline shape named `key`). */
function nestedOf(where: string, key: string, of: unknown): LevelDesc {
  if (typeof of !== "object" || of === null) fail(where, `field "${key}" has no nested description`);
  const l = levels.get(of);
  if (l !== undefined) return l;
  if ((of as { kind?: unknown }).kind === "device")
    fail(where, `field "${key}" nests a description not made by device()`);
  // An inline shape: a version-0 VMSD named after the field. Cache per (shape, name) so compile caches hit.
  let byName = shapeLevels.get(of);
  if (byName === undefined) {
    byName = new Map();
    shapeLevels.set(of, byName);
  }
  let made = byName.get(key);
  if (made === undefined) {
    made = buildLevel(`${where}/${key}`, key, 0, 0, of as Shape, [], false, {});
    byName.set(key, made);
  }
  return made;
}

/** Validates one field (recursively for elements) and returns its nested description, if any. */
function checkField(where: string, key: string, f: AnyField, version: number, earlier: Map<string, AnyField>) {
  if (typeof f !== "object" || f === null || !FIELD_KINDS.has((f as { kind?: unknown }).kind as string)) {
    fail(where, `field "${key}" is not a field (use the vm.* factories)`);
  }
  if (f.since !== undefined && f.since > version) {
    fail(where, `field "${key}" has since ${f.since}, greater than the version ${version}`);
  }
  if ("lengthFrom" in f) {
    const ref = earlier.get(f.lengthFrom);
    if (ref === undefined) fail(where, `field "${key}" takes its length from "${f.lengthFrom}", not an earlier field`);
    if (!isCountField(ref)) {
      fail(where, `field "${key}" takes its length from "${f.lengthFrom}", a ${ref.kind} (use u8, u16, u32 or i32)`);
    }
  }
  return nestedOfField(where, key, f);
}

function nestedOfField(where: string, key: string, f: AnyField): LevelDesc | undefined {
  switch (f.kind) {
    case "struct":
    case "list":
      return nestedOf(where, key, f.of);
    case "optional":
      return nestedOf(where, key, f.of.of);
    case "array":
    case "varray":
      return nestedOfField(where, key, f.elem as AnyField);
    case "local":
      return nestedOfField(where, key, f.of as AnyField);
    case "tmp": {
      const l = nestedOf(where, key, f.of);
      if (l.minVersion !== 0)
        fail(where, `withTmp "${key}": QEMU loads tmp descriptions with version 0, so minVersion must be 0`);
      for (const e of l.entries) {
        if (e.field.since !== undefined)
          fail(where, `withTmp "${key}": field "${e.key}" has since, which QEMU's tmp load ignores`);
      }
      return l;
    }
    default:
      return undefined;
  }
}

function defaultVmdescName(key: string, f: AnyField): string {
  if ("name" in f && f.name !== undefined) return f.name;
  if (f.kind === "unused") return "unused";
  if (f.kind === "tmp") return "tmp";
  return key;
}

function buildLevel(
  where: string,
  name: string,
  version: number,
  minVersion: number,
  fields: Shape,
  subs: SubEntry[],
  isSubsection: boolean,
  hooks: Hooks<object>,
): LevelDesc {
  if (typeof fields !== "object" || fields === null) fail(where, "fields must be an object of fields");
  const earlier = new Map<string, AnyField>();
  const raw: { key: string; field: AnyField; nested: LevelDesc | undefined; qname: string }[] = [];
  for (const key of Object.keys(fields)) {
    if (key === "__proto__") fail(where, `"__proto__" cannot be a field name`);
    const f = fields[key] as AnyField;
    const nested = checkField(where, key, f, version, earlier);
    earlier.set(key, f);
    raw.push({ key, field: f, nested, qname: defaultVmdescName(key, f) });
  }
  // QEMU names repeated names name[k], counting every field of the VMSD (vmfield_name_num); local fields are not
  // QEMU fields.
  const counts = new Map<string, number>();
  for (const r of raw) if (r.field.kind !== "local") counts.set(r.qname, (counts.get(r.qname) ?? 0) + 1);
  const seen = new Map<string, number>();
  const entries: FieldEntry[] = raw.map((r) => {
    let vmdescName = r.qname;
    if (r.field.kind !== "local" && (counts.get(r.qname) ?? 0) > 1) {
      const k = seen.get(r.qname) ?? 0;
      seen.set(r.qname, k + 1);
      vmdescName = `${r.qname}[${k}]`;
    }
    return Object.freeze({
      key: r.key,
      field: r.field,
      vmdescName,
      nested: r.nested,
      wire: r.field.kind !== "local",
    });
  });
  let compressible = subs.length === 0;
  for (const e of entries) if (e.wire && !fieldCompressible(e.field, e.nested)) compressible = false;
  return Object.freeze({
    name,
    nameBytes: asciiOrUtf8(name),
    version,
    minVersion,
    entries: Object.freeze(entries),
    subs: Object.freeze(subs),
    allSubs: Object.freeze([] as SubEntry[]),
    preSave: checkHook(where, "preSave", hooks.preSave),
    postSave: checkHook(where, "postSave", hooks.postSave),
    preLoad: checkHook(where, "preLoad", hooks.preLoad),
    postLoad: checkHook(where, "postLoad", hooks.postLoad),
    isSubsection,
    compressible,
  });
}

interface RawSub extends Hooks<object> {
  readonly name: string;
  readonly version: number;
  readonly minVersion?: number;
  readonly parent?: string;
  readonly fields: Shape;
  needed?(state: object): boolean;
}

/**
 * Defines a device's migratable state: its fields in wire order, versions, subsections and hooks. The state type
 * is inferred (`vm.Infer<typeof dev>`); the description is validated now and frozen.
 *
 * @example
 * ```ts
 * const kbd = vm.device("pckbd", {
 *   version: 3,
 *   fields: { write_cmd: vm.u8(), status: vm.u8(), mode: vm.u8(), pending: vm.u8() },
 *   subsections: {
 *     outport: { name: "pckbd_outport", version: 1, fields: { outport: vm.u8() }, needed: (s) => s.outport.outport !== 0 },
 *   },
 * });
 * type KbdState = vm.Infer<typeof kbd>;
 * ```
 *
 * @param name QEMU's vmsd name.
 * @param def Versions, fields, subsections and hooks.
 * @returns The frozen description.
 * @throws TypeError when the definition breaks a rule (the message says which).
 */
export function device<const S extends Shape, const Sub extends SubShapes = Record<never, never>>(
  name: string,
  def: DeviceDef<S, Sub>,
): Device<S, Sub> {
  if (typeof name !== "string" || name === "")
    throw new TypeError("Cannot define device: name must be a non-empty string");
  const where = `device "${name}"`;
  if (typeof def !== "object" || def === null) fail(where, "the definition must be an object");
  const [version, minVersion] = checkVersions(where, def.version, def.minVersion);
  const priority = def.priority ?? 0;
  if (!isInt(priority, 0, 0x7fffffff)) fail(where, `priority ${String(priority)} is not an integer ≥ 0`);
  if (def.needed !== undefined && typeof def.needed !== "function") fail(where, "needed is not a function");

  const fieldKeys = new Set(Object.keys(def.fields ?? {}));
  const rawSubs = (def.subsections ?? {}) as { readonly [key: string]: RawSub };
  if (typeof rawSubs !== "object" || rawSubs === null) fail(where, "subsections must be an object");
  const subKeys = Object.keys(rawSubs);
  // Build subsections parents first: a nested subsection's desc is created when its parent's is.
  const names = new Set<string>();
  for (const key of subKeys) {
    const s = rawSubs[key] as RawSub;
    const sw = `${where} subsection "${key}"`;
    if (key === "__proto__") fail(where, `"__proto__" cannot be a subsection key`);
    if (fieldKeys.has(key)) fail(sw, `the key "${key}" is also a field name (both would live in the state)`);
    if (typeof s !== "object" || s === null) fail(sw, "it must be an object");
    if (typeof s.name !== "string" || s.name === "") fail(sw, "name must be a non-empty string");
    if (asciiOrUtf8(s.name).length > 255) fail(sw, `name "${s.name.slice(0, 32)}…" is over 255 bytes`);
    if (names.has(s.name)) fail(sw, `name "${s.name}" is used twice`);
    names.add(s.name);
    if (s.needed !== undefined && typeof s.needed !== "function") fail(sw, "needed is not a function");
    if (s.parent !== undefined) {
      if (!subKeys.includes(s.parent) || s.parent === key)
        fail(sw, `parent "${String(s.parent)}" is not another subsection`);
    }
  }
  // Detect parent cycles.
  for (const key of subKeys) {
    let k: string | undefined = key;
    for (let steps = 0; k !== undefined; steps++) {
      if (steps > subKeys.length) fail(`${where} subsection "${key}"`, "its parent chain is a cycle");
      k = (rawSubs[k] as RawSub).parent;
    }
  }
  const built = new Map<string, SubEntry>();
  const childrenOf = (parent: string | undefined): SubEntry[] =>
    subKeys.filter((k) => (rawSubs[k] as RawSub).parent === parent).map((k) => buildSub(k));
  const buildSub = (key: string): SubEntry => {
    const done = built.get(key);
    if (done !== undefined) return done;
    const s = rawSubs[key] as RawSub;
    const sw = `${where} subsection "${key}"`;
    const parentName = s.parent === undefined ? name : (rawSubs[s.parent] as RawSub).name;
    if (!(s.name.length > parentName.length && s.name.startsWith(parentName))) {
      fail(sw, `name "${s.name}" must start with its parent's name "${parentName}" and be longer`);
    }
    const [sv, smin] = checkVersions(sw, s.version, s.minVersion);
    const children = childrenOf(key);
    const desc = buildLevel(sw, s.name, sv, smin, s.fields, children, true, s);
    const entry: SubEntry = Object.freeze({ key, desc, needed: s.needed });
    built.set(key, entry);
    return entry;
  };
  const top = childrenOf(undefined);
  const base = buildLevel(where, name, version, minVersion, def.fields, top, false, def as Hooks<object>);
  const allSubs = subKeys.map((k) => buildSub(k));
  const level: LevelDesc = Object.freeze({ ...base, allSubs: Object.freeze(allSubs) });

  const frozenSubs: Record<string, unknown> = {};
  for (const k of subKeys) {
    const s = rawSubs[k] as RawSub;
    frozenSubs[k] = Object.freeze({ ...s, fields: Object.freeze({ ...s.fields }) });
  }
  const frozenDef = Object.freeze({
    ...def,
    fields: Object.freeze({ ...def.fields }),
    ...(def.subsections === undefined ? {} : { subsections: Object.freeze(frozenSubs) }),
  }) as DeviceDef<S, Sub>;
  const dev: Device<S, Sub> = Object.freeze({ kind: "device", name, version, minVersion, priority, def: frozenDef });
  levels.set(dev, level);
  return dev;
}
