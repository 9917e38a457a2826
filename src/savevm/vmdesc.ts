/**
 * The vmdesc JSON trailer: QEMU's compact JSON writer format and the trailer's top-level shape.
 *
 * QEMU's `JSONWriter` (non-pretty) puts `", "` between items and `": "` after keys, with no newlines; integers are
 * printed in decimal. Key order is insertion order, which JS objects keep for string keys.
 *
 * @module
 */

/** A JSON value as the vmdesc holds it. */
export type VmdescValue = string | number | boolean | null | VmdescValue[] | { [key: string]: VmdescValue };

/** One entry of the trailer's `devices` list. */
export interface VmdescDevice {
  readonly name: string;
  readonly instance_id: number;
  readonly [key: string]: VmdescValue;
}

/** The whole trailer (QEMU 7.2 form). */
export interface Vmdesc {
  readonly page_size: number;
  readonly devices: VmdescDevice[];
}

function quote(s: string): string {
  // QEMU escapes ", \, control characters as \uXXXX (and \b \f \n \r \t), like JSON.stringify.
  return JSON.stringify(s);
}

/**
 * Writes a value in QEMU's compact JSON form.
 *
 * @example
 * ```ts
 * stringifyQemuJson({ page_size: 4096, devices: [] }); // '{"page_size": 4096, "devices": []}'
 * ```
 */
export function stringifyQemuJson(v: VmdescValue): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "string":
      return quote(v);
    case "number":
      if (!Number.isFinite(v)) throw new RangeError(`Cannot write JSON number ${v}`);
      return String(v);
    case "boolean":
      return v ? "true" : "false";
    default:
      break;
  }
  if (Array.isArray(v)) return `[${v.map(stringifyQemuJson).join(", ")}]`;
  const parts: string[] = [];
  for (const k of Object.keys(v)) {
    const item = (v as Record<string, VmdescValue>)[k];
    if (item === undefined) continue;
    parts.push(`${quote(k)}: ${stringifyQemuJson(item)}`);
  }
  return `{${parts.join(", ")}}`;
}
