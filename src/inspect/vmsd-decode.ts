/**
 * Decoding a device section's bytes with its vmdesc entry, into the values analyze-migration.py prints: integers
 * as zero-padded hex strings (`"0x0000002a"`, negative signed values as `"0xffffffff (-1)"`), booleans as JSON
 * booleans, every other type as space-separated hex bytes, structs and subsections as objects; compressed arrays
 * (`array_len`) and repeated names become lists.
 *
 * The vmdesc `size`s delimit the section: a section whose bytes do not match its vmdesc fails at its footer.
 *
 * @module
 */

import { MigrationError } from "../errors.js";
import type { Cursor } from "./cursor.js";
import { type JsonObject, MAX_VMDESC_DEPTH } from "./trailer.js";

/** A decoded value, shaped like analyze-migration.py's JSON output. */
export type AnalyzeValue = string | boolean | AnalyzeValue[] | AnalyzeObject;
/** A decoded struct or device: field and subsection names to values, in stream order. */
export interface AnalyzeObject {
  [key: string]: AnalyzeValue;
}

/** The most values one device section may decode to (a hostile vmdesc could ask for millions of empty fields). */
export const MAX_VALUES_PER_SECTION = 1 << 20;

const SIGNED = new Set(["int8", "int16", "int32", "int64", "int32 equal", "int32 le", "int64 equal"]);
const SIGNED_NARROW = new Set(["uint8 equal", "uint16 equal"]);
const UNSIGNED = new Set(["uint8", "uint16", "uint32", "uint64", "uint32 equal"]);

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Bytes as analyze-migration.py's generic fields print them: `"0a 1b 2c"`. */
export function hexSpaced(b: Uint8Array): string {
  if (b.length === 0) return "";
  const parts = new Array<string>(b.length);
  for (let i = 0; i < b.length; i++) parts[i] = HEX[b[i] as number] as string;
  return parts.join(" ");
}

function formatInt(b: Uint8Array, signed: boolean): string {
  let hex = "";
  for (let i = 0; i < b.length; i++) hex += HEX[b[i] as number];
  const text = `0x${hex === "" ? "0" : hex}`;
  if (signed && b.length > 0 && ((b[0] as number) & 0x80) !== 0) {
    const v = BigInt(`0x${hex}`) - (1n << BigInt(8 * b.length));
    return `${text} (${v})`;
  }
  return text;
}

/** Decoding context: counts values against {@link MAX_VALUES_PER_SECTION}. */
interface Ctx {
  values: number;
  readonly section: string;
}

function put(out: AnalyzeObject, lists: Set<string>, name: string, v: AnalyzeValue): void {
  if (!Object.hasOwn(out, name)) {
    out[name] = v;
  } else if (lists.has(name)) {
    (out[name] as AnalyzeValue[]).push(v);
  } else {
    out[name] = [out[name] as AnalyzeValue, v];
    lists.add(name);
  }
}

function readField(c: Cursor, f: JsonObject, path: (string | number)[], ctx: Ctx, depth: number): AnalyzeValue {
  if (++ctx.values > MAX_VALUES_PER_SECTION) {
    throw new MigrationError(
      "LIMIT_EXCEEDED",
      `Cannot decode "${ctx.section}": over ${MAX_VALUES_PER_SECTION} values`,
      {
        path,
        offset: c.offset,
      },
    );
  }
  const type = typeof f.type === "string" ? f.type : "unknown";
  if (type === "struct") return decodeVmsd(c, f.struct as JsonObject, path, ctx, depth + 1);
  if (type === "capability") return c.str();
  const size = f.size as number;
  const at = c.offset;
  const b = c.bytes(size);
  if (type === "bool") {
    if (size === 0) throw new MigrationError("BAD_STREAM", `Cannot decode a bool of size 0`, { path, offset: at });
    return b[0] !== 0;
  }
  if (SIGNED.has(type) || SIGNED_NARROW.has(type)) return formatInt(b, true);
  if (UNSIGNED.has(type)) return formatInt(b, false);
  if (type === "nullptr") {
    if (size !== 1 || b[0] !== 0x30) {
      throw new MigrationError("BAD_STREAM", `Cannot decode a NULL pointer marker: expected byte 0x30`, {
        path,
        offset: at,
      });
    }
    return "nullptr";
  }
  return hexSpaced(b);
}

/**
 * Decodes a vmsd (a device entry, a struct or a subsection description) at the cursor.
 *
 * @param c The cursor, at the first field's bytes.
 * @param desc The vmdesc object (validated by `validateVmdesc`).
 * @param path The error path so far (section idstr first).
 * @param ctx Decoding limits.
 * @param depth Nesting depth.
 * @returns The decoded object.
 * @throws MigrationError `TRUNCATED`, `SUBSECTION_MISMATCH` (a listed subsection is not in the stream),
 *   `LIMIT_EXCEEDED`, `BAD_STREAM`.
 */
export function decodeVmsd(
  c: Cursor,
  desc: JsonObject,
  path: (string | number)[],
  ctx: { values: number; readonly section: string },
  depth = 0,
): AnalyzeObject {
  if (depth > MAX_VMDESC_DEPTH) {
    throw new MigrationError("LIMIT_EXCEEDED", `Cannot decode "${ctx.section}": nesting too deep`, {
      path,
      offset: c.offset,
    });
  }
  const out: AnalyzeObject = Object.create(null) as AnalyzeObject;
  const lists = new Set<string>();
  for (const f of desc.fields as JsonObject[]) {
    const name = f.name as string;
    const count = typeof f.array_len === "number" ? Math.max(1, f.array_len) : 1;
    for (let k = 0; k < count; k++) {
      const fp = count > 1 ? [...path, name, k] : [...path, name];
      let v: AnalyzeValue;
      try {
        v = readField(c, f, fp, ctx, depth);
      } catch (e) {
        // Cursor errors (TRUNCATED, LIMIT_EXCEEDED) know only the offset: add the field path.
        if (e instanceof MigrationError && (e.path === undefined || e.path.length === 0)) throw e.withContext(fp);
        throw e;
      }
      put(out, lists, name, v);
    }
  }
  const subs = desc.subsections as JsonObject[] | undefined;
  if (subs !== undefined) {
    for (const sub of subs) {
      const at = c.offset;
      const want = typeof sub.vmsd_name === "string" ? sub.vmsd_name : "?";
      if (c.remaining < 1 || c.u8() !== 0x05) {
        throw new MigrationError(
          "SUBSECTION_MISMATCH",
          `Cannot decode "${ctx.section}": subsection "${want}" listed in the vmdesc is not in the stream`,
          { path: [...path, want], offset: at },
        );
      }
      const name = c.str();
      c.u32();
      out[name] = decodeVmsd(c, sub, [...path, name], ctx, depth + 1);
    }
  }
  return out;
}
