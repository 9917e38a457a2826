/**
 * Finding the vmdesc JSON trailer from the end of a stream, as QEMU's `scripts/analyze-migration.py` does: read
 * the tail, take the last NUL byte, the first `{` after it is the JSON's start, and the five bytes before it must
 * be `06` + be32 length. The trailer is then checked to end exactly at the end of the stream, and its JSON shape
 * is validated before anything uses it.
 *
 * @module
 */

import { MigrationError } from "../errors.js";
import { readExact } from "./cursor.js";
import type { RandomAccessSource } from "./source.js";

/** The most of the stream's tail searched for the trailer (analyze-migration.py reads the last 10 MiB). */
export const TRAILER_SEARCH_BYTES = 10 * 1024 * 1024;
/** The largest vmdesc JSON accepted: 10 MiB (QEMU's for a large machine is well under 1 MiB). */
export const MAX_VMDESC_BYTES = TRAILER_SEARCH_BYTES - 5;
/** Nesting cap for vmdesc structs and subsections. */
export const MAX_VMDESC_DEPTH = 64;

/** A JSON object from the vmdesc. */
export type JsonObject = { readonly [key: string]: unknown };

/** The parsed trailer. */
export interface VmdescTrailer {
  /** Stream offset of the `06` byte. */
  readonly offset: number;
  /** Length of the JSON text in bytes. */
  readonly length: number;
  /** The JSON text. */
  readonly text: string;
  /** The parsed document: `{page_size, devices, configuration?}`. */
  readonly desc: JsonObject;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

/**
 * Finds and parses the vmdesc trailer.
 *
 * @param src The stream.
 * @returns The trailer, or undefined when the stream has none (QEMU's heuristic finds nothing).
 * @throws MigrationError `BAD_STREAM` when a trailer is found but its JSON is malformed or of the wrong shape.
 */
export function findTrailer(src: RandomAccessSource): VmdescTrailer | undefined {
  const size = src.size;
  const start = Math.max(0, size - TRAILER_SEARCH_BYTES);
  const tail = readExact(src, start, size - start);
  const nul = tail.lastIndexOf(0);
  const brace = tail.indexOf(0x7b, nul + 1);
  if (brace < 5) return undefined;
  const at = start + brace - 5;
  if (tail[brace - 5] !== 0x06) return undefined;
  const dv = new DataView(tail.buffer, tail.byteOffset + brace - 4, 4);
  const length = dv.getUint32(0);
  // QEMU writes nothing after the trailer; anything else is a false match of the heuristic.
  if (brace + length !== tail.length) return undefined;
  const text = utf8.decode(tail.subarray(brace));
  let desc: unknown;
  try {
    desc = JSON.parse(text);
  } catch (e) {
    throw new MigrationError("BAD_STREAM", `Cannot parse the vmdesc trailer: ${(e as Error).message}`, {
      path: ["vmdesc"],
      offset: at,
      cause: e,
    });
  }
  validateVmdesc(desc, at);
  return { offset: at, length, text, desc: desc as JsonObject };
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function bad(what: string, path: (string | number)[], offset: number): never {
  throw new MigrationError("BAD_STREAM", `Cannot use the vmdesc trailer: ${what}`, {
    path: ["vmdesc", ...path],
    offset,
  });
}

/** Checks a vmsd-like object: `fields` array of field objects, optional `subsections` array. */
function validateVmsd(v: JsonObject, path: (string | number)[], offset: number, depth: number): void {
  if (depth > MAX_VMDESC_DEPTH) bad(`nesting deeper than ${MAX_VMDESC_DEPTH}`, path, offset);
  const fields = v.fields;
  if (!Array.isArray(fields)) bad(`"fields" is not a list`, path, offset);
  fields.forEach((f: unknown, i: number) => {
    if (!isObject(f)) bad("a field is not an object", [...path, i], offset);
    if (typeof f.name !== "string") bad(`field ${i} has no "name"`, [...path, i], offset);
    const fp = [...path, f.name];
    if (f.type !== undefined && typeof f.type !== "string") bad(`"type" is not a string`, fp, offset);
    if (f.type === "struct") {
      if (!isObject(f.struct)) bad(`struct field has no "struct" object`, fp, offset);
      validateVmsd(f.struct, fp, offset, depth + 1);
    } else if (f.type !== "capability") {
      const s = f.size;
      if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 0) bad(`field has no valid "size"`, fp, offset);
    }
    if (f.array_len !== undefined) {
      const n = f.array_len;
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0 || n > 1 << 24) {
        bad(`"array_len" is not a count`, fp, offset);
      }
    }
  });
  if (v.subsections !== undefined) {
    const subs = v.subsections;
    if (!Array.isArray(subs)) bad(`"subsections" is not a list`, path, offset);
    subs.forEach((s: unknown, i: number) => {
      if (!isObject(s)) bad("a subsection is not an object", [...path, i], offset);
      validateVmsd(s, [...path, typeof s.vmsd_name === "string" ? s.vmsd_name : i], offset, depth + 1);
    });
  }
}

/**
 * Validates the shape of a parsed vmdesc document.
 *
 * @param desc The parsed JSON.
 * @param offset Stream offset of the trailer, for errors.
 * @throws MigrationError `BAD_STREAM` naming the first bad item.
 */
export function validateVmdesc(desc: unknown, offset: number): asserts desc is JsonObject {
  if (!isObject(desc)) bad("the document is not an object", [], offset);
  const ps = desc.page_size;
  if (typeof ps !== "number" || ps < 512 || ps > 1 << 24 || (ps & (ps - 1)) !== 0) {
    bad(`"page_size" is not a power of two`, ["page_size"], offset);
  }
  const devices = desc.devices;
  if (!Array.isArray(devices)) bad(`"devices" is not a list`, ["devices"], offset);
  devices.forEach((d: unknown, i: number) => {
    if (!isObject(d)) bad("a device is not an object", ["devices", i], offset);
    if (typeof d.name !== "string") bad(`device ${i} has no "name"`, ["devices", i], offset);
    if (typeof d.instance_id !== "number") bad(`device has no "instance_id"`, [d.name], offset);
    validateVmsd(d, [d.name], offset, 0);
  });
  if (desc.configuration !== undefined) {
    if (!isObject(desc.configuration)) bad(`"configuration" is not an object`, ["configuration"], offset);
    validateVmsd(desc.configuration, ["configuration"], offset, 0);
  }
}
