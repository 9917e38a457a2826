/**
 * The level walkers: save one VMSD instance (hooks, fields, subsections), decode one without side effects, check a
 * decoded one against the destination, and apply it. They run compiled {@link LevelPlan}s; nothing here looks at
 * the description itself per byte.
 *
 * @module
 */

import { MigrationError } from "../errors.js";
import { type ByteReader, decodeText } from "../wire/byte-reader.js";
import { runHook, runPredicate, show, streamError, withSeg } from "./_errors.js";
import { bytesOf, jitFor, registerWalkers } from "./_jit.js";
import type { DLevel, DSub, FieldPlan, LevelPlan, SubPlan } from "./_plan.js";
import type { SaveBuffer } from "./_save-buffer.js";
import type { LevelDesc } from "./device.js";
import type { Loose, LooseMut } from "./infer.js";

/** QEMU_VM_SUBSECTION */
export const SUBSECTION_MARKER = 0x05;

function isObj(v: unknown): v is LooseMut {
  return typeof v === "object" && v !== null;
}

// ----------------------------------------------------------------------------------------------------------- save

/**
 * Saves one instance in QEMU's order: `preSave` (a failure stops here), fields, subsections, then `postSave`, which
 * runs even when the fields or subsections failed; the first error wins. @internal
 */
export function saveLevel(sb: SaveBuffer, plan: LevelPlan, obj: Loose, root: Loose): void {
  // Small on purpose, so that V8 inlines the dispatch where it is called; the closure path is a function of its own.
  const jit = jitFor(plan);
  if (jit !== null) jit.saveLevel(sb, obj, root);
  else saveLevelClosures(sb, plan, obj, root);
}

function saveLevelClosures(sb: SaveBuffer, plan: LevelPlan, obj: Loose, root: Loose): void {
  withSaveHooks(plan, obj, root, () => {
    saveFields(sb, plan, obj);
    if (plan.subs.length > 0) saveSubs(sb, plan, root);
  });
}

/**
 * Runs `save` between the level's hooks in QEMU's order: `preSave` (a failure stops here), then `save`, then
 * `postSave`, which runs even when `save` failed; the first error wins. @internal
 */
export function withSaveHooks(plan: LevelPlan, obj: Loose, root: Loose, save: () => void): void {
  const d = plan.desc;
  const hookState = d.isSubsection ? root : obj;
  if (d.preSave !== undefined) runHook(d.preSave, hookState, plan.version, "save", d.name, "preSave", undefined);
  let ok = false;
  let err: unknown;
  try {
    save();
    ok = true;
  } catch (e) {
    err = e;
  }
  if (d.postSave !== undefined) {
    try {
      runHook(d.postSave, hookState, plan.version, "save", d.name, "postSave", undefined);
    } catch (e) {
      if (ok) throw e;
    }
  }
  if (!ok) throw err;
}

/** The fast field loop of a save. @internal */
export function saveFields(sb: SaveBuffer, plan: LevelPlan, obj: Loose): void {
  const fs = plan.fields;
  const n = fs.length;
  let i = 0;
  if (!plan.hasTests) {
    const savers = plan.savers;
    try {
      for (; i < n; i++) (savers[i] as (sb: SaveBuffer, obj: Loose) => void)(sb, obj);
    } catch (e) {
      throw withSeg(e, (fs[i] as FieldPlan).key);
    }
    return;
  }
  try {
    for (; i < n; i++) {
      const f = fs[i] as FieldPlan;
      if (f.test !== undefined && !runPredicate(f.test, obj, plan.version, "save", f.key, "test", undefined)) continue;
      f.save(sb, obj);
    }
  } catch (e) {
    throw withSeg(e, (fs[i] as FieldPlan).key);
  }
}

/** Whether a subsection is sent: QEMU `vmstate_section_needed`. @internal */
export function subNeeded(s: SubPlan, root: Loose): boolean {
  return s.needed === undefined || runPredicate(s.needed, root, 0, "save", s.desc.name, "needed", undefined);
}

