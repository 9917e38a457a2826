/**
 * Saving one device instance: QEMU's `vmstate_save_state` for a top-level description.
 *
 * @module
 */

import { isMigrationError, MigrationError } from "../errors.js";
import type { ByteWriter } from "../wire/byte-writer.js";
import { runPredicate, withSeg } from "./_errors.js";
import { acquireSaveBuffer, releaseSaveBuffer } from "./_save-buffer.js";
import { saveLevel } from "./_walk.js";
import { compile } from "./compile.js";
import { saveLevelVmdesc } from "./describe.js";
import { type AnyDevice, levelOf } from "./device.js";
import type { Loose } from "./infer.js";
import type { VmdescVmsd } from "./vmdesc-json.js";

/** Options of {@link saveDevice}. */
export interface SaveOptions {
  /** Also build QEMU's vmdesc object for this instance. Default false. */
  readonly vmdesc?: boolean;
}

function finish(e: unknown, dev: AnyDevice, offset: number): unknown {
  if (!isMigrationError(e)) {
    // A bug in a hook or predicate that escaped wrapping, or a non-Error throw: report it as a migration error.
    const detail = e instanceof Error ? e.message : String(e);
    return new MigrationError("FIELD_OUT_OF_RANGE", `Cannot save "${dev.name}": ${detail}`, {
      path: [dev.name],
      offset,
      cause: e,
    });
  }
  const withPath = withSeg(e, dev.name);
  if (isMigrationError(withPath) && withPath.offset === undefined && withPath.code !== "TRANSPORT") {
    return new MigrationError(withPath.code, withPath.message, { path: withPath.path, offset, cause: withPath.cause });
  }
  return withPath;
}

/**
 * Saves one instance of a device with its current version: runs `preSave`, writes the fields and the needed
 * subsections (each with its own hooks), runs `postSave` (also when writing failed after `preSave` succeeded), in
 * QEMU's order. The bytes are staged and reach `w` in one piece only when the whole save succeeded, so a failed
 * save writes nothing.
 *
 * @example
 * ```ts
 * const desc = saveDevice(w, kbd, state, { vmdesc: true });
 * // desc: {vmsd_name: "pckbd", version: 3, fields: [...], subsections?: [...]}
 * ```
 *
 * @param w Where the bytes go.
 * @param dev The description (made by `device()`).
 * @param state The instance's state.
 * @param options `vmdesc: true` to also return QEMU's vmdesc object.
 * @returns The vmdesc object `{vmsd_name, version, fields, subsections?}` when asked for, else `undefined`.
 * @throws MigrationError `HOOK_FAILED`, `FIELD_OUT_OF_RANGE` (a value that does not fit its field),
 *   `VALIDATION_FAILED`; `path` starts with the device name, `offset` is where the field would have started.
 */
export function saveDevice(
  w: ByteWriter,
  dev: AnyDevice,
  state: object,
  options?: SaveOptions,
): VmdescVmsd | undefined {
  const desc = levelOf(dev);
  const plan = compile(desc, desc.version);
  const sb = acquireSaveBuffer();
  const obj = state as Loose;
  let vmdesc: VmdescVmsd | undefined;
  try {
    if (options?.vmdesc === true) vmdesc = saveLevelVmdesc(sb, plan, obj, obj);
    else saveLevel(sb, plan, obj, obj);
  } catch (e) {
    const at = w.offset + sb.pos;
    releaseSaveBuffer(sb);
    throw finish(e, dev, at);
  }
  // The writer copies a payload that fits its staging buffer; one that does not may be handed to the sink as a view
  // (ByteWriter.bytes), which then counts in `inFlight`. So the staging buffer goes back to the pool only when the
  // writer's in-flight count did not move (it certainly copied); otherwise it is left to the writer. Copying every
  // payload out instead (`slice`) cost about 400 ns per device, as much as a hand-written encoder's whole save.
  // The view itself is cached by the staging buffer (see SaveBuffer.written): it is only reused while the buffer
  // stays in the pool, that is while no writer kept it.
  const before = w.inFlight;
  w.bytes(sb.written());
  if (w.inFlight === before) releaseSaveBuffer(sb);
  return vmdesc;
}

/**
 * QEMU `vmstate_section_needed` for a top-level description: whether the savevm layer should send a section for
 * this instance (the description's `needed`, default true).
 *
 * @throws MigrationError `HOOK_FAILED` when `needed` throws.
 */
export function sectionNeeded(dev: AnyDevice, state: object): boolean {
  const needed = (dev as { readonly def?: { readonly needed?: (s: object) => boolean } }).def?.needed;
  if (needed === undefined) return true;
  try {
    return runPredicate(needed, state, 0, "save", dev.name, "needed", undefined);
  } catch (e) {
    throw withSeg(e, dev.name);
  }
}
