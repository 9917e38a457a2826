/**
 * QEMU's vmdesc JSON: the types of the objects `saveDevice` produces, and a writer with QEMU's compact formatting.
 *
 * QEMU's `JSONWriter` (qobject/json-writer.c, non-pretty) puts `", "` between items and `": "` after keys, no
 * newlines, prints integers in decimal, and escapes strings with `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t` and
 * `\uXXXX` (upper-case hex; surrogate pairs above U+FFFF) for every other code point below 0x20 or from 0x7F up.
 *
 * @module
 */

/**
 * The vmdesc object of one VMSD instance, keys in QEMU's order. The savevm layer puts `name` and `instance_id` in
 * front for a device entry.
 */
export interface VmdescVmsd {
  readonly vmsd_name: string;
  readonly version: number;
  readonly fields: readonly VmdescField[];
  /** Only present when at least one subsection was sent. */
  readonly subsections?: readonly VmdescVmsd[];
}

/**
 * One field entry, keys in QEMU's order: `name`, `array_len` (compressible array) or `index` (one entry per
 * element), `type`, `struct` (structs; `{}` for a NULL slot), the nested description's keys written straight in
 * (`tmp`), `size` (bytes actually written for that element, or for the whole field).
 */
export interface VmdescField {
  readonly name: string;
  readonly array_len?: number;
  readonly index?: number;
  readonly type: string;
  readonly struct?: VmdescVmsd | { readonly [key: string]: never };
  readonly vmsd_name?: string;
  readonly version?: number;
  readonly fields?: readonly VmdescField[];
  readonly subsections?: readonly VmdescVmsd[];
  /**
   * Lists (`qtailq`/`qlist`): QEMU writes each element's `vmsd_name`, `version`, `fields` (and `subsections`)
   * straight into the field object, one after another, so the keys repeat. {@link stringifyVmdesc} splices these
   * objects in place; an empty list writes nothing.
   */
  readonly "~inline"?: readonly VmdescVmsd[];
  readonly size: number;
}

/** The key whose array of objects {@link stringifyVmdesc} splices into the enclosing object. */
export const INLINE_KEY = "~inline";

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, "0");
}

/** QEMU `quoted_str`. */
function quote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    let cp = s.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdbff) {
      const lo = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        i++;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      } else cp = 0xfffd;
    } else if (cp >= 0xdc00 && cp <= 0xdfff) cp = 0xfffd;
    switch (cp) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += "\\\\";
        break;
      case 0x08:
        out += "\\b";
        break;
      case 0x0c:
        out += "\\f";
        break;
      case 0x0a:
        out += "\\n";
        break;
      case 0x0d:
        out += "\\r";
        break;
      case 0x09:
        out += "\\t";
        break;
      default:
        if (cp > 0xffff) {
          out += `\\u${hex4(0xd800 + ((cp - 0x10000) >> 10))}\\u${hex4(0xdc00 + ((cp - 0x10000) & 0x3ff))}`;
        } else if (cp < 0x20 || cp >= 0x7f) out += `\\u${hex4(cp)}`;
        else out += String.fromCharCode(cp);
    }
  }
  return `${out}"`;
}

function entries(o: object, out: string[]): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (k === INLINE_KEY) {
      if (!Array.isArray(v)) throw new TypeError(`Cannot write vmdesc: "${INLINE_KEY}" must be an array of objects`);
      for (const inner of v) entries(inner as object, out);
      continue;
    }
    out.push(`${quote(k)}: ${value(v)}`);
  }
}

function value(v: unknown): string {
  switch (typeof v) {
    case "string":
      return quote(v);
    case "number":
      if (!Number.isInteger(v)) throw new TypeError(`Cannot write vmdesc: ${v} is not an integer`);
      return String(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
    case "object": {
      if (v === null) return "null";
      if (Array.isArray(v)) return `[${v.map(value).join(", ")}]`;
      const parts: string[] = [];
      entries(v, parts);
      return `{${parts.join(", ")}}`;
    }
    default:
      throw new TypeError(`Cannot write vmdesc: a ${typeof v} is not JSON`);
  }
}

/**
 * Writes a value as QEMU's compact JSON writer does (the vmdesc trailer's format): `", "` between items,
 * `": "` after keys, no newlines, QEMU's string escapes. Objects keep their key order; a `"~inline"` key's
 * objects are spliced into the enclosing object (QEMU's repeated list keys).
 *
 * @example
 * ```ts
 * stringifyVmdesc({ page_size: 4096, devices: [] }); // '{"page_size": 4096, "devices": []}'
 * ```
 *
 * @param v Strings, integers (number or bigint), booleans, null, arrays and plain objects.
 * @returns The JSON text.
 * @throws TypeError for non-integer numbers and non-JSON values.
 */
export function stringifyVmdesc(v: unknown): string {
  return value(v);
}