/** Writes a subsection header: `05, u8 len, name, be32 version`. @internal */
export function putSubHeader(sb: SaveBuffer, desc: LevelDesc): void {
  const nb = desc.nameBytes;
  sb.ensure(6 + nb.length);
  sb.buf[sb.pos++] = SUBSECTION_MARKER;
  sb.buf[sb.pos++] = nb.length;
  // A byte loop: names are short, and `set` costs a builtin call.
  const buf = sb.buf;
  let p = sb.pos;
  for (let k = 0; k < nb.length; k++) buf[p++] = nb[k] as number;
  sb.pos = p;
  sb.view.setUint32(sb.pos, desc.version);
  sb.pos += 4;
}

/** The state object of a subsection (`root[key]`). @internal */
export function subState(s: SubPlan, root: Loose): Loose {
  const t = root[s.key];
  if (!isObj(t))
    throw new MigrationError(
      "FIELD_OUT_OF_RANGE",
      `Cannot save subsection "${s.desc.name}": state.${s.key} is ${show(t)}`,
    );
  return t;
}

function saveSubs(sb: SaveBuffer, plan: LevelPlan, root: Loose): void {
  for (const s of plan.subs) {
    try {
      if (!subNeeded(s, root)) continue;
      const target = subState(s, root);
      putSubHeader(sb, s.desc);
      saveLevel(sb, s.level(s.desc.version), target, root);
    } catch (e) {
      throw withSeg(e, s.key);
    }
  }
}

// --------------------------------------------------------------------------------------------------------- decode

/**
 * Decodes one instance: fields (evaluating tests and counts on the current state overlaid with what was decoded so
 * far), then the subsection loop. Reads only; throws the reader's underflow untouched. @internal
 */
export function decodeLevel(r: ByteReader, plan: LevelPlan, cur: Loose, root: Loose): DLevel {
  const jit = jitFor(plan);
  return jit !== null ? jit.decodeLevel(r, cur, root) : decodeLevelClosures(r, plan, cur, root);
}

function decodeLevelClosures(r: ByteReader, plan: LevelPlan, cur: Loose, root: Loose): DLevel {
  const start = r.offset;
  const fs = plan.fields;
  const n = fs.length;
  // A copy of an all-undefined array: the values (small integers, heap numbers, bigints, objects) then never
  // change the array's elements kind, which a fresh `new Array(n)` does up to twice per instance.
  const vals = plan.blank.slice();
  const ov: LooseMut | null = plan.needsOverlay ? { ...cur } : null;
  const offs = plan.hasOffsets ? new Array<number>(n) : null;
  let i = 0;
  if (ov === null && offs === null) {
    // The common case: no tests, no overlay, no offsets to record.
    const decoders = plan.decoders;
    try {
      for (; i < n; i++) vals[i] = (decoders[i] as (r: ByteReader, v: unknown[], c: Loose) => unknown)(r, vals, cur);
    } catch (e) {
      throw withSeg(e, (fs[i] as FieldPlan).key);
    }
    // QEMU runs the subsection loop for every VMSD, even one without subsections: an unknown name that matches
    // the prefix fails the load there too.
    const subs = decodeSubs(r, plan, root);
    return { plan, vals, subs, start, offs, version: plan.version };
  }
  try {
    for (; i < n; i++) {
      const f = fs[i] as FieldPlan;
      if (f.test !== undefined && !runPredicate(f.test, ov as Loose, plan.version, "load", f.key, "test", r.offset)) {
        continue;
      }
      if (offs !== null) offs[i] = r.offset;
      const v = f.decode(r, vals, ov ?? cur);
      vals[i] = v;
      if (ov !== null && f.stateful) ov[f.key] = f.view === undefined ? v : f.view(v, cur[f.key]);
    }
  } catch (e) {
    throw withSeg(e, (fs[i] as FieldPlan).key);
  }
  // QEMU runs the subsection loop for every VMSD, even one without subsections: an unknown name that matches
  // the prefix fails the load there too.
  const subs = decodeSubs(r, plan, root);
  return { plan, vals, subs, start, offs, version: plan.version };
}

