/**
 * `check`: validates a whole stream (header, configuration, framing and footers, RAM records, each device
 * section's bytes against its vmdesc sizes, the trailer, and that the vmdesc and the sections list the same
 * devices) and returns a summary or the first {@link MigrationError}.
 *
 * @module
 */

import { isMigrationError, type MigrationError } from "../errors.js";
import type { RandomAccessSource } from "./source.js";
import type { JsonObject } from "./trailer.js";
import { type StreamSummary, type WalkOptions, walkStream } from "./walk.js";

/** The outcome of {@link checkSource}. */
export type CheckResult =
  | { readonly ok: true; readonly summary: StreamSummary; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly error: MigrationError };

/**
 * Checks a stream.
 *
 * @param src The stream.
 * @param options Known devices and progress.
 * @returns `{ok: true, summary}` or `{ok: false, error}`; other exceptions (I/O, bugs) are thrown.
 */
export function checkSource(
  src: RandomAccessSource,
  options: Pick<WalkOptions, "knownDevices" | "onProgress"> = {},
): CheckResult {
  try {
    const summary = walkStream(src, options);
    const warnings = [...summary.warnings];
    if (summary.trailer !== undefined) {
      const inStream = new Set(summary.devices.map((d) => `${d.idstr} (${d.instanceId})`));
      for (const d of summary.trailer.desc.devices as JsonObject[]) {
        const k = `${d.name as string} (${d.instance_id as number})`;
        if (!inStream.has(k)) warnings.push(`vmdesc lists device ${k} but the stream has no section for it`);
      }
    } else {
      warnings.push("the stream has no vmdesc trailer: devices were delimited with built-in descriptions");
    }
    if (summary.config === undefined) warnings.push("the stream has no configuration section");
    return { ok: true, summary, warnings };
  } catch (e) {
    if (isMigrationError(e)) return { ok: false, error: e };
    throw e;
  }
}
