/**
 * The capability and parameter values the engine reads, as a plain snapshot (the QMP layer builds it from
 * `migrate-set-capabilities` / `migrate-set-parameters`). The engine re-reads it every iteration, so changes made
 * while a migration runs (e.g. `max-bandwidth`, `downtime-limit`) take effect at once, as in QEMU.
 *
 * @module
 */

/** What the engine reads. Names follow QEMU's capabilities and parameters in camelCase. */
export interface MigrationSettings {
  /** `events` capability: send `MIGRATION` events. */
  readonly events: boolean;
  /** `return-path` capability: open the return path and wait for the destination's SHUT. */
  readonly returnPath: boolean;
  /** `auto-converge` capability. */
  readonly autoConverge: boolean;
  /** `pause-before-switchover` capability. */
  readonly pauseBeforeSwitchover: boolean;
  /** `max-bandwidth` in bytes/s (0 = unlimited, a Ferry convenience; QEMU requires a value). */
  readonly maxBandwidth: number;
  /** `downtime-limit` in ms. */
  readonly downtimeLimit: number;
  /** `throttle-trigger-threshold` in %. */
  readonly throttleTriggerThreshold: number;
  /** `cpu-throttle-initial` in %. */
  readonly cpuThrottleInitial: number;
  /** `cpu-throttle-increment` in %. */
  readonly cpuThrottleIncrement: number;
  /** `cpu-throttle-tailslow`. */
  readonly cpuThrottleTailslow: boolean;
  /** `max-cpu-throttle` in %. */
  readonly maxCpuThrottle: number;
}

/** QEMU 7.2's defaults. */
export const DEFAULT_SETTINGS: MigrationSettings = Object.freeze({
  events: false,
  returnPath: false,
  autoConverge: false,
  pauseBeforeSwitchover: false,
  maxBandwidth: 134217728,
  downtimeLimit: 300,
  throttleTriggerThreshold: 50,
  cpuThrottleInitial: 20,
  cpuThrottleIncrement: 10,
  cpuThrottleTailslow: false,
  maxCpuThrottle: 99,
});
