/**
 * QEMU's `timer` section (vmstate_timers v2) as legacy-style handlers for tests: int64 cpu_ticks_offset, 8 unused
 * bytes, int64 cpu_clock_offset, with the vmdesc QEMU 7.2 writes for it.
 */
import type { StateHandlers } from "../../src/savevm/registry.js";

/** The timer's state. */
export interface TimerState {
  ticks: bigint;
  clock: bigint;
}

/** Handlers that save `state` and load into it. */
export function qemuTimerHandlers(state: TimerState): StateHandlers {
  return {
    vmsdName: "timer",
    save(w, vmdesc) {
      w.i64(state.ticks).zeros(8).i64(state.clock);
      if (!vmdesc) return undefined;
      return {
        vmsd_name: "timer",
        version: 2,
        fields: [
          { name: "cpu_ticks_offset", type: "int64", size: 8 },
          { name: "unused", type: "unused_buffer", size: 8 },
          { name: "cpu_clock_offset", type: "int64", size: 8 },
        ],
      };
    },
    decode(r) {
      const ticks = r.i64();
      r.skip(8);
      return { ticks, clock: r.i64() };
    },
    apply(decoded) {
      Object.assign(state, decoded as TimerState);
    },
  };
}
