/**
 * A promise with its resolve and reject functions (private to `transport/`; `Promise.withResolvers` needs Node 22).
 *
 * @module
 */

/** A promise together with the functions that settle it. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Creates a {@link Deferred}.
 *
 * @returns A pending promise and its settle functions.
 */
export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
