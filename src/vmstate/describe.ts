/**
 * The vmdesc walker: saves one instance exactly as the fast path does, and builds QEMU's vmdesc object for it as
 * QEMU 7.2's `vmstate_save_state_v` writes it (entries only for fields actually written, `array_len` for
 * compressible arrays, one `index` entry per element otherwise, `[k]` suffixes for repeated names, and the `size`
 * of the bytes actually written for that element).
 *
 * @module
 */

import { badValue, runPredicate, withSeg } from "./_errors.js";
import type { FieldPlan, LevelPlan } from "./_plan.js";
import type { SaveBuffer } from "./_save-buffer.js";
import { putSubHeader, saveLevel, subNeeded, subState, withSaveHooks } from "./_walk.js";
import { NULLPTR_MARKER } from "./compile.js";
import type { Loose } from "./infer.js";
import type { VmdescField, VmdescVmsd } from "./vmdesc-json.js";

type Mut = Record<string, unknown>;

/**
 * Saves one instance (hooks, fields, subsections in QEMU's order) and returns its vmdesc object
 * `{vmsd_name, version, fields, subsections?}`. @internal
 */
export function saveLevelVmdesc(sb: SaveBuffer, plan: LevelPlan, obj: Loose, root: Loose): VmdescVmsd {
  const fields: VmdescField[] = [];
  const out: Mut = { vmsd_name: plan.desc.name, version: plan.version, fields };
  withSaveHooks(plan, obj, root, () => {
    describeFields(sb, plan, obj, fields);
    const subs: VmdescVmsd[] = [];
    for (const s of plan.subs) {
      try {
        if (!subNeeded(s, root)) continue;
        const target = subState(s, root);
        putSubHeader(sb, s.desc);
        subs.push(saveLevelVmdesc(sb, s.level(s.desc.version), target, root));
      } catch (e) {
        throw withSeg(e, s.key);
      }
    }
    if (subs.length > 0) out.subsections = subs;
  });
  return out as unknown as VmdescVmsd;
}

function describeFields(sb: SaveBuffer, plan: LevelPlan, obj: Loose, out: VmdescField[]): void {
  const fs = plan.fields;
  let i = 0;
  try {
    for (; i < fs.length; i++) {
      const f = fs[i] as FieldPlan;
      if (f.test !== undefined && !runPredicate(f.test, obj, plan.version, "save", f.key, "test", undefined)) continue;
      describeField(sb, f, obj, out);
    }
  } catch (e) {
    throw withSeg(e, (fs[i] as FieldPlan).key);
  }
}

function describeField(sb: SaveBuffer, f: FieldPlan, obj: Loose, out: VmdescField[]): void {
  const vd = f.vd;
  if (vd === undefined) {
    // A validate entry: no bytes, no entry (QEMU: zero elements), but still checked.
    f.save(sb, obj);
    return;
  }
  const n = vd.count(obj);
  const kind = f.entry.field.kind;
  const indexed = kind === "array" || kind === "varray";
  let describing = true;
  let i = 0;
  try {
    for (; i < n; i++) {
      const v = vd.elemAt(obj, i);
      let entry: Mut | undefined;
      if (describing) {
        entry = { name: f.entry.vmdescName };
        if (n > 1) {
          if (vd.compressible) entry.array_len = n;
          else entry.index = i;
        }
        entry.type = vd.type;
      }
      const start = sb.pos;
      if (vd.inline === "list") {
        const a = v as unknown;
        const max = (f.entry.field as { readonly max: number }).max;
        // Invalid lists fail exactly as on the fast path.
        if (!Array.isArray(a) || a.length > max) f.save(sb, obj);
        const list = a as unknown[];
        const nested = vd.nested as LevelPlan;
        const inline: VmdescVmsd[] = [];
        let k = 0;
        try {
          for (; k < list.length; k++) {
            const el = list[k];
            if (typeof el !== "object" || el === null) throw badValue("struct", el, "is not an object");
            sb.u8(1);
            inline.push(saveLevelVmdesc(sb, nested, el as Loose, el as Loose));
          }
        } catch (e) {
          throw withSeg(e, k);
        }
        sb.u8(0);
        if (entry !== undefined) entry["~inline"] = inline;
      } else if (vd.inline === "tmp") {
        const t = (vd.tmpOf as (o: Loose) => Loose)(obj);
        const nested = saveLevelVmdesc(sb, vd.nested as LevelPlan, t, t);
        if (entry !== undefined) Object.assign(entry, nested);
      } else if (vd.nested !== undefined) {
        if (v === null) {
          sb.u8(NULLPTR_MARKER);
          if (entry !== undefined) entry.struct = {};
        } else {
          if (typeof v !== "object" || v === null) throw badValue("struct", v, "is not an object");
          const el = v as Loose;
          if (entry !== undefined) entry.struct = saveLevelVmdesc(sb, vd.nested, el, el);
          else saveLevel(sb, vd.nested, el, el);
        }
      } else {
        vd.putElem(sb, v);
      }
      if (entry !== undefined) {
        entry.size = sb.pos - start;
        out.push(entry as unknown as VmdescField);
        if (vd.compressible) describing = false;
      }
    }
  } catch (e) {
    throw indexed ? withSeg(e, i) : e;
  }
}
