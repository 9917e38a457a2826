/**
 * Devices the inspector can decode without a vmdesc trailer: their layout is fixed, so a vmdesc-shaped entry
 * written here stands in for the stream's own. Callers may pass their own map (e.g. built from Ferry's
 * `stringifyVmdesc` of their devices) to the walker.
 *
 * @module
 */

import type { JsonObject } from "./trailer.js";

/** A vmdesc-shaped description: `vmsd_name`, `version`, `fields` with fixed `size`s, optional `subsections`. */
export type KnownDevice = JsonObject;

/**
 * Built-in descriptions, keyed by section idstr. QEMU 7.2 (and Ferry) layouts:
 * - `timer` (vmstate_timers v2): int64 cpu_ticks_offset, 8 unused bytes, int64 cpu_clock_offset;
 * - `globalstate` (v1): uint32 size, 100-byte runstate buffer.
 */
export const KNOWN_DEVICES: ReadonlyMap<string, KnownDevice> = new Map<string, KnownDevice>([
  [
    "timer",
    {
      vmsd_name: "timer",
      version: 2,
      fields: [
        { name: "cpu_ticks_offset", type: "int64", size: 8 },
        { name: "unused", type: "unused_buffer", size: 8 },
        { name: "cpu_clock_offset", type: "int64", size: 8 },
      ],
    },
  ],
  [
    "globalstate",
    {
      vmsd_name: "globalstate",
      version: 1,
      fields: [
        { name: "size", type: "uint32", size: 4 },
        { name: "runstate", type: "buffer", size: 100 },
      ],
    },
  ],
]);
