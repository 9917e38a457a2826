/**
 * Types only: the compiled form of a description (one {@link LevelPlan} per (description, version)) and the
 * decoded form of a loaded instance ({@link DLevel}). Shared by `compile.ts` and the walkers.
 *
 * @module
 */

import type { ByteReader } from "../wire/byte-reader.js";
import type { SaveBuffer } from "./_save-buffer.js";
import type { FieldEntry, LevelDesc } from "./device.js";
import type { Loose, LooseMut, TestFn } from "./infer.js";

/** What the vmdesc walker needs to know about a field. @internal */
export interface VdInfo {
  /** QEMU's info name (`uint32`, `buffer`, `struct`, …). */
  readonly type: string;
  /** QEMU `vmsd_can_compress`: one entry with `array_len` stands for all elements. */
  readonly compressible: boolean;
  /** Number of elements to describe (validates the value like the fast saver does). */
  readonly count: (obj: Loose) => number;
  /** Element `i` (flattened for nested arrays), or the whole object for whole-field kinds. */
  readonly elemAt: (obj: Loose, i: number) => unknown;
  /** Writes one non-struct element (or the whole field). */
  readonly putElem: (sb: SaveBuffer, v: unknown) => void;
  /** The struct plan of struct elements (described recursively). */
  readonly nested: LevelPlan | undefined;
  /** `list` and `tmp` write nested descriptions straight into the field object. */
  readonly inline: "list" | "tmp" | undefined;
  /** For tmp: builds the temporary from the parent (runs `toTmp`). */
  readonly tmpOf: ((obj: Loose) => LooseMut) | undefined;
}

/** The count lookup of a field with `lengthFrom` (varray, vbuffer, bitmap). @internal */
export interface CountInfo {
  /** The key of the count field. */
  readonly ref: string;
  /** Index of the count field among the level's active fields; -1 when it is not on the wire at this version. */
  readonly idx: number;
  /** Checks a raw count against the field's maximum (QEMU: a negative `i32` count is 0); throws with `offset`. */
  readonly norm: (raw: unknown, op: "load" | "save", offset: number | undefined) => number;
}

/** One active wire field of a level, compiled. @internal */
export interface FieldPlan {
  readonly key: string;
  readonly entry: FieldEntry;
  /** Whether the field holds state (not `unused`, `validate` or `tmp`). */
  readonly stateful: boolean;
  /** The presence test, when the field has one (then `since` was not used to filter it). */
  readonly test: TestFn | undefined;
  /** Fast path: validates and writes the whole field from `obj`. */
  readonly save: (sb: SaveBuffer, obj: Loose) => void;
  /** Decodes the field; never returns `undefined`. No side effects. */
  readonly decode: (r: ByteReader, vals: unknown[], cur: Loose) => unknown;
  /** Writes a decoded value into `obj` (running nested hooks). */
  readonly apply: (obj: LooseMut, v: unknown) => void;
  /** Runs nested equal/validate checks of a decoded value against the current value, if there are any. */
  readonly check: ((cur: unknown, v: unknown) => void) | undefined;
  /** The value predicates see for a decoded value (structs are materialized), when not the value itself. */
  readonly view: ((v: unknown, cur: unknown) => unknown) | undefined;
  /** QEMU `*_EQUAL`. */
  readonly equal: boolean;
  /** QEMU `VMSTATE_VALIDATE`'s predicate. */
  readonly validate: TestFn | undefined;
  /** vmdesc information; `undefined` for validate entries (no entry, no bytes). */
  readonly vd: VdInfo | undefined;
  /** The count lookup, for fields with `lengthFrom`. */
  readonly count: CountInfo | undefined;
}

/**
 * The generated (JIT) form of a level: the whole save, decode and apply of one instance (hooks, fields, subsection
 * loop), with the same contracts as the walkers in `_walk.ts`, which delegate to them while the JIT is on.
 * @internal
 */
export interface JitFns {
  /** As `saveLevel`: preSave, fields (tests evaluated), needed subsections, postSave. */
  readonly saveLevel: (sb: SaveBuffer, obj: Loose, root: Loose) => void;
  /** As `decodeLevel`: fields, then the subsection loop; no side effects. */
  readonly decodeLevel: (r: ByteReader, cur: Loose, root: Loose) => DLevel;
  /** As `applyLevel`: preLoad, fields, subsections in stream order, postLoad. */
  readonly applyLevel: (dl: DLevel, obj: LooseMut, root: LooseMut) => void;
}

/** Where a plan keeps its generated functions: `undefined` until first asked for. @internal */
export interface JitSlot {
  fns: JitFns | undefined;
}

/** A subsection of a level, compiled lazily per stream version. @internal */
export interface SubPlan {
  readonly key: string;
  readonly desc: LevelDesc;
  readonly needed: ((state: object) => boolean) | undefined;
  /** The plan for a version (compiled and cached on first use). */
  readonly level: (version: number) => LevelPlan;
}

/** One VMSD at one version, compiled. @internal */
export interface LevelPlan {
  readonly desc: LevelDesc;
  readonly version: number;
  /** Wire fields active at this version (by `since`; fields with a test are kept and tested at run time). */
  readonly fields: readonly FieldPlan[];
  readonly subs: readonly SubPlan[];
  /** `fields[i].save`, `.decode`, `.apply` as flat arrays (the hot loops index these, not the plan objects). */
  readonly savers: readonly ((sb: SaveBuffer, obj: Loose) => void)[];
  readonly decoders: readonly ((r: ByteReader, vals: unknown[], cur: Loose) => unknown)[];
  readonly appliers: readonly ((obj: LooseMut, v: unknown) => void)[];
  /** Whether some field has a presence test (else the loops skip the test checks). */
  readonly hasTests: boolean;
  /** Whether decoding needs a keyed view of the state (some field has a test or is a validate entry). */
  readonly needsOverlay: boolean;
  /** Whether a field here is an equal or validate entry (their offsets are recorded for errors). */
  readonly hasOffsets: boolean;
  /** Whether a field here or in a nested struct has an equal or validate check. */
  readonly hasChecks: boolean;
  /** Whether a field here is a validate entry. */
  readonly hasValidate: boolean;
  /** A fresh initial state of this level. */
  readonly init: () => LooseMut;
  /** A frozen initial state, used as the "current" state when decoding new elements. */
  readonly proto: Loose;
  /** `fields.length` times `undefined` (not frozen, never written): copied for each decoded instance's values. */
  readonly blank: readonly unknown[];
  /** The generated field loops, made on first use while the JIT is on (see `_jit.ts`). */
  readonly jit: JitSlot;
}

/** A decoded instance of a level: values by field index, present subsections in stream order. @internal */
export interface DLevel {
  readonly plan: LevelPlan;
  /** `vals[i]` is field `i`'s decoded value, `undefined` when it was not in the stream. */
  readonly vals: unknown[];
  readonly subs: DSub[] | null;
  /** Stream offset where this level started. */
  readonly start: number;
  /** Stream offsets of equal/validate entries, by field index. */
  readonly offs: number[] | null;
  /** The version it was loaded with. */
  readonly version: number;
}

/** A decoded subsection. @internal */
export interface DSub {
  readonly sub: SubPlan;
  readonly dl: DLevel;
}