/** Checks a stream version against a description's `[minVersion, version]`. @internal */
export function checkVersion(desc: LevelDesc, version: number, offset: number): void {
  if (version > desc.version) {
    throw streamError(
      "VERSION_TOO_NEW",
      `Cannot load "${desc.name}": stream version ${version} is newer than supported version ${desc.version}`,
      offset,
    );
  }
  if (version < desc.minVersion) {
    throw streamError(
      "VERSION_TOO_OLD",
      `Cannot load "${desc.name}": stream version ${version} is older than the minimum version ${desc.minVersion}`,
      offset,
    );
  }
}

/**
 * QEMU `vmstate_subsection_load`: while the next byte is 0x05, the name is longer than the parent's and starts
 * with it, look it up (unknown: `SUBSECTION_MISMATCH`), then load it with the version from its header. Any other
 * next byte ends the loop without error. Ferry also rejects a subsection sent twice.
 */
function decodeSubs(r: ByteReader, plan: LevelPlan, root: Loose): DSub[] | null {
  let out: DSub[] | null = null;
  const pname = plan.desc.nameBytes;
  for (;;) {
    if (r.available === 0 && r.sourceEnded) break;
    if (r.peekU8(0) !== SUBSECTION_MARKER) break;
    const len = r.peekU8(1);
    if (len < pname.length + 1) break;
    // Every subsection's name starts with the parent's, so a name that matches one also passes the prefix rule:
    // the names are compared first and the prefix only when none matched. Both compare bytes in order and stop at
    // the first difference, so no byte is peeked that the prefix-first order would not peek.
    let found: SubPlan | undefined;
    for (const s of plan.subs) {
      if (s.desc.nameBytes.length === len && r.peekIs(2, s.desc.nameBytes)) {
        found = s;
        break;
      }
    }
    if (found === undefined && !r.peekIs(2, pname)) break;
    const at = r.offset;
    if (found === undefined) unknownSub(r, plan, len);
    if (out !== null) subTwice(out, found, plan, at);
    const sub = found;
    try {
      r.skip(2 + len);
      const version = r.u32();
      checkVersion(sub.desc, version, at);
      const sp = sub.level(version);
      const t = root[sub.key];
      const dl = decodeLevel(r, sp, isObj(t) ? t : sp.proto, root);
      if (out === null) out = [];
      out.push({ sub, dl });
    } catch (e) {
      throw withSeg(e, sub.key);
    }
  }
  return out;
}

/** Throws `SUBSECTION_MISMATCH` for a subsection name (of `len` bytes, after the cursor) the level does not know. @internal */
export function unknownSub(r: ByteReader, plan: LevelPlan, len: number): never {
  const name = decodeText(r.peekBytes(2, len));
  throw streamError(
    "SUBSECTION_MISMATCH",
    `Cannot load "${plan.desc.name}": the stream has subsection "${name}", which this description does not know`,
    r.offset,
  );
}

