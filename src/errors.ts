/**
 * The one error type of Ferry.
 *
 * Every layer throws {@link MigrationError} for bad input (a malformed stream, a hostile length, an unknown
 * section) and for I/O failure (a refused connection, a peer that died). Programmer errors (wrong argument types,
 * out-of-range arguments to a writer) use the built-in `TypeError` and `RangeError` instead.
 *
 * Following Node's policy for `err.code`, a {@link ErrorCode} statically and permanently identifies the error:
 * messages may change between releases, codes do not.
 *
 * @module
 */

/**
 * Stable error codes. Each is documented with when it is raised.
 */
export const ErrorCodes = {
  /** The stream does not start with QEMU's magic `QEVM`. */
  BAD_MAGIC: "BAD_MAGIC",
  /** The stream's file version is not 3 (2 is QEMU's obsolete compat version). */
  UNSUPPORTED_VERSION: "UNSUPPORTED_VERSION",
  /** The stream ended before an item was complete. */
  TRUNCATED: "TRUNCATED",
  /** A section names an idstr/instance the destination does not have. */
  UNKNOWN_SECTION: "UNKNOWN_SECTION",
  /** A top-level byte that is not a known section type. */
  BAD_SECTION_TYPE: "BAD_SECTION_TYPE",
  /** A section footer is missing or names another section. */
  BAD_FOOTER: "BAD_FOOTER",
  /** The configuration section does not match the destination (machine type, page bits, capabilities, UUID). */
  CONFIG_MISMATCH: "CONFIG_MISMATCH",
  /** A stream version is newer than the description supports. */
  VERSION_TOO_NEW: "VERSION_TOO_NEW",
  /** A stream version is older than the description's minimum version. */
  VERSION_TOO_OLD: "VERSION_TOO_OLD",
  /** A value read from the stream is outside its allowed range. */
  FIELD_OUT_OF_RANGE: "FIELD_OUT_OF_RANGE",
  /** An "equal" field differs from the destination's value. */
  FIELD_MISMATCH: "FIELD_MISMATCH",
  /** A validation predicate failed during load. */
  VALIDATION_FAILED: "VALIDATION_FAILED",
  /** A subsection in the stream is unknown, duplicated or malformed. */
  SUBSECTION_MISMATCH: "SUBSECTION_MISMATCH",
  /** A device hook (preSave, postLoad, ...) threw or returned an error. */
  HOOK_FAILED: "HOOK_FAILED",
  /** A length, count or buffered size from the wire is over a configured cap. */
  LIMIT_EXCEEDED: "LIMIT_EXCEEDED",
  /** A RAM record is malformed (unknown flags, unknown block, bad offset, missing EOS, ...). */
  BAD_RAM_RECORD: "BAD_RAM_RECORD",
  /** A command or return-path message is malformed or arrives in the wrong state. */
  BAD_COMMAND: "BAD_COMMAND",
  /** The stream is structurally invalid in a way no more specific code covers. */
  BAD_STREAM: "BAD_STREAM",
  /** A migration URI cannot be parsed or names an unsupported scheme. */
  BAD_URI: "BAD_URI",
  /** A transport failed: connection refused, reset, peer closed mid-stream, process exited non-zero. */
  TRANSPORT: "TRANSPORT",
  /** A transport or peer stayed silent past its timeout. */
  TIMEOUT: "TIMEOUT",
  /** The operation was cancelled (`migrate_cancel`, an aborted signal). */
  CANCELLED: "CANCELLED",
  /** The operation is not allowed in the current state (a second migration, a set-capabilities while active). */
  INVALID_STATE: "INVALID_STATE",
  /** A destination reported failure on the return path. */
  DESTINATION_FAILED: "DESTINATION_FAILED",
} as const;

/** A stable error code: one of the keys of {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** A path to the failing item: section idstr, then field names and array indices. */
export type ErrorPath = readonly (string | number)[];

