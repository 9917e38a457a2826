/**
 * Legacy handlers: open-coded save and load functions instead of a description (QEMU's `register_savevm_live`
 * path, `SaveVMHandlers.save_state`/`load_state`).
 *
 * The load side is split like {@link decodeDevice}/{@link applyDevice}: `load(r, versionId)` must be a pure,
 * synchronous decoder (the reader may re-run it from the start when more bytes arrive), and `apply(state, value)`
 * writes what it returned.
 *
 * @module
 */

import { isMigrationError, MigrationError } from "../errors.js";
import type { ByteReader } from "../wire/byte-reader.js";
import type { ByteWriter } from "../wire/byte-writer.js";
import { withSeg } from "./_errors.js";
import type { HookResult } from "./infer.js";

/** The definition passed to {@link legacy}. */
export interface LegacyDef<T, D> {
  /** The version written in the section header. */
  readonly version: number;
  /** The oldest stream version `load` accepts. Default: `version`. */
  readonly minVersion?: number;
  /** Higher is saved first. Default 0. */
  readonly priority?: number;
  /** Writes the instance's bytes (QEMU `save_state`). */
  save(w: ByteWriter, state: T): void;
  /** Reads them back: synchronous, no side effects, may be re-run (QEMU `load_state`, read half). */
  load(r: ByteReader, versionId: number): D;
  /** Writes what `load` returned into the state (QEMU `load_state`, write half). */
  apply(state: T, decoded: D): HookResult;
}

/** A legacy handler: what {@link legacy} returns. */
export interface Legacy<T = unknown, D = unknown> {
  readonly kind: "legacy";
  readonly name: string;
  readonly version: number;
  readonly minVersion: number;
  readonly priority: number;
  readonly def: LegacyDef<T, D>;
  /** Phantom: the state type, read by `Infer`. */
  readonly "~out"?: T;
}

/** Any legacy handler. */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds handlers of every state and decoded type.
export type AnyLegacy = Legacy<any, any>;

/**
 * Defines a legacy (open-coded) handler.
 *
 * @example
 * ```ts
 * const clock = vm.legacy("clock", {
 *   version: 1,
 *   save: (w, s: { ticks: bigint }) => { w.u64(s.ticks); },
 *   load: (r) => r.u64(),
 *   apply: (s, ticks) => { s.ticks = ticks; },
 * });
 * ```
 *
 * @throws TypeError for bad versions or missing functions.
 */
export function legacy<T, D>(name: string, def: LegacyDef<T, D>): Legacy<T, D> {
  if (typeof name !== "string" || name === "") throw new TypeError("Cannot define legacy handler: name must be set");
  const v = def?.version;
  const min = def?.minVersion ?? v;
  const prio = def?.priority ?? 0;
  const ok = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
  if (!ok(v) || !ok(min) || min > v) {
    throw new TypeError(
      `Cannot define legacy handler "${name}": versions must be integers with 0 ≤ minVersion ≤ version`,
    );
  }
  if (!ok(prio)) throw new TypeError(`Cannot define legacy handler "${name}": priority must be an integer ≥ 0`);
  for (const k of ["save", "load", "apply"] as const) {
    if (typeof def[k] !== "function")
      throw new TypeError(`Cannot define legacy handler "${name}": ${k} is not a function`);
  }
  return Object.freeze({
    kind: "legacy",
    name,
    version: v,
    minVersion: min,
    priority: prio,
    def: Object.freeze({ ...def }),
  });
}

/** Whether a registry entry is a legacy handler. */
export function isLegacy(x: { readonly kind: string }): x is AnyLegacy {
  return x.kind === "legacy";
}

/**
 * QEMU's vmdesc body for a legacy section (`vmstate_save_old_style`): `{size, fields: [{name: "data", size, type:
 * "buffer"}]}`, keys in QEMU's order; savevm puts `name` and `instance_id` in front.
 */
export interface VmdescLegacy {
  readonly size: number;
  readonly fields: readonly [{ readonly name: "data"; readonly size: number; readonly type: "buffer" }];
}

function wrap(e: unknown, h: AnyLegacy, op: "save" | "load", offset: number): unknown {
  if (isMigrationError(e)) {
    const x = withSeg(e, h.name);
    if (isMigrationError(x) && x.offset === undefined)
      return new MigrationError(x.code, x.message, { path: x.path, offset, cause: x.cause });
    return x;
  }
  if (typeof e !== "object" || !(e instanceof Error)) return e; // the reader's underflow sentinel
  return new MigrationError("HOOK_FAILED", `Cannot ${op} "${h.name}": the legacy handler failed: ${e.message}`, {
    path: [h.name],
    offset,
    cause: e,
  });
}

/**
 * Runs a legacy handler's `save` and measures what it wrote.
 *
 * @returns The vmdesc body when `options.vmdesc` is true.
 */
export function saveLegacy(
  w: ByteWriter,
  h: AnyLegacy,
  state: unknown,
  options: { readonly vmdesc?: boolean } = {},
): VmdescLegacy | undefined {
  const start = w.offset;
  try {
    h.def.save(w, state);
  } catch (e) {
    throw wrap(e, h, "save", w.offset);
  }
  if (options.vmdesc !== true) return undefined;
  const size = w.offset - start;
  return { size, fields: [{ name: "data", size, type: "buffer" }] };
}

/** A value decoded by a legacy handler. */
export interface DecodedLegacy {
  readonly device: string;
  readonly version: number;
  readonly offset: number;
  readonly value: unknown;
}

/**
 * Checks the version and runs the handler's pure `load`. Rethrows the reader's underflow untouched.
 *
 * @throws MigrationError `VERSION_TOO_NEW`/`VERSION_TOO_OLD`, or what `load` threw (`HOOK_FAILED` for non-migration
 *   errors).
 */
export function decodeLegacy(r: ByteReader, h: AnyLegacy, versionId: number): DecodedLegacy {
  const at = r.offset;
  if (versionId > h.version) {
    throw new MigrationError(
      "VERSION_TOO_NEW",
      `Cannot load "${h.name}": stream version ${versionId} is newer than supported version ${h.version}`,
      { path: [h.name], offset: at },
    );
  }
  if (versionId < h.minVersion) {
    throw new MigrationError(
      "VERSION_TOO_OLD",
      `Cannot load "${h.name}": stream version ${versionId} is older than the minimum version ${h.minVersion}`,
      { path: [h.name], offset: at },
    );
  }
  try {
    return { device: h.name, version: versionId, offset: at, value: h.def.load(r, versionId) };
  } catch (e) {
    throw wrap(e, h, "load", at);
  }
}

/** Runs the handler's `apply`; a throw or returned Error becomes `HOOK_FAILED`. */
export function applyLegacy(h: AnyLegacy, state: unknown, decoded: DecodedLegacy): void {
  let res: HookResult;
  try {
    res = h.def.apply(state, decoded.value);
  } catch (e) {
    throw wrap(e, h, "load", decoded.offset);
  }
  if (res instanceof Error) throw wrap(res, h, "load", decoded.offset);
}

/** {@link decodeLegacy} then {@link applyLegacy}, over buffered bytes. */
export function loadLegacy(r: ByteReader, h: AnyLegacy, state: unknown, versionId: number): void {
  applyLegacy(h, state, decodeLegacy(r, h, versionId));
}
