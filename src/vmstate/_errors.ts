/**
 * Error helpers shared by the vmstate walkers: path building on the way out, hook wrapping, value errors.
 *
 * @module
 */

import { type ErrorCode, isMigrationError, MigrationError } from "../errors.js";
import type { HookResult } from "./infer.js";

/**
 * Puts `seg` in front of a MigrationError's path (a new error; errors are immutable). Anything that is not a
 * MigrationError (the reader's underflow sentinel in particular) is returned as is, to be rethrown untouched.
 * Transport and cancellation errors keep no field path. @internal
 */
export function withSeg(e: unknown, seg: string | number): unknown {
  if (!isMigrationError(e) || e.code === "TRANSPORT" || e.code === "CANCELLED") return e;
  return new MigrationError(e.code, e.message, { path: [seg, ...(e.path ?? [])], offset: e.offset, cause: e.cause });
}

/** Adds an offset to a MigrationError that has none. @internal */
export function withOffset(e: unknown, offset: number): unknown {
  if (!isMigrationError(e) || e.offset !== undefined) return e;
  return new MigrationError(e.code, e.message, { path: e.path, offset, cause: e.cause });
}

/** A bad value in the state being saved. @internal */
export function badValue(what: string, v: unknown, detail = "is out of range"): MigrationError {
  return new MigrationError("FIELD_OUT_OF_RANGE", `Cannot save ${what}: ${show(v)} ${detail}`);
}

/** A MigrationError with an offset. @internal */
export function streamError(code: ErrorCode, message: string, offset: number): MigrationError {
  return new MigrationError(code, message, { offset });
}

/** Short printable form of a value for messages. @internal */
export function show(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "string") return JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}…` : v);
  if (v instanceof Uint8Array) return `Uint8Array(${v.length})`;
  if (v instanceof Uint32Array) return `Uint32Array(${v.length})`;
  if (Array.isArray(v)) return `array(${v.length})`;
  if (v === null || typeof v !== "object") return String(v);
  return "object";
}

function hookFailed(op: "save" | "load", what: string, hook: string, e: unknown, offset: number | undefined) {
  const detail = e instanceof Error ? e.message : String(e);
  return new MigrationError("HOOK_FAILED", `Cannot ${op} "${what}": the ${hook} hook failed: ${detail}`, {
    cause: e,
    offset,
  });
}

/**
 * Runs a user hook; a throw or a returned Error becomes `HOOK_FAILED` naming the description and the hook.
 * @internal
 */
export function runHook(
  fn: (state: object, versionId: number) => HookResult,
  state: object,
  versionId: number,
  op: "save" | "load",
  what: string,
  hook: string,
  offset: number | undefined,
): void {
  let r: HookResult;
  try {
    r = fn(state, versionId);
  } catch (e) {
    throw hookFailed(op, what, hook, e, offset);
  }
  if (r instanceof Error) throw hookFailed(op, what, hook, r, offset);
}

/** Runs a user predicate (`needed`, `test`, `validate`); a throw becomes `HOOK_FAILED`. @internal */
export function runPredicate(
  fn: (state: never, versionId: number) => unknown,
  state: object,
  versionId: number,
  op: "save" | "load",
  what: string,
  hook: string,
  offset: number | undefined,
): boolean {
  try {
    return Boolean((fn as (s: object, v: number) => unknown)(state, versionId));
  } catch (e) {
    throw hookFailed(op, what, hook, e, offset);
  }
}
