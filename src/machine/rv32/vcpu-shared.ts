/**
 * The shared-memory protocol between {@link VcpuWorker} (main thread) and the vCPU thread: control words, rings
 * for UART input and output, counters and the parked machine state. Platform-neutral.
 *
 * Stop handshake (shared/research/node-perf-probes.md part 6): main sets `status` to Running in `cont()` and
 * `cmd` to Run; to stop it sets `cmd` to Stop and spins on `status`. The vCPU polls `cmd` with `Atomics.load`
 * after every slice of at most {@link POLL_STEPS} steps; on Stop it publishes its state to the state words and
 * sets `status` to Parked. Only the vCPU writes Parked and only main writes Running, so a stop that follows a
 * `cont()` can never see a stale Parked.
 *
 * @module
 */

import type { BootImage } from "./machine.js";

/** Steps the vCPU runs between two polls of the control word (≤ 4096: stop latency ≈ half a slice). */
export const POLL_STEPS = 4096;
/** The throttle's period in milliseconds (QEMU: `CPU_THROTTLE_TIMESLICE_NS`, 10 ms). */
export const THROTTLE_PERIOD_MS = 10;

/** Indices into the control `Int32Array`. */
export const Ctl = {
  /** Main's command: one of {@link Cmd}. */
  cmd: 0,
  /** The vCPU's status: one of {@link Status}. */
  status: 1,
  /** Throttle percentage, 0–99. */
  throttle: 2,
  /** 1 when main wrote a new state into the state words; the vCPU loads it before running. */
  stateNew: 3,
  /** 1 while an "output" message is in flight to main. */
  outPing: 4,
  /** 1 when guest stores mark the dirty map. */
  trackDirty: 5,
  /** UART input ring: bytes written by main (wrapping int32 counter). */
  inWrite: 6,
  /** UART input ring: bytes taken by the vCPU. */
  inRead: 7,
  /** UART output ring: bytes written by the vCPU. */
  outWrite: 8,
  /** UART output ring: bytes taken by main. */
  outRead: 9,
  /** 1 once the guest powered the machine off. */
  poweredOff: 10,
  /** The guest's exit code once powered off. */
  exitCode: 11,
  /**
   * Bumped by main after every change to `cmd` or `throttle`; the vCPU sleeps on this word (read before it
   * looks at `cmd`), so a command can never slip in between its check and its wait.
   */
  seq: 12,
} as const;

/** Words in the control array. */
export const CTL_WORDS = 16;

/** Commands main writes to `Ctl.cmd`. */
export const Cmd = { Run: 0, Stop: 1, Exit: 2 } as const;

/** Values of `Ctl.status`. */
export const Status = { Starting: 0, Running: 1, Parked: 2, Exited: 3 } as const;

/** Indices into the counters `Float64Array`, updated by the vCPU after every slice. */
export const Counter = { instret: 0, cycles: 1 } as const;

/** Size of the UART input ring (a power of two). */
export const IN_RING_SIZE = 4096;
/** Size of the UART output ring (a power of two). */
export const OUT_RING_SIZE = 65536;

/** What the vCPU thread receives as `workerData`. */
export interface VcpuThreadData {
  readonly ram: Uint8Array;
  readonly dirty: Uint8Array;
  readonly ctl: Int32Array;
  readonly counters: Float64Array;
  readonly state: Int32Array;
  readonly inRing: Uint8Array;
  readonly outRing: Uint8Array;
  readonly cyclesPerTick: number;
  readonly bootImage: BootImage | undefined;
}

/** Messages from the vCPU thread to main. */
export type VcpuMessage =
  | { readonly type: "output" }
  | { readonly type: "poweroff"; readonly exitCode: number }
  | { readonly type: "error"; readonly message: string; readonly stack: string | undefined };
