/**
 * What outgoing and incoming migrations share: a status with QEMU's names, the error that ended it, and a promise
 * that settles when it is over.
 *
 * @module
 */

import type { MigrationError } from "../errors.js";
import type { MigrationStatus } from "./events.js";

/** The base of {@link MigrationSource} and {@link MigrationDestination}. */
export abstract class MigrationJob {
  #status: MigrationStatus = "none";
  #error: MigrationError | undefined;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;

  constructor() {
    this.#done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /** Current status. */
  get status(): MigrationStatus {
    return this.#status;
  }

  /** The error that ended the migration, if any. */
  get error(): MigrationError | undefined {
    return this.#error;
  }

  /** Resolves when the migration is over, whatever the outcome (never rejects). */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Moves to a new status; returns false when it already was in it. */
  protected transition(s: MigrationStatus): boolean {
    if (this.#status === s) return false;
    this.#status = s;
    return true;
  }

  /** Records the error that ends the migration. */
  protected setError(e: MigrationError): void {
    this.#error = e;
  }

  /** Runs the migration's body in the background and settles {@link MigrationJob.done} after it. */
  protected runInBackground(body: Promise<void>): void {
    void body.finally(() => this.#resolveDone());
  }
}