/** Throws `SUBSECTION_MISMATCH` when `found` was already decoded for this instance (Ferry's rule). @internal */
export function subTwice(out: readonly DSub[], found: SubPlan, plan: LevelPlan, at: number): void {
  for (const x of out) {
    if (x.sub === found) {
      throw streamError(
        "SUBSECTION_MISMATCH",
        `Cannot load "${plan.desc.name}": subsection "${found.desc.name}" appears twice`,
        at,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------- check

function mismatch(plan: LevelPlan, f: FieldPlan, cur: unknown, v: unknown, offset: number | undefined) {
  return new MigrationError(
    "FIELD_MISMATCH",
    `Cannot load "${plan.desc.name}": field "${f.entry.vmdescName}" is ${show(v)} in the stream but ${show(cur)} here`,
    { offset },
  );
}

/**
 * Runs every equal and validate check of a decoded instance (nested structs and present subsections included)
 * against `obj` without writing anything. Validate predicates see `obj` overlaid with the values decoded up to
 * their position, as QEMU's do. @internal
 */
export function checkLevel(dl: DLevel, obj: Loose, root: Loose): void {
  const plan = dl.plan;
  if (plan.hasChecks) {
    const fs = plan.fields;
    const vals = dl.vals;
    const ov: LooseMut | null = plan.hasValidate ? { ...obj } : null;
    let i = 0;
    try {
      for (; i < fs.length; i++) {
        const f = fs[i] as FieldPlan;
        const off = dl.offs?.[i];
        if (f.validate !== undefined) {
          if (!runPredicate(f.validate, ov as Loose, dl.version, "load", f.key, "validate", off)) {
            throw new MigrationError(
              "VALIDATION_FAILED",
              `Cannot load "${plan.desc.name}": validation "${f.entry.vmdescName}" failed`,
              { offset: off },
            );
          }
          continue;
        }
        const v = bytesOf(vals[i]);
        if (v === undefined) continue;
        const c = obj[f.key];
        if (f.equal && v !== c) throw mismatch(plan, f, c, v, off);
        if (f.check !== undefined) f.check(c, v);
        if (ov !== null && f.stateful) ov[f.key] = f.view === undefined ? v : f.view(v, c);
      }
    } catch (e) {
      throw withSeg(e, (fs[i] as FieldPlan).key);
    }
  }
  if (dl.subs !== null) {
    for (const s of dl.subs) {
      // Nothing to check there (the common case): skip the keyed lookup of its state.
      if (!s.dl.plan.hasChecks && s.dl.subs === null) continue;
      const t = root[s.sub.key];
      try {
        checkLevel(s.dl, isObj(t) ? t : s.dl.plan.proto, root);
      } catch (e) {
        throw withSeg(e, s.sub.key);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------- apply

/**
 * Writes a decoded instance into `obj` in QEMU's order: `preLoad`, fields (nested structs run their own hooks in
 * place), subsections in stream order (each with its hooks), then `postLoad(versionId)`. @internal
 */
export function applyLevel(dl: DLevel, obj: LooseMut, root: LooseMut): void {
  const jit = jitFor(dl.plan);
  if (jit !== null) jit.applyLevel(dl, obj, root);
  else applyLevelClosures(dl, obj, root);
}

function applyLevelClosures(dl: DLevel, obj: LooseMut, root: LooseMut): void {
  const plan = dl.plan;
  const d = plan.desc;
  const hookState = d.isSubsection ? root : obj;
  if (d.preLoad !== undefined) runHook(d.preLoad, hookState, dl.version, "load", d.name, "preLoad", dl.start);
  applyFields(plan, obj, dl.vals);
  if (dl.subs !== null) {
    for (const s of dl.subs) {
      let t = root[s.sub.key];
      if (!isObj(t)) {
        t = s.dl.plan.init();
        root[s.sub.key] = t;
      }
      try {
        applyLevel(s.dl, t, root);
      } catch (e) {
        throw withSeg(e, s.sub.key);
      }
    }
  }
  if (d.postLoad !== undefined) runHook(d.postLoad, hookState, dl.version, "load", d.name, "postLoad", dl.start);
}

function applyFields(plan: LevelPlan, obj: LooseMut, vals: unknown[]): void {
  const fs = plan.fields;
  const appliers = plan.appliers;
  const n = vals.length;
  let i = 0;
  try {
    for (; i < n; i++) {
      const v = vals[i];
      if (v !== undefined) (appliers[i] as (o: LooseMut, v: unknown) => void)(obj, v);
    }
  } catch (e) {
    throw withSeg(e, (fs[i] as FieldPlan).key);
  }
}

/** A plain object with a decoded level's values laid over `base` (what predicates see for a struct). @internal */
export function materialize(dl: DLevel, base: unknown): LooseMut {
  const o: LooseMut = isObj(base) ? { ...base } : dl.plan.init();
  const fs = dl.plan.fields;
  for (let i = 0; i < fs.length; i++) {
    const v = bytesOf(dl.vals[i]);
    const f = fs[i] as FieldPlan;
    if (v === undefined || !f.stateful) continue;
    o[f.key] = f.view === undefined ? v : f.view(v, o[f.key]);
  }
  return o;
}

registerWalkers({
  $saveLevel: saveLevel,
  $decodeLevel: decodeLevel,
  $applyLevel: applyLevel,
  $applyClosures: applyLevelClosures,
  $subState: subState,
  $checkVersion: checkVersion,
  $unknownSub: unknownSub,
  $twice: subTwice,
});
