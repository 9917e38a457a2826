/**
 * What the migration engine needs of a machine besides its registry: run control (stop / cont / throttle) and
 * its run state, which travels in the `globalstate` section.
 *
 * @module
 */

import type { RamStats } from "../ram/ram-saver.js";
import type { GlobalState } from "../savevm/global-state.js";
import type { IterativeDevice } from "../savevm/handlers.js";
import type { MigratableMachine } from "../savevm/save-vm.js";

/** QEMU's run states that Ferry uses. */
export type RunState =
  | "running"
  | "paused"
  | "prelaunch"
  | "inmigrate"
  | "postmigrate"
  | "finish-migrate"
  | "shutdown"
  | "internal-error";

/** Run control of a machine's vCPUs. */
export interface GuestControl {
  /** The current run state (QEMU's `query-status` `status`). */
  runState(): RunState;
  /** Stops the vCPUs at an instruction boundary; resolves once they are stopped and their state is saved. */
  stop(next: RunState): Promise<void>;
  /** Resumes the vCPUs (run state `running`). */
  cont(): Promise<void>;
  /** Sets a non-running run state (e.g. `postmigrate`, `paused`, `inmigrate`) without touching the vCPUs. */
  setRunState(state: RunState): void;
  /** Sets the auto-converge throttle: the percentage of time the vCPUs sleep (0 = none). */
  setThrottle(percent: number): void;
}

/** An iterative device that reports RAM statistics (Ferry's `RamDevice` does, through `stats`). */
export interface RamStatisticsSource {
  readonly stats: RamStats;
}

/** Whether an iterative device reports RAM statistics. */
export function hasRamStatistics(d: IterativeDevice): d is IterativeDevice & RamStatisticsSource {
  const s = (d as Partial<RamStatisticsSource>).stats;
  return typeof s === "object" && s !== null && typeof s.dirtySyncCount === "number";
}

/** A machine the engine can migrate: registry + configuration + run control. */
export interface MigratableGuest extends MigratableMachine {
  /** vCPU run control. */
  readonly control: GuestControl;
  /**
   * The machine's `globalstate` entry (registered in its registry): the engine stores the run state before it
   * stops the source, and reads what the destination received to decide whether to start the guest.
   */
  readonly globalState: GlobalState;
}
