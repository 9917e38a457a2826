/**
 * `ferry-synthetic`: a CPU-less migratable guest (random RAM, a dirtier thread) for benchmarks and transport tests.
 *
 * @example
 * ```ts
 * import { SyntheticGuest } from "./machine/synthetic/index.js";
 * const g = new SyntheticGuest({ memory: 64 << 20, dirtyRate: 20000 });
 * await g.control.cont();
 * ```
 *
 * @module
 */

export {
  SYNTHETIC_MACHINE_TYPE,
  SYNTHETIC_RAM_IDSTR,
  SyntheticGuest,
  type SyntheticGuestOptions,
  syntheticDevice,
} from "./synthetic-machine.js";
