/**
 * QMP errors: the error classes, the error type both server and client use, and the MigrationError mapping.
 *
 * @module
 */

import { type ErrorCode, isMigrationError } from "../errors.js";

/**
 * QMP error classes (QEMU: `QapiErrorClass` in `qapi/error.json`). QEMU reports nearly everything as
 * `GenericError`; the others exist for compatibility with old clients.
 */
export const QMP_ERROR_CLASSES = [
  "GenericError",
  "CommandNotFound",
  "DeviceNotActive",
  "DeviceNotFound",
  "KVMMissingCap",
] as const;

/** A QMP error class. */
export type QmpErrorClass = (typeof QMP_ERROR_CLASSES)[number];

/**
 * A QMP error: thrown by command handlers to choose the class, and by {@link QmpClient.execute} when the server
 * answers `{"error": {"class", "desc"}}`.
 *
 * @example
 * ```ts
 * server.register("query-widget", { args: object({ id: str() }), handler: ({ id }) => {
 *   throw new QmpError("DeviceNotFound", `Device '${id}' not found`);
 * } });
 * ```
 */
export class QmpError extends Error {
  /** The QMP `class`. */
  readonly errorClass: QmpErrorClass | (string & {});
  /** The QMP `desc` (the same text as `message`). */
  readonly desc: string;

  /**
   * @param errorClass The QMP error class.
   * @param desc The human-readable description.
   * @param options `cause`, e.g. the MigrationError this was mapped from.
   */
  constructor(errorClass: QmpErrorClass | (string & {}), desc: string, options?: { cause?: unknown }) {
    super(desc, options?.cause === undefined ? undefined : { cause: options.cause });
    this.errorClass = errorClass;
    this.desc = desc;
    Object.defineProperty(this, "name", { value: "QmpError", enumerable: false, configurable: true });
  }
}

/**
 * Tells whether a value is a {@link QmpError} (by `name`, so it works across duplicate installs).
 *
 * @param e Any value.
 * @param errorClass When given, also require this class.
 * @returns Whether `e` is a QmpError (of that class).
 */
export function isQmpError(e: unknown, errorClass?: string): e is QmpError {
  if (typeof e !== "object" || e === null) return false;
  const o = e as { name?: unknown; errorClass?: unknown };
  return (
    o.name === "QmpError" &&
    typeof o.errorClass === "string" &&
    (errorClass === undefined || o.errorClass === errorClass)
  );
}

/**
 * The QMP class each {@link ErrorCode} is reported with.
 *
 * Every code maps to `GenericError`, because QEMU reports every migration failure that way (a bad URI, a refused
 * connection, "There's a migration process in progress", a failed load, ...), and management tools key on
 * `CommandNotFound` only. `CommandNotFound` comes from the dispatcher alone; `DeviceNotFound` and
 * `DeviceNotActive` only from handlers that throw a {@link QmpError} with that class. The table is a `Record`
 * over every code, so a new code in `errors.ts` does not compile until someone decides its class here.
 */
export const MIGRATION_ERROR_CLASSES: Readonly<Record<ErrorCode, QmpErrorClass>> = {
  BAD_MAGIC: "GenericError",
  UNSUPPORTED_VERSION: "GenericError",
  TRUNCATED: "GenericError",
  UNKNOWN_SECTION: "GenericError",
  BAD_SECTION_TYPE: "GenericError",
  BAD_FOOTER: "GenericError",
  CONFIG_MISMATCH: "GenericError",
  VERSION_TOO_NEW: "GenericError",
  VERSION_TOO_OLD: "GenericError",
  FIELD_OUT_OF_RANGE: "GenericError",
  FIELD_MISMATCH: "GenericError",
  VALIDATION_FAILED: "GenericError",
  SUBSECTION_MISMATCH: "GenericError",
  HOOK_FAILED: "GenericError",
  LIMIT_EXCEEDED: "GenericError",
  BAD_RAM_RECORD: "GenericError",
  BAD_COMMAND: "GenericError",
  BAD_STREAM: "GenericError",
  BAD_URI: "GenericError",
  TRANSPORT: "GenericError",
  TIMEOUT: "GenericError",
  CANCELLED: "GenericError",
  INVALID_STATE: "GenericError",
  DESTINATION_FAILED: "GenericError",
};

/**
 * Turns anything a handler threw into a QMP error reply's `class` and `desc`.
 *
 * - {@link QmpError}: its class and desc.
 * - `MigrationError`: the class from {@link MIGRATION_ERROR_CLASSES}, its message as desc (paths and offsets are
 *   appended the way `toString()` shows them, without the `MigrationError [CODE]:` prefix).
 * - any other `Error`: `GenericError` with its message; anything else: `GenericError` with `String(e)`.
 *
 * @param e The thrown value.
 * @returns The QMP error body.
 */
export function toQmpErrorBody(e: unknown): { class: string; desc: string } {
  if (isQmpError(e)) return { class: e.errorClass, desc: e.desc };
  if (isMigrationError(e)) {
    const full = e.toString();
    const prefix = `MigrationError [${e.code}]: `;
    return {
      class: MIGRATION_ERROR_CLASSES[e.code] ?? "GenericError",
      desc: full.startsWith(prefix) ? full.slice(prefix.length) : e.message,
    };
  }
  if (e instanceof Error) return { class: "GenericError", desc: e.message };
  return { class: "GenericError", desc: String(e) };
}
