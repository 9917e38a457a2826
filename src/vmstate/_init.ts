/**
 * Initial states: zeros, `false`, `0n`, `-1n` for timers (not armed), zeroed buffers of the declared size, empty
 * variable arrays and lists, `null` optional slots, and an object per struct and subsection.
 *
 * @module
 */

import type { LevelDesc } from "./device.js";
import type { AnyField } from "./fields.js";
import type { LooseMut } from "./infer.js";

/** The initial value of a field. @internal */
export function initialField(f: AnyField, nested: LevelDesc | undefined): unknown {
  switch (f.kind) {
    case "bool":
      return false;
    case "u8":
    case "u16":
    case "u32":
    case "i8":
    case "i16":
    case "i32":
    case "f64":
      return 0;
    case "u64":
    case "i64":
      return 0n;
    case "timer":
      return -1n;
    case "buffer":
      return new Uint8Array(f.size);
    case "vbuffer":
      return new Uint8Array(0);
    case "bitmap":
      return new Uint32Array(0);
    case "array": {
      const out = new Array<unknown>(f.length);
      for (let i = 0; i < f.length; i++) out[i] = initialField(f.elem as AnyField, nested);
      return out;
    }
    case "varray":
    case "list":
      return [];
    case "struct":
      return initialOf(nested as LevelDesc);
    case "optional":
      return null;
    case "local":
      return initialField(f.of as AnyField, nested);
    default:
      return undefined;
  }
}

/**
 * The initial state of a level: its stateful fields, plus (for devices) one object per subsection. @internal
 *
 * Built with `Object.fromEntries`, not by assigning computed keys one by one: V8 turns an object that gains more
 * than a dozen properties through keyed stores into a slow dictionary-mode object, which made every later field
 * access several times slower.
 */
export function initialOf(desc: LevelDesc): LooseMut {
  const entries: [string, unknown][] = [];
  for (const e of desc.entries) {
    const k = e.field.kind;
    if (k === "unused" || k === "validate" || k === "tmp") continue;
    entries.push([e.key, initialField(e.field, e.nested)]);
  }
  for (const s of desc.allSubs) entries.push([s.key, initialOf(s.desc)]);
  return Object.fromEntries(entries) as LooseMut;
}