/** Options accepted by the {@link MigrationError} constructor. */
export interface MigrationErrorOptions {
  /** Where the failure is, e.g. `["pckbd", "status"]` or `["ram", "pc.ram@0x1f000"]`. */
  readonly path?: ErrorPath | undefined;
  /** The byte offset in the stream where the failing item starts (or where reading stopped). */
  readonly offset?: number | undefined;
  /** The underlying error, for I/O and hook failures. */
  readonly cause?: unknown;
}

/**
 * Formats a path the way messages and `toString()` show it: `pckbd/status`, `ide/buf[17]`.
 *
 * @param path The path segments.
 * @returns The path as one string.
 */
export function formatPath(path: ErrorPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out === "" ? seg : `/${seg}`;
  }
  return out;
}

/**
 * The error every Ferry layer throws for bad input and I/O failure.
 *
 * @example
 * ```ts
 * try {
 *   await loadVm(machine, channel);
 * } catch (e) {
 *   if (isMigrationError(e, "TRUNCATED")) console.error(`stream ended at byte ${e.offset}`);
 * }
 * ```
 */
export class MigrationError extends Error {
  /** The stable error code. */
  readonly code: ErrorCode;
  /** Where the failure is (section, field path), when known. */
  readonly path: ErrorPath | undefined;
  /** The stream byte offset of the failure, when known. */
  readonly offset: number | undefined;

  /**
   * @param code The stable error code.
   * @param message What failed, what was expected and what was found.
   * @param options Path, offset and cause.
   */
  constructor(code: ErrorCode, message: string, options: MigrationErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.path = options.path;
    this.offset = options.offset;
    Object.defineProperty(this, "name", { value: "MigrationError", enumerable: false, configurable: true });
  }

  /**
   * Returns a copy of this error with a path prefix and/or an offset filled in where they were missing.
   * Lower layers throw without knowing the section; upper layers add it on the way out.
   *
   * @param prefix Segments to put in front of the current path.
   * @param offset An offset to use if this error has none.
   * @returns A new error with the same code, message and cause.
   */
  withContext(prefix: ErrorPath, offset?: number): MigrationError {
    const path = [...prefix, ...(this.path ?? [])];
    const e = new MigrationError(this.code, this.message, {
      path,
      offset: this.offset ?? offset,
      cause: this.cause,
    });
    return e;
  }

  override toString(): string {
    let s = `MigrationError [${this.code}]: ${this.message}`;
    if (this.path !== undefined && this.path.length > 0) s += ` (at ${formatPath(this.path)})`;
    if (this.offset !== undefined) s += ` (offset ${this.offset})`;
    return s;
  }

  /** A plain JSON form: code, message, path, offset. */
  toJSON(): { code: ErrorCode; message: string; path?: string; offset?: number } {
    const out: { code: ErrorCode; message: string; path?: string; offset?: number } = {
      code: this.code,
      message: this.message,
    };
    if (this.path !== undefined && this.path.length > 0) out.path = formatPath(this.path);
    if (this.offset !== undefined) out.offset = this.offset;
    return out;
  }
}

/**
 * Tells whether a value is a {@link MigrationError}, optionally with a given code.
 *
 * It checks `name` and `code` rather than `instanceof`, so it works when two copies of Ferry are loaded.
 *
 * @param e Any value, typically a caught exception.
 * @param code When given, also require this code.
 * @returns Whether `e` is a MigrationError (with that code).
 */
export function isMigrationError(e: unknown, code?: ErrorCode): e is MigrationError {
  if (typeof e !== "object" || e === null) return false;
  const o = e as { name?: unknown; code?: unknown };
  if (o.name !== "MigrationError" || typeof o.code !== "string") return false;
  return code === undefined || o.code === code;
}

/**
 * Wraps any thrown value as a MigrationError: MigrationErrors pass through, others become `code` with the value
 * as `cause`.
 *
 * @param e The thrown value.
 * @param code The code to use for foreign errors.
 * @param message The message to use for foreign errors; the foreign message is appended after a colon.
 * @returns A MigrationError.
 */
export function toMigrationError(e: unknown, code: ErrorCode, message: string): MigrationError {
  if (isMigrationError(e)) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return new MigrationError(code, `${message}: ${detail}`, { cause: e });
}
