/**
 * Error helpers shared by the channel implementations (private to `transport/`).
 *
 * @module
 */

import { MigrationError, toMigrationError } from "../errors.js";

/**
 * The error a channel's own pending and later operations fail with after `abort(reason)`: `reason` itself when it
 * is a {@link MigrationError}, else `CANCELLED` with `reason` as the cause.
 *
 * @param description The channel's description.
 * @param reason The reason given to `abort()`, if any.
 * @returns The error to fail operations with.
 */
export function abortError(description: string, reason: Error | undefined): MigrationError {
  if (reason instanceof MigrationError) return reason;
  if (reason === undefined) return new MigrationError("CANCELLED", `Channel ${description} was aborted`);
  return new MigrationError("CANCELLED", `Channel ${description} was aborted: ${reason.message}`, { cause: reason });
}

/**
 * The error the far end of an in-process channel sees when this end aborts.
 *
 * @param description The far end's description.
 * @param cause The error this end aborted with.
 * @returns A `TRANSPORT` error.
 */
export function peerAbortedError(description: string, cause: Error): MigrationError {
  return new MigrationError("TRANSPORT", `Channel ${description} failed: the peer aborted (${cause.message})`, {
    cause,
  });
}

/**
 * The error operations fail with after `close()`.
 *
 * @param description The channel's description.
 * @returns A `CANCELLED` error.
 */
export function closedError(description: string): MigrationError {
  return new MigrationError("CANCELLED", `Cannot use channel ${description}: it is closed`);
}

/**
 * The error a write fails with after `end()`.
 *
 * @param description The channel's description.
 * @returns A `TRANSPORT` error.
 */
export function endedError(description: string): MigrationError {
  return new MigrationError("TRANSPORT", `Cannot write to ${description}: the write side was already ended`);
}

/**
 * The error for calling `read()` on a write-only end or `write()` on a read-only end.
 *
 * @param description The channel's description.
 * @param op The operation that is not available.
 * @returns A `TRANSPORT` error.
 */
export function directionError(description: string, op: "read" | "write"): MigrationError {
  const what = op === "read" ? "read from" : "write to";
  return new MigrationError(
    "TRANSPORT",
    `Cannot ${what} ${description}: this end is ${op === "read" ? "write" : "read"}-only`,
  );
}

/**
 * Wraps an I/O failure from Node (`ECONNRESET`, `EPIPE`, `ENOENT`, ...) as a `TRANSPORT` error.
 *
 * @param description The channel or URI the operation was on.
 * @param action What failed, e.g. `"read from"` or `"connect to"`.
 * @param cause The error Node reported.
 * @returns A MigrationError (`cause` itself when it already is one).
 */
export function ioError(description: string, action: string, cause: unknown): MigrationError {
  return toMigrationError(cause, "TRANSPORT", `Cannot ${action} ${description}`);
}

/**
 * The error a write fails with on an in-process channel whose peer closed its read side.
 *
 * @param description The writing end's description.
 * @returns A `TRANSPORT` error.
 */
export function peerClosedError(description: string): MigrationError {
  return new MigrationError("TRANSPORT", `Cannot write to ${description}: the peer closed its end`);
}
