/**
 * Races an operation against an `AbortSignal` and a timeout (private to `transport/`).
 *
 * @module
 */

import { MigrationError } from "../errors.js";

/** What {@link raceCancel} watches. */
export interface CancelOptions {
  /** Aborting it rejects with `CANCELLED`. */
  readonly signal?: AbortSignal | undefined;
  /** Rejects with `TIMEOUT` after this many milliseconds. */
  readonly timeoutMs?: number | undefined;
  /** The failed action, first in messages: `Cannot connect to tcp:127.0.0.1:4444`. */
  readonly action: string;
}

/**
 * The `CANCELLED` error for an aborted signal.
 *
 * @param action The failed action, first in the message.
 * @param signal The aborted signal; its reason becomes the cause.
 * @returns The error.
 */
export function cancelledError(action: string, signal: AbortSignal): MigrationError {
  const reason: unknown = signal.reason;
  const detail = reason instanceof Error && reason.name !== "AbortError" ? `: ${reason.message}` : "";
  return new MigrationError("CANCELLED", `${action}: cancelled${detail}`, { cause: reason });
}

/**
 * Settles like `promise`, unless `signal` aborts first (`CANCELLED`) or `timeoutMs` passes first (`TIMEOUT`).
 * The caller undoes the operation when this rejects first; `promise` is still observed, so its later rejection is
 * not unhandled.
 *
 * @param promise The operation.
 * @param options Signal, timeout and the action for messages.
 * @returns What `promise` resolves to.
 */
export function raceCancel<T>(promise: Promise<T>, options: CancelOptions): Promise<T> {
  const { signal, timeoutMs, action } = options;
  if (signal === undefined && timeoutMs === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = (): void => {
      done();
      reject(cancelledError(action, signal as AbortSignal));
    };
    promise.then(
      (value) => {
        done();
        resolve(value);
      },
      (error: unknown) => {
        done();
        reject(error);
      },
    );
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        done();
        reject(new MigrationError("TIMEOUT", `${action}: no result within ${timeoutMs} ms`));
      }, timeoutMs);
    }
  });
}
